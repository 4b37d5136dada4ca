//! `optc repl`: declarations typed one by one accumulate into a session model; expressions
//! are evaluated at the session's current point; `:commands` solve, derive, set and inspect.
//!
//! The session is its declaration text. Each new declaration recompiles it (milliseconds), and
//! vars keep the values they had. `:set` changes a param's data in the compiled model without
//! recompiling. Expressions, `:type` and `:derive` compile the session plus one request into
//! a scratch model that starts from a copy of the session's state, so nothing they do leaks
//! back into the session.
#![warn(missing_docs)]

mod input;

use crate::api::{Backend, CompileError, CompileOptions, Model};
use crate::check::model::{shape_str, Request, T};
use crate::diag::{Code, Diagnostic, RenderStyle, Span};
use crate::report::fmt_tensor;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use input::{continues, greek};

/// Words that begin a declaration: they extend the session.
const DECLARATIONS: &[&str] = &[
    "dim",
    "param",
    "var",
    "let",
    "fn",
    "use",
    "minimize",
    "maximize",
    "subject",
    "lagrangian",
    "condition",
    "pde",
];

/// The commands, with their one-line help.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "this list"),
    (
        ":load FILE",
        "start a session from a .opt file (its requests are not run)",
    ),
    (":reload", "read the loaded file again, keeping :set values"),
    (
        ":type EXPR",
        "the shape of an expression, without evaluating it",
    ),
    (
        ":info NAME",
        "a name's declaration, value, and where it is used",
    ),
    (
        ":set NAME = VALUE",
        "change a param (or a var's starting point); no recompilation",
    ),
    (
        ":solve",
        "solve the session's conditions from the current point",
    ),
    (
        ":derive d(e)/d(p)",
        "the derivative of e at the solution (implicit function theorem)",
    ),
    (
        ":emit FORM",
        "ir, grad, kkt, conditions, kernel, clif or stats",
    ),
    (":explain CODE", "what a diagnostic code means"),
    (":save FILE", "write the session as a .opt file"),
    (":quit", "leave (so does end of input)"),
];

/// One REPL session.
pub struct Session {
    /// Accepted declarations, in order (each may hold several statements).
    decls: Vec<String>,
    /// `:set` values, re-applied after every recompilation: (name, text, values).
    overrides: Vec<(String, String, Vec<f64>)>,
    /// The compiled session (None while it is empty).
    model: Option<Model>,
    /// Whether the model's vars are a converged solution for the current params.
    solved: bool,
    loaded: Option<PathBuf>,
    base_dir: PathBuf,
    backend: Backend,
    style: RenderStyle,
}

/// What the caller should do after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next input.
    Continue,
    /// `:quit`: leave.
    Quit,
}

impl Session {
    /// An empty session; diagnostics are rendered in `style`.
    pub fn new(backend: Backend, style: RenderStyle) -> Session {
        Session {
            decls: Vec::new(),
            overrides: Vec::new(),
            model: None,
            solved: false,
            loaded: None,
            base_dir: PathBuf::from("."),
            backend,
            style,
        }
    }

    /// Names the session knows (for completion).
    pub fn names(&self) -> Vec<String> {
        let Some(m) = &self.model else {
            return Vec::new();
        };
        let c = m.checked();
        let mut out: Vec<String> = c.dims.iter().map(|d| d.name.clone()).collect();
        out.extend(c.params.iter().map(|p| p.name.clone()));
        out.extend(c.vars.iter().map(|v| v.name.clone()));
        out.extend(c.lets.iter().map(|l| l.name.clone()));
        out
    }

    fn text(&self, extra: &str) -> String {
        let mut s = self.decls.join("\n");
        if !extra.is_empty() {
            s.push('\n');
            s.push_str(extra);
        }
        s.push('\n');
        s
    }

    fn compile(&self, extra: &str) -> Result<Model, CompileError> {
        let opts = CompileOptions {
            file_name: Some("<repl>".into()),
            base_dir: Some(self.base_dir.clone()),
            backend: self.backend,
            ..CompileOptions::default()
        };
        Model::compile(&self.text(extra), &opts)
    }

    /// The session plus one request, starting from the session's state.
    fn scratch(&self, extra: &str, out: &mut dyn Write) -> Option<Model> {
        match self.compile(extra) {
            Ok(mut m) => {
                if let Some(s) = &self.model {
                    *m.state_mut() = s.state().clone();
                }
                Some(m)
            }
            Err(e) => {
                let _ = write!(out, "{}", e.render(self.style));
                None
            }
        }
    }

    /// A scratch model with `print exprs` appended, and the checked print items.
    fn printed(&self, exprs: &str, out: &mut dyn Write) -> Option<(Model, Vec<(String, T)>)> {
        let m = self.scratch(&format!("print {exprs}"), out)?;
        match m.checked().requests.last() {
            Some(Request::Print { items, .. }) => {
                let items = items.clone();
                Some((m, items))
            }
            _ => None,
        }
    }

    fn fail(&self, d: &Diagnostic, model: Option<&Model>, out: &mut dyn Write) {
        let sources = model.map(|m| m.sources().clone()).unwrap_or_default();
        let _ = write!(out, "{}", crate::diag::render(d, &sources, self.style));
    }

    /// Handles one complete input (possibly several lines).
    pub fn line(&mut self, input: &str, out: &mut dyn Write) -> Flow {
        let input = greek(input);
        let text = input.trim();
        if text.is_empty() || text.starts_with('#') {
            return Flow::Continue;
        }
        if let Some(cmd) = text.strip_prefix(':') {
            return self.command(cmd, out);
        }
        let first = first_word(text);
        match first {
            w if DECLARATIONS.contains(&w) => {
                self.declare(text, out);
            }
            "solve" => {
                let Some(m) = self.scratch(text, out) else {
                    return Flow::Continue;
                };
                match m.checked().requests.last().cloned() {
                    Some(Request::Solve {
                        target: Some(name),
                        method,
                        span,
                    }) => self.train(&m, &name, method.as_ref(), span, out),
                    Some(Request::Solve { method, .. }) => self.solve(method.as_ref(), out),
                    _ => {}
                }
            }
            "derive" => self.derive(text, out),
            "print" => self.evaluate(text.trim_start_matches("print").trim(), out),
            "tune" => self.tune(text, out),
            _ => self.evaluate(text, out),
        }
        Flow::Continue
    }

    fn declare(&mut self, text: &str, out: &mut dyn Write) {
        self.decls.push(text.to_string());
        match self.compile("") {
            Ok(m) => {
                // Warnings about this entry only; "unused" is the normal state of a session
                // that is still being typed.
                let start = self.text("").len() - text.len() - 1;
                for d in m.warnings() {
                    let here = d
                        .primary
                        .as_ref()
                        .is_some_and(|l| l.span.start as usize >= start);
                    if d.code != Code::UnusedName && here {
                        self.fail(d, Some(&m), out);
                    }
                }
                self.adopt(m, out);
            }
            Err(e) => {
                self.decls.pop();
                let _ = write!(out, "{}", e.render(self.style));
            }
        }
    }

    /// Makes `m` the session model: vars keep their values, `:set` values are re-applied.
    fn adopt(&mut self, mut m: Model, out: &mut dyn Write) {
        if let Some(old) = &self.model {
            let names: Vec<String> = m.checked().vars.iter().map(|v| v.name.clone()).collect();
            for name in names {
                if let Some(v) = old.var(&name) {
                    // A var whose shape changed starts again from its declared value.
                    let _ = m.set_var(&name, v);
                }
            }
        }
        self.overrides.retain(|(name, text, values)| {
            let ok = if m.checked().param_by_name(name).is_some() {
                m.set_param(name, values).is_ok()
            } else {
                m.set_var(name, values).is_ok()
            };
            if !ok {
                let _ = writeln!(
                    out,
                    "note: `:set {name} = {text}` no longer applies; dropped"
                );
            }
            ok
        });
        self.model = Some(m);
        self.solved = false;
    }

    fn evaluate(&mut self, expr: &str, out: &mut dyn Write) {
        let Some((mut m, items)) = self.printed(expr, out) else {
            return;
        };
        match eval_items(&mut m, &items) {
            Ok(values) => {
                for ((_, t), v) in items.iter().zip(values) {
                    let _ = writeln!(out, "{}", fmt_tensor(&v, &t.shape));
                }
            }
            Err(d) => self.fail(&d, Some(&m), out),
        }
    }

    fn solve(&mut self, spec: Option<&crate::check::model::MethodSpec>, out: &mut dyn Write) {
        let Some(mut model) = self.model.take() else {
            let _ = writeln!(
                out,
                "nothing to solve yet: declare vars and conditions first"
            );
            return;
        };
        self.solved = self.solve_model(&mut model, spec, out);
        self.model = Some(model);
    }

    /// Solves the session model and prints the outcome; returns whether it converged.
    fn solve_model(
        &self,
        model: &mut Model,
        spec: Option<&crate::check::model::MethodSpec>,
        out: &mut dyn Write,
    ) -> bool {
        // Typed commands have no place in the session text: failures are shown without a span.
        let span = Span::new(crate::diag::FileId(0), 0, 0);
        match model.solve(spec, span, None) {
            Ok(r) => {
                let _ = writeln!(out, "{}", crate::report::solve_line(&r));
                if !r.converged {
                    let mut d = crate::solve::failure_diagnostic(&r, span);
                    d.primary = None;
                    self.fail(&d, Some(model), out);
                    return false;
                }
                let c = model.checked();
                for (k, v) in c.vars.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{} = {}",
                        v.name,
                        fmt_tensor(&model.state().vars[k], &v.shape)
                    );
                }
                if let Some(sys) = model.system() {
                    for (k, con) in sys.constraints.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "{} (multiplier) = {}",
                            con.name,
                            fmt_tensor(&model.state().duals[k], &con.g.shape)
                        );
                    }
                }
                true
            }
            Err(mut d) => {
                d.primary = None;
                self.fail(&d, Some(model), out);
                false
            }
        }
    }

    fn derive(&mut self, text: &str, out: &mut dyn Write) {
        if !self.solved {
            let _ = writeln!(
                out,
                "derivatives are taken at a solution: run :solve first (params changed since, or nothing solved yet)"
            );
            return;
        }
        let Some(mut m) = self.scratch(text, out) else {
            return;
        };
        let Some(Request::Derive {
            of,
            of_text,
            wrt,
            order,
            method,
            span,
        }) = m.checked().requests.last().cloned()
        else {
            return;
        };
        // The scratch model starts at the session's solution: this solve only confirms it
        // (zero iterations) and records the solver settings the derivative reuses.
        let spec = self.solve_spec();
        if let Err(d) = m.solve(spec.as_ref(), span, None) {
            self.fail(&d, Some(&m), out);
            return;
        }
        match m.derive(&of, &of_text, wrt, order, method.as_ref(), span) {
            Ok(d) => {
                let wrt_name = m.checked().param(wrt).name.clone();
                let name = if order == 2 {
                    format!("d²({of_text})/d({wrt_name})²")
                } else {
                    format!("d({of_text})/d({wrt_name})")
                };
                let _ = writeln!(out, "{name} = {}", fmt_tensor(&d.value, &d.shape));
            }
            Err(d) => self.fail(&d, Some(&m), out),
        }
    }

    /// Runs a `tune` on a scratch model from the current point; the tuned params become
    /// `:set` values of the session and the inner solution its point.
    fn tune(&mut self, text: &str, out: &mut dyn Write) {
        let Some(mut m) = self.scratch(text, out) else {
            return;
        };
        let Some(last) = m.checked().requests.last().cloned() else {
            return;
        };
        let spec = self.solve_spec();
        let Some(req) = crate::run::tune::TuneRequest::of(&last, spec.as_ref()) else {
            return;
        };
        let opts = crate::run::RunOptions {
            quiet: true,
            ..Default::default()
        };
        match crate::run::tune::tune(&mut m, &req, &opts, &mut std::io::sink()) {
            Ok(t) => {
                let _ = writeln!(
                    out,
                    "tune ({}, {}): objective {} -> {} in {} iterations",
                    t.method,
                    if t.converged { "converged" } else { "stopped" },
                    crate::report::fmt_num(t.initial_objective),
                    crate::report::fmt_num(t.objective),
                    t.iterations
                );
                for p in &t.params {
                    let _ = writeln!(out, "{} = {}", p.name, fmt_tensor(&p.values, &p.shape));
                    let text = fmt_tensor(&p.values, &p.shape);
                    self.overrides.retain(|(n, _, _)| n != &p.name);
                    self.overrides
                        .push((p.name.clone(), text, p.values.clone()));
                }
                if let Some(s) = self.model.as_mut() {
                    *s.state_mut() = m.state().clone();
                }
                // The session's model is at the tuned params and their inner solution, but
                // only the scratch model solved: `derive` asks for `:solve` first.
                self.solved = false;
            }
            Err(d) => self.fail(&d, Some(&m), out),
        }
    }

    /// Trains a network for a pde block of the session and prints the outcome.
    fn train(
        &self,
        m: &Model,
        name: &str,
        spec: Option<&crate::check::model::MethodSpec>,
        span: Span,
        out: &mut dyn Write,
    ) {
        match crate::pde::train(m, name, spec, span, false, None) {
            Ok((r, warnings)) => {
                for w in &warnings {
                    self.fail(w, Some(m), out);
                }
                let _ = writeln!(
                    out,
                    "pde {} (d = {}): {}, {} steps, energy {}",
                    r.name,
                    r.dim,
                    r.method,
                    r.steps,
                    crate::report::fmt_num(r.energy)
                );
                if let (Some(l2), Some(h1)) = (r.rel_l2, r.rel_h1) {
                    let _ = writeln!(out, "relative L² error {l2:.3e}, H¹ error {h1:.3e}");
                }
                let _ = writeln!(out, "Euler–Lagrange residual (rms) {:.3e}", r.el_residual);
            }
            Err(d) => self.fail(&d, Some(m), out),
        }
    }

    /// The method of the session's last `solve` statement (from a loaded file), if any.
    fn solve_spec(&self) -> Option<crate::check::model::MethodSpec> {
        let m = self.model.as_ref()?;
        m.checked().requests.iter().rev().find_map(|r| match r {
            Request::Solve {
                target: None,
                method,
                ..
            } => method.clone(),
            _ => None,
        })
    }

    fn command(&mut self, cmd: &str, out: &mut dyn Write) -> Flow {
        let (name, arg) = match cmd.find(char::is_whitespace) {
            Some(k) => (&cmd[..k], cmd[k..].trim()),
            None => (cmd, ""),
        };
        match name {
            "q" | "quit" | "exit" => return Flow::Quit,
            "h" | "help" | "?" => {
                for (c, h) in COMMANDS {
                    let _ = writeln!(out, "  {c:<20} {h}");
                }
                let _ = writeln!(
                    out,
                    "  declarations (param, var, condition, minimize, ...) extend the session;\n  an expression is evaluated at the current point; \\lambda types λ."
                );
            }
            "load" => self.load(Path::new(arg), out),
            "reload" => match self.loaded.clone() {
                Some(p) => self.load(&p, out),
                None => {
                    let _ = writeln!(out, "no file loaded: use :load FILE");
                }
            },
            "type" | "t" => {
                if let Some((_, items)) = self.printed(arg, out) {
                    for (_, t) in items {
                        let _ = writeln!(out, "{}", shape_str(&t.shape));
                    }
                }
            }
            "info" | "i" => self.info(arg, out),
            "set" => self.set(arg, out),
            "solve" => {
                let spec = self.solve_spec();
                self.solve(spec.as_ref(), out);
            }
            "derive" => self.derive(&format!("derive {arg}"), out),
            "emit" => match self.model.as_mut() {
                Some(m) => match crate::cli::emit_form(m, arg) {
                    Ok(t) => {
                        let _ = write!(out, "{t}");
                    }
                    Err(d) => {
                        let m = self.model.as_ref();
                        self.fail(&d, m, out);
                    }
                },
                None => {
                    let _ = writeln!(out, "the session is empty");
                }
            },
            "explain" => match Code::parse(arg) {
                Some(c) => {
                    let _ = writeln!(out, "{}: {}\n\n{}", c.as_str(), c.title(), c.explanation());
                }
                None => {
                    let _ = writeln!(out, "`{arg}` is not a diagnostic code (E0101, W0902, ...)");
                }
            },
            "save" => {
                let mut text = self.text("");
                for (n, t, _) in &self.overrides {
                    text.push_str(&format!(
                        "# :set {n} = {t}  (the declaration above keeps its original value)\n"
                    ));
                }
                match std::fs::write(arg, text) {
                    Ok(()) => {
                        let _ = writeln!(out, "saved {arg}");
                    }
                    Err(e) => {
                        let _ = writeln!(out, "cannot write {arg}: {e}");
                    }
                }
            }
            other => {
                let _ = writeln!(out, "unknown command :{other}; :help lists them");
            }
        }
        Flow::Continue
    }

    fn load(&mut self, path: &Path, out: &mut dyn Write) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "cannot read {}: {e}", path.display());
                return;
            }
        };
        let saved = (
            std::mem::replace(&mut self.decls, vec![text]),
            self.base_dir.clone(),
        );
        self.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        match self.compile("") {
            Ok(m) => {
                let c = m.checked();
                let _ = writeln!(
                    out,
                    "loaded {}: {} params, {} vars, {} requests (not run: use :solve, :derive)",
                    path.display(),
                    c.params.len(),
                    c.vars.len(),
                    c.requests.len()
                );
                self.model = None;
                self.adopt(m, out);
                self.loaded = Some(path.to_path_buf());
            }
            Err(e) => {
                let _ = write!(out, "{}", e.render(self.style));
                (self.decls, self.base_dir) = saved;
            }
        }
    }

    fn set(&mut self, arg: &str, out: &mut dyn Write) {
        let Some((name, value)) = arg.split_once('=') else {
            let _ = writeln!(out, "usage: :set NAME = VALUE");
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        let Some(model) = self.model.as_ref() else {
            let _ = writeln!(out, "the session is empty");
            return;
        };
        let is_param = model.checked().param_by_name(name).is_some();
        if !is_param && model.checked().var_by_name(name).is_none() {
            let _ = writeln!(out, "no param or var named `{name}`");
            return;
        }
        let Some((mut m, items)) = self.printed(value, out) else {
            return;
        };
        let values = match eval_items(&mut m, &items) {
            Ok(mut v) => v.remove(0),
            Err(d) => {
                self.fail(&d, Some(&m), out);
                return;
            }
        };
        let Some(model) = self.model.as_mut() else {
            return;
        };
        let r = if is_param {
            model.set_param(name, &values)
        } else {
            model.set_var(name, &values)
        };
        match r {
            Ok(()) => {
                self.overrides.retain(|(n, _, _)| n != name);
                self.overrides
                    .push((name.to_string(), value.to_string(), values));
                if is_param {
                    self.solved = false;
                }
                if let Some((v, shape)) = current(model, name) {
                    let _ = writeln!(out, "{name} = {}", fmt_tensor(v, shape));
                }
            }
            Err(e) => {
                let _ = writeln!(out, "cannot set `{name}`: {e}");
            }
        }
    }

    fn info(&mut self, name: &str, out: &mut dyn Write) {
        let Some(model) = self.model.as_ref() else {
            let _ = writeln!(out, "the session is empty");
            return;
        };
        let text = self.text("");
        let lines: Vec<&str> = text.lines().collect();
        let decl = lines.iter().position(|l| declares(l, name));
        let Some(k) = decl else {
            if crate::check::builtins::names().any(|b| b == name) {
                let _ = writeln!(out, "`{name}` is a builtin function (see docs/LANGUAGE.md)");
            } else {
                let _ = writeln!(out, "`{name}` is not declared in this session");
            }
            return;
        };
        let _ = writeln!(out, "{}", lines[k].trim());
        if let Some((v, shape)) = current(model, name) {
            let _ = writeln!(
                out,
                "  value: {}  ({})",
                fmt_tensor(v, shape),
                shape_str(shape)
            );
        } else if let Some(d) = model.checked().dims.iter().find(|d| d.name == name) {
            let _ = writeln!(out, "  value: {}", d.value);
        }
        let uses: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(j, l)| *j != k && mentions(l, name))
            .map(|(j, _)| j)
            .collect();
        if uses.is_empty() {
            let _ = writeln!(out, "  not used elsewhere");
        } else {
            let _ = writeln!(out, "  used in:");
            for j in uses {
                let _ = writeln!(out, "    {}", lines[j].trim());
            }
        }
    }
}

fn eval_items(m: &mut Model, items: &[(String, T)]) -> Result<Vec<Vec<f64>>, Diagnostic> {
    let mut exprs = Vec::new();
    for (_, t) in items {
        exprs.push(m.lower(t)?);
    }
    let values = m.evaluate(&exprs).map_err(|e| {
        Diagnostic::error(
            Code::Unsupported,
            format!("internal error while evaluating: {e}"),
        )
    })?;
    for ((text, t), v) in items.iter().zip(&values) {
        crate::run::check_finite(v, text, t)?;
    }
    Ok(values)
}

/// A param's or var's current value and shape.
fn current<'m>(model: &'m Model, name: &str) -> Option<(&'m [f64], &'m [usize])> {
    let c = model.checked();
    if let Some(id) = c.param_by_name(name) {
        return Some((model.param(name)?, &c.param(id).shape));
    }
    let id = c.var_by_name(name)?;
    Some((model.var(name)?, &c.var(id).shape))
}

fn first_word(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `line` contains `name` as a whole word.
fn mentions(line: &str, name: &str) -> bool {
    let code = line.split('#').next().unwrap_or("");
    code.match_indices(name).any(|(k, _)| {
        let before = code[..k].chars().next_back();
        let after = code[k + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Whether `line` declares `name` (`param name`, `var name`, `let name`, `fn name(`, ...).
fn declares(line: &str, name: &str) -> bool {
    let words: Vec<&str> = line
        .split(|c: char| !is_ident(c))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| {
        matches!(
            w[0],
            "dim" | "param" | "var" | "let" | "fn" | "minimize" | "maximize" | "lagrangian"
        ) && w[1] == name
    }) || line.trim_start().starts_with("subject")
        && line
            .split_once(':')
            .is_some_and(|(h, _)| h.split_whitespace().last() == Some(name))
}

/// `optc repl [FILE]`: reads lines from the terminal (with history and completion) or from
/// piped stdin, and returns the exit code.
pub fn main(file: Option<&Path>, backend: Backend, style: RenderStyle) -> i32 {
    let mut session = Session::new(backend, style);
    let mut stdout = std::io::stdout();
    if let Some(f) = file {
        session.load(f, &mut stdout);
    }
    input::run(&mut session, &mut stdout)
}
