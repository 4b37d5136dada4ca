//! Phase 7 — solve. In: the compiled system functions (residual, Jacobian products) and a
//! starting state. Out: the solution, an iteration history, and implicit derivatives of the
//! solution. **Solvers never see syntax**: they work on flat vectors through [`SystemFns`].
//!
//! Methods: `newton` (dense LU/Cholesky/LDLᵀ, or matrix-free CG/MINRES/GMRES for large n),
//! `lbfgs`, `anderson` and plain fixed-point iteration, `interior_point`. The default is
//! chosen from the structure the compiler proved (see [`default_method`]).

mod fixed;
mod ift;
mod ipm;
mod lbfgs;
pub mod linalg;
mod newton;
pub mod outer;
mod structure;

pub use ift::{derive, Derivative, DeriveOptions, DeriveRequest};
pub use structure::{structural_check, StructureReport};

use crate::api::State;
use crate::check::{MethodSpec, OptValue};
use crate::compiled::SystemFns;
use crate::diag::{Code, Diagnostic, Span};
use crate::system::{System, SystemKind};
use linalg::DenseKind;
use std::io::Write;

/// Solver methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Newton,
    Lbfgs,
    Anderson,
    /// Plain iteration x ← T(x) (also `proximal_gradient`, `projected_gradient`).
    FixedPoint,
    InteriorPoint,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Newton => "newton",
            Method::Lbfgs => "lbfgs",
            Method::Anderson => "anderson",
            Method::FixedPoint => "fixed_point",
            Method::InteriorPoint => "interior_point",
        }
    }
}

/// Linear solvers for Newton steps and implicit derivatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearSolver {
    Auto,
    Dense(DenseKind),
    /// Least squares / minimum norm (SVD).
    Lstsq,
    Cg,
    Minres,
    Gmres,
    Bicgstab,
}

impl LinearSolver {
    pub fn name(self) -> &'static str {
        match self {
            LinearSolver::Auto => "auto",
            LinearSolver::Dense(k) => k.name(),
            LinearSolver::Lstsq => "lstsq",
            LinearSolver::Cg => "cg",
            LinearSolver::Minres => "minres",
            LinearSolver::Gmres => "gmres",
            LinearSolver::Bicgstab => "bicgstab",
        }
    }

    pub fn parse(s: &str) -> Option<LinearSolver> {
        Some(match s {
            "auto" => LinearSolver::Auto,
            "lu" => LinearSolver::Dense(DenseKind::Lu),
            "cholesky" => LinearSolver::Dense(DenseKind::Cholesky),
            "ldlt" => LinearSolver::Dense(DenseKind::Ldlt),
            "qr" | "lstsq" | "pinv" => LinearSolver::Lstsq,
            "cg" => LinearSolver::Cg,
            "minres" => LinearSolver::Minres,
            "gmres" => LinearSolver::Gmres,
            "bicgstab" => LinearSolver::Bicgstab,
            _ => return None,
        })
    }
}

/// How to treat a null space of ∂ₓF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gauge {
    None,
    /// Translations and rotations of a point cloud `q: real[N, 2|3]`.
    Rigid,
    /// Minimum-norm steps (pseudo-inverse).
    MinNorm,
}

#[derive(Clone, Debug)]
pub struct SolveOptions {
    pub method: Method,
    pub tol: f64,
    pub max_iter: usize,
    pub linear: LinearSolver,
    pub gauge: Gauge,
    /// Anderson memory.
    pub memory: usize,
    /// L-BFGS memory.
    pub lbfgs_memory: usize,
    /// Above this many unknowns, Newton goes matrix-free.
    pub dense_limit: usize,
    /// Time limit in seconds (0: none).
    pub max_time: f64,
    /// Damping (mixing) of plain fixed-point iteration.
    pub damping: f64,
}

impl SolveOptions {
    pub fn new(method: Method) -> SolveOptions {
        SolveOptions {
            method,
            tol: 1e-10,
            max_iter: match method {
                Method::Newton | Method::InteriorPoint => 100,
                Method::Lbfgs => 1000,
                Method::Anderson | Method::FixedPoint => 10_000,
            },
            linear: LinearSolver::Auto,
            gauge: Gauge::None,
            memory: 5,
            lbfgs_memory: 10,
            dense_limit: 2000,
            max_time: 0.0,
            damping: 1.0,
        }
    }
}

/// The method chosen when the file says plain `solve`: from the structure the compiler proved.
pub fn default_method(sys: &System) -> Method {
    match sys.kind {
        SystemKind::Kkt if sys.has_inequalities() => Method::InteriorPoint,
        SystemKind::FixedPoint => Method::Anderson,
        _ => Method::Newton,
    }
}

/// `method(name = ...)` where `method` accepts only `allowed`.
pub(crate) fn unknown_option(method: &str, name: &str, span: Span, allowed: &[&str]) -> Diagnostic {
    Diagnostic::error(
        Code::UnknownMethod,
        format!("`{method}` has no option `{name}`"),
    )
    .at(span, "unknown option")
    .suggest(
        name,
        allowed.iter().copied(),
        format!("its options are: {}", allowed.join(", ")),
    )
}

/// `using name(...)` where `name` is none of `methods`, a `kind` (solver, outer method);
/// `label` marks the name, `listing` introduces the list in the help line.
pub(crate) fn unknown_method(
    name: &str,
    span: Span,
    kind: &str,
    label: &str,
    methods: &[&str],
    listing: &str,
) -> Diagnostic {
    Diagnostic::error(Code::UnknownMethod, format!("unknown {kind} `{name}`"))
        .at(span, label)
        .suggest(
            name,
            methods.iter().copied(),
            format!("{listing}: {}", methods.join(", ")),
        )
}

/// Parses `using method(k = v, ...)` against the system.
pub fn options(spec: Option<&MethodSpec>, sys: &System) -> Result<SolveOptions, Diagnostic> {
    let Some(spec) = spec else {
        return Ok(SolveOptions::new(default_method(sys)));
    };
    let method = match spec.name.as_str() {
        "newton" => Method::Newton,
        "lbfgs" => Method::Lbfgs,
        "anderson" => Method::Anderson,
        "fixed_point" | "proximal_gradient" | "projected_gradient" | "iterate" => {
            Method::FixedPoint
        }
        "interior_point" | "ipm" => Method::InteriorPoint,
        other => {
            let names = [
                "newton",
                "lbfgs",
                "anderson",
                "fixed_point",
                "proximal_gradient",
                "projected_gradient",
                "interior_point",
            ];
            return Err(unknown_method(
                other,
                spec.span,
                "solver",
                "not a solver",
                &names,
                "the solvers are",
            ));
        }
    };
    let mut o = SolveOptions::new(method);
    // What each method accepts.
    let allowed: &[&str] = match method {
        Method::Newton => &[
            "tol",
            "max_iter",
            "linear",
            "gauge",
            "dense_limit",
            "max_time",
        ],
        Method::Lbfgs => &["tol", "max_iter", "memory", "max_time"],
        Method::Anderson => &["tol", "max_iter", "memory", "damping", "max_time"],
        Method::FixedPoint => &["tol", "max_iter", "damping", "max_time"],
        Method::InteriorPoint => &["tol", "max_iter", "linear", "max_time"],
    };
    for (name, value, span) in &spec.options {
        if !allowed.contains(&name.as_str()) {
            return Err(unknown_option(method.name(), name, *span, allowed));
        }
        let number = |what: &str| -> Result<f64, Diagnostic> {
            match value {
                OptValue::Number(v) if v.is_finite() => Ok(*v),
                _ => Err(
                    Diagnostic::error(Code::BadArgument, format!("`{name}` takes {what}"))
                        .at(*span, "here")
                        .help(format!("e.g. {name} = 1e-8")),
                ),
            }
        };
        let count = |what: &str| -> Result<usize, Diagnostic> {
            let v = number(what)?;
            if v >= 0.0 && v == v.trunc() && v < 1e9 {
                Ok(v as usize)
            } else {
                Err(
                    Diagnostic::error(Code::BadArgument, format!("`{name}` takes {what}"))
                        .at(*span, "here")
                        .help(format!("e.g. {name} = 50")),
                )
            }
        };
        match name.as_str() {
            "tol" => {
                o.tol = number("a positive number")?;
                if o.tol <= 0.0 {
                    return Err(
                        Diagnostic::error(Code::BadArgument, "`tol` must be positive")
                            .at(*span, "here")
                            .help("e.g. tol = 1e-10"),
                    );
                }
            }
            "max_iter" => o.max_iter = count("a count")?,
            "memory" => {
                let m = count("a count")?;
                if method == Method::Lbfgs {
                    o.lbfgs_memory = m.max(1);
                } else {
                    o.memory = m;
                }
            }
            "dense_limit" => o.dense_limit = count("a count")?,
            "max_time" => o.max_time = number("seconds")?,
            "damping" => {
                o.damping = number("a number in (0, 1]")?;
                if !(o.damping > 0.0 && o.damping <= 1.0) {
                    return Err(Diagnostic::error(
                        Code::BadArgument,
                        "`damping` must be in (0, 1]",
                    )
                    .at(*span, "here")
                    .help("e.g. damping = 0.5"));
                }
            }
            "linear" => {
                let OptValue::Name(n) = value else {
                    return Err(Diagnostic::error(
                        Code::BadArgument,
                        "`linear` takes a solver name",
                    )
                    .at(*span, "here")
                    .help("e.g. linear = cholesky"));
                };
                o.linear = LinearSolver::parse(n).ok_or_else(|| {
                    Diagnostic::error(Code::UnknownMethod, format!("unknown linear solver `{n}`"))
                        .at(*span, "here")
                        .help("lu, cholesky, ldlt, qr, cg, minres, gmres or bicgstab")
                })?;
            }
            "gauge" => {
                o.gauge = match value {
                    OptValue::Name(n) if n == "rigid" => Gauge::Rigid,
                    OptValue::Name(n) if n == "minnorm" || n == "min_norm" => Gauge::MinNorm,
                    OptValue::Name(n) if n == "none" => Gauge::None,
                    _ => {
                        return Err(Diagnostic::error(
                            Code::BadArgument,
                            "`gauge` is rigid, minnorm or none",
                        )
                        .at(*span, "here")
                        .help("gauge = rigid removes translations and rotations"))
                    }
                };
            }
            _ => {}
        }
    }
    // Methods that need a particular structure.
    let fits = match method {
        Method::Lbfgs => sys.kind == SystemKind::Stationarity,
        Method::Anderson | Method::FixedPoint => sys.kind == SystemKind::FixedPoint,
        Method::InteriorPoint => {
            sys.kind == SystemKind::Kkt || sys.kind == SystemKind::Stationarity
        }
        Method::Newton => !sys.has_inequalities(),
    };
    if !fits {
        let why = match method {
            Method::Lbfgs => "lbfgs minimizes a smooth objective without constraints",
            Method::Anderson | Method::FixedPoint => {
                "this method iterates a fixed point `condition x == T(x)`"
            }
            Method::InteriorPoint => "interior_point solves a minimize/maximize with constraints",
            Method::Newton => "newton cannot keep inequality constraints; use interior_point",
        };
        return Err(Diagnostic::error(
            Code::Unsupported,
            format!("`{}` does not fit this system", method.name()),
        )
        .at(spec.span, "this method")
        .help(why.to_string()));
    }
    if o.gauge == Gauge::Rigid && method != Method::Newton {
        return Err(
            Diagnostic::error(Code::Unsupported, "gauge = rigid is a newton option")
                .at(spec.span, "here")
                .help("use newton(gauge = rigid)"),
        );
    }
    Ok(o)
}

/// One row of the iteration table.
#[derive(Clone, Debug, Default)]
pub struct IterRecord {
    pub iter: usize,
    pub objective: Option<f64>,
    /// ‖F‖∞ (or the primal infeasibility for the interior-point method).
    pub residual: f64,
    /// Dual infeasibility (interior point only).
    pub dual_inf: Option<f64>,
    /// Barrier parameter (interior point only).
    pub barrier: Option<f64>,
    pub step: f64,
    pub alpha: f64,
}

#[derive(Clone, Debug)]
pub struct SolveResult {
    pub method: Method,
    pub linear: Option<&'static str>,
    pub iterations: usize,
    pub residual: f64,
    pub converged: bool,
    pub history: Vec<IterRecord>,
    pub time_s: f64,
    /// Why it stopped, when it did not converge.
    pub failure: Option<String>,
    pub failure_code: Option<Code>,
}

/// A solver's view of the problem: compiled functions plus the state of params.
pub struct Problem<'a> {
    pub fns: &'a SystemFns,
    pub sys: &'a System,
    pub state: &'a State,
}

impl Problem<'_> {
    /// Where constraint `k`'s multiplier sits in z: (offset, length). The system derivation
    /// gives every constraint one multiplier unknown.
    pub fn multiplier_slot(&self, k: usize) -> (usize, usize) {
        let u = self
            .sys
            .unknowns
            .iter()
            .position(|u| u.kind == crate::system::UnknownKind::Multiplier(k))
            .unwrap_or(0);
        let (_, off, len) = self.fns.layout.unknowns[u];
        (off, len)
    }

    pub fn n(&self) -> usize {
        self.fns.layout.n
    }

    pub fn m(&self) -> usize {
        self.fns.layout.m
    }

    pub fn residual(&self, z: &[f64]) -> Result<Vec<f64>, String> {
        let mut f = vec![0.0; self.m()];
        self.fns.residual(z, self.state, &mut f)?;
        Ok(f)
    }

    pub fn jvp(&self, z: &[f64], v: &[f64], out: &mut [f64]) -> Result<(), String> {
        self.fns.jvp(z, self.state, v, out)
    }

    pub fn vjp(&self, z: &[f64], u: &[f64], out: &mut [f64]) -> Result<(), String> {
        self.fns.vjp(z, self.state, u, out)
    }

    /// The dense Jacobian, column by column from JVPs.
    pub fn jacobian(&self, z: &[f64]) -> Result<linalg::Dense, String> {
        let (m, n) = (self.m(), self.n());
        let mut e = vec![0.0; n];
        linalg::Dense::from_columns(m, n, |j, col| {
            e[j] = 1.0;
            let r = self.jvp(z, &e, col);
            e[j] = 0.0;
            r
        })
    }
}

/// The iteration table on stderr (IPOPT style).
pub struct Logger<'w> {
    out: Option<&'w mut dyn Write>,
    header_done: bool,
    ipm: bool,
}

impl<'w> Logger<'w> {
    pub fn new(out: Option<&'w mut dyn Write>, ipm: bool) -> Logger<'w> {
        Logger {
            out,
            header_done: false,
            ipm,
        }
    }

    pub fn row(&mut self, r: &IterRecord) {
        let Some(out) = self.out.as_mut() else { return };
        if !self.header_done {
            self.header_done = true;
            if self.ipm {
                let _ = writeln!(
                    out,
                    "{:>5}  {:>14}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}",
                    "iter", "objective", "inf_pr", "inf_du", "mu", "||step||", "alpha"
                );
            } else {
                let _ = writeln!(
                    out,
                    "{:>5}  {:>14}  {:>10}  {:>10}  {:>8}",
                    "iter", "objective", "||F||", "||step||", "alpha"
                );
            }
        }
        let obj = r
            .objective
            .map(|v| format!("{v:>14.7e}"))
            .unwrap_or_else(|| format!("{:>14}", "-"));
        if self.ipm {
            let _ = writeln!(
                out,
                "{:>5}  {obj}  {:>10.3e}  {:>10.3e}  {:>10.3e}  {:>10.3e}  {:>8.2e}",
                r.iter,
                r.residual,
                r.dual_inf.unwrap_or(0.0),
                r.barrier.unwrap_or(0.0),
                r.step,
                r.alpha
            );
        } else {
            let _ = writeln!(
                out,
                "{:>5}  {obj}  {:>10.3e}  {:>10.3e}  {:>8.2e}",
                r.iter, r.residual, r.step, r.alpha
            );
        }
    }
}

/// Solves the system from the unknowns in `state`, writing the solution back into it.
pub fn solve(
    fns: &SystemFns,
    sys: &System,
    state: &mut State,
    opts: &SolveOptions,
    log: Option<&mut dyn Write>,
) -> Result<SolveResult, String> {
    let start = std::time::Instant::now();
    let mut z = fns.pack(sys, state);
    let snapshot = state.clone();
    let p = Problem {
        fns,
        sys,
        state: &snapshot,
    };
    let mut logger = Logger::new(log, opts.method == Method::InteriorPoint);
    let mut result = match opts.method {
        Method::Newton => newton::solve(&p, &mut z, opts, &mut logger)?,
        Method::Lbfgs => lbfgs::solve(&p, &mut z, opts, &mut logger)?,
        Method::Anderson | Method::FixedPoint => fixed::solve(&p, &mut z, opts, &mut logger)?,
        Method::InteriorPoint => ipm::solve(&p, &mut z, opts, &mut logger)?,
    };
    result.time_s = start.elapsed().as_secs_f64();
    fns.unpack(sys, &z, state);
    Ok(result)
}

/// The diagnostic for a solve that did not converge, at the `solve` statement.
impl SolveResult {
    /// The result of a solve that stopped: converged when there is no failure, else the
    /// reason and its diagnostic code. `time_s` is filled in by the caller.
    pub(crate) fn end(
        method: Method,
        linear: Option<&'static str>,
        iterations: usize,
        residual: f64,
        history: Vec<IterRecord>,
        failure: Option<(String, Code)>,
    ) -> SolveResult {
        let (failure, failure_code) = match failure {
            Some((why, code)) => (Some(why), Some(code)),
            None => (None, None),
        };
        SolveResult {
            method,
            linear,
            iterations,
            residual,
            converged: failure.is_none(),
            history,
            time_s: 0.0,
            failure,
            failure_code,
        }
    }
}

pub fn failure_diagnostic(r: &SolveResult, span: Span) -> Diagnostic {
    let code = r.failure_code.unwrap_or(Code::NotConverged);
    let why = r.failure.clone().unwrap_or_else(|| "it stopped".into());
    let help = match code {
        Code::NonContractive => "the map x ↦ T(x) is not a contraction here: reduce the step size inside T, or solve with `using newton`",
        Code::NumericalFault => "a residual became NaN or infinite: check the starting point and the domain of log, sqrt and divisions",
        Code::Infeasible => "check that the constraints can hold together",
        _ => "try a better starting point (`var x = ...`), more iterations (`max_iter = ...`), or another method",
    };
    Diagnostic::error(code, format!("{} did not converge: {why}", r.method.name()))
        .at(
            span,
            format!(
                "last residual {:.3e} after {} iterations",
                r.residual, r.iterations
            ),
        )
        .help(help)
}

pub(crate) fn time_up(start: &std::time::Instant, opts: &SolveOptions) -> bool {
    opts.max_time > 0.0 && start.elapsed().as_secs_f64() > opts.max_time
}
