//! The outer optimizer of `tune`: minimizes a function of a few params over a box, given its
//! value and gradient (the hypergradient, from implicit differentiation). Projected L-BFGS
//! with a backtracking line search along the projected path (the default), projected Adam,
//! and projected gradient descent.
//!
//! An evaluation may fail softly (the inner solve did not converge at a trial point): the
//! line search then backs off, Adam and gradient descent halve their step. A hard failure (an
//! error in the model) ends the run.

use crate::check::{MethodSpec, OptValue};
use crate::diag::{Code, Diagnostic};

/// The outer method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OuterMethod {
    Lbfgs,
    Adam,
    Gd,
}

impl OuterMethod {
    pub fn name(self) -> &'static str {
        match self {
            OuterMethod::Lbfgs => "lbfgs",
            OuterMethod::Adam => "adam",
            OuterMethod::Gd => "gd",
        }
    }
}

/// Options of `tune ... using METHOD(k = v, ...)`.
#[derive(Clone, Debug)]
pub struct OuterOptions {
    pub method: OuterMethod,
    /// Outer iterations.
    pub max_iter: usize,
    /// Stop when the projected gradient's ∞-norm is at most this.
    pub tol: f64,
    /// Step size (Adam, gradient descent); L-BFGS's first trial step is scaled to it.
    pub lr: f64,
    /// L-BFGS memory.
    pub memory: usize,
    /// Wall-clock limit in seconds (0: none).
    pub max_time: f64,
}

const METHODS: [&str; 3] = ["lbfgs", "adam", "gd"];

impl OuterOptions {
    pub fn new(method: OuterMethod) -> OuterOptions {
        OuterOptions {
            method,
            max_iter: match method {
                OuterMethod::Lbfgs => 100,
                OuterMethod::Adam | OuterMethod::Gd => 200,
            },
            tol: 1e-6,
            lr: match method {
                OuterMethod::Lbfgs => 1.0,
                OuterMethod::Adam => 0.05,
                OuterMethod::Gd => 0.1,
            },
            memory: 10,
            max_time: 0.0,
        }
    }
}

/// Parses the `using` clause of a `tune` (checked when the file is compiled).
pub fn options(spec: Option<&MethodSpec>) -> Result<OuterOptions, Diagnostic> {
    let Some(spec) = spec else {
        return Ok(OuterOptions::new(OuterMethod::Lbfgs));
    };
    let method = match spec.name.as_str() {
        "lbfgs" => OuterMethod::Lbfgs,
        "adam" => OuterMethod::Adam,
        "gd" | "gradient_descent" => OuterMethod::Gd,
        other => {
            return Err(super::unknown_method(
                other,
                spec.span,
                "outer method",
                "not an outer method of `tune`",
                &METHODS,
                "tune's methods are",
            ));
        }
    };
    let mut o = OuterOptions::new(method);
    let allowed: &[&str] = match method {
        OuterMethod::Lbfgs => &["tol", "max_iter", "memory", "lr", "max_time"],
        OuterMethod::Adam | OuterMethod::Gd => &["tol", "max_iter", "steps", "lr", "max_time"],
    };
    for (name, value, span) in &spec.options {
        if !allowed.contains(&name.as_str()) {
            return Err(super::unknown_option(method.name(), name, *span, allowed));
        }
        let bad = |what: &str, eg: &str| {
            Diagnostic::error(Code::BadArgument, format!("`{name}` takes {what}"))
                .at(*span, "here")
                .help(format!("e.g. {name} = {eg}"))
        };
        let v = match value {
            OptValue::Number(v) if v.is_finite() => *v,
            _ => return Err(bad("a number", "1e-6")),
        };
        match name.as_str() {
            "tol" | "lr" | "max_time" if v <= 0.0 => return Err(bad("a positive number", "1e-3")),
            "tol" => o.tol = v,
            "max_time" => o.max_time = v,
            "lr" => o.lr = v,
            _ if v < 1.0 || v != v.trunc() || v > 1e7 => {
                return Err(bad("a positive whole number", "50"));
            }
            "memory" => o.memory = v as usize,
            _ => o.max_iter = v as usize,
        }
    }
    Ok(o)
}

/// Why an evaluation failed.
pub enum EvalError {
    /// The point cannot be used (the inner solve failed there); try a shorter step.
    Soft(String),
    /// The run cannot go on.
    Hard(Diagnostic),
}

/// The objective: (f, ∇f) at a point, or why the point cannot be used.
pub type Evaluator<'a> = dyn FnMut(&[f64]) -> Result<(f64, Vec<f64>), EvalError> + 'a;

/// One outer iteration, for the log and the report.
#[derive(Clone, Debug)]
pub struct OuterRecord {
    pub iter: usize,
    pub objective: f64,
    /// ∞-norm of the projected gradient P(x − g) − x.
    pub grad_norm: f64,
    /// ∞-norm of the step taken to reach this point (0 at the start).
    pub step: f64,
    /// Evaluations (inner solves) so far.
    pub evals: usize,
    /// The point.
    pub x: Vec<f64>,
}

/// The outcome of an outer optimization.
#[derive(Clone, Debug)]
pub struct OuterResult {
    pub x: Vec<f64>,
    pub objective: f64,
    pub gradient: Vec<f64>,
    pub iterations: usize,
    pub evals: usize,
    pub converged: bool,
    /// Why it stopped.
    pub reason: String,
    pub history: Vec<OuterRecord>,
}

/// Steps this short (relative to 1 + ‖x‖∞) cannot improve the objective any further.
const XTOL: f64 = 1e-8;

fn project(x: &mut [f64], lo: &[f64], hi: &[f64]) {
    for ((v, l), h) in x.iter_mut().zip(lo).zip(hi) {
        *v = v.max(*l).min(*h);
    }
}

fn projected_gradient_norm(x: &[f64], g: &[f64], lo: &[f64], hi: &[f64]) -> f64 {
    let mut m = 0.0_f64;
    for k in 0..x.len() {
        let p = (x[k] - g[k]).max(lo[k]).min(hi[k]) - x[k];
        m = m.max(p.abs());
    }
    if g.iter().any(|v| v.is_nan()) {
        f64::NAN
    } else {
        m
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm_inf(a: &[f64]) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// Minimizes `eval` over the box [lo, hi] from x0. `eval` returns (f, ∇f); `log` sees every
/// accepted iterate.
pub fn minimize(
    x0: &[f64],
    lo: &[f64],
    hi: &[f64],
    o: &OuterOptions,
    eval: &mut Evaluator,
    log: &mut dyn FnMut(&OuterRecord),
) -> Result<OuterResult, Diagnostic> {
    let mut x = x0.to_vec();
    project(&mut x, lo, hi);
    let mut evals = 1;
    let (mut f, mut g) = match eval(&x) {
        Ok(v) => v,
        Err(EvalError::Hard(d)) => return Err(d),
        Err(EvalError::Soft(m)) => {
            return Err(Diagnostic::error(
                Code::NotConverged,
                format!("the inner problem has no solution at the starting params: {m}"),
            ))
        }
    };
    let mut history = vec![OuterRecord {
        iter: 0,
        objective: f,
        grad_norm: projected_gradient_norm(&x, &g, lo, hi),
        step: 0.0,
        evals,
        x: x.clone(),
    }];
    log(&history[0]);
    // L-BFGS pairs; Adam moments.
    let mut pairs: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    let (mut m1, mut m2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let mut lr = o.lr;
    let mut reason = format!("{} iterations reached", o.max_iter);
    let mut converged = false;
    let mut stalled = 0;
    let mut iter = 0;
    let start = std::time::Instant::now();
    while iter < o.max_iter {
        if o.max_time > 0.0 && start.elapsed().as_secs_f64() > o.max_time {
            reason = format!("time limit of {} s reached", o.max_time);
            break;
        }
        let gn = projected_gradient_norm(&x, &g, lo, hi);
        if gn <= o.tol {
            converged = true;
            reason = format!("projected gradient {gn:.1e} ≤ tol {:.0e}", o.tol);
            break;
        }
        iter += 1;
        // A direction, zero on bound components the gradient pushes outward.
        let free: Vec<bool> = (0..x.len())
            .map(|k| !((x[k] <= lo[k] && g[k] > 0.0) || (x[k] >= hi[k] && g[k] < 0.0)))
            .collect();
        let mut d: Vec<f64> = match o.method {
            OuterMethod::Lbfgs => two_loop(&g, &pairs),
            OuterMethod::Gd => g.iter().map(|v| -lr * v).collect(),
            OuterMethod::Adam => {
                let (b1, b2, eps) = (0.9, 0.999, 1e-8);
                let t = iter as i32;
                (0..x.len())
                    .map(|k| {
                        m1[k] = b1 * m1[k] + (1.0 - b1) * g[k];
                        m2[k] = b2 * m2[k] + (1.0 - b2) * g[k] * g[k];
                        let mh = m1[k] / (1.0 - b1.powi(t));
                        let vh = m2[k] / (1.0 - b2.powi(t));
                        -lr * mh / (vh.sqrt() + eps)
                    })
                    .collect()
            }
        };
        for k in 0..x.len() {
            if !free[k] {
                d[k] = 0.0;
            }
        }
        if o.method == OuterMethod::Lbfgs {
            if dot(&d, &g) >= 0.0 || d.iter().any(|v| !v.is_finite()) {
                pairs.clear();
                d = (0..x.len())
                    .map(|k| if free[k] { -g[k] } else { 0.0 })
                    .collect();
            }
            if pairs.is_empty() {
                // First step (or after a reset): at most lr in the ∞-norm.
                let s = lr / norm_inf(&d).max(1e-300);
                if s < 1.0 {
                    d.iter_mut().for_each(|v| *v *= s);
                }
            }
        }
        // Trial points along the projected path; L-BFGS asks for sufficient decrease, the
        // others only for a point where the inner problem solves.
        let mut t = 1.0;
        let mut accepted = None;
        let mut shortest = f64::INFINITY;
        for _ in 0..40 {
            let mut xt: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + t * b).collect();
            project(&mut xt, lo, hi);
            let s: Vec<f64> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
            shortest = norm_inf(&s);
            if shortest <= 1e-15 * (1.0 + norm_inf(&x)) {
                break;
            }
            evals += 1;
            match eval(&xt) {
                Ok((ft, gt)) => {
                    let armijo = ft <= f + 1e-4 * dot(&g, &s);
                    if ft.is_finite() && (o.method != OuterMethod::Lbfgs || armijo) {
                        accepted = Some((xt, ft, gt, s));
                        break;
                    }
                }
                Err(EvalError::Hard(d)) => return Err(d),
                Err(EvalError::Soft(_)) => {}
            }
            t *= 0.5;
            if o.method != OuterMethod::Lbfgs {
                lr *= 0.5;
            }
        }
        let Some((xt, ft, gt, s)) = accepted else {
            if shortest <= XTOL * (1.0 + norm_inf(&x)) {
                // Every step down to rounding size fails to decrease f although the
                // gradient says it should: a kink of the outer objective (the lasso's, where
                // the support changes) or the accuracy floor of the inner solves.
                converged = true;
                reason = format!(
                    "no decrease at steps down to {shortest:.1e}: a kink of the outer \
                     objective, or the inner solves' accuracy"
                );
            } else {
                reason = "no step decreased the objective (line search failed)".into();
            }
            break;
        };
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            pairs.push((s.clone(), y, 1.0 / sy));
            if pairs.len() > o.memory {
                pairs.remove(0);
            }
        }
        let decrease = f - ft;
        x = xt;
        f = ft;
        g = gt;
        let rec = OuterRecord {
            iter,
            objective: f,
            grad_norm: projected_gradient_norm(&x, &g, lo, hi),
            step: norm_inf(&s),
            evals,
            x: x.clone(),
        };
        log(&rec);
        history.push(rec);
        // A stalled objective ends L-BFGS: the hypergradient's own accuracy (that of the
        // inner solve) is the floor.
        if o.method == OuterMethod::Lbfgs && decrease.abs() <= 1e-12 * f.abs().max(1e-300) {
            stalled += 1;
            if stalled >= 2 {
                converged = true;
                reason = "objective stalled".into();
                break;
            }
        } else {
            stalled = 0;
        }
    }
    if !converged && iter >= o.max_iter && o.method != OuterMethod::Lbfgs {
        // Adam and gradient descent run their steps: that is their stopping rule.
        converged = true;
        reason = format!("{} steps done", o.max_iter);
    }
    Ok(OuterResult {
        x,
        objective: f,
        gradient: g,
        iterations: iter,
        evals,
        converged,
        reason,
        history,
    })
}

/// The L-BFGS two-loop recursion: −H g.
fn two_loop(g: &[f64], pairs: &[(Vec<f64>, Vec<f64>, f64)]) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alpha = vec![0.0; pairs.len()];
    for (k, (s, y, rho)) in pairs.iter().enumerate().rev() {
        alpha[k] = rho * dot(s, &q);
        for (qi, yi) in q.iter_mut().zip(y) {
            *qi -= alpha[k] * yi;
        }
    }
    if let Some((s, y, _)) = pairs.last() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for (k, (s, y, rho)) in pairs.iter().enumerate() {
        let beta = rho * dot(y, &q);
        for (qi, si) in q.iter_mut().zip(s) {
            *qi += (alpha[k] - beta) * si;
        }
    }
    q.iter_mut().for_each(|v| *v = -*v);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosen(x: &[f64]) -> (f64, Vec<f64>) {
        let (a, b) = (x[0], x[1]);
        let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let g = vec![
            -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
            200.0 * (b - a * a),
        ];
        (f, g)
    }

    #[test]
    fn lbfgs_finds_the_rosenbrock_minimum() {
        let mut o = OuterOptions::new(OuterMethod::Lbfgs);
        o.max_iter = 200;
        o.tol = 1e-9;
        let inf = f64::INFINITY;
        let r = minimize(
            &[-1.2, 1.0],
            &[-inf, -inf],
            &[inf, inf],
            &o,
            &mut |x| Ok(rosen(x)),
            &mut |_| {},
        )
        .ok()
        .filter(|r| r.converged);
        let r = r.map(|r| r.x).unwrap_or_default();
        assert!(
            (r[0] - 1.0).abs() < 1e-6 && (r[1] - 1.0).abs() < 1e-6,
            "{r:?}"
        );
    }

    #[test]
    fn bounds_hold_and_the_constrained_minimum_is_on_the_bound() {
        // min (x − 3)² + (y + 1)² over [0, 2] × [0, 2]: (2, 0).
        for m in [OuterMethod::Lbfgs, OuterMethod::Adam, OuterMethod::Gd] {
            let mut o = OuterOptions::new(m);
            o.max_iter = 2000;
            let r = minimize(
                &[1.0, 1.0],
                &[0.0, 0.0],
                &[2.0, 2.0],
                &o,
                &mut |x| {
                    let f = (x[0] - 3.0).powi(2) + (x[1] + 1.0).powi(2);
                    Ok((f, vec![2.0 * (x[0] - 3.0), 2.0 * (x[1] + 1.0)]))
                },
                &mut |_| {},
            )
            .map(|r| r.x)
            .unwrap_or_default();
            assert!(
                (r[0] - 2.0).abs() < 1e-6 && r[1].abs() < 1e-6,
                "{}: {r:?}",
                m.name()
            );
        }
    }

    #[test]
    fn soft_failures_shorten_the_step() {
        // The function is undefined for x > 1.5: trial points there fail softly.
        let o = OuterOptions::new(OuterMethod::Lbfgs);
        let inf = f64::INFINITY;
        let r = minimize(
            &[0.0],
            &[-inf],
            &[inf],
            &o,
            &mut |x| {
                if x[0] > 1.5 {
                    Err(EvalError::Soft("no solution".into()))
                } else {
                    Ok(((x[0] - 1.0).powi(2), vec![2.0 * (x[0] - 1.0)]))
                }
            },
            &mut |_| {},
        )
        .map(|r| r.x[0])
        .unwrap_or(f64::NAN);
        assert!((r - 1.0).abs() < 1e-6, "{r}");
    }
}
