//! Executing a model's requests in order (`print`, `solve`, `derive`, `tune`, pde solves),
//! collecting a [`RunReport`] that the CLI renders as text or JSON.
#![warn(missing_docs)]

use crate::api::Model;
use crate::check::{Request, T};
use crate::diag::{Code, Diagnostic};
use crate::solve::SolveResult;
use std::io::Write;

mod blame;
mod taylor;
pub(crate) mod tune;
pub use taylor::TaylorCheck;
pub use tune::TuneReport;

/// The outcome of a run (DESIGN §7 `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Requests ran; nothing was solved (values are at the starting point).
    Evaluated,
    /// The last solve converged; values are at the solution.
    Solved,
    /// A solve stopped without converging (exit code 2).
    NotConverged,
    /// A derivative could not be formed at the solution (exit code 3).
    DerivativeFailed,
    /// A request failed on an error in the input (exit code 1 or 64–70).
    Error,
}

impl Status {
    /// The name used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Evaluated => "evaluated",
            Status::Solved => "solved",
            Status::NotConverged => "not_converged",
            Status::DerivativeFailed => "derivative_failed",
            Status::Error => "error",
        }
    }
}

/// A named tensor value.
#[derive(Clone, Debug)]
pub struct Named {
    /// The name (or source text, for prints).
    pub name: String,
    /// Its shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Its entries, row-major.
    pub values: Vec<f64>,
}

/// A derivative in the report: `d(of)/d(wrt)` with shape `shape(of) ++ shape(wrt)`.
#[derive(Clone, Debug)]
pub struct DerivativeReport {
    /// The differentiated expression, as written.
    pub of: String,
    /// The param.
    pub wrt: String,
    /// 1, or 2 for a second derivative.
    pub order: u8,
    /// `shape(of) ++ shape(wrt)` (twice `shape(wrt)` for order 2).
    pub shape: Vec<usize>,
    /// Entries, row-major.
    pub values: Vec<f64>,
    /// `forward` or `reverse` implicit differentiation.
    pub mode: &'static str,
    /// The linear solver used for the implicit function theorem.
    pub linear: &'static str,
    /// Condition number estimate of ∂F/∂z, when computed.
    pub condition: Option<f64>,
}

/// How to run a model's requests.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// No iteration tables on the log.
    pub quiet: bool,
    /// Run Taylor tests of the compiled derivatives before the requests.
    pub check_derivatives: bool,
    /// Starting networks for `solve NAME using barron(...)`, matched by pde name
    /// (`optc run --load`).
    pub networks: Vec<crate::pde::Network>,
}

/// Everything a run produced, for text or JSON output.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The outcome.
    pub status: Status,
    /// The last solve.
    pub solve: Option<SolveResult>,
    /// Vars, lets and objectives at the final point.
    pub values: Vec<Named>,
    /// Multipliers of each constraint (and var bound).
    pub duals: Vec<Named>,
    /// `derive` results, in order.
    pub derivatives: Vec<DerivativeReport>,
    /// `print` statements, with their source text.
    pub prints: Vec<Named>,
    /// ‖F‖∞ of each condition block at the final point.
    pub residuals: Vec<(String, f64)>,
    /// Taylor tests (`--check-derivatives`).
    pub checks: Vec<TaylorCheck>,
    /// The last `tune`'s outcome.
    pub tune: Option<TuneReport>,
    /// Trained pde blocks, in order.
    pub pde: Vec<crate::pde::PdeReport>,
    /// Errors and warnings raised while running.
    pub diagnostics: Vec<Diagnostic>,
}

impl RunReport {
    /// The process exit code (DESIGN §3).
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Evaluated | Status::Solved => 0,
            Status::NotConverged => 2,
            Status::DerivativeFailed => 3,
            Status::Error => self
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.exit_code())
                .unwrap_or(1),
        }
    }
}

/// Runs every request of the model, in source order.
pub fn execute(model: &mut Model, opts: &RunOptions, log: &mut dyn Write) -> RunReport {
    let mut report = RunReport {
        status: Status::Evaluated,
        solve: None,
        values: Vec::new(),
        duals: Vec::new(),
        derivatives: Vec::new(),
        prints: Vec::new(),
        residuals: Vec::new(),
        checks: Vec::new(),
        tune: None,
        pde: Vec::new(),
        diagnostics: Vec::new(),
    };
    if opts.check_derivatives && model.system().is_some() {
        match taylor::check(model) {
            Ok(c) => report.checks = c,
            Err(d) => {
                report.diagnostics.push(d);
                report.status = Status::Error;
                return report;
            }
        }
    }
    let requests = model.checked().requests.clone();
    let mut inner: Option<crate::check::MethodSpec> = None;
    for req in &requests {
        let r = match req {
            Request::Print { items, .. } => print(model, items, &mut report),
            Request::Solve {
                target: None,
                method,
                span,
            } => {
                inner = method.clone();
                let log: Option<&mut dyn Write> = if opts.quiet { None } else { Some(&mut *log) };
                match model.solve(method.as_ref(), *span, log) {
                    Ok(r) => {
                        let converged = r.converged;
                        if !converged {
                            let mut d = crate::solve::failure_diagnostic(&r, *span);
                            if d.code == Code::NumericalFault {
                                locate_fault(model, &mut d);
                                add_blame(model, &mut d, None);
                            }
                            report.diagnostics.push(d);
                            report.status = Status::NotConverged;
                        } else if report.status == Status::Evaluated {
                            report.status = Status::Solved;
                        }
                        report.solve = Some(r);
                        if !converged {
                            break;
                        }
                        Ok(())
                    }
                    Err(d) => Err(d),
                }
            }
            Request::Derive {
                of,
                of_text,
                wrt,
                order,
                method,
                span,
            } => match model.derive(of, of_text, *wrt, *order, method.as_ref(), *span) {
                Ok(d) => {
                    let wrt_name = model.checked().param(*wrt).name.clone();
                    report.derivatives.push(DerivativeReport {
                        of: of_text.clone(),
                        wrt: wrt_name,
                        order: *order,
                        shape: d.shape,
                        values: d.value,
                        mode: d.mode,
                        linear: d.linear,
                        condition: d.condition,
                    });
                    Ok(())
                }
                Err(d) => {
                    report.diagnostics.push(d);
                    report.status = Status::DerivativeFailed;
                    Ok(())
                }
            },
            Request::Tune { .. } => {
                let Some(treq) = tune::TuneRequest::of(req, inner.as_ref()) else {
                    continue;
                };
                tune::tune(model, &treq, opts, log).map(|t| {
                    if t.converged {
                        report.status = Status::Solved;
                    } else {
                        report.diagnostics.push(
                            Diagnostic::error(
                                Code::NotConverged,
                                format!("the outer loop of `tune` did not converge: {}", t.reason),
                            )
                            .at(treq.span, "values are at the last outer iterate")
                            .help("raise max_iter, or loosen tol, in `using ...(...)`; bound the params with `in [a, b]` if the objective falls without bound"),
                        );
                        report.status = Status::NotConverged;
                    }
                    report.tune = Some(t);
                })
            }
            Request::Solve {
                target: Some(target),
                method,
                span,
            } => match crate::pde::train(
                model,
                target,
                method.as_ref(),
                *span,
                !opts.quiet,
                opts.networks.iter().find(|n| &n.pde == target),
            ) {
                Ok((p, warning)) => {
                    if report.status == Status::Evaluated {
                        report.status = Status::Solved;
                    }
                    report.diagnostics.extend(warning);
                    report.pde.push(p);
                    Ok(())
                }
                Err(d) if !d.is_error() => {
                    report.diagnostics.push(d);
                    Ok(())
                }
                Err(d) => Err(d),
            },
        };
        if let Err(d) = r {
            let code = d.code;
            report.diagnostics.push(d);
            report.status = match code.exit_class() {
                crate::diag::ExitClass::Derivative => Status::DerivativeFailed,
                crate::diag::ExitClass::Solver => Status::NotConverged,
                _ => Status::Error,
            };
            break;
        }
    }
    if report.status != Status::Error {
        // A fault already located is not reported a second time through the values.
        let strict = !report
            .diagnostics
            .iter()
            .any(|d| d.code == Code::NumericalFault);
        if let Err(d) = final_values(model, &mut report, strict) {
            report.diagnostics.push(d);
            report.status = Status::Error;
        }
    }
    let _ = log.flush();
    report
}

/// Adds where a non-finite value was born, in `t` or else anywhere in the model's own
/// expressions, unless a label already points there.
fn add_blame(model: &mut Model, d: &mut Diagnostic, t: Option<&T>) {
    let label = match t {
        Some(t) => blame::blame(model, t),
        None => blame::blame_model(model),
    };
    let Some(l) = label else { return };
    let overlaps = |x: &crate::diag::Label| {
        x.span.file == l.span.file && x.span.start < l.span.end && l.span.start < x.span.end
    };
    // Nested underlines on one line do not render legibly: the precise label replaces an
    // enclosing one, whose text moves to a note.
    let note = |text: &str| {
        let t = text.trim_end_matches(" here");
        (t != "not finite").then(|| format!("{t} (the enclosing statement)"))
    };
    if let Some(p) = d.primary.take() {
        if overlaps(&p) {
            d.notes.extend(note(&p.text));
            d.primary = Some(l);
            return;
        }
        d.primary = Some(p);
    }
    if let Some(k) = d.secondary.iter().position(overlaps) {
        let old = d.secondary.remove(k);
        d.notes.extend(note(&old.text));
    }
    d.secondary.push(l);
}

/// Points a non-finite residual at the condition block and entry that produced it.
fn locate_fault(model: &Model, d: &mut Diagnostic) {
    let Some(sys) = model.system() else { return };
    let exprs: Vec<crate::ir::TensorExpr> = sys.blocks.iter().map(|b| b.expr.clone()).collect();
    let Ok(values) = model.evaluate(&exprs) else {
        return;
    };
    for (b, v) in sys.blocks.iter().zip(&values) {
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            let at = if v.len() > 1 {
                format!(" at entry {}", k + 1)
            } else {
                String::new()
            };
            d.secondary.push(crate::diag::Label {
                span: b.span,
                text: format!("`{}` is {}{at} here", b.name, v[k]),
            });
            return;
        }
    }
}

fn eval_texprs(model: &mut Model, items: &[T]) -> Result<Vec<Vec<f64>>, Diagnostic> {
    let mut exprs = Vec::new();
    for t in items {
        exprs.push(model.lower(t)?);
    }
    model.evaluate(&exprs).map_err(|m| {
        Diagnostic::error(
            Code::Unsupported,
            format!("internal error while evaluating: {m}"),
        )
    })
}

fn print(
    model: &mut Model,
    items: &[(String, T)],
    report: &mut RunReport,
) -> Result<(), Diagnostic> {
    let ts: Vec<T> = items.iter().map(|(_, t)| t.clone()).collect();
    let values = eval_texprs(model, &ts)?;
    for ((text, t), v) in items.iter().zip(values) {
        if let Err(mut d) = check_finite(&v, text, t) {
            add_blame(model, &mut d, Some(t));
            return Err(d);
        }
        report.prints.push(Named {
            name: text.clone(),
            shape: t.shape.clone(),
            values: v,
        });
    }
    Ok(())
}

pub(crate) fn check_finite(v: &[f64], what: &str, t: &T) -> Result<(), Diagnostic> {
    if let Some(k) = v.iter().position(|x| !x.is_finite()) {
        let at = if v.len() > 1 {
            format!(" at entry {}", k + 1)
        } else {
            String::new()
        };
        return Err(Diagnostic::error(Code::NumericalFault, format!("`{what}` is {}{at}", v[k]))
            .at(t.span, "not finite here")
            .help("look for a division by zero, the log or sqrt of a negative number, or an overflow"));
    }
    Ok(())
}

/// Values of vars, lets, objectives and multipliers, and the residuals, at the final point.
fn final_values(model: &mut Model, report: &mut RunReport, strict: bool) -> Result<(), Diagnostic> {
    let checked = model.checked().clone();
    for (k, v) in checked.vars.iter().enumerate() {
        report.values.push(Named {
            name: v.name.clone(),
            shape: v.shape.clone(),
            values: model.state().vars[k].clone(),
        });
    }
    let ts: Vec<T> = checked.lets.iter().map(|l| l.expr.clone()).collect();
    let values = eval_texprs(model, &ts)?;
    for (l, v) in checked.lets.iter().zip(values) {
        if let (true, Err(mut d)) = (strict, check_finite(&v, &l.name, &l.expr)) {
            add_blame(model, &mut d, Some(&l.expr));
            return Err(d);
        }
        report.values.push(Named {
            name: l.name.clone(),
            shape: l.expr.shape.clone(),
            values: v,
        });
    }
    if let Some(sys) = model.system() {
        for (k, c) in sys.constraints.iter().enumerate() {
            report.duals.push(Named {
                name: c.name.clone(),
                shape: c.g.shape.clone(),
                values: model.state().duals[k].clone(),
            });
        }
        let blocks: Vec<(String, crate::ir::TensorExpr)> = sys
            .blocks
            .iter()
            .map(|b| (b.name.clone(), b.expr.clone()))
            .collect();
        let exprs: Vec<crate::ir::TensorExpr> = blocks.iter().map(|b| b.1.clone()).collect();
        let values = model.evaluate(&exprs).map_err(|m| {
            Diagnostic::error(
                Code::Unsupported,
                format!("internal error while evaluating: {m}"),
            )
        })?;
        for ((name, _), v) in blocks.iter().zip(values) {
            let norm = crate::solve::linalg::norm_inf(&v);
            report.residuals.push((name.clone(), norm));
        }
    }
    Ok(())
}
