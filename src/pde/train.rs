//! Training the network: Adam, the H¹ natural gradient (Levenberg–Marquardt damped, with a
//! line search on the energy), and the default (Adam warm-up, then natural gradient).

use super::quadrature::{faces, monte_carlo, tensor_gauss, Rng};
use super::sobol::scrambled_sobol;
use super::source::{self, Activation, PdeSource};
use crate::api::Model;
use crate::check::{MethodSpec, OptValue};
use crate::compiled::ValueFns;
use crate::diag::{Code, Diagnostic, Span};
use crate::ir::TensorExpr;
use crate::solve::linalg::{Dense, DenseKind, Factor};
use rayon::prelude::*;
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

/// How the energy integral is discretized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quadrature {
    /// A tensor Gauss–Legendre rule (fixed).
    Gauss,
    /// Scrambled Sobol points, scrambled afresh every step.
    Sobol,
    /// Uniform samples, drawn afresh every step.
    MonteCarlo,
}

/// Options of `using barron(...)`.
#[derive(Clone, Debug)]
pub struct Options {
    pub width: usize,
    pub activation: Activation,
    pub method: Method,
    pub steps: usize,
    /// Integration points (rounded to a power of d for a Gauss rule, to a power of two for
    /// Sobol points).
    pub samples: usize,
    /// The rule: Gauss for d ≤ 3, scrambled Sobol above, unless asked.
    pub quadrature: Quadrature,
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

/// Rules smaller than this are evaluated on one core (splitting costs more than it saves).
const MIN_PARALLEL_POINTS: usize = 256;

const OPTIONS: [&str; 11] = [
    "width",
    "activation",
    "method",
    "steps",
    "samples",
    "quadrature",
    "lr",
    "seed",
    "damping",
    "warmup",
    "max_time",
];

/// Checks the options of `using barron(...)` for a pde block in `d` dimensions (so `optc
/// check` reports them, not only the run).
pub(crate) fn check_options(spec: &MethodSpec, d: usize) -> Result<(), Diagnostic> {
    options(Some(spec), d).map(|_| ())
}

fn options(spec: Option<&MethodSpec>, d: usize) -> Result<Options, Diagnostic> {
    let mut o = Options {
        width: 32,
        activation: Activation::Tanh,
        method: Method::Auto,
        steps: 200,
        samples: if d <= 3 { 1024 } else { 2048 },
        quadrature: if d <= 3 {
            Quadrature::Gauss
        } else {
            Quadrature::Sobol
        },
        lr: 1e-2,
        seed: 1,
        damping: 1e-3,
        warmup: 20,
        max_time: 0.0,
    };
    let given = |name: &str| spec.is_some_and(|s| s.options.iter().any(|(n, ..)| n == name));
    // Above three dimensions the default is Adam on fresh Sobol points: the natural
    // gradients' dense metric costs more per step than it gains on a changing rule.
    let high = d > 3 && !given("method");
    if high {
        o.method = Method::Adam;
        o.steps = 2000;
        o.lr = 0.03;
    }
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
            "quadrature" => {
                o.quadrature = match value {
                    OptValue::Name(s) if s == "gauss" => Quadrature::Gauss,
                    OptValue::Name(s) if s == "sobol" => Quadrature::Sobol,
                    OptValue::Name(s) if s == "monte_carlo" => Quadrature::MonteCarlo,
                    _ => return Err(bad("gauss, sobol or monte_carlo", "sobol")),
                }
            }
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
    if o.quadrature == Quadrature::Gauss {
        let per = ((o.samples as f64).powf(1.0 / d as f64).round()).max(2.0);
        if per.powi(d as i32) > 1e7 {
            return Err(Diagnostic::error(
                Code::BadArgument,
                format!("a tensor Gauss rule in {d} dimensions has at least {per}^{d} points"),
            )
            .at(spec.span, "too many points")
            .help("use `quadrature = sobol` in high dimensions"));
        }
    }
    Ok(o)
}

/// A point of the 1-D slice through the domain (x₁ varies, the rest at the centre).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlicePoint {
    /// x₁.
    pub x: f64,
    /// The trained u there.
    pub u: f64,
    /// The exact solution there, when given.
    pub exact: Option<f64>,
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
    /// Root-mean-square Euler–Lagrange residual −div ∂L/∂p + ∂L/∂u − f of the trained
    /// network (weighted by the rule).
    pub el_residual: f64,
    /// The same relative to the root-mean-square of f (when the block has a source).
    pub el_residual_rel: Option<f64>,
    /// The hidden units' activation.
    pub activation: &'static str,
    /// A periodic boundary: the network's inputs are Fourier features of x.
    pub periodic: bool,
    /// The domain's lower corner.
    pub lo: Vec<f64>,
    /// The domain's upper corner.
    pub hi: Vec<f64>,
    /// u along x₁ with the other coordinates at the centre of the domain.
    pub slice: Vec<SlicePoint>,
    /// du/dα at the slice's points for each scalar param α, by implicit differentiation of
    /// the trained outer weights (random features only).
    pub slice_sensitivities: Vec<(String, Vec<f64>)>,
    /// The trained weights: W (width × inputs, row-major: d coordinates, or with a periodic
    /// boundary 2d Fourier features), b, a, c. With a Dirichlet boundary they are N's in
    /// u = g + φ·N.
    pub weights: Vec<f64>,
}

/// The compiled energy, with compiled values of the network (and of the exact solution)
/// for the errors, and of the network's Jacobians for the H¹ metric.
///
/// The program is compiled for `chunk` integration points; a rule of n points is split into
/// parts of that size (the last one padded with points of weight 0), one state each, and the
/// parts are evaluated in parallel over the cores.
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
    /// Points per part.
    chunk: usize,
    parts: Vec<Part>,
    /// The penalty's boundary rule (points, weights): in the first part; the others carry
    /// the same points with weight 0.
    boundary: Option<(Vec<f64>, Vec<f64>)>,
    /// The penalty weight w of w ∫_∂Ω (u − g)².
    penalty: Option<f64>,
    span: Span,
}

/// A part of the integration rule.
struct Part {
    state: crate::State,
    /// Points in it that are not padding.
    valid: usize,
}

/// Index of a param of the generated program in its state.
fn param_index(m: &Model, name: &str) -> Result<usize, Diagnostic> {
    m.checked()
        .param_by_name(name)
        .map(|id| id.index())
        .ok_or_else(|| Diagnostic::error(Code::Unsupported, format!("no param `{name}`")))
}

impl Energy {
    /// Compiles the energy program of `src` for `chunk` points per part, with what the
    /// training method needs.
    fn compile(
        model: &Model,
        src: &PdeSource,
        o: &Options,
        chunk: usize,
        span: Span,
    ) -> Result<Energy, Diagnostic> {
        let mut a = source::compile(
            model,
            &source::energy_program(
                src,
                chunk,
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
            let outs: &[&str] = if src.penalty.is_some() {
                &["U", "G", "UB"]
            } else {
                &["U", "G"]
            };
            for out in outs {
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
        Ok(Energy {
            model: a,
            values,
            estar,
            jac,
            curvature,
            chunk,
            parts: Vec::new(),
            boundary: None,
            penalty: src.penalty,
            span,
        })
    }

    /// Sets the integration points (n × d, row-major) and weights, split into parts. The
    /// model's own state gets the first part (the single-state machinery — solves, derive —
    /// uses it).
    fn set_rule(&mut self, pts: &[f64], wts: &[f64]) -> Result<(), Diagnostic> {
        self.parts = self.split(pts, wts)?;
        if let Some(first) = self.parts.first() {
            let st = first.state.clone();
            let names: &[&str] = if self.boundary.is_some() {
                &["nn_X", "nn_q", "nn_XB", "nn_qB"]
            } else {
                &["nn_X", "nn_q"]
            };
            for &name in names {
                let k = param_index(&self.model, name)?;
                set(&mut self.model, name, &st.params[k], self.span)?;
            }
        }
        Ok(())
    }

    /// The parts of a rule: the model's state with each part's points and weights.
    fn split(&self, pts: &[f64], wts: &[f64]) -> Result<Vec<Part>, Diagnostic> {
        let n = wts.len();
        let d = pts.len() / n.max(1);
        let (xi, qi) = (
            param_index(&self.model, "nn_X")?,
            param_index(&self.model, "nn_q")?,
        );
        let c = self.chunk;
        let mut parts = Vec::new();
        for start in (0..n).step_by(c) {
            let valid = c.min(n - start);
            let mut x = pts[start * d..(start + valid) * d].to_vec();
            let mut q = wts[start..start + valid].to_vec();
            // Padding: the last point again, with weight 0.
            for _ in valid..c {
                x.extend_from_within((valid - 1) * d..valid * d);
            }
            q.resize(c, 0.0);
            let mut state = self.model.state().clone();
            state.params[xi] = x;
            state.params[qi] = q;
            if let Some((xb, qb)) = &self.boundary {
                state.params[param_index(&self.model, "nn_XB")?].clone_from(xb);
                state.params[param_index(&self.model, "nn_qB")?] = if parts.is_empty() {
                    qb.clone()
                } else {
                    vec![0.0; qb.len()]
                };
            }
            parts.push(Part { state, valid });
        }
        Ok(parts)
    }

    /// Copies the model's params (other than the rule) into every part, after the
    /// single-state machinery changed them.
    fn sync(&mut self) -> Result<(), Diagnostic> {
        let mut keep = vec![
            param_index(&self.model, "nn_X")?,
            param_index(&self.model, "nn_q")?,
        ];
        if self.boundary.is_some() {
            keep.push(param_index(&self.model, "nn_qB")?);
        }
        let params = &self.model.state().params;
        for part in &mut self.parts {
            for (k, v) in params.iter().enumerate() {
                if !keep.contains(&k) {
                    part.state.params[k].clone_from(v);
                }
            }
        }
        Ok(())
    }

    fn fns(&self) -> Result<&crate::compiled::SystemFns, Diagnostic> {
        self.model
            .fns()
            .ok_or_else(|| Diagnostic::error(Code::Unsupported, "energy not compiled"))
    }

    /// The energy at θ (and its gradient), summed over the parts in parallel.
    fn value(&self, theta: &[f64], grad: Option<&mut [f64]>) -> Result<f64, Diagnostic> {
        let fns = self.fns()?;
        let want = grad.is_some();
        let p = theta.len();
        let (e, g) = self
            .parts
            .par_iter()
            .map(|part| {
                let mut g = if want { vec![0.0; p] } else { Vec::new() };
                let e = fns.objective(theta, &part.state, want.then_some(&mut g[..]))?;
                Ok((e, g))
            })
            .try_reduce(
                || (0.0, Vec::new()),
                |a, b| {
                    let (mut big, small) = if a.1.len() >= b.1.len() {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    big.0 += small.0;
                    for (x, y) in big.1.iter_mut().zip(&small.1) {
                        *x += y;
                    }
                    Ok((big.0, big.1))
                },
            )
            .map_err(|e: String| fault("evaluating the energy", e, self.span))?;
        if let Some(out) = grad {
            out.copy_from_slice(&g);
        }
        Ok(e)
    }

    /// Runs compiled values at θ on every part (in parallel): per part, per output.
    fn run_parts(&self, f: &ValueFns, theta: &[f64]) -> Result<Vec<Vec<Vec<f64>>>, Diagnostic> {
        let fns = self.fns()?;
        self.parts
            .par_iter()
            .map(|part| run_state(fns, f, theta, &part.state, self.span))
            .collect()
    }
}

/// Points of the 1-D slice of the domain: x₁ over its range, the other coordinates at the
/// centre.
pub(crate) const SLICE_POINTS: usize = 101;

fn slice_points(src: &PdeSource) -> Vec<f64> {
    let d = src.dim;
    let mut pts = Vec::with_capacity(SLICE_POINTS * d);
    for k in 0..SLICE_POINTS {
        let t = k as f64 / (SLICE_POINTS - 1) as f64;
        pts.push(src.lo[0] + t * (src.hi[0] - src.lo[0]));
        for j in 1..d {
            pts.push(0.5 * (src.lo[j] + src.hi[j]));
        }
    }
    pts
}

/// u (and the exact solution) along the slice.
fn slice(en: &Energy, theta: &[f64], src: &PdeSource) -> Result<Vec<SlicePoint>, Diagnostic> {
    let pts = slice_points(src);
    let fns = en.fns()?;
    let xi = param_index(&en.model, "nn_X")?;
    let mut out = Vec::with_capacity(SLICE_POINTS);
    for part in en.split(&pts, &[0.0; SLICE_POINTS])? {
        let v = run_state(fns, &en.values, theta, &part.state, en.span)?;
        for k in 0..part.valid {
            let x = part.state.params[xi][k * src.dim];
            out.push(SlicePoint {
                x,
                u: v[0][k],
                exact: v.get(2).map(|e| e[k]),
            });
        }
    }
    Ok(out)
}

/// The root-mean-square Euler–Lagrange residual of the network with `weights` on the rule
/// (`pts`, `wts`), and the root-mean-square of f there (when there is a source).
fn el_residual(
    model: &Model,
    src: &PdeSource,
    o: &Options,
    weights: &[f64],
    pts: &[f64],
    wts: &[f64],
    span: Span,
) -> Result<(f64, Option<f64>), Diagnostic> {
    let n = wts.len();
    let program = source::residual_program(src, n, o.width, o.activation);
    let mut m = source::compile(model, &program, span)?;
    m.system_fns()?;
    set(&mut m, "nn_X", pts, span)?;
    set(&mut m, "nn_q", wts, span)?;
    let uv = [let_expr(&mut m, "nn_U")?, let_expr(&mut m, "nn_G")?];
    let values = m.compile_values(&uv)?;
    let mut outs = vec![let_expr(&mut m, "nn_R")?];
    if src.source.is_some() {
        outs.push(let_expr(&mut m, "nn_F")?);
    }
    let residual = m.compile_values(&outs)?;
    fn fns(m: &Model) -> Result<&crate::compiled::SystemFns, Diagnostic> {
        m.fns()
            .ok_or_else(|| Diagnostic::error(Code::Unsupported, "residual not compiled"))
    }
    let v = run_state(fns(&m)?, &values, weights, m.state(), span)?;
    set(&mut m, "nn_PU", &v[0], span)?;
    set(&mut m, "nn_PG", &v[1], span)?;
    let r = run_state(fns(&m)?, &residual, weights, m.state(), span)?;
    let total: f64 = wts.iter().sum();
    let rms = |v: &[f64]| {
        (v.iter().zip(wts).map(|(x, q)| q * x * x).sum::<f64>() / total.max(1e-300)).sqrt()
    };
    Ok((rms(&r[0]), r.get(1).map(|f| rms(f))))
}

/// Runs compiled values at θ in a given state.
fn run_state(
    fns: &crate::compiled::SystemFns,
    f: &ValueFns,
    theta: &[f64],
    st: &crate::State,
    span: Span,
) -> Result<Vec<Vec<f64>>, Diagnostic> {
    let mut out = vec![Vec::new(); f.lens.len()];
    fns.run_values(f, theta, st, &mut out)
        .map_err(|x| fault("evaluating the network", x, span))?;
    Ok(out)
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

fn fault(what: &str, m: String, span: Span) -> Diagnostic {
    Diagnostic::error(Code::NumericalFault, format!("while {what}: {m}"))
        .at(span, "training this pde")
        .help("try a smaller lr, more damping, or another activation")
}

/// The integration rule: points (n × d, row-major) and weights, and its name. A Gauss rule
/// has `samples` rounded to a power of d points, a Sobol rule to a power of two.
fn rule(src: &PdeSource, o: &Options, rng: &mut Rng) -> (Vec<f64>, Vec<f64>, String) {
    let d = src.dim;
    match o.quadrature {
        Quadrature::Gauss => {
            let per = ((o.samples as f64).powf(1.0 / d as f64).round() as usize).max(2);
            let (p, w) = tensor_gauss(per, &src.lo, &src.hi);
            (p, w, format!("gauss({per}^{d})"))
        }
        Quadrature::Sobol => {
            let (p, w) = scrambled_sobol(sobol_size(o.samples), &src.lo, &src.hi, rng);
            let name = format!("sobol({})", w.len());
            (p, w, name)
        }
        Quadrature::MonteCarlo => {
            let (p, w) = monte_carlo(o.samples, &src.lo, &src.hi, rng);
            (p, w, format!("monte_carlo({})", o.samples))
        }
    }
}

/// The rule on the boundary for a penalized Dirichlet condition, of the training rule's
/// kind: per face, a Gauss rule with the interior's points per axis, or a quarter of the
/// interior's points shared over the faces.
fn boundary_rule(src: &PdeSource, o: &Options, rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let d = src.dim;
    let per_face = (o.samples / 4 / (2 * d)).max(8);
    faces(&src.lo, &src.hi, |lo, hi| match o.quadrature {
        Quadrature::Gauss => {
            let per = ((o.samples as f64).powf(1.0 / d as f64).round() as usize).max(2);
            tensor_gauss(per, lo, hi)
        }
        Quadrature::Sobol => scrambled_sobol(sobol_size(per_face), lo, hi, rng),
        Quadrature::MonteCarlo => monte_carlo(per_face, lo, hi, rng),
    })
}

/// Points of a Sobol rule: the power of two nearest to `samples` (on a log scale).
fn sobol_size(samples: usize) -> usize {
    let up = samples.next_power_of_two();
    if up / 2 >= 1 && (samples as f64 / (up / 2) as f64) < (up as f64 / samples as f64) {
        up / 2
    } else {
        up
    }
}

/// Trains a network for the pde block `target` of `model`.
pub fn train(
    model: &Model,
    target: &str,
    spec: Option<&MethodSpec>,
    span: Span,
    progress: bool,
    init: Option<&super::Network>,
) -> Result<(PdeReport, Vec<Diagnostic>), Diagnostic> {
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
    let mut o = options(spec, pde.dim)?;
    o.max_time = model.options().limits.cap_seconds(o.max_time);
    let warning = source::convexity_warning(model, &pde, span)?;
    let mut src = source::pde_source(model, &pde)?;
    let d = src.dim;
    let mut rng = Rng(o.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let (pts, wts, quadrature) = rule(&src, &o, &mut rng);
    let boundary = src.penalty.map(|_| boundary_rule(&src, &o, &mut rng));
    src.boundary_points = boundary.as_ref().map_or(0, |b| b.1.len());
    let s = wts.len();
    // Random rules are drawn afresh every step.
    let fresh = o.quadrature != Quadrature::Gauss;
    let start = Instant::now();
    // Parts of the rule evaluated in parallel; random features solve on one state.
    let threads = if o.method == Method::RandomFeatures || s < MIN_PARALLEL_POINTS {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    let chunk = s.div_ceil(threads);

    let mut energy = Energy::compile(model, &src, &o, chunk, span)?;
    energy.boundary = boundary;
    energy.set_rule(&pts, &wts)?;

    // Initial weights: a loaded network, or hyperplanes through random points of the domain.
    let h = o.width;
    let din = src.inputs();
    let mut w = vec![0.0; h * din];
    let mut b = vec![0.0; h];
    let mut aa = vec![0.0; h];
    let mut c0 = 0.0;
    if let Some(n) = init {
        let mismatch = |what: &str, theirs: String, ours: String, fix: String| {
            Diagnostic::error(
                Code::BadArgument,
                format!("the loaded network has {what}{theirs}; this solve has {ours}"),
            )
            .at(span, "the network does not fit")
            .help(fix)
        };
        if let Err(e) = n.check() {
            return Err(Diagnostic::error(
                Code::BadArgument,
                format!("the starting network is inconsistent: {e}"),
            )
            .at(span, "here")
            .help("networks are written by `optc run FILE --save net.json`"));
        }
        if n.dim != d {
            return Err(mismatch(
                "dimension ",
                n.dim.to_string(),
                d.to_string(),
                "load a network trained for this pde block".into(),
            ));
        }
        if n.width != h {
            return Err(mismatch(
                "width ",
                n.width.to_string(),
                h.to_string(),
                format!("use `width = {}` in `barron(...)`", n.width),
            ));
        }
        if n.fourier != src.periodic {
            let name = |f: bool| {
                if f {
                    "Fourier features"
                } else {
                    "plain inputs"
                }
            };
            return Err(mismatch(
                "",
                name(n.fourier).into(),
                name(src.periodic).into(),
                "load a network trained with the same boundary".into(),
            ));
        }
        if n.activation != o.activation.name() {
            return Err(mismatch(
                "activation ",
                n.activation.clone(),
                o.activation.name().into(),
                format!("use `activation = {}` in `barron(...)`", n.activation),
            ));
        }
        w.copy_from_slice(&n.weights[..h * din]);
        b.copy_from_slice(&n.weights[h * din..h * din + h]);
        aa.copy_from_slice(&n.weights[h * din + h..h * din + 2 * h]);
        c0 = n.weights[h * din + 2 * h];
    }
    for i in (0..h).filter(|_| init.is_none()) {
        if src.periodic {
            // Features in [−1, 1]: weights of unit total scale, offsets of order one.
            for m in 0..din {
                w[i * din + m] = 2.0 * rng.normal() / (din as f64).sqrt();
            }
            b[i] = 0.5 * rng.normal();
            aa[i] = 0.1 * rng.normal() / (h as f64).sqrt();
            continue;
        }
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
    let mut slice_sensitivities = Vec::new();
    let mut theta: Vec<f64> = w.iter().chain(&b).chain(&aa).copied().collect();
    theta.push(c0);
    if o.method == Method::RandomFeatures {
        let f = random_features(&mut energy, model, [&w, &b, &aa], &slice_points(&src), span)?;
        theta = f.theta;
        sensitivities = f.energy;
        slice_sensitivities = f.slice;
        energy.sync()?;
    }
    let p = theta.len();

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
    let mut e = energy.value(&theta, Some(&mut grad))?;
    let every = (o.steps / 10).max(1);
    let mut steps = 0;
    let mut adam_t = 0;
    let mut stalled = 0;
    let mut timed_out = false;
    let training_steps = if o.method == Method::RandomFeatures {
        let err = match src.exact {
            Some(_) => Some(errors(&energy, &theta, &src, &mut rng, s)?.0),
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
            let (pts, wts, _) = rule(&src, &o, &mut rng);
            if src.penalty.is_some() {
                energy.boundary = Some(boundary_rule(&src, &o, &mut rng));
            }
            energy.set_rule(&pts, &wts)?;
            e = energy.value(&theta, Some(&mut grad))?;
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
            e = energy.value(&theta, Some(&mut grad))?;
        } else {
            let gmat = metric(&energy, &theta, d, din, o.width)?;
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
                let et = energy.value(&trial, None)?;
                if et.is_finite() && et < e {
                    theta = trial;
                    let rel = (e - et) / e.abs().max(1e-300);
                    e = energy.value(&theta, Some(&mut grad))?;
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
                Some(_) => Some(errors(&energy, &theta, &src, &mut rng, s)?.0),
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
            let (pts, wts, _) = rule(&src, &o, &mut rng);
            energy.set_rule(&pts, &wts)?;
            vals.push(energy.value(&theta, None)?);
        }
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    } else {
        (energy.value(&theta, None)?, 0.0)
    };
    // A fixed rule can be fitted instead of the equation: compare with a finer rule.
    let coarse = if fresh {
        None
    } else {
        let per = (s as f64).powf(1.0 / d as f64).round() as usize;
        let (fp, fw) = tensor_gauss(per + per / 2 + 1, &src.lo, &src.hi);
        energy.set_rule(&fp, &fw)?;
        let fine = energy.value(&theta, None)?;
        energy.set_rule(&pts, &wts)?;
        let scale = energy_final.abs().max(fine.abs()).max(1e-12);
        ((fine - energy_final).abs() > 1e-6 * scale).then(|| {
            Diagnostic::warning(
                Code::CoarseRule,
                format!(
                    "the trained network's energy is {} on the training rule but {} on a \
                     finer one ({} points per axis)",
                    crate::report::fmt_num(energy_final),
                    crate::report::fmt_num(fine),
                    per + per / 2 + 1
                ),
            )
            .at(span, "the network fits the quadrature")
            .help("train with more `samples`, a smaller width, or `quadrature = sobol`")
        })
    };
    let (rel_l2, rel_h1, exact_energy) = match src.exact {
        Some(_) => {
            let (l2, h1) = errors(&energy, &theta, &src, &mut rng, s)?;
            // The exact solution's energy on the training rule.
            if !fresh {
                energy.set_rule(&pts, &wts)?;
            }
            let estar = match &energy.estar {
                Some(f) => energy
                    .run_parts(f, &theta)?
                    .iter()
                    .map(|part| part[0][0])
                    .sum(),
                None => f64::NAN,
            };
            (Some(l2), Some(h1), Some(estar))
        }
        None => (None, None, None),
    };
    // All the network's weights (W, b, a, c): with random features θ holds only (a, c).
    let weights: Vec<f64> = if o.method == Method::RandomFeatures {
        w.iter().chain(&b).chain(&theta).copied().collect()
    } else {
        theta.clone()
    };
    // The Euler–Lagrange residual on the training rule (a Gauss rule), or on a fresh rule of
    // at most 1024 points.
    let (el_residual, source_rms) = if fresh {
        let small = Options {
            samples: o.samples.min(1024),
            ..o.clone()
        };
        let (p, q, _) = rule(&src, &small, &mut rng);
        el_residual(model, &src, &o, &weights, &p, &q, span)?
    } else {
        el_residual(model, &src, &o, &weights, &pts, &wts, span)?
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
        el_residual,
        el_residual_rel: source_rms.map(|f| el_residual / f.max(1e-300)),
        activation: o.activation.name(),
        slice: slice(&energy, &theta, &src)?,
        periodic: src.periodic,
        lo: src.lo.clone(),
        hi: src.hi.clone(),
        slice_sensitivities,
        weights,
    };
    let mut warnings: Vec<Diagnostic> = warning.into_iter().collect();
    if timed_out {
        warnings.push(
            Diagnostic::warning(
                Code::NotConverged,
                format!(
                    "training stopped at the time limit of {} s after {steps} of {} steps",
                    o.max_time, o.steps
                ),
            )
            .at(span, "stopped early")
            .help("raise max_time, or ask for fewer steps"),
        );
    }
    warnings.extend(coarse);
    Ok((report, warnings))
}

/// Random features: sets the inner weights, solves for the outer ones by Newton (the file's
/// model machinery), and differentiates E in every scalar param of the file by the implicit
/// function theorem. Returns the solution z = (a, c).
fn random_features(
    en: &mut Energy,
    file: &Model,
    [w, b, a]: [&[f64]; 3],
    probes: &[f64],
    span: Span,
) -> Result<Features, Diagnostic> {
    let (mut sens, mut slice_sens) = (Vec::new(), Vec::new());
    let m = &mut en.model;
    let internal = |e: String| Diagnostic::error(Code::Unsupported, e).at(span, "here");
    set(m, "nn_W", w, span)?;
    set(m, "nn_b", b, span)?;
    set(m, "nn_XP", probes, span)?;
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
    let probe_u = m
        .checked()
        .lets
        .iter()
        .find(|l| l.name == "nn_UP")
        .map(|l| l.expr.clone())
        .ok_or_else(|| internal("no probe values".into()))?;
    for p in &file.checked().params {
        if !p.shape.is_empty() {
            continue;
        }
        if let Some(id) = m.checked().param_by_name(&p.name) {
            let d = m.derive(&objective, "E", id, 1, None, span)?;
            sens.push((p.name.clone(), d.value[0]));
            let du = m.derive(&probe_u, "u", id, 1, None, span)?;
            slice_sens.push((p.name.clone(), du.value));
        }
    }
    let (Some(sys), Some(fns)) = (m.system(), m.fns()) else {
        return Err(internal("network not compiled".into()));
    };
    Ok(Features {
        theta: fns.pack(sys, m.state()),
        energy: sens,
        slice: slice_sens,
    })
}

/// What the random-features solve gives: the outer weights (a, c), dE/dα and du/dα along the
/// slice for each scalar param α.
struct Features {
    theta: Vec<f64>,
    energy: Vec<(String, f64)>,
    slice: Vec<(String, Vec<f64>)>,
}

/// The natural-gradient metric at θ from the compiled Jacobians of the network's values and
/// input gradients: the H¹ matrix G = Σ_s q_s (∂u_sᵀ∂u_s + Σ_k ∂(∇u)_skᵀ ∂(∇u)_sk), or, with
/// the energy natural gradient, the same sum weighted by ∂²L at each point. Each part of the
/// rule contributes its own sum, computed in parallel.
fn metric(en: &Energy, theta: &[f64], d: usize, din: usize, h: usize) -> Result<Dense, Diagnostic> {
    let span = en.span;
    let fns = en.fns()?;
    let f = en
        .jac
        .as_ref()
        .ok_or_else(|| Diagnostic::error(Code::Unsupported, "Jacobians not compiled"))?;
    let ids = [
        param_index(&en.model, "nn_q")?,
        param_index(&en.model, "nn_PU")?,
        param_index(&en.model, "nn_PG")?,
    ];
    let p = theta.len();
    let g = en
        .parts
        .par_iter()
        .map(|part| {
            // With the energy natural gradient, each point's rows are weighted by ∂²L at
            // (u, ∇u).
            let curv = match en.curvature.as_ref() {
                Some(c) => {
                    let v = run_state(fns, &en.values, theta, &part.state, span)?;
                    let mut st = part.state.clone();
                    st.params[ids[1]].clone_from(&v[0]);
                    st.params[ids[2]].clone_from(&v[1]);
                    Some(run_state(fns, c, theta, &st, span)?)
                }
                None => None,
            };
            let j = run_state(fns, f, theta, &part.state, span)?;
            let mut g = part_metric(
                &j,
                curv.as_deref(),
                &part.state.params[ids[0]],
                d,
                din,
                h,
                p,
            );
            // The penalty w Σ q_r (u_r − g_r)² adds its Gauss–Newton matrix 2w J_UBᵀ Q J_UB.
            if let (Some(w), Some(jb)) = (en.penalty, j.get(8..12)) {
                let qb = &part.state.params[param_index(&en.model, "nn_qB")?];
                let hd = h * din;
                let mut ab = faer::Mat::<f64>::zeros(qb.len(), p);
                for (r, q) in qb.iter().enumerate() {
                    let s = (2.0 * w * q.max(0.0)).sqrt();
                    let cols = jb[0][r * hd..(r + 1) * hd]
                        .iter()
                        .chain(&jb[1][r * h..(r + 1) * h])
                        .chain(&jb[2][r * h..(r + 1) * h])
                        .chain(std::iter::once(&jb[3][r]));
                    for (c, v) in cols.enumerate() {
                        ab[(r, c)] = s * v;
                    }
                }
                g += ab.transpose() * &ab;
            }
            Ok(g)
        })
        .try_reduce(|| faer::Mat::<f64>::zeros(p, p), |a, b| Ok(a + b))?;
    let mut out = Dense::zeros(p, p);
    for x in 0..p {
        for y in 0..p {
            // Symmetric in exact arithmetic; average away rounding.
            out.set(x, y, 0.5 * (g[(x, y)] + g[(y, x)]));
        }
    }
    Ok(out)
}

/// One part's metric from its Jacobians `j` (∂U, ∂G in W, b, a, c), weights `q` and, for
/// the energy natural gradient, curvature `c` (∂²L/∂u², ∂²L/∂u∂p, ∂²L/∂p²).
fn part_metric(
    j: &[Vec<f64>],
    c: Option<&[Vec<f64>]>,
    q: &[f64],
    d: usize,
    din: usize,
    h: usize,
    p: usize,
) -> faer::Mat<f64> {
    let s = q.len();
    // Entries of ∂(·)/∂W per row: W is width × inputs.
    let hd = h * din;
    // A: one row per point and component (u, then (∇u)_k), scaled by √q; G = AᵀA.
    let rows = s * (d + 1);
    let mut a = faer::Mat::<f64>::zeros(rows, p);
    for si in 0..s {
        let w = q[si].max(0.0).sqrt();
        for comp in 0..=d {
            let (jw, jb, ja, jc) = if comp == 0 {
                (
                    &j[0][si * hd..(si + 1) * hd],
                    &j[1][si * h..(si + 1) * h],
                    &j[2][si * h..(si + 1) * h],
                    j[3][si],
                )
            } else {
                let r = si * d + comp - 1;
                (
                    &j[4][r * hd..(r + 1) * hd],
                    &j[5][r * h..(r + 1) * h],
                    &j[6][r * h..(r + 1) * h],
                    j[7][r],
                )
            };
            let r = si * (d + 1) + comp;
            let cols = jw.iter().chain(jb).chain(ja).chain(std::iter::once(&jc));
            for (col, v) in cols.enumerate() {
                a[(r, col)] = w * v;
            }
        }
    }
    match c {
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
            a.transpose() * &bm
        }
    }
}

/// Relative L² and H¹ errors against the exact solution on fresh uniform points (four
/// batches of the training size).
fn errors(
    en: &Energy,
    theta: &[f64],
    src: &PdeSource,
    rng: &mut Rng,
    s: usize,
) -> Result<(f64, f64), Diagnostic> {
    let fns = en.fns()?;
    let d = src.dim;
    let mut sums = [0.0; 4];
    for _ in 0..4 {
        let (pts, wts) = monte_carlo(s, &src.lo, &src.hi, rng);
        let parts = en.split(&pts, &wts)?;
        let part_sums = parts
            .par_iter()
            .map(|part| {
                let v = run_state(fns, &en.values, theta, &part.state, en.span)?;
                let n = part.valid;
                let sq = |a: &[f64], b: &[f64]| -> (f64, f64) {
                    a.iter().zip(b).fold((0.0, 0.0), |(num, den), (x, y)| {
                        (num + (x - y).powi(2), den + y * y)
                    })
                };
                let (n0, d0) = sq(&v[0][..n], &v[2][..n]);
                let (n1, d1) = sq(&v[1][..n * d], &v[3][..n * d]);
                Ok([n0, d0, n1, d1])
            })
            .collect::<Result<Vec<_>, Diagnostic>>()?;
        for ps in part_sums {
            for (t, x) in sums.iter_mut().zip(ps) {
                *t += x;
            }
        }
    }
    let [num0, den0, num1, den1] = sums;
    let l2 = (num0 / den0.max(1e-300)).sqrt();
    let h1 = ((num0 + num1) / (den0 + den1).max(1e-300)).sqrt();
    Ok((l2, h1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompileOptions;

    const SRC: &str = "
dim d = 2
pde p {
  domain cube(d)
  lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2 + 0.25*u^4
  exact us(x) = sum(i in 1..d) cos(pi*x[i]) / sqrt(d)
  source f(x) = (pi^2 + 1)*us(x) + us(x)^3
}
";

    fn energy(chunk: usize, pts: &[f64], wts: &[f64]) -> (Energy, PdeSource) {
        let model = Model::compile(SRC, &CompileOptions::default()).expect("compiles");
        let pde = model.checked().pdes[0].clone();
        let src = source::pde_source(&model, &pde).expect("source");
        let o = options(None, 2).expect("defaults");
        let mut e = Energy::compile(&model, &src, &o, chunk, Span::default()).expect("energy");
        e.set_rule(pts, wts).expect("rule");
        (e, src)
    }

    /// A rule split into parts (the last one padded) gives the energy, gradient, metric and
    /// errors of the whole rule evaluated at once.
    #[test]
    fn parts_sum_to_the_whole_rule() {
        let (pts, wts) = tensor_gauss(10, &[0.0, 0.0], &[1.0, 1.0]);
        let (one, src) = energy(100, &pts, &wts);
        let (three, _) = energy(34, &pts, &wts);
        assert_eq!(three.parts.len(), 3);
        assert_eq!(three.parts[2].valid, 32);
        let h = 32;
        let p = h * 4 + 1;
        let theta: Vec<f64> = (0..p)
            .map(|k| ((k * 7919) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let (mut g1, mut g3) = (vec![0.0; p], vec![0.0; p]);
        let e1 = one.value(&theta, Some(&mut g1)).expect("value");
        let e3 = three.value(&theta, Some(&mut g3)).expect("value");
        assert!((e1 - e3).abs() <= 1e-12 * e1.abs(), "{e1} vs {e3}");
        let gmax = g1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in g1.iter().zip(&g3) {
            assert!((a - b).abs() <= 1e-12 * gmax, "{a} vs {b}");
        }
        let m1 = metric(&one, &theta, 2, 2, h).expect("metric");
        let m3 = metric(&three, &theta, 2, 2, h).expect("metric");
        let scale = (0..p).map(|k| m1.get(k, k)).fold(0.0f64, f64::max);
        for i in 0..p {
            for j in 0..p {
                assert!((m1.get(i, j) - m3.get(i, j)).abs() <= 1e-12 * scale);
            }
        }
        let r1 = errors(&one, &theta, &src, &mut Rng(5), 100).expect("errors");
        let r3 = errors(&three, &theta, &src, &mut Rng(5), 100).expect("errors");
        assert!((r1.0 - r3.0).abs() <= 1e-12 * r1.0 && (r1.1 - r3.1).abs() <= 1e-12 * r1.1);
    }
}
