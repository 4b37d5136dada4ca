//! The `optc` command line: parses arguments, calls the library API, renders reports.
//! Human logs go to stderr, results to stdout; `--json` prints one JSON object on stdout.

mod emit;

use crate::api::{Backend, CompileError, CompileOptions, Model};
use crate::diag::{Code, Diagnostic, RenderStyle, Sources};
use crate::report::{fmt_tensor, tensor_json};
use crate::run::{self, RunOptions, RunReport};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "optc", version, about = "A compiler for optimality conditions", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check a file (names, shapes, data); nothing runs.
    Check {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Compile and run a file's requests (print, solve, derive, tune).
    Run {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Which back end runs the compiled kernels.
        #[arg(long, value_enum, default_value_t = BackendArg::Jit)]
        backend: BackendArg,
        /// No iteration logs on stderr.
        #[arg(long)]
        quiet: bool,
        /// Taylor-test every derivative the file uses (the remainder must fall as h²).
        #[arg(long)]
        check_derivatives: bool,
        /// Write the solver's iteration history as CSV.
        #[arg(long, value_name = "FILE.csv")]
        trace: Option<PathBuf>,
        /// Draw the convergence history (SVG); a pde solve also draws u along a slice of the
        /// domain in FILE_slice.svg.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Write the network a pde solve trained (JSON).
        #[arg(long, value_name = "FILE.json")]
        save: Option<PathBuf>,
        /// Start pde training from a network written by --save (with `steps = 0`: only
        /// report on it).
        #[arg(long, value_name = "FILE.json")]
        load: Option<PathBuf>,
    },
    /// Print a derived form of the file.
    Emit {
        file: PathBuf,
        #[command(flatten)]
        what: emit::EmitWhat,
        #[command(flatten)]
        common: Common,
    },
    /// An interactive session (`:help` lists its commands); also reads piped stdin.
    ///
    /// Declarations accumulate into a session model, expressions are evaluated at the current
    /// point, and `:solve`, `:derive`, `:set` work on the compiled model.
    Repl {
        /// A .opt file to start from.
        file: Option<PathBuf>,
        /// Which back end runs the compiled kernels.
        #[arg(long, value_enum, default_value_t = BackendArg::Jit)]
        backend: BackendArg,
    },
    /// Explain a diagnostic code, e.g. `optc explain E0201`.
    Explain {
        /// The code (E0101 ...); without it, list every code.
        code: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Override a param: NAME=VALUE (a number, a literal like [1, 2], or @file.csv).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Set a dim: NAME=SIZE.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    dim: Vec<String>,
    /// One JSON object on stdout (the schema of DESIGN §7).
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BackendArg {
    Jit,
    Interp,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 64,
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Check { file, common } => check(&file, &common),
        Command::Run {
            file,
            common,
            backend,
            quiet,
            check_derivatives,
            trace,
            plot,
            save,
            load,
        } => run_cmd(
            &file,
            &common,
            &RunFlags {
                backend,
                quiet,
                check_derivatives,
                trace,
                plot,
                save,
                load,
            },
        ),
        Command::Emit { file, what, common } => emit::emit(&file, &what, &common),
        Command::Explain { code } => explain(code.as_deref()),
        Command::Repl { file, backend } => {
            let style =
                if std::env::var_os("NO_COLOR").is_some() || !std::io::stdout().is_terminal() {
                    RenderStyle::Plain
                } else {
                    RenderStyle::Color
                };
            crate::repl::main(file.as_deref(), backend.into(), style)
        }
    }
}

/// One derived form of a compiled model (`emit`'s forms, by name), for the REPL.
pub fn emit_form(model: &mut Model, form: &str) -> Result<String, Diagnostic> {
    emit::render(model, form)
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Jit => Backend::Jit,
            BackendArg::Interp => Backend::Interp,
        }
    }
}

fn style() -> RenderStyle {
    if std::env::var_os("NO_COLOR").is_some() || !std::io::stderr().is_terminal() {
        RenderStyle::Plain
    } else {
        RenderStyle::Color
    }
}

/// `--set`/`--dim` into compile options, or a usage diagnostic.
fn options(common: &Common, backend: Backend) -> Result<CompileOptions, Diagnostic> {
    let mut o = CompileOptions {
        backend,
        ..CompileOptions::default()
    };
    for s in &common.set {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            Diagnostic::error(Code::BadSetValue, format!("--set {s}: expected NAME=VALUE"))
                .help("e.g. --set lambda=0.3")
        })?;
        o.params.push((k.trim().to_string(), v.to_string()));
    }
    for s in &common.dim {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            Diagnostic::error(Code::BadSetValue, format!("--dim {s}: expected NAME=SIZE"))
                .help("e.g. --dim n=50")
        })?;
        let n: usize = v.trim().parse().map_err(|_| {
            Diagnostic::error(
                Code::BadSetValue,
                format!("--dim {s}: `{}` is not a size", v.trim()),
            )
            .help("sizes are positive integers")
        })?;
        o.dims.push((k.trim().to_string(), n));
    }
    Ok(o)
}

/// Prints diagnostics (text to stderr, or collects them for JSON).
fn print_diagnostics(diags: &[Diagnostic], sources: &Sources, json: bool) {
    if json || diags.is_empty() {
        return;
    }
    eprint!("{}", crate::diag::render_all(diags, sources, style()));
}

fn diagnostics_json(diags: &[Diagnostic], sources: &Sources) -> Value {
    Value::Array(
        diags
            .iter()
            .map(|d| crate::diag::to_json(d, sources))
            .collect(),
    )
}

fn compile_failed(e: &CompileError, json: bool) -> i32 {
    if json {
        let out =
            json!({"status": "error", "diagnostics": diagnostics_json(&e.diagnostics, &e.sources)});
        println!("{out}");
    } else {
        print_diagnostics(&e.diagnostics, &e.sources, false);
    }
    e.exit_code()
}

fn usage_error(d: Diagnostic, json: bool) -> i32 {
    let sources = Sources::new();
    if json {
        println!(
            "{}",
            json!({"status": "error", "diagnostics": diagnostics_json(std::slice::from_ref(&d), &sources)})
        );
    } else {
        print_diagnostics(std::slice::from_ref(&d), &sources, false);
    }
    d.exit_code()
}

fn compile(file: &std::path::Path, common: &Common, backend: Backend) -> Result<Model, i32> {
    let opts = options(common, backend).map_err(|d| usage_error(d, common.json))?;
    Model::compile_file(file, &opts).map_err(|e| compile_failed(&e, common.json))
}

fn check(file: &std::path::Path, common: &Common) -> i32 {
    let model = match compile(file, common, Backend::Interp) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if common.json {
        let mut out = Map::new();
        out.insert("status".into(), "checked".into());
        if !model.warnings().is_empty() {
            out.insert(
                "diagnostics".into(),
                diagnostics_json(model.warnings(), model.sources()),
            );
        }
        println!("{}", Value::Object(out));
    } else {
        print_diagnostics(model.warnings(), model.sources(), false);
        let c = model.checked();
        let count = crate::check::count_system(c);
        let mut line = format!(
            "{}: ok — {} param(s), {} var(s)",
            file.display(),
            c.params.len(),
            c.vars.len()
        );
        if model.system().is_some() {
            line.push_str(&format!(
                ", {} equations in {} unknowns",
                count.equations, count.unknowns
            ));
        }
        eprintln!("{line}");
    }
    0
}

struct RunFlags {
    backend: BackendArg,
    quiet: bool,
    check_derivatives: bool,
    trace: Option<PathBuf>,
    plot: Option<PathBuf>,
    save: Option<PathBuf>,
    load: Option<PathBuf>,
}

/// The network of `--load FILE`.
fn load_network(path: &std::path::Path) -> Result<crate::pde::Network, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(
            Code::DataMissing,
            format!("--load {}: cannot read it: {e}", path.display()),
        )
        .help("give the path of a file written by `optc run --save`")
    })?;
    crate::pde::Network::from_json(&text).map_err(|e| {
        Diagnostic::error(
            Code::DataJson,
            format!("--load {}: not a network: {e}", path.display()),
        )
        .help("networks are written by `optc run FILE --save net.json`")
    })
}

fn run_cmd(file: &std::path::Path, common: &Common, flags: &RunFlags) -> i32 {
    let (quiet, check_derivatives) = (flags.quiet, flags.check_derivatives);
    let networks: Vec<crate::pde::Network> =
        match flags.load.as_deref().map(load_network).transpose() {
            Ok(n) => n.into_iter().collect(),
            Err(d) => return usage_error(d, common.json),
        };
    let loaded: Vec<String> = networks.iter().map(|n| n.pde.clone()).collect();
    if let Some(p) = &flags.plot {
        if p.extension().is_none_or(|e| !e.eq_ignore_ascii_case("svg")) {
            return usage_error(
                Diagnostic::error(
                    Code::Usage,
                    format!("--plot {}: plots are written as SVG", p.display()),
                )
                .help("give a file name ending in .svg"),
                common.json,
            );
        }
    }
    let backend = match flags.backend {
        BackendArg::Jit => Backend::Jit,
        BackendArg::Interp => Backend::Interp,
    };
    let mut model = match compile(file, common, backend) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mut stderr = std::io::stderr();
    let report = run::execute(
        &mut model,
        &RunOptions {
            quiet,
            check_derivatives,
            networks,
        },
        &mut stderr,
    );
    let mut diags: Vec<Diagnostic> = model.warnings().to_vec();
    diags.extend(report.diagnostics.iter().cloned());
    for n in &loaded {
        if !report.pde.iter().any(|p| p.name == *n) {
            diags.push(
                Diagnostic::warning(
                    Code::UnknownName,
                    format!("--load: the network is for pde `{n}`, which this run does not train"),
                )
                .help("load it with the file that declares that pde block"),
            );
        }
    }
    if let (Some(p), Some(path)) = (report.pde.last(), &flags.plot) {
        let slice = crate::report::slice_path(path);
        for r in [
            crate::report::pde_svg(path, p),
            crate::report::pde_slice_svg(&slice, p),
        ] {
            if let Err(e) = r {
                diags.push(
                    Diagnostic::error(Code::Usage, e)
                        .help("check the folder exists and is writable"),
                );
            }
        }
    }
    if let Some(path) = &flags.save {
        match report.pde.last() {
            Some(p) => {
                let net = crate::pde::Network::from_report(p);
                let written = net
                    .to_json()
                    .and_then(|t| std::fs::write(path, t + "\n").map_err(|e| e.to_string()));
                if let Err(e) = written {
                    diags.push(
                        Diagnostic::error(
                            Code::Usage,
                            format!("cannot write --save {}: {e}", path.display()),
                        )
                        .help("check the folder exists and is writable"),
                    );
                }
            }
            None => diags.push(
                Diagnostic::warning(
                    Code::NothingToSolve,
                    "--save: the file trains no network, so there is nothing to save",
                )
                .help("add `solve NAME using barron(...)` for a pde block"),
            ),
        }
    }
    if let (Some(t), Some(path)) = (&report.tune, &flags.plot) {
        if let Err(e) = crate::report::tune_svg(path, t) {
            diags.push(
                Diagnostic::error(Code::Usage, e).help("check the folder exists and is writable"),
            );
        }
    }
    if let Some(s) = &report.solve {
        if let Some(path) = &flags.trace {
            if let Err(e) = std::fs::write(path, crate::report::trace_csv(&s.history)) {
                diags.push(
                    Diagnostic::error(
                        Code::Usage,
                        format!("cannot write --trace {}: {e}", path.display()),
                    )
                    .help("check the folder exists and is writable"),
                );
            }
        }
        if let Some(path) = flags.plot.as_ref().filter(|_| report.tune.is_none()) {
            if let Err(e) = crate::report::convergence_svg(path, s.method.name(), &s.history) {
                diags.push(
                    Diagnostic::error(Code::Usage, e)
                        .help("check the folder exists and is writable"),
                );
            }
        }
    } else if flags.trace.is_some() || (flags.plot.is_some() && report.pde.is_empty()) {
        diags.push(
            Diagnostic::warning(
                Code::NothingToSolve,
                "--trace/--plot: the file has no solve, so there is no history",
            )
            .help("add `solve` to the file"),
        );
    }
    if common.json {
        println!("{}", report_json(&report, &diags, model.sources()));
    } else {
        print_diagnostics(&diags, model.sources(), false);
        print_report(&report);
    }
    report.exit_code()
}

fn report_json(r: &RunReport, diags: &[Diagnostic], sources: &Sources) -> Value {
    let mut out = Map::new();
    out.insert("status".into(), r.status.as_str().into());
    if let Some(s) = &r.solve {
        let mut so = Map::new();
        so.insert("method".into(), s.method.name().into());
        if let Some(l) = s.linear {
            so.insert("linear".into(), l.into());
        }
        so.insert("iterations".into(), s.iterations.into());
        so.insert("residual".into(), crate::report::num(s.residual));
        so.insert("converged".into(), s.converged.into());
        so.insert("time_s".into(), crate::report::num(s.time_s));
        out.insert("solve".into(), Value::Object(so));
    }
    let mut values = Map::new();
    for v in &r.values {
        values.insert(v.name.clone(), tensor_json(&v.values, &v.shape));
    }
    out.insert("values".into(), Value::Object(values));
    if !r.duals.is_empty() {
        let mut duals = Map::new();
        for d in &r.duals {
            duals.insert(d.name.clone(), tensor_json(&d.values, &d.shape));
        }
        out.insert("duals".into(), Value::Object(duals));
    }
    if !r.derivatives.is_empty() {
        out.insert(
            "derivatives".into(),
            Value::Array(
                r.derivatives
                    .iter()
                    .map(|d| {
                        let mut o = Map::new();
                        o.insert("of".into(), d.of.clone().into());
                        o.insert("wrt".into(), d.wrt.clone().into());
                        if d.order > 1 {
                            o.insert("order".into(), d.order.into());
                        }
                        o.insert("shape".into(), json!(d.shape));
                        o.insert("value".into(), tensor_json(&d.values, &d.shape));
                        o.insert("mode".into(), d.mode.into());
                        o.insert("linear".into(), d.linear.into());
                        if let Some(c) = d.condition {
                            o.insert("condition".into(), crate::report::num(c));
                        }
                        Value::Object(o)
                    })
                    .collect(),
            ),
        );
    }
    if let Some(p) = r.pde.last() {
        let mut o = Map::new();
        o.insert("name".into(), p.name.clone().into());
        o.insert("dim".into(), p.dim.into());
        o.insert("method".into(), p.method.into());
        o.insert("width".into(), p.width.into());
        o.insert("parameters".into(), p.parameters.into());
        o.insert("steps".into(), p.steps.into());
        o.insert("quadrature".into(), p.quadrature.clone().into());
        o.insert("energy".into(), crate::report::num(p.energy));
        o.insert("energy_stderr".into(), crate::report::num(p.energy_stderr));
        if let Some(e) = p.exact_energy {
            o.insert("exact_energy".into(), crate::report::num(e));
        }
        if let Some(e) = p.rel_l2 {
            o.insert("rel_l2".into(), crate::report::num(e));
        }
        if let Some(e) = p.rel_h1 {
            o.insert("rel_h1".into(), crate::report::num(e));
        }
        o.insert("el_residual".into(), crate::report::num(p.el_residual));
        if let Some(e) = p.el_residual_rel {
            o.insert("el_residual_rel".into(), crate::report::num(e));
        }
        o.insert("time_s".into(), crate::report::num(p.time_s));
        o.insert("activation".into(), p.activation.into());
        o.insert(
            "slice".into(),
            Value::Array(
                p.slice
                    .iter()
                    .map(|s| {
                        let mut m = Map::new();
                        m.insert("x".into(), crate::report::num(s.x));
                        m.insert("u".into(), crate::report::num(s.u));
                        if let Some(e) = s.exact {
                            m.insert("exact".into(), crate::report::num(e));
                        }
                        Value::Object(m)
                    })
                    .collect(),
            ),
        );
        o.insert(
            "weights".into(),
            Value::Array(p.weights.iter().map(|w| crate::report::num(*w)).collect()),
        );
        if !p.sensitivities.is_empty() {
            let mut m = Map::new();
            for (name, v) in &p.sensitivities {
                m.insert(name.clone(), crate::report::num(*v));
            }
            o.insert("sensitivities".into(), Value::Object(m));
        }
        if !p.slice_sensitivities.is_empty() {
            let mut m = Map::new();
            for (name, v) in &p.slice_sensitivities {
                m.insert(
                    name.clone(),
                    Value::Array(v.iter().map(|x| crate::report::num(*x)).collect()),
                );
            }
            o.insert("slice_sensitivities".into(), Value::Object(m));
        }
        o.insert(
            "history".into(),
            Value::Array(
                p.history
                    .iter()
                    .map(|(k, e, r)| {
                        let mut h = Map::new();
                        h.insert("step".into(), (*k).into());
                        h.insert("energy".into(), crate::report::num(*e));
                        if let Some(r) = r {
                            h.insert("rel_l2".into(), crate::report::num(*r));
                        }
                        Value::Object(h)
                    })
                    .collect(),
            ),
        );
        out.insert("pde".into(), Value::Object(o));
    }
    if let Some(t) = &r.tune {
        let mut params = Map::new();
        let mut grads = Map::new();
        for (p, g) in t.params.iter().zip(&t.gradient) {
            params.insert(p.name.clone(), tensor_json(&p.values, &p.shape));
            grads.insert(g.name.clone(), tensor_json(&g.values, &g.shape));
        }
        out.insert(
            "tune".into(),
            json!({
                "params": params,
                "objective": crate::report::num(t.objective),
                "initial_objective": crate::report::num(t.initial_objective),
                "gradient": grads,
                "iterations": t.iterations,
                "evaluations": t.evaluations,
                "inner_iterations": t.inner_iterations,
                "method": t.method,
                "converged": t.converged,
                "reason": t.reason,
                "history": t.history.iter().map(|(k, f, g)| json!({
                    "iter": k, "objective": crate::report::num(*f),
                    "projected_gradient": crate::report::num(*g)})).collect::<Vec<_>>(),
                "time_s": {"solve": crate::report::num(t.solve_seconds),
                           "hypergradient": crate::report::num(t.gradient_seconds)},
            }),
        );
    }
    if !r.residuals.is_empty() {
        let mut res = Map::new();
        for (name, norm) in &r.residuals {
            res.insert(name.clone(), crate::report::num(*norm));
        }
        out.insert("residuals".into(), Value::Object(res));
    }
    if !r.prints.is_empty() {
        out.insert(
            "prints".into(),
            Value::Array(
                r.prints
                    .iter()
                    .map(|p| json!({"expr": p.name, "value": tensor_json(&p.values, &p.shape)}))
                    .collect(),
            ),
        );
    }
    if !r.checks.is_empty() {
        out.insert(
            "derivative_checks".into(),
            Value::Array(
                r.checks
                    .iter()
                    .map(|c| {
                        json!({"name": c.name, "ok": c.ok, "order": crate::report::num(c.order),
                               "remainders": c.remainders.iter().map(|x| crate::report::num(*x)).collect::<Vec<_>>()})
                    })
                    .collect(),
            ),
        );
    }
    if !diags.is_empty() {
        out.insert("diagnostics".into(), diagnostics_json(diags, sources));
    }
    Value::Object(out)
}

fn print_report(r: &RunReport) {
    let mut out = std::io::stdout().lock();
    if !r.checks.is_empty() {
        let _ = writeln!(
            out,
            "derivative checks (Taylor: the remainder must fall as h², order ≈ 2):"
        );
        for c in &r.checks {
            let verdict = if c.ok { "ok" } else { "FAILED" };
            if c.steps.is_empty() {
                let _ = writeln!(
                    out,
                    "  {:<34} relative gap {:.1e}  {verdict}",
                    c.name,
                    c.remainders.first().copied().unwrap_or(0.0)
                );
            } else {
                let rs: Vec<String> = c.remainders.iter().map(|x| format!("{x:.1e}")).collect();
                let _ = writeln!(
                    out,
                    "  {:<34} order {:.2}  {verdict}   r(h) = {}",
                    c.name,
                    c.order,
                    rs.join(", ")
                );
            }
        }
        let _ = writeln!(out);
    }
    if let Some(s) = &r.solve {
        let _ = writeln!(out, "{}, {:.4} s", crate::report::solve_line(s), s.time_s);
    }
    for p in &r.prints {
        let _ = writeln!(out, "{} = {}", p.name, fmt_tensor(&p.values, &p.shape));
    }
    for d in &r.derivatives {
        let name = if d.order == 2 {
            format!("d²({})/d({})²", d.of, d.wrt)
        } else {
            format!("d({})/d({})", d.of, d.wrt)
        };
        let _ = writeln!(out, "{name} = {}", fmt_tensor(&d.values, &d.shape));
    }
    for p in &r.pde {
        let _ = writeln!(
            out,
            "pde {} (d = {}): {} with width {} ({} weights), {} steps on {}, {:.2} s",
            p.name, p.dim, p.method, p.width, p.parameters, p.steps, p.quadrature, p.time_s
        );
        let se = if p.energy_stderr > 0.0 {
            format!(" ± {}", crate::report::fmt_num(p.energy_stderr))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  energy      {}{se}",
            crate::report::fmt_num(p.energy)
        );
        if let Some(e) = p.exact_energy {
            let _ = writeln!(
                out,
                "  exact       {}   (gap {:.3e})",
                crate::report::fmt_num(e),
                p.energy - e
            );
        }
        if let (Some(l2), Some(h1)) = (p.rel_l2, p.rel_h1) {
            let _ = writeln!(out, "  relative L² error {l2:.3e}, H¹ error {h1:.3e}");
        }
        let rel = match p.el_residual_rel {
            Some(r) => format!(" ({r:.3e} of f)"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  Euler–Lagrange residual (rms) {:.3e}{rel}",
            p.el_residual
        );
        for (name, v) in &p.sensitivities {
            let _ = writeln!(out, "  dE/d({name}) = {}", crate::report::fmt_num(*v));
        }
        for (name, v) in &p.slice_sensitivities {
            // The slice's middle point is the centre of the domain.
            if let (Some(du), Some(s)) = (v.get(v.len() / 2), p.slice.get(v.len() / 2)) {
                let at = if p.dim == 1 {
                    format!("x = {}", crate::report::fmt_num(s.x))
                } else {
                    "the centre".to_string()
                };
                let _ = writeln!(
                    out,
                    "  du/d({name}) at {at} = {}",
                    crate::report::fmt_num(*du)
                );
            }
        }
    }
    if let Some(t) = &r.tune {
        let _ = writeln!(
            out,
            "tune ({}, {}): objective {} -> {} in {} iterations, {} inner solves ({} inner iterations)",
            t.method,
            if t.converged { "converged" } else { "stopped" },
            crate::report::fmt_num(t.initial_objective),
            crate::report::fmt_num(t.objective),
            t.iterations,
            t.evaluations,
            t.inner_iterations
        );
        for (p, g) in t.params.iter().zip(&t.gradient) {
            let _ = writeln!(
                out,
                "  {} = {}   (gradient {})",
                p.name,
                fmt_tensor(&p.values, &p.shape),
                fmt_tensor(&g.values, &g.shape)
            );
        }
    }
    if r.status == run::Status::Error {
        return;
    }
    if (!r.prints.is_empty() || !r.derivatives.is_empty() || r.solve.is_some())
        && !r.values.is_empty()
    {
        let _ = writeln!(out);
    }
    let header = match r.status {
        run::Status::Evaluated => "values at the starting point:",
        run::Status::NotConverged => "values at the last iterate (not a solution):",
        _ => "values at the solution:",
    };
    if !r.values.is_empty() {
        let _ = writeln!(out, "{header}");
        for v in &r.values {
            let _ = writeln!(out, "  {} = {}", v.name, fmt_tensor(&v.values, &v.shape));
        }
    }
    if !r.duals.is_empty() {
        let _ = writeln!(out, "multipliers:");
        for d in &r.duals {
            let _ = writeln!(out, "  {} = {}", d.name, fmt_tensor(&d.values, &d.shape));
        }
    }
    if !r.residuals.is_empty() {
        let _ = writeln!(out, "residuals (max |F|):");
        for (name, norm) in &r.residuals {
            let _ = writeln!(out, "  {name}: {}", crate::report::fmt_num(*norm));
        }
    }
}

fn explain(code: Option<&str>) -> i32 {
    match code {
        None => {
            for c in Code::ALL {
                println!("{}  {}", c.as_str(), c.title());
            }
            0
        }
        Some(s) => match Code::parse(s) {
            Some(c) => {
                println!("{}: {}\n\n{}", c.as_str(), c.title(), c.explanation());
                0
            }
            None => {
                eprintln!("error: `{s}` is not a diagnostic code; `optc explain` lists them all");
                64
            }
        },
    }
}
