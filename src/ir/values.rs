//! Numbers the model starts from: param values (data, literals, or expressions of earlier
//! params evaluated once) and var starting points.

use super::eval::{Evaluator, TensorValues};
use super::lower::{Lowerer, Program};
use crate::check::{numel, Model, Value};
use crate::diag::{Code, Diagnostic, Span};

/// Evaluates every param value in declaration order.
pub fn param_values(model: &Model, prog: &mut Program) -> Result<Vec<Vec<f64>>, Diagnostic> {
    let mut values: Vec<Option<Vec<f64>>> = vec![None; model.params.len()];
    for (k, p) in model.params.iter().enumerate() {
        let v = match &p.value {
            Value::Data(d) => d.to_vec(),
            Value::None => {
                return Err(Diagnostic::error(
                    Code::ParamNoValue,
                    format!("param `{}` has no value", p.name),
                )
                .at(p.span, "no value given")
                .help(format!(
                    "give it a default (`param {} = 1`) or pass --set {}=VALUE",
                    p.name, p.name
                )))
            }
            Value::Expr(t) => {
                let mut lw = Lowerer::new(model, prog);
                lw.param_values = values.clone();
                let te = lw.tensor(t)?;
                let out = lw.eval_now(&te).map_err(|m| {
                    Diagnostic::error(
                        Code::NumericalFault,
                        format!("cannot evaluate `{}`: {m}", p.name),
                    )
                    .at(t.span, "here")
                })?;
                check_finite(&out, &p.name, t.span)?;
                out
            }
        };
        values[k] = Some(v);
    }
    Ok(values.into_iter().map(|v| v.unwrap_or_default()).collect())
}

/// Evaluates every var's starting point (0 where none is given).
pub fn var_starts(
    model: &Model,
    prog: &mut Program,
    params: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>, Diagnostic> {
    let mut out = Vec::new();
    for v in &model.vars {
        let n = numel(&v.shape);
        let x = match &v.init {
            Value::None => vec![0.0; n],
            Value::Data(d) => d.to_vec(),
            Value::Expr(t) => {
                let mut lw = Lowerer::new(model, prog);
                lw.param_values = params.iter().cloned().map(Some).collect();
                let te = lw.tensor(t)?;
                let x = lw.eval_now(&te).map_err(|m| {
                    Diagnostic::error(
                        Code::NumericalFault,
                        format!("cannot evaluate the start of `{}`: {m}", v.name),
                    )
                    .at(t.span, "here")
                })?;
                check_finite(&x, &v.name, t.span)?;
                x
            }
        };
        out.push(x);
    }
    Ok(out)
}

/// Evaluates an optional bound (scalar or full shape) of a param or var.
pub fn bound_values(
    model: &Model,
    prog: &mut Program,
    params: &[Vec<f64>],
    bound: Option<&crate::check::T>,
    n: usize,
) -> Result<Option<Vec<f64>>, Diagnostic> {
    let Some(t) = bound else { return Ok(None) };
    let mut lw = Lowerer::new(model, prog);
    lw.param_values = params.iter().cloned().map(Some).collect();
    let te = lw.tensor(t)?;
    let g = &lw.prog.graph;
    let mut tv = TensorValues::new(g);
    for (k, v) in params.iter().enumerate() {
        tv.set(lw.prog.params[k], v);
    }
    let v = Evaluator::new(g, &tv).tensor(&te).map_err(|m| {
        Diagnostic::error(
            Code::NumericalFault,
            format!("cannot evaluate a bound: {m}"),
        )
        .at(t.span, "here")
    })?;
    if v.iter().any(|x| x.is_nan()) {
        return Err(Diagnostic::error(Code::NumericalFault, "a bound is NaN")
            .at(t.span, "here")
            .help("bounds must be numbers (±inf allowed)"));
    }
    Ok(Some(if v.len() == 1 { vec![v[0]; n] } else { v }))
}

fn check_finite(v: &[f64], name: &str, span: Span) -> Result<(), Diagnostic> {
    if let Some(k) = v.iter().position(|x| !x.is_finite()) {
        return Err(Diagnostic::error(
            Code::NumericalFault,
            format!("`{name}` evaluates to {} at entry {}", v[k], k + 1),
        )
        .at(span, "this value is not finite")
        .help(
            "check the expression for a division by zero, log of a negative number, or overflow",
        ));
    }
    Ok(())
}
