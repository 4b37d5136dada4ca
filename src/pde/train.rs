//! Training the network: Adam, the H¹ natural gradient (Levenberg–Marquardt damped, with a
//! line search on the energy), and the default (Adam warm-up, then natural gradient).

use super::quadrature::{monte_carlo, tensor_gauss, Rng};
use super::source::{self, Activation, PdeSource};
use crate::api::Model;
use crate::check::{MethodSpec, OptValue, PdeBoundary};
use crate::compiled::ValueFns;
use crate::diag::{Code, Diagnostic, Span};
use crate::ir::TensorExpr;
use crate::solve::linalg::{Dense, DenseKind, Factor};
use std::time::Instant;

/// The training method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Adam,
    NaturalGradient,
    /// Gauss–Newton with the symbolic ∂²L of the Lagrangian in place of the H¹ metric.
    EnergyNaturalGradient,
    /// Adam warm-up, then the energy natural gradient.
    Auto,
    /// Inner weights fixed at their random start; Newton on the outer weights (a convex
    /// problem for a convex Lagrangian), then implicit derivatives of E in the params.
    RandomFeatures,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Adam => "adam",
            Method::NaturalGradient => "natural_gradient",
            Method::EnergyNaturalGradient => "energy_natural_gradient",
            Method::Auto => "adam+energy_natural_gradient",
            Method::RandomFeatures => "random_features",
        }
    }
}

/// Options of `using barron(...)`.
#[derive(Clone, Debug)]
pub struct Options {
    pub width: usize,
    pub activation: Activation,
    pub method: Method,
    pub steps: usize,
    /// Integration points: tensor Gauss for d ≤ 3 (rounded to a power of d), Monte Carlo
    /// samples (fresh every step) above.
    pub samples: usize,
    pub lr: f64,
    pub seed: u64,
    /// Initial Levenberg–Marquardt damping of the natural gradient (relative to the
    /// metric's mean diagonal).
    pub damping: f64,
    /// Adam steps before the natural gradient (method `auto`).
    pub warmup: usize,
    /// Wall-clock limit on training, seconds (0: none).
    pub max_time: f64,
}

const OPTIONS: [&str; 10] = [
    "width",
    "activation",
    "method",
    "steps",
    "samples",
    "lr",
    "seed",
    "damping",
    "warmup",
    "max_time",
];

fn options(spec: Option<&MethodSpec>, d: usize) -> Result<Options, Diagnostic> {
    let mut o = Options {
        width: 32,
        activation: Activation::Tanh,
        method: Method::Auto,
        steps: 200,
        samples: if d <= 3 { 1024 } else { 2048 },
        lr: 1e-2,
        seed: 1,
        damping: 1e-3,
        warmup: 20,
        max_time: 0.0,
    };
    let Some(spec) = spec else { return Ok(o) };
    if spec.name != "barron" {
        return Err(Diagnostic::error(
            Code::UnknownMethod,
            format!(
                "a pde block is solved `using barron(...)`, not `{}`",
                spec.name
            ),
        )
        .at(spec.span, "not a pde method")
        .help("e.g. `using barron(width = 32, method = natural_gradient)`"));
    }
    for (name, value, span) in &spec.options {
        let bad = |what: &str, eg: &str| {
            Diagnostic::error(Code::BadArgument, format!("`{name}` takes {what}"))
                .at(*span, "here")
                .help(format!("e.g. {name} = {eg}"))
        };
        let count = |lo: f64, hi: f64, eg: &str| match value {
            OptValue::Number(v) if *v >= lo && *v <= hi && v.fract() == 0.0 => Ok(*v as usize),
            _ => Err(bad(&format!("a whole number from {lo} to {hi}"), eg)),
        };
        let positive = |eg: &str| match value {
            OptValue::Number(v) if *v > 0.0 && v.is_finite() => Ok(*v),
            _ => Err(bad("a positive number", eg)),
        };
        match name.as_str() {
            "width" => o.width = count(1.0, 4096.0, "32")?,
            "steps" => o.steps = count(0.0, 1e7, "200")?,
            "samples" => o.samples = count(1.0, 1e7, "1024")?,
            "warmup" => o.warmup = count(0.0, 1e7, "20")?,
            "seed" => o.seed = count(0.0, 1e15, "1")? as u64,
            "lr" => o.lr = positive("1e-2")?,
            "damping" => o.damping = positive("1e-3")?,
            "max_time" => o.max_time = positive("60")?,
            "activation" => {
                let s = match value {
                    OptValue::Name(s) => s.as_str(),
                    _ => "",
                };
                o.activation = Activation::parse(s)
                    .ok_or_else(|| bad("one of tanh, cos, softplus, sigmoid", "tanh"))?;
            }
            "method" => {
                o.method = match value {
                    OptValue::Name(s) if s == "adam" => Method::Adam,
                    OptValue::Name(s) if s == "natural_gradient" => Method::NaturalGradient,
                    OptValue::Name(s) if s == "energy_natural_gradient" => {
                        Method::EnergyNaturalGradient
                    }
                    OptValue::Name(s) if s == "auto" => Method::Auto,
                    OptValue::Name(s) if s == "random_features" => Method::RandomFeatures,
                    _ => return Err(bad(
                        "adam, natural_gradient, energy_natural_gradient, random_features or auto",
                        "natural_gradient",
                    )),
                }
            }
            _ => {
                return Err(crate::solve::unknown_option(
                    "barron", name, *span, &OPTIONS,
                ))
            }
        }
    }
    Ok(o)
}

/// What training produced (the JSON `pde` field).
#[derive(Clone, Debug)]
pub struct PdeReport {
    /// The pde block.
    pub name: String,
    /// Its dimension.
    pub dim: usize,
    /// The training method.
    pub method: &'static str,
    /// Hidden units.
    pub width: usize,
    /// Network weights (H(d + 2) + 1).
    pub parameters: usize,
    /// Training steps taken.
    pub steps: usize,
    /// `gauss(n^d)` or `monte_carlo(n)`.
    pub quadrature: String,
    /// The energy at the end (on the training rule, or on fresh samples for Monte Carlo).
    pub energy: f64,
    /// Its standard error (0 for a Gauss rule).
    pub energy_stderr: f64,
    /// The energy of the exact solution on the same rule, when `exact` is given.
    pub exact_energy: Option<f64>,
    /// Relative L² error against `exact` on fresh uniform test points.
    pub rel_l2: Option<f64>,
    /// Relative H¹ error against `exact` on the same points.
    pub rel_h1: Option<f64>,
    /// Wall time of training, seconds.
    pub time_s: f64,
    /// (step, energy, relative L² error when known).
    pub history: Vec<(usize, f64, Option<f64>)>,
    /// dE/dα for each scalar param α of the file, by implicit differentiation of the
    /// trained outer weights (random features only).
    pub sensitivities: Vec<(String, f64)>,
}

/// The compiled energy, with compiled values of the network (and of the exact solution)
/// for the errors, and of the network's Jacobians for the H¹ metric.
struct Energy {
    model: Model,
    /// [U, G] or [U, G, EX, EG].
    values: ValueFns,
    /// The exact solution's energy on the rule.
    estar: Option<ValueFns>,
    /// ∂U/∂(W, b, a, c), ∂G/∂(W, b, a, c).
    jac: Option<ValueFns>,
    /// ∂²L/∂u², ∂²L/∂u∂p, ∂²L/∂p² at (x, nn_PU, nn_PG), for the energy natural gradient.
    curvature: Option<ValueFns>,
}

fn let_expr(m: &mut Model, name: &str) -> Result<TensorExpr, Diagnostic> {
    let t = m
        .checked()
        .lets
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.expr.clone())
        .ok_or_else(|| Diagnostic::error(Code::Unsupported, format!("no let `{name}`")))?;
    m.lower(&t)
}

/// Sets a param of a generated program (its shape is the program's own: a failure is an
/// internal error).
fn set(m: &mut Model, name: &str, v: &[f64], span: Span) -> Result<(), Diagnostic> {
    m.set_param(name, v)
        .map_err(|e| Diagnostic::error(Code::Unsupported, e).at(span, "here"))
}

/// Sets the integration points and weights.
fn set_rule(m: &mut Model, pts: &[f64], wts: &[f64], span: Span) -> Result<(), Diagnostic> {
    set(m, "nn_X", pts, span)?;
    set(m, "nn_q", wts, span)
}

fn fault(what: &str, m: String, span: Span) -> Diagnostic {
    Diagnostic::error(Code::NumericalFault, format!("while {what}: {m}"))
        .at(span, "training this pde")
        .help("try a smaller lr, more damping, or another activation")
}

/// The integration rule: points (n × d, row-major) and weights.
fn rule(src: &PdeSource, o: &Options, rng: &mut Rng) -> (Vec<f64>, Vec<f64>, String) {
    let d = src.dim;
    if d <= 3 {
        let per = ((o.samples as f64).powf(1.0 / d as f64).round() as usize).max(2);
        let (p, w) = tensor_gauss(per, &src.lo, &src.hi);
        (p, w, format!("gauss({per}^{d})"))
    } else {
        let (p, w) = monte_carlo(o.samples, &src.lo, &src.hi, rng);
        (p, w, format!("monte_carlo({})", o.samples))
    }
}

/// Trains a network for the pde block `target` of `model`.
pub fn train(
    model: &Model,
    target: &str,
    spec: Option<&MethodSpec>,
    span: Span,
    progress: bool,
) -> Result<(PdeReport, Option<Diagnostic>), Diagnostic> {
    let pde = model
        .checked()
        .pdes
        .iter()
        .find(|p| p.name == target)
        .cloned()
        .ok_or_else(|| {
            Diagnostic::error(Code::UnknownName, format!("no pde named `{target}`"))
                .at(span, "here")
        })?;
    let supported = match &pde.boundary {
        PdeBoundary::Neumann => true,
        PdeBoundary::Dirichlet { penalty, .. } => penalty.is_none(),
        PdeBoundary::Periodic => false,
    };
    if !supported {
        return Err(Diagnostic::warning(
            Code::NotYetAvailable,
            "periodic and penalty-Dirichlet boundaries are not trained by this version",
        )
        .at(span, "skipped")
        .help("use `boundary neumann` or a hard `boundary dirichlet(g)`"));
    }
    let mut o = options(spec, pde.dim)?;
    o.max_time = model.options().limits.cap_seconds(o.max_time);
    let warning = source::convexity_warning(model, &pde, span)?;
    let src = source::pde_source(model, &pde)?;
    let d = src.dim;
    let mut rng = Rng(o.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let (pts, wts, quadrature) = rule(&src, &o, &mut rng);
    let s = wts.len();
    let fresh = d > 3;
    let start = Instant::now();

    let mut a = source::compile(
        model,
        &source::energy_program(
            &src,
            s,
            o.width,
            o.activation,
            match o.method {
                Method::Adam => source::Extras::None,
                Method::RandomFeatures => source::Extras::FixedInner,
                _ => source::Extras::SecondOrder,
            },
        ),
        span,
    )?;
    a.system_fns()?;
    let mut outs = vec![let_expr(&mut a, "nn_U")?, let_expr(&mut a, "nn_G")?];
    if src.exact.is_some() {
        outs.push(let_expr(&mut a, "nn_EX")?);
        outs.push(let_expr(&mut a, "nn_EG")?);
    }
    let values = a.compile_values(&outs)?;
    let estar = match src.exact {
        Some(_) => {
            let e = let_expr(&mut a, "nn_Estar")?;
            Some(a.compile_values(&[e])?)
        }
        None => None,
    };
    let jac = if !matches!(o.method, Method::Adam | Method::RandomFeatures) {
        let mut js = Vec::new();
        for out in ["U", "G"] {
            for v in ["W", "b", "a", "c"] {
                js.push(let_expr(&mut a, &format!("nn_J{out}{v}"))?);
            }
        }
        Some(a.compile_values(&js)?)
    } else {
        None
    };
    let curvature = if matches!(o.method, Method::EnergyNaturalGradient | Method::Auto) {
        let c = ["nn_Cuu", "nn_Cup", "nn_Cpp"]
            .iter()
            .map(|n| let_expr(&mut a, n))
            .collect::<Result<Vec<_>, _>>()?;
        Some(a.compile_values(&c)?)
    } else {
        None
    };
    let mut energy = Energy {
        model: a,
        values,
        estar,
        jac,
        curvature,
    };
    set_rule(&mut energy.model, &pts, &wts, span)?;

    // Initial weights: hyperplanes through random points of the domain.
    let h = o.width;
    let mut w = vec![0.0; h * d];
    let mut b = vec![0.0; h];
    let mut aa = vec![0.0; h];
    for i in 0..h {
        let mut dot = 0.0;
        for k in 0..d {
            let v = 2.0 * rng.normal() / ((src.hi[k] - src.lo[k]) * (d as f64).sqrt());
            w[i * d + k] = v;
            let x0 = src.lo[k] + (src.hi[k] - src.lo[k]) * rng.unit();
            dot += v * x0;
        }
        b[i] = -dot;
        aa[i] = 0.1 * rng.normal() / (h as f64).sqrt();
    }
    let mut sensitivities = Vec::new();
    let mut theta: Vec<f64> = w.iter().chain(&b).chain(&aa).copied().collect();
    theta.push(0.0);
    if o.method == Method::RandomFeatures {
        theta = random_features(&mut energy, model, &w, &b, &aa, span, &mut sensitivities)?;
    }
    let p = theta.len();

    let value = |m: &Model, z: &[f64], grad: Option<&mut [f64]>| -> Result<f64, Diagnostic> {
        let fns = m
            .fns()
            .ok_or_else(|| Diagnostic::error(Code::Unsupported, "energy not compiled"))?;
        fns.objective(z, m.state(), grad)
            .map_err(|e| fault("evaluating the energy", e, span))
    };

    let bar = if progress {
        let pb = indicatif::ProgressBar::new(o.steps as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_prefix(format!("pde {}", pde.name));
        Some(pb)
    } else {
        None
    };

    let mut history = Vec::new();
    let (mut m1, mut m2) = (vec![0.0; p], vec![0.0; p]);
    let mut mu = o.damping;
    let mut grad = vec![0.0; p];
    let mut e = value(&energy.model, &theta, Some(&mut grad))?;
    let every = (o.steps / 10).max(1);
    let mut steps = 0;
    let mut adam_t = 0;
    let mut stalled = 0;
    let mut timed_out = false;
    let training_steps = if o.method == Method::RandomFeatures {
        let err = match src.exact {
            Some(_) => Some(errors(&mut energy, &theta, &src, &mut rng, s, span)?.0),
            None => None,
        };
        history.push((0, e, err));
        0
    } else {
        o.steps
    };
    for step in 0..training_steps {
        if o.max_time > 0.0 && start.elapsed().as_secs_f64() > o.max_time {
            timed_out = true;
            break;
        }
        if fresh {
            let (pts, wts) = monte_carlo(o.samples, &src.lo, &src.hi, &mut rng);
            set_rule(&mut energy.model, &pts, &wts, span)?;
            e = value(&energy.model, &theta, Some(&mut grad))?;
        }
        let use_adam = o.method == Method::Adam || (o.method == Method::Auto && step < o.warmup);
        if use_adam {
            adam_t += 1;
            let lr = o.lr * 0.1f64.powf(step as f64 / o.steps.max(1) as f64);
            let (b1, b2) = (0.9, 0.999);
            for k in 0..p {
                m1[k] = b1 * m1[k] + (1.0 - b1) * grad[k];
                m2[k] = b2 * m2[k] + (1.0 - b2) * grad[k] * grad[k];
                let mh = m1[k] / (1.0 - b1.powi(adam_t));
                let vh = m2[k] / (1.0 - b2.powi(adam_t));
                theta[k] -= lr * mh / (vh.sqrt() + 1e-8);
            }
            e = value(&energy.model, &theta, Some(&mut grad))?;
        } else {
            let gmat = metric(&mut energy, &theta, d, o.width, span)?;
            let mean_diag = (0..p).map(|k| gmat.get(k, k)).sum::<f64>() / p as f64;
            let mut accepted = false;
            for _ in 0..12 {
                let mut a = gmat.clone();
                for k in 0..p {
                    a.set(k, k, a.get(k, k) + mu * mean_diag.max(1e-300));
                }
                let Some(f) = Factor::new(&a, DenseKind::Cholesky) else {
                    mu *= 10.0;
                    continue;
                };
                let mut dir: Vec<f64> = grad.iter().map(|g| -g).collect();
                f.solve(&mut dir);
                let trial: Vec<f64> = theta.iter().zip(&dir).map(|(t, d)| t + d).collect();
                let et = value(&energy.model, &trial, None)?;
                if et.is_finite() && et < e {
                    theta = trial;
                    let rel = (e - et) / e.abs().max(1e-300);
                    e = value(&energy.model, &theta, Some(&mut grad))?;
                    mu = (mu / 3.0).max(if fresh { 0.1 } else { 1e-12 });
                    accepted = true;
                    stalled = if rel < 1e-13 { stalled + 1 } else { 0 };
                    break;
                }
                mu *= 4.0;
            }
            if !accepted {
                stalled += 1;
            }
        }
        if !e.is_finite() {
            return Err(fault(
                "training",
                format!("the energy became {e} at step {step}"),
                span,
            ));
        }
        steps = step + 1;
        if step % every == 0 || step + 1 == o.steps {
            let err = match src.exact {
                Some(_) => Some(errors(&mut energy, &theta, &src, &mut rng, s, span)?.0),
                None => None,
            };
            history.push((step, e, err));
            if let Some(pb) = &bar {
                let m = match err {
                    Some(r) => format!("E = {e:.6e}, rel L2 = {r:.2e}"),
                    None => format!("E = {e:.6e}"),
                };
                pb.set_message(m);
            }
        }
        if let Some(pb) = &bar {
            pb.set_position(steps as u64);
        }
        // Converged to rounding: further steps change nothing.
        if stalled >= 3 {
            break;
        }
    }
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let time_s = start.elapsed().as_secs_f64();
    // The final energy on the training rule (fresh samples for Monte Carlo, with its
    // standard error).
    let (energy_final, stderr) = if fresh {
        let mut vals = Vec::new();
        for _ in 0..8 {
            let (pts, wts) = monte_carlo(o.samples, &src.lo, &src.hi, &mut rng);
            set_rule(&mut energy.model, &pts, &wts, span)?;
            vals.push(value(&energy.model, &theta, None)?);
        }
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    } else {
        (value(&energy.model, &theta, None)?, 0.0)
    };
    let (rel_l2, rel_h1, exact_energy) = match src.exact {
        Some(_) => {
            let (l2, h1) = errors(&mut energy, &theta, &src, &mut rng, s, span)?;
            // The exact solution's energy on the training rule.
            if !fresh {
                set_rule(&mut energy.model, &pts, &wts, span)?;
            }
            let estar = match &energy.estar {
                Some(f) => run(&energy.model, f, &theta, span)?[0][0],
                None => f64::NAN,
            };
            (Some(l2), Some(h1), Some(estar))
        }
        None => (None, None, None),
    };
    let report = PdeReport {
        name: pde.name.clone(),
        dim: d,
        method: o.method.name(),
        width: o.width,
        parameters: p,
        steps,
        quadrature,
        energy: energy_final,
        energy_stderr: stderr,
        exact_energy,
        rel_l2,
        rel_h1,
        time_s,
        history,
        sensitivities,
    };
    let warning = match (warning, timed_out) {
        (w, false) => w,
        (_, true) => Some(
            Diagnostic::warning(
                Code::NotConverged,
                format!(
                    "training stopped at the time limit of {} s after {steps} of {} steps",
                    o.max_time, o.steps
                ),
            )
            .at(span, "stopped early")
            .help("raise max_time, or ask for fewer steps"),
        ),
    };
    Ok((report, warning))
}

/// Random features: sets the inner weights, solves for the outer ones by Newton (the file's
/// model machinery), and differentiates E in every scalar param of the file by the implicit
/// function theorem. Returns the solution z = (a, c).
fn random_features(
    en: &mut Energy,
    file: &Model,
    w: &[f64],
    b: &[f64],
    a: &[f64],
    span: Span,
    sens: &mut Vec<(String, f64)>,
) -> Result<Vec<f64>, Diagnostic> {
    let m = &mut en.model;
    let internal = |e: String| Diagnostic::error(Code::Unsupported, e).at(span, "here");
    set(m, "nn_W", w, span)?;
    set(m, "nn_b", b, span)?;
    m.set_var("nn_a", a).map_err(internal)?;
    // Random features are nearly collinear: the Hessian in (a, c) is ill-conditioned, and
    // one Newton step (exact for a quadratic energy) leaves a residual of κ·ε. A tolerance
    // of 1e-7 accepts that; the implicit derivatives check the conditioning themselves.
    let newton = MethodSpec {
        name: "newton".into(),
        options: vec![
            ("tol".into(), OptValue::Number(1e-7), span),
            ("max_iter".into(), OptValue::Number(50.0), span),
        ],
        span,
    };
    let r = m.solve(Some(&newton), span, None)?;
    if !r.converged {
        return Err(crate::solve::failure_diagnostic(&r, span));
    }
    let objective = m
        .checked()
        .objective
        .as_ref()
        .map(|o| o.expr.clone())
        .ok_or_else(|| internal("no energy".into()))?;
    for p in &file.checked().params {
        if !p.shape.is_empty() {
            continue;
        }
        if let Some(id) = m.checked().param_by_name(&p.name) {
            let d = m.derive(&objective, "E", id, 1, None, span)?;
            sens.push((p.name.clone(), d.value[0]));
        }
    }
    let (Some(sys), Some(fns)) = (m.system(), m.fns()) else {
        return Err(internal("network not compiled".into()));
    };
    Ok(fns.pack(sys, m.state()))
}

/// Runs compiled values at θ.
fn run(m: &Model, f: &ValueFns, theta: &[f64], span: Span) -> Result<Vec<Vec<f64>>, Diagnostic> {
    let fns = m
        .fns()
        .ok_or_else(|| Diagnostic::error(Code::Unsupported, "network not compiled"))?;
    let mut out = vec![Vec::new(); f.lens.len()];
    fns.run_values(f, theta, m.state(), &mut out)
        .map_err(|x| fault("evaluating the network", x, span))?;
    Ok(out)
}

/// The natural-gradient metric at θ from the compiled Jacobians of the network's values and
/// input gradients: the H¹ matrix G = Σ_s q_s (∂u_sᵀ∂u_s + Σ_k ∂(∇u)_skᵀ ∂(∇u)_sk), or, with
/// the energy natural gradient, the same sum weighted by ∂²L at each point.
fn metric(
    en: &mut Energy,
    theta: &[f64],
    d: usize,
    h: usize,
    span: Span,
) -> Result<Dense, Diagnostic> {
    // With the energy natural gradient, each point's rows are weighted by ∂²L at (u, ∇u).
    let curv = match en.curvature.as_ref() {
        Some(c) => {
            let v = run(&en.model, &en.values, theta, span)?;
            set(&mut en.model, "nn_PU", &v[0], span)?;
            set(&mut en.model, "nn_PG", &v[1], span)?;
            Some(run(&en.model, c, theta, span)?)
        }
        None => None,
    };
    let f = en
        .jac
        .as_ref()
        .ok_or_else(|| Diagnostic::error(Code::Unsupported, "Jacobians not compiled"))?;
    let j = run(&en.model, f, theta, span)?;
    let q = en
        .model
        .param("nn_q")
        .ok_or_else(|| Diagnostic::error(Code::Unsupported, "no weights"))?;
    let s = q.len();
    let p = theta.len();
    // A: one row per sample and component (u, then (∇u)_k), scaled by √q; G = AᵀA.
    let rows = s * (d + 1);
    let mut a = faer::Mat::<f64>::zeros(rows, p);
    for si in 0..s {
        let w = q[si].max(0.0).sqrt();
        for comp in 0..=d {
            let (jw, jb, ja, jc) = if comp == 0 {
                (
                    &j[0][si * h * d..(si + 1) * h * d],
                    &j[1][si * h..(si + 1) * h],
                    &j[2][si * h..(si + 1) * h],
                    j[3][si],
                )
            } else {
                let r = si * d + comp - 1;
                (
                    &j[4][r * h * d..(r + 1) * h * d],
                    &j[5][r * h..(r + 1) * h],
                    &j[6][r * h..(r + 1) * h],
                    j[7][r],
                )
            };
            let r = si * (d + 1) + comp;
            let cols = jw.iter().chain(jb).chain(ja).chain(std::iter::once(&jc));
            for (c, v) in cols.enumerate() {
                a[(r, c)] = w * v;
            }
        }
    }
    let g = match &curv {
        None => a.transpose() * &a,
        Some(c) => {
            // B = C A point by point (C the (d+1)×(d+1) block of ∂²L), G = AᵀB.
            let mut bm = faer::Mat::<f64>::zeros(rows, p);
            for si in 0..s {
                let cc = |r: usize, t: usize| -> f64 {
                    match (r, t) {
                        (0, 0) => c[0][si],
                        (0, k) | (k, 0) => c[1][si * d + k - 1],
                        (j, k) => c[2][(j - 1) * s * d + si * d + k - 1],
                    }
                };
                for r in 0..=d {
                    for col in 0..p {
                        let mut v = 0.0;
                        for t in 0..=d {
                            v += cc(r, t) * a[(si * (d + 1) + t, col)];
                        }
                        bm[(si * (d + 1) + r, col)] = v;
                    }
                }
            }
            let g = a.transpose() * &bm;
            // Symmetric in exact arithmetic; average away rounding.
            faer::Mat::from_fn(p, p, |i, j| 0.5 * (g[(i, j)] + g[(j, i)]))
        }
    };
    let mut out = Dense::zeros(p, p);
    for x in 0..p {
        for y in 0..p {
            out.set(x, y, g[(x, y)]);
        }
    }
    Ok(out)
}

/// Relative L² and H¹ errors against the exact solution on fresh uniform points (four
/// batches of the training size).
fn errors(
    en: &mut Energy,
    theta: &[f64],
    src: &PdeSource,
    rng: &mut Rng,
    s: usize,
    span: Span,
) -> Result<(f64, f64), Diagnostic> {
    let saved = en.model.state().params.clone();
    let (mut num0, mut den0, mut num1, mut den1) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..4 {
        let (pts, wts) = monte_carlo(s, &src.lo, &src.hi, rng);
        set_rule(&mut en.model, &pts, &wts, span)?;
        let vals = run(&en.model, &en.values, theta, span)?;
        for k in 0..s {
            num0 += (vals[0][k] - vals[2][k]).powi(2);
            den0 += vals[2][k].powi(2);
        }
        for k in 0..vals[1].len() {
            num1 += (vals[1][k] - vals[3][k]).powi(2);
            den1 += vals[3][k].powi(2);
        }
    }
    en.model.state_mut().params = saved;
    let l2 = (num0 / den0.max(1e-300)).sqrt();
    let h1 = ((num0 + num1) / (den0 + den1).max(1e-300)).sqrt();
    Ok((l2, h1))
}
