//! Executing a model's requests in order (`print`, `solve`, `derive`, `tune`, pde solves),
//! collecting a [`RunReport`] that the CLI renders as text or JSON.

use crate::api::Model;
use crate::check::{Request, T};
use crate::diag::{Code, Diagnostic};
use std::io::Write;

/// The outcome of a run (DESIGN §7 `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Requests ran; nothing was solved (values are at the starting point).
    Evaluated,
    Solved,
    NotConverged,
    DerivativeFailed,
    Error,
}

impl Status {
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
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub quiet: bool,
}

#[derive(Clone, Debug)]
pub struct RunReport {
    pub status: Status,
    /// Vars, lets and objectives at the final point.
    pub values: Vec<Named>,
    /// `print` statements, with their source text.
    pub prints: Vec<Named>,
    /// ‖F‖∞ of each condition block at the final point.
    pub residuals: Vec<(String, f64)>,
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
        values: Vec::new(),
        prints: Vec::new(),
        residuals: Vec::new(),
        diagnostics: Vec::new(),
    };
    let requests = model.checked().requests.clone();
    for req in &requests {
        let r = match req {
            Request::Print { items, .. } => print(model, items, &mut report),
            Request::Solve { span, .. }
            | Request::Derive { span, .. }
            | Request::Tune { span, .. } => {
                let what = match req {
                    Request::Solve {
                        target: Some(_), ..
                    } => "solving a pde block",
                    Request::Solve { .. } => "solve",
                    Request::Derive { .. } => "derive",
                    _ => "tune",
                };
                report.diagnostics.push(
                    Diagnostic::warning(
                        Code::NotYetAvailable,
                        format!("`{what}` is not executed by this version"),
                    )
                    .at(*span, "skipped")
                    .help("the values reported are at the starting point"),
                );
                Ok(())
            }
        };
        if let Err(d) = r {
            report.diagnostics.push(d);
            report.status = Status::Error;
            break;
        }
    }
    if report.status != Status::Error {
        if let Err(d) = final_values(model, &mut report) {
            report.diagnostics.push(d);
            report.status = Status::Error;
        }
    }
    if !opts.quiet {
        let _ = log.flush();
    }
    report
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
        check_finite(&v, text, t)?;
        report.prints.push(Named {
            name: text.clone(),
            shape: t.shape.clone(),
            values: v,
        });
    }
    Ok(())
}

fn check_finite(v: &[f64], what: &str, t: &T) -> Result<(), Diagnostic> {
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

/// Values of vars, lets and objectives, and the condition residuals, at the current point.
fn final_values(model: &mut Model, report: &mut RunReport) -> Result<(), Diagnostic> {
    let checked = model.checked().clone();
    for (k, v) in checked.vars.iter().enumerate() {
        report.values.push(Named {
            name: v.name.clone(),
            shape: v.shape.clone(),
            values: model.state().vars[k].clone(),
        });
    }
    let lets = &checked.lets;
    let ts: Vec<T> = lets.iter().map(|l| l.expr.clone()).collect();
    let values = eval_texprs(model, &ts)?;
    for (l, v) in lets.iter().zip(values) {
        report.values.push(Named {
            name: l.name.clone(),
            shape: l.expr.shape.clone(),
            values: v,
        });
    }
    if let Some(sys) = model.system() {
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
            let norm = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            report.residuals.push((name.clone(), norm));
        }
    }
    Ok(())
}
