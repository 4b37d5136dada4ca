//! The library façade: compile a model, read and set its values, evaluate expressions.
//! The CLI and the REPL use exactly this API.
//!
//! ```
//! let src = "param theta = 2\nvar x = 0.5\ncondition x^3 + x - theta == 0\n";
//! let model = optc::Model::compile(src, &optc::CompileOptions::default()).unwrap();
//! assert_eq!(model.param("theta"), Some(&[2.0][..]));
//! ```
#![warn(missing_docs)]

use crate::check::{self, CheckOptions, Limits, ParamOverride};
use crate::compiled::{Engine, ExprFns, InterpEngine, SystemFns};
use crate::diag::{Diagnostic, Diagnostics, RenderStyle, Sources};
use crate::ir::{self, Program, TensorExpr, TensorId};
use crate::kernel::{self, Output};
use crate::solve::{self, Derivative, SolveOptions, SolveResult};
use crate::system::{self, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which back end runs compiled kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Native code from Cranelift (the default).
    #[default]
    Jit,
    /// The reference interpreter.
    Interp,
}

/// How to compile a model.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// The name shown in diagnostics.
    pub file_name: Option<String>,
    /// Folder for `load("...")` paths; `None` turns file access off.
    pub base_dir: Option<PathBuf>,
    /// `--dim NAME=SIZE` overrides.
    pub dims: Vec<(String, usize)>,
    /// `--set NAME=VALUE` overrides (a value text, or `@file`).
    pub params: Vec<(String, String)>,
    /// Size limits for sources, data files and generated code.
    pub limits: Limits,
    /// Which back end runs the compiled kernels.
    pub backend: Backend,
}

impl CompileOptions {
    /// Settings for `.opt` text from untrusted users (a service compiling submitted
    /// models): no file access (`load` is an error), at most a million entries per tensor and
    /// a million typed-expression nodes, sources of at most 1 MiB, and every solve stopped
    /// after `solve_seconds` (a `max_time` in the file cannot raise it). Each field can be
    /// changed afterwards.
    pub fn untrusted(solve_seconds: f64) -> CompileOptions {
        let mut o = CompileOptions {
            base_dir: None,
            ..CompileOptions::default()
        };
        o.limits.max_tensor_entries = 1_000_000;
        o.limits.max_typed_nodes = 1_000_000;
        o.limits.data.max_bytes = 1 << 20;
        o.limits.data.max_values = 1_000_000;
        o.limits.max_solve_seconds = solve_seconds;
        o
    }
}

/// Compilation failed: the diagnostics, with the sources they point into.
#[derive(Clone, Debug)]
pub struct CompileError {
    /// Every error and warning, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The texts the diagnostics' spans point into.
    pub sources: Sources,
}

impl CompileError {
    /// The diagnostics as miette text.
    pub fn render(&self, style: RenderStyle) -> String {
        crate::diag::render_all(&self.diagnostics, &self.sources, style)
    }

    /// The process exit code these diagnostics ask for (DESIGN §3).
    pub fn exit_code(&self) -> i32 {
        Diagnostics(self.diagnostics.clone()).exit_code()
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.render(RenderStyle::Plain))
    }
}

impl std::error::Error for CompileError {}

/// Values of every tensor a kernel can read: vars, params and multipliers.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Each var's values (row-major), in declaration order.
    pub vars: Vec<Vec<f64>>,
    /// Each param's values (row-major), in declaration order.
    pub params: Vec<Vec<f64>>,
    /// Multipliers of each system constraint (user constraints, then var bounds).
    pub duals: Vec<Vec<f64>>,
}

/// Size and cost of one compiled function (see [`Model::function_stats`]).
#[derive(Clone, Debug)]
pub struct FunctionStats {
    /// The function: `F`, `F·v`, `uᵀ∂F`, ...
    pub name: String,
    /// Nodes of its IR graph after simplification.
    pub ir_nodes: usize,
    /// Loops, loads, stores and temporaries of its kernel.
    pub kernel: kernel::KernelStats,
    /// Floating-point operations of one evaluation.
    pub flops: u64,
}

/// A compiled model.
pub struct Model {
    sources: Sources,
    checked: check::Model,
    warnings: Vec<Diagnostic>,
    program: Program,
    system: Option<System>,
    state: State,
    options: CompileOptions,
    /// Compiled system functions, built at the first solve.
    fns: Option<SystemFns>,
    /// The last solve, if it converged: its options (gauge, linear solver) guide `derive`.
    solved: Option<SolveOptions>,
    /// The structural check is a property of the system, not of the values: done once.
    structure_checked: bool,
    /// Each param's declared bounds (evaluated at compile time), enforced by `set_param`.
    param_bounds: Vec<ParamBounds>,
}

/// Compiled derivatives of one scalar expression of the solution with respect to some
/// params (see [`Model::hypergradient_fns`]).
pub struct Hypergradient {
    text: String,
    fns: Vec<(check::ParamId, ExprFns)>,
}

impl std::fmt::Debug for Hypergradient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hypergradient")
            .field("of", &self.text)
            .field("params", &self.fns.len())
            .finish()
    }
}

/// Lower and upper bounds of one param, entry by entry (`None`: unbounded on that side).
type ParamBounds = (Option<Vec<f64>>, Option<Vec<f64>>);

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("params", &self.checked.params.len())
            .field("vars", &self.checked.vars.len())
            .finish()
    }
}

/// Stack for compilation: every recursive phase is bounded by the parser's depth limits, and
/// this leaves a wide margin.
const COMPILE_STACK: usize = 256 << 20;

impl Model {
    /// Compiles `.opt` source text.
    pub fn compile(source: &str, options: &CompileOptions) -> Result<Model, CompileError> {
        let source = source.to_string();
        let options = options.clone();
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(COMPILE_STACK)
                .spawn_scoped(s, || compile_inner(&source, options))
                .map_err(|e| CompileError {
                    diagnostics: vec![Diagnostic::error(
                        crate::diag::Code::LimitExceeded,
                        format!("cannot start the compiler thread: {e}"),
                    )],
                    sources: Sources::new(),
                })?
                .join()
                .unwrap_or_else(|_| {
                    Err(CompileError {
                        diagnostics: vec![Diagnostic::error(
                            crate::diag::Code::Unsupported,
                            "the compiler failed unexpectedly",
                        )
                        .help("this is a bug in optc; please report the input")],
                        sources: Sources::new(),
                    })
                })
        })
    }

    /// Compiles a file; `load` paths are relative to its folder.
    pub fn compile_file(path: &Path, options: &CompileOptions) -> Result<Model, CompileError> {
        let name = options
            .file_name
            .clone()
            .unwrap_or_else(|| path.display().to_string());
        let bytes = std::fs::read(path).map_err(|e| CompileError {
            diagnostics: vec![Diagnostic::error(
                crate::diag::Code::InputMissing,
                format!("cannot read `{name}`: {e}"),
            )
            .help("check the path; optc takes a .opt file")],
            sources: Sources::new(),
        })?;
        let mut opts = options.clone();
        opts.file_name = Some(name.clone());
        if opts.base_dir.is_none() {
            opts.base_dir = Some(path.parent().map(Path::to_path_buf).unwrap_or_default());
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let mut sources = Sources::new();
                let f = sources.add(name, Some(path.to_path_buf()), &lossy);
                return Err(CompileError {
                    diagnostics: vec![Diagnostic::error(
                        crate::diag::Code::BadCharacter,
                        "the file is not valid UTF-8 text",
                    )
                    .at(crate::diag::Span::new(f, at, at + 1), "invalid byte here")
                    .help("save the file as UTF-8; optc reads text files")],
                    sources,
                });
            }
        };
        Model::compile(&text, &opts)
    }

    /// The source texts (the file, its `use`d modules, `--set` values).
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The checked model (names, shapes, requests).
    pub fn checked(&self) -> &check::Model {
        &self.checked
    }

    /// Warnings from checking (unused names, statements this version skips).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The lowered IR program (tensors and their graphs).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The IR program, for lowering more expressions into it.
    pub fn program_mut(&mut self) -> &mut Program {
        &mut self.program
    }

    /// The optimality system, if the model states one.
    pub fn system(&self) -> Option<&System> {
        self.system.as_ref()
    }

    /// The options the model was compiled with.
    pub fn options(&self) -> &CompileOptions {
        &self.options
    }

    /// The current values of vars, params and multipliers.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The current values, to change in place (shapes must not change).
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// A param's current value (row-major).
    pub fn param(&self, name: &str) -> Option<&[f64]> {
        let id = self.checked.param_by_name(name)?;
        self.state.params.get(id.index()).map(|v| &v[..])
    }

    /// A var's current value (row-major).
    pub fn var(&self, name: &str) -> Option<&[f64]> {
        let id = self.checked.var_by_name(name)?;
        self.state.vars.get(id.index()).map(|v| &v[..])
    }

    /// Sets a param's value without recompiling (shapes are fixed; declared bounds are
    /// enforced).
    pub fn set_param(&mut self, name: &str, values: &[f64]) -> Result<(), String> {
        let id = self
            .checked
            .param_by_name(name)
            .ok_or_else(|| format!("no param named `{name}`"))?;
        let n: usize = self.checked.param(id).shape.iter().product();
        if values.len() != n && values.len() != 1 {
            return Err(format!("`{name}` has {n} entries; {} given", values.len()));
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "entry {} of the value for `{name}` is not finite",
                k + 1
            ));
        }
        let values = if values.len() == n {
            values.to_vec()
        } else {
            vec![values[0]; n]
        };
        let (lo, hi) = &self.param_bounds[id.index()];
        check_param_bounds(
            self.checked.param(id),
            &values,
            lo.as_deref(),
            hi.as_deref(),
        )
        .map_err(|d| d.message)?;
        self.state.params[id.index()] = values;
        Ok(())
    }

    /// A param's declared bounds, entry by entry (`None`: unbounded on that side).
    pub fn param_bounds(&self, id: check::ParamId) -> (Option<&[f64]>, Option<&[f64]>) {
        let (lo, hi) = &self.param_bounds[id.index()];
        (lo.as_deref(), hi.as_deref())
    }

    /// Sets a var's value (its starting point for the next solve).
    pub fn set_var(&mut self, name: &str, values: &[f64]) -> Result<(), String> {
        let id = self
            .checked
            .var_by_name(name)
            .ok_or_else(|| format!("no var named `{name}`"))?;
        let n: usize = self.checked.var(id).shape.iter().product();
        if values.len() != n {
            return Err(format!("`{name}` has {n} entries; {} given", values.len()));
        }
        self.state.vars[id.index()] = values.to_vec();
        Ok(())
    }

    /// The engine that runs compiled kernels for this model's backend.
    pub fn engine(&self) -> Arc<dyn Engine> {
        match self.options.backend {
            Backend::Interp => Arc::new(InterpEngine),
            Backend::Jit => crate::jit::engine(),
        }
    }

    /// Compiles the system's functions (once).
    pub fn system_fns(&mut self) -> Result<&SystemFns, Diagnostic> {
        if self.fns.is_none() {
            let sys = self.system.as_ref().ok_or_else(|| {
                Diagnostic::error(
                    crate::diag::Code::NothingToSolve,
                    "the model states no conditions",
                )
                .help("add `minimize ...`, `lagrangian ...` or `condition a == b`")
            })?;
            let fns = SystemFns::new(self.engine(), &mut self.program, sys)?;
            self.fns = Some(fns);
        }
        self.fns.as_ref().ok_or_else(|| {
            Diagnostic::error(
                crate::diag::Code::Unsupported,
                "internal: no system functions",
            )
        })
    }

    /// Compiles ∂_θF·t and uᵀ∂_θF for one param (once) and returns its tensor, for use
    /// with [`SystemFns::param_jvp`] and [`SystemFns::param_vjp`].
    pub fn param_fns(&mut self, name: &str) -> Result<TensorId, Diagnostic> {
        let id = self.checked.param_by_name(name).ok_or_else(|| {
            Diagnostic::error(
                crate::diag::Code::NotAParam,
                format!("no param named `{name}`"),
            )
        })?;
        let t = self.program.params[id.index()];
        self.system_fns()?;
        if let (Some(sys), Some(fns)) = (self.system.as_ref(), self.fns.as_mut()) {
            fns.ensure_param(&mut self.program, sys, t)?;
        }
        Ok(t)
    }

    /// The compiled system functions, if built (see [`Model::system_fns`]).
    pub fn fns(&self) -> Option<&SystemFns> {
        self.fns.as_ref()
    }

    /// For every compiled function of the system (and of the params the file
    /// differentiates): IR nodes, kernel statement counts, and the floating-point operations
    /// of one evaluation at the current state, counted by the interpreter.
    pub fn function_stats(&mut self) -> Result<Vec<FunctionStats>, Diagnostic> {
        let params: Vec<String> = self
            .checked
            .requests
            .iter()
            .filter_map(|r| match r {
                check::Request::Derive { wrt, .. } => Some(self.checked.param(*wrt).name.clone()),
                _ => None,
            })
            .collect();
        self.system_fns()?;
        for p in params {
            self.param_fns(&p)?;
        }
        let internal = |m: String| {
            Diagnostic::error(
                crate::diag::Code::Unsupported,
                format!("internal error: {m}"),
            )
        };
        let fns = self
            .fns
            .as_ref()
            .ok_or_else(|| internal("no system".into()))?;
        let g = &self.program.graph;
        let mut out = Vec::new();
        for (name, spec) in &fns.sources {
            let k = kernel::schedule_with(g, &spec.outputs, &spec.grads, name).map_err(internal)?;
            let filler: Vec<Vec<f64>> = k.buffers.iter().map(|b| vec![0.5; b.len]).collect();
            let state = &self.state;
            let input = |t: TensorId| -> Option<&[f64]> {
                self.tensor_value(state, t).or_else(|| {
                    k.buffers
                        .iter()
                        .position(|b| b.kind == kernel::BufKind::Input(t))
                        .map(|i| &filler[i][..])
                })
            };
            let mut bufs: Vec<Vec<f64>> = spec.lens().into_iter().map(|n| vec![0.0; n]).collect();
            let mut slices: Vec<&mut [f64]> = bufs.iter_mut().map(|v| &mut v[..]).collect();
            let flops = crate::interp::run(&k, &input, &mut slices).map_err(internal)?;
            out.push(FunctionStats {
                name: name.clone(),
                ir_nodes: g.reachable(&spec.roots()).len(),
                kernel: k.stats(),
                flops,
            });
        }
        Ok(out)
    }

    /// Whether the last solve converged (derivatives are taken at its solution).
    pub fn is_solved(&self) -> bool {
        self.solved.is_some()
    }

    /// Solves the system from the current state. `spec` is a `using` clause, `span` the
    /// statement (for diagnostics); the iteration table goes to `log`.
    pub fn solve(
        &mut self,
        spec: Option<&check::MethodSpec>,
        span: crate::diag::Span,
        log: Option<&mut dyn Write>,
    ) -> Result<SolveResult, Diagnostic> {
        self.solved = None;
        self.system_fns()?;
        let (Some(sys), Some(fns)) = (self.system.as_ref(), self.fns.as_ref()) else {
            return Err(Diagnostic::error(
                crate::diag::Code::NothingToSolve,
                "the model states no conditions",
            )
            .at(span, "here"));
        };
        let mut opts = solve::options(spec, sys)?;
        opts.max_time = self.options.limits.cap_seconds(opts.max_time);
        let z0 = fns.pack(sys, &self.state);
        if !self.structure_checked && opts.gauge == solve::Gauge::None {
            let p = solve::Problem {
                fns,
                sys,
                state: &self.state,
            };
            solve::structural_check(&p, &z0, span)?;
            self.structure_checked = true;
        }
        let r = solve::solve(fns, sys, &mut self.state, &opts, log).map_err(|m| {
            Diagnostic::error(
                crate::diag::Code::NumericalFault,
                format!("the solver stopped: {m}"),
            )
            .at(span, "here")
        })?;
        if r.converged {
            self.solved = Some(opts);
        }
        Ok(r)
    }

    /// `d(of)/d(wrt)` at the solution, by the implicit function theorem.
    pub fn derive(
        &mut self,
        of: &check::TExpr,
        of_text: &str,
        wrt: check::ParamId,
        order: u8,
        spec: Option<&check::MethodSpec>,
        span: crate::diag::Span,
    ) -> Result<Derivative, Diagnostic> {
        let mut opts = self.solved_options(span)?;
        if let Some(spec) = spec {
            let sys = self
                .system
                .as_ref()
                .ok_or_else(|| Diagnostic::error(crate::diag::Code::NothingToSolve, "no system"))?;
            let o = solve::options(Some(spec), sys)?;
            if o.linear != solve::LinearSolver::Auto {
                opts.linear = o.linear;
            }
            if o.gauge != solve::Gauge::None {
                opts.gauge = o.gauge;
            }
        }
        let e = self.lower(of)?;
        let efns = self.expr_fns(&e, wrt, order == 2, span)?;
        self.derive_with(&efns, order, &opts, of_text, wrt, span)
    }

    /// Compiles the derivatives of a scalar expression of the solution with respect to
    /// `params`, for repeated hypergradients at changing param values (`tune`). Needs the
    /// system's functions, i.e. a solve before it.
    pub fn hypergradient_fns(
        &mut self,
        of: &check::TExpr,
        of_text: &str,
        params: &[check::ParamId],
        span: crate::diag::Span,
    ) -> Result<Hypergradient, Diagnostic> {
        let e = self.lower(of)?;
        let mut fns = Vec::new();
        for &p in params {
            fns.push((p, self.expr_fns(&e, p, false, span)?));
        }
        Ok(Hypergradient {
            text: of_text.to_string(),
            fns,
        })
    }

    /// The value of the expression at the current solution and its gradient with respect
    /// to each param (one entry per param of [`Model::hypergradient_fns`]), by reverse-mode
    /// implicit differentiation. The last solve must have converged.
    pub fn hypergradient(
        &self,
        h: &Hypergradient,
        span: crate::diag::Span,
    ) -> Result<(f64, Vec<Vec<f64>>), Diagnostic> {
        let opts = self.solved_options(span)?;
        let (Some(sys), Some(fns)) = (self.system.as_ref(), self.fns.as_ref()) else {
            return Err(
                Diagnostic::error(crate::diag::Code::NothingToSolve, "no system").at(span, "here"),
            );
        };
        let z = fns.pack(sys, &self.state);
        let mut value = [0.0];
        if let Some((_, e)) = h.fns.first() {
            e.value(fns, &z, &self.state, &mut value).map_err(|m| {
                Diagnostic::error(
                    crate::diag::Code::NumericalFault,
                    format!("while evaluating `{}`: {m}", h.text),
                )
                .at(span, "here")
            })?;
        }
        let mut grads = Vec::new();
        for (p, e) in &h.fns {
            grads.push(self.derive_with(e, 1, &opts, &h.text, *p, span)?.value);
        }
        Ok((value[0], grads))
    }

    fn solved_options(&self, span: crate::diag::Span) -> Result<SolveOptions, Diagnostic> {
        self.solved.clone().ok_or_else(|| {
            Diagnostic::error(
                crate::diag::Code::NotConverged,
                "derive needs a solved system",
            )
            .at(span, "nothing solved before this derivative")
            .help("put a `solve` that converges before `derive`")
        })
    }

    fn expr_fns(
        &mut self,
        e: &TensorExpr,
        wrt: check::ParamId,
        second: bool,
        span: crate::diag::Span,
    ) -> Result<ExprFns, Diagnostic> {
        let param = self.program.params[wrt.index()];
        let (Some(sys), Some(fns)) = (self.system.as_ref(), self.fns.as_mut()) else {
            return Err(
                Diagnostic::error(crate::diag::Code::NothingToSolve, "no system").at(span, "here"),
            );
        };
        fns.ensure_param(&mut self.program, sys, param)?;
        ExprFns::new(fns, &mut self.program, sys, e, param, second)
    }

    fn derive_with(
        &self,
        efns: &ExprFns,
        order: u8,
        opts: &SolveOptions,
        of_text: &str,
        wrt: check::ParamId,
        span: crate::diag::Span,
    ) -> Result<Derivative, Diagnostic> {
        let (Some(sys), Some(fns)) = (self.system.as_ref(), self.fns.as_ref()) else {
            return Err(
                Diagnostic::error(crate::diag::Code::NothingToSolve, "no system").at(span, "here"),
            );
        };
        let z = fns.pack(sys, &self.state);
        let p = solve::Problem {
            fns,
            sys,
            state: &self.state,
        };
        let req = solve::DeriveRequest {
            fns: efns,
            order,
            linear: opts.linear,
            gauge: opts.gauge,
            dense_limit: opts.dense_limit,
            span,
            of_text: of_text.to_string(),
            wrt_name: self.checked.param(wrt).name.clone(),
        };
        solve::derive(&p, &z, &req)
    }

    /// Compiles the values of tensor expressions of the vars and params into one kernel on
    /// this model's back end (the system's functions must exist: see [`Model::system_fns`]).
    pub fn compile_values(
        &mut self,
        exprs: &[TensorExpr],
    ) -> Result<crate::compiled::ValueFns, Diagnostic> {
        self.system_fns()?;
        let fns = self.fns.as_ref().ok_or_else(|| {
            Diagnostic::error(crate::diag::Code::NothingToSolve, "the model has no system")
        })?;
        fns.compile_values(&self.program, exprs)
    }

    /// Lowers a typed expression of this model to a tensor expression.
    pub fn lower(&mut self, t: &check::TExpr) -> Result<TensorExpr, Diagnostic> {
        let mut lw = ir::Lowerer::new(&self.checked, &mut self.program);
        lw.tensor(t)
    }

    /// Evaluates tensor expressions at the current state (scheduled into one kernel, run by
    /// the interpreter: evaluation is for reports, not for speed).
    pub fn evaluate(&self, exprs: &[TensorExpr]) -> Result<Vec<Vec<f64>>, String> {
        let outputs: Vec<Output> = exprs
            .iter()
            .enumerate()
            .map(|(k, e)| Output {
                name: format!("out{k}"),
                expr: e.clone(),
            })
            .collect();
        let k = kernel::schedule(&self.program.graph, &outputs, "eval")?;
        kernel::verify(&k)?;
        let mut outs: Vec<Vec<f64>> = exprs
            .iter()
            .map(|e| vec![0.0; e.shape.iter().product()])
            .collect();
        let mut slices: Vec<&mut [f64]> = outs.iter_mut().map(|v| &mut v[..]).collect();
        let state = &self.state;
        let input = |t: TensorId| self.tensor_value(state, t);
        crate::interp::run(&k, &input, &mut slices)?;
        Ok(outs)
    }

    /// The value of any tensor the kernels can read, in a given state.
    pub fn tensor_value<'s>(&self, state: &'s State, t: TensorId) -> Option<&'s [f64]> {
        if let Some(k) = self.program.vars.iter().position(|&x| x == t) {
            return state.vars.get(k).map(|v| &v[..]);
        }
        if let Some(k) = self.program.params.iter().position(|&x| x == t) {
            return state.params.get(k).map(|v| &v[..]);
        }
        if let Some(sys) = &self.system {
            if let Some(k) = sys.constraints.iter().position(|c| c.dual == t) {
                return state.duals.get(k).map(|v| &v[..]);
            }
        }
        None
    }
}

/// A param's value must lie inside its declared bounds (E0410).
fn check_param_bounds(
    p: &check::model::Param,
    value: &[f64],
    lo: Option<&[f64]>,
    hi: Option<&[f64]>,
) -> Result<(), Diagnostic> {
    for (k, &v) in value.iter().enumerate() {
        let below = lo.map(|l| (v < l[k], l[k]));
        let above = hi.map(|h| (v > h[k], h[k]));
        let (side, bound) = match (below, above) {
            (Some((true, b)), _) => ("below its lower bound", b),
            (_, Some((true, b))) => ("above its upper bound", b),
            _ => continue,
        };
        let at = if value.len() > 1 {
            format!(" (entry {})", k + 1)
        } else {
            String::new()
        };
        return Err(Diagnostic::error(
            crate::diag::Code::ParamOutOfBounds,
            format!(
                "`{}` = {}{at} is {side} {}",
                p.name,
                crate::report::fmt_num(v),
                crate::report::fmt_num(bound)
            ),
        )
        .at(p.span, "declared here")
        .help("give a value inside the bounds, or widen them"));
    }
    Ok(())
}

fn compile_inner(source: &str, options: CompileOptions) -> Result<Model, CompileError> {
    let mut sources = Sources::new();
    let name = options
        .file_name
        .clone()
        .unwrap_or_else(|| "<input>".to_string());
    let file = sources.add(name, None, source);
    let fail = |d: Vec<Diagnostic>, sources: &Sources| CompileError {
        diagnostics: d,
        sources: sources.clone(),
    };
    let max_source = options.limits.data.max_bytes;
    if source.len() as u64 > max_source {
        return Err(fail(
            vec![Diagnostic::error(
                crate::diag::Code::SourceTooLarge,
                format!(
                    "the source has {} bytes, over the limit of {max_source}",
                    source.len()
                ),
            )
            .help("move data into files read with load(...)")],
            &sources,
        ));
    }
    let program = crate::syntax::parse(source, file).map_err(|d| fail(d.0, &sources))?;
    let check_opts = CheckOptions {
        base_dir: options.base_dir.clone(),
        dims: options.dims.clone(),
        params: options
            .params
            .iter()
            .map(|(n, v)| ParamOverride {
                name: n.clone(),
                value: v.clone(),
            })
            .collect(),
        limits: options.limits,
    };
    let (checked, warnings) =
        check::check(&program, file, &mut sources, &check_opts).map_err(|d| fail(d.0, &sources))?;
    let mut prog = Program::new(&checked);
    let params = ir::param_values(&checked, &mut prog).map_err(|d| fail(vec![d], &sources))?;
    let mut param_bounds = Vec::new();
    for (k, p) in checked.params.iter().enumerate() {
        let n = params[k].len();
        let lo = ir::bound_values(&checked, &mut prog, &params, p.lo.as_ref(), n)
            .map_err(|d| fail(vec![d], &sources))?;
        let hi = ir::bound_values(&checked, &mut prog, &params, p.hi.as_ref(), n)
            .map_err(|d| fail(vec![d], &sources))?;
        check_param_bounds(p, &params[k], lo.as_deref(), hi.as_deref())
            .map_err(|d| fail(vec![d], &sources))?;
        param_bounds.push((lo, hi));
    }
    let vars = ir::var_starts(&checked, &mut prog, &params).map_err(|d| fail(vec![d], &sources))?;
    let mut bounds = Vec::new();
    for v in &checked.vars {
        let n: usize = v.shape.iter().product();
        let lo = ir::bound_values(&checked, &mut prog, &params, v.lo.as_ref(), n)
            .map_err(|d| fail(vec![d], &sources))?;
        let hi = ir::bound_values(&checked, &mut prog, &params, v.hi.as_ref(), n)
            .map_err(|d| fail(vec![d], &sources))?;
        bounds.push((lo, hi));
    }
    let system =
        system::derive(&checked, &mut prog, &bounds).map_err(|d| fail(vec![d], &sources))?;
    let duals = system
        .as_ref()
        .map(|s| {
            s.constraints
                .iter()
                .map(|c| vec![0.0; c.g.shape.iter().product()])
                .collect()
        })
        .unwrap_or_default();
    Ok(Model {
        sources,
        checked,
        warnings,
        program: prog,
        system,
        state: State {
            vars,
            params,
            duals,
        },
        options,
        fns: None,
        solved: None,
        structure_checked: false,
        param_bounds,
    })
}
