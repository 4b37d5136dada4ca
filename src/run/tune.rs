//! `tune p, q to minimize e`: the outer optimization of a bilevel problem. Each evaluation
//! sets the params, re-solves the inner system warm-started from the previous solution, and
//! takes the hypergradient de/dθ by reverse-mode implicit differentiation (one transposed
//! linear solve per param, never by unrolling the inner solver).

use super::{Named, RunOptions};
use crate::api::Model;
use crate::check::{MethodSpec, ParamId, Request, Sense, T};
use crate::diag::{Code, Diagnostic, Span};
use crate::solve::outer::{self, EvalError, OuterRecord};
use std::io::Write;
use std::time::Instant;

/// What a `tune` produced (the JSON `tune` field).
#[derive(Clone, Debug)]
pub struct TuneReport {
    /// The tuned params at the end.
    pub params: Vec<Named>,
    /// The outer objective at the end (in the file's sense: maximized objectives are not
    /// negated).
    pub objective: f64,
    /// The outer objective at the starting params.
    pub initial_objective: f64,
    /// Its gradient with respect to each tuned param at the end.
    pub gradient: Vec<Named>,
    /// Outer iterations.
    pub iterations: usize,
    /// Inner solves (objective and hypergradient evaluations).
    pub evaluations: usize,
    /// Inner solver iterations, summed over every evaluation.
    pub inner_iterations: usize,
    /// The outer method.
    pub method: &'static str,
    /// Whether the outer stopping rule was met.
    pub converged: bool,
    /// Why the outer loop stopped.
    pub reason: String,
    /// (iteration, objective, projected-gradient norm) of each accepted iterate.
    pub history: Vec<(usize, f64, f64)>,
    /// Seconds in inner solves and in hypergradients.
    pub solve_seconds: f64,
    /// Seconds in hypergradients.
    pub gradient_seconds: f64,
}

/// The parts of a `tune` request.
pub(crate) struct TuneRequest<'a> {
    pub params: &'a [ParamId],
    pub sense: Sense,
    pub objective: &'a T,
    pub objective_text: String,
    pub method: Option<&'a MethodSpec>,
    pub span: Span,
    /// The `using` clause of the last inner `solve`.
    pub inner: Option<&'a MethodSpec>,
}

impl<'a> TuneRequest<'a> {
    /// The parts of a `tune` statement (`None` for any other request), with the `using`
    /// clause of the last inner `solve`.
    pub(crate) fn of(r: &'a Request, inner: Option<&'a MethodSpec>) -> Option<TuneRequest<'a>> {
        let Request::Tune {
            params,
            sense,
            objective,
            objective_text,
            method,
            span,
        } = r
        else {
            return None;
        };
        Some(TuneRequest {
            params,
            sense: *sense,
            objective,
            objective_text: objective_text.clone(),
            method: method.as_ref(),
            span: *span,
            inner,
        })
    }
}

/// Runs the outer loop; the model is left at the tuned params and their inner solution.
pub(crate) fn tune(
    model: &mut Model,
    req: &TuneRequest,
    opts: &RunOptions,
    log: &mut dyn Write,
) -> Result<TuneReport, Diagnostic> {
    let mut o = outer::options(req.method)?;
    o.max_time = model.options().limits.cap_seconds(o.max_time);
    let sign = if req.sense == Sense::Maximize {
        -1.0
    } else {
        1.0
    };
    // The search box and the starting point, flattened over the params.
    let mut x0 = Vec::new();
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    let mut sizes = Vec::new();
    for &p in req.params {
        let v = model.state().params[p.index()].clone();
        let (l, h) = model.param_bounds(p);
        lo.extend((0..v.len()).map(|k| l.map_or(f64::NEG_INFINITY, |l| l[k])));
        hi.extend((0..v.len()).map(|k| h.map_or(f64::INFINITY, |h| h[k])));
        sizes.push(v.len());
        x0.extend(v);
    }
    let names: Vec<String> = req
        .params
        .iter()
        .map(|&p| model.checked().param(p).name.clone())
        .collect();
    // A first solve, so that the system's functions exist and warm starts have a start.
    let cold = model.state().vars.clone();
    let t0 = Instant::now();
    let first = model.solve(req.inner, req.span, None)?;
    if !first.converged {
        return Err(inner_failure(
            &names,
            &x0,
            req.span,
            first.failure.as_deref().unwrap_or("not converged"),
        ));
    }
    let h = model.hypergradient_fns(req.objective, &req.objective_text, req.params, req.span)?;
    let mut solve_seconds = t0.elapsed().as_secs_f64();
    let mut gradient_seconds = 0.0;
    let mut inner_iterations = first.iterations;
    let mut anchor = model.state().vars.clone();
    let quiet = opts.quiet;
    if !quiet {
        let _ = writeln!(
            log,
            "tune {} by {} — outer objective `{}`",
            names.join(", "),
            o.method.name(),
            req.objective_text
        );
        let _ = writeln!(
            log,
            "{:>5}  {:>14}  {:>10}  {:>9}  {:>6}  params",
            "iter", "objective", "|proj g|", "step", "solves"
        );
    }
    let last_x = std::cell::RefCell::new(Vec::new());
    let mut eval = |x: &[f64]| -> Result<(f64, Vec<f64>), EvalError> {
        let t = Instant::now();
        last_x.borrow_mut().clear();
        let mut off = 0;
        for (&p, &n) in req.params.iter().zip(&sizes) {
            model.state_mut().params[p.index()] = x[off..off + n].to_vec();
            off += n;
        }
        // Warm start from the last inner solution; if that fails, once more from the
        // file's starting point.
        model.state_mut().vars = anchor.clone();
        let mut r = model
            .solve(req.inner, req.span, None)
            .map_err(EvalError::Hard)?;
        if !r.converged {
            inner_iterations += r.iterations;
            model.state_mut().vars = cold.clone();
            r = model
                .solve(req.inner, req.span, None)
                .map_err(EvalError::Hard)?;
        }
        inner_iterations += r.iterations;
        if !r.converged {
            model.state_mut().vars = anchor.clone();
            solve_seconds += t.elapsed().as_secs_f64();
            return Err(EvalError::Soft(
                r.failure.unwrap_or_else(|| "not converged".into()),
            ));
        }
        anchor = model.state().vars.clone();
        let tg = Instant::now();
        let (v, grads) = model.hypergradient(&h, req.span).map_err(EvalError::Hard)?;
        gradient_seconds += tg.elapsed().as_secs_f64();
        solve_seconds += t.elapsed().as_secs_f64();
        if !v.is_finite() {
            return Err(EvalError::Soft(format!("the outer objective is {v}")));
        }
        *last_x.borrow_mut() = x.to_vec();
        let g: Vec<f64> = grads.into_iter().flatten().map(|d| sign * d).collect();
        if g.iter().any(|d| !d.is_finite()) {
            return Err(EvalError::Soft("the hypergradient is not finite".into()));
        }
        Ok((sign * v, g))
    };
    let show = x0.len() <= 4;
    let mut log_row = |r: &OuterRecord| {
        if quiet {
            return;
        }
        let step = if r.iter == 0 {
            "-".to_string()
        } else {
            format!("{:.2e}", r.step)
        };
        let _ = write!(
            log,
            "{:>5}  {:>14.7e}  {:>10.2e}  {:>9}  {:>6}",
            r.iter,
            sign * r.objective,
            r.grad_norm,
            step,
            r.evals
        );
        if show {
            let _ = write!(log, "  ");
            let mut off = 0;
            for (name, &n) in names.iter().zip(&sizes) {
                let v: Vec<String> = r.x[off..off + n]
                    .iter()
                    .map(|v| format!("{v:.6}"))
                    .collect();
                let _ = write!(log, "{name} = {}  ", v.join(", "));
                off += n;
            }
        }
        let _ = writeln!(log);
    };
    let res = outer::minimize(&x0, &lo, &hi, &o, &mut eval, &mut log_row);
    let res = res.map_err(|d| {
        if d.primary.is_none() {
            d.at(req.span, "in this tune")
        } else {
            d
        }
    })?;
    // Leave the model at the tuned params and their solution.
    let at_end = *last_x.borrow() == res.x;
    if !at_end {
        eval(&res.x).map_err(|e| match e {
            EvalError::Hard(d) => d,
            EvalError::Soft(m) => inner_failure(&names, &res.x, req.span, &m),
        })?;
    }
    let mut params = Vec::new();
    let mut gradient = Vec::new();
    let mut off = 0;
    for ((&p, &n), name) in req.params.iter().zip(&sizes).zip(&names) {
        let shape = model.checked().param(p).shape.clone();
        params.push(Named {
            name: name.clone(),
            shape: shape.clone(),
            values: res.x[off..off + n].to_vec(),
        });
        gradient.push(Named {
            name: name.clone(),
            shape,
            values: res.gradient[off..off + n]
                .iter()
                .map(|g| sign * g)
                .collect(),
        });
        off += n;
    }
    if !quiet {
        let _ = writeln!(log, "tune: {}", res.reason);
    }
    Ok(TuneReport {
        params,
        objective: sign * res.objective,
        initial_objective: sign * res.history[0].objective,
        gradient,
        iterations: res.iterations,
        evaluations: res.evals,
        inner_iterations,
        method: o.method.name(),
        converged: res.converged,
        reason: res.reason,
        history: res
            .history
            .iter()
            .map(|r| (r.iter, sign * r.objective, r.grad_norm))
            .collect(),
        solve_seconds,
        gradient_seconds,
    })
}

fn inner_failure(names: &[String], x: &[f64], span: Span, why: &str) -> Diagnostic {
    let at = if x.len() <= 4 {
        let v: Vec<String> = x.iter().map(|v| crate::report::fmt_num(*v)).collect();
        format!(" at ({}) = ({})", names.join(", "), v.join(", "))
    } else {
        String::new()
    };
    Diagnostic::error(
        Code::NotConverged,
        format!("the inner problem did not solve{at}: {why}"),
    )
    .at(span, "in this tune")
    .help("give the inner `solve` more iterations, or bound the tuned params with `in [a, b]`")
}
