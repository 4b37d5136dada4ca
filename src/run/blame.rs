//! Finding where a non-finite value is born: the smallest subexpression (without free index
//! symbols, so it can be evaluated on its own) that is NaN or infinite while its operands are
//! finite — `log(a)` with a negative entry of `a`, `1 ./ x` with a zero entry — reported with
//! its span, the entry and the operand values.

use crate::api::Model;
use crate::check::{TIndex, TKind, T};
use crate::diag::Label;
use crate::ops::{BinOp, UnOp};
use std::collections::BTreeSet;

/// Operands of a node (the expressions it is computed from).
fn children(t: &T) -> Vec<&T> {
    match &t.kind {
        TKind::Unary(_, a)
        | TKind::Transpose(a)
        | TKind::Index(a, _)
        | TKind::Sum(_, _, _, a)
        | TKind::Reduce(_, a)
        | TKind::Comprehension(_, a)
        | TKind::LoadTime(_, a) => vec![a],
        TKind::Binary(_, a, b) | TKind::MatMul(a, b) => vec![a, b],
        TKind::Select(c, a, b) => vec![c, a, b],
        TKind::Stack(v) => v.iter().collect(),
        // A derivative's operand is not where its value comes from.
        _ => vec![],
    }
}

/// Index symbols used but not bound inside `t`.
fn free_syms(t: &T, out: &mut BTreeSet<u32>) {
    let affine = |a: &crate::check::Affine, out: &mut BTreeSet<u32>| {
        out.extend(a.syms().map(|s| s.0));
    };
    match &t.kind {
        TKind::IndexVal(s) => {
            out.insert(s.0);
        }
        TKind::Input(_) => {
            // pde arguments: never evaluable on their own.
            out.insert(u32::MAX);
        }
        TKind::Index(a, idx) => {
            free_syms(a, out);
            for i in idx {
                match i {
                    TIndex::At(x) => affine(x, out),
                    TIndex::Slice { start, .. } => affine(start, out),
                }
            }
        }
        TKind::Sum(s, lo, hi, body) => {
            let mut inner = BTreeSet::new();
            free_syms(body, &mut inner);
            inner.remove(&s.0);
            out.extend(inner);
            affine(lo, out);
            affine(hi, out);
        }
        TKind::Comprehension(binders, body) => {
            let mut inner = BTreeSet::new();
            free_syms(body, &mut inner);
            for (s, _, _) in binders {
                inner.remove(&s.0);
            }
            out.extend(inner);
        }
        _ => {
            for c in children(t) {
                free_syms(c, out);
            }
        }
    }
}

fn closed(t: &T) -> bool {
    let mut s = BTreeSet::new();
    free_syms(t, &mut s);
    s.is_empty()
}

fn value(model: &mut Model, t: &T) -> Option<Vec<f64>> {
    let e = model.lower(t).ok()?;
    model.evaluate(&[e]).ok()?.into_iter().next()
}

/// A flat row-major entry as a 1-based multi-index: `[2, 3]`.
fn entry(shape: &[usize], mut k: usize) -> String {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = k % n.max(1) + 1;
        k /= n.max(1);
    }
    let parts: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// The operand value at the faulty entry (a scalar operand broadcasts).
fn at(v: &[f64], k: usize) -> f64 {
    if v.len() == 1 {
        v[0]
    } else {
        v.get(k).copied().unwrap_or(f64::NAN)
    }
}

/// Where, inside `t`, a non-finite value first appears. `None` when `t` is finite or the
/// fault cannot be isolated in a subexpression that evaluates on its own.
pub(crate) fn blame(model: &mut Model, t: &T) -> Option<Label> {
    if closed(t) {
        let v = value(model, t)?;
        let k = v.iter().position(|x| !x.is_finite())?;
        // The operands first: the fault is in the deepest non-finite node.
        for c in children(t) {
            if let Some(l) = blame(model, c) {
                return Some(l);
            }
        }
        let ops: Vec<Option<Vec<f64>>> = children(t)
            .iter()
            .map(|c| if closed(c) { value(model, c) } else { None })
            .collect();
        let elementwise = matches!(t.kind, TKind::Unary(..) | TKind::Binary(..));
        let operand = |i: usize| -> Option<f64> {
            let v = ops.get(i)?.as_ref()?;
            elementwise.then(|| at(v, k))
        };
        let place = if v.len() > 1 {
            format!(" at {}", entry(&t.shape, k))
        } else {
            String::new()
        };
        let what = match &t.kind {
            TKind::Unary(op, _) => match (op, operand(0)) {
                (UnOp::Log | UnOp::Sqrt | UnOp::Log1p | UnOp::Asin | UnOp::Acos, Some(a)) => {
                    format!("`{}` of {a}", op.name())
                }
                (UnOp::Exp | UnOp::Expm1 | UnOp::Sinh | UnOp::Cosh, Some(a)) => {
                    format!("`{}` of {a} overflows", op.name())
                }
                _ => format!("`{}`", op.name()),
            },
            TKind::Binary(BinOp::Div, _, _) => match (operand(0), operand(1)) {
                (Some(a), Some(b)) => format!("{a} / {b}"),
                _ => "a division".into(),
            },
            TKind::Binary(BinOp::Pow, _, _) => match (operand(0), operand(1)) {
                (Some(a), Some(b)) => format!("{a} ^ {b}"),
                _ => "a power".into(),
            },
            TKind::Binary(op, _, _) => match (operand(0), operand(1)) {
                (Some(a), Some(b)) => format!("{a} {} {b}", op.name()),
                _ => format!("`{}`", op.name()),
            },
            _ => "this expression".into(),
        };
        return Some(Label {
            span: t.span,
            text: format!("{what} is {}{place}", v[k]),
        });
    }
    children(t).into_iter().find_map(|c| blame(model, c))
}

/// The first non-finite value among the model's own expressions (lets, objective,
/// constraints, conditions) at the current point, located by [`blame`].
pub(crate) fn blame_model(model: &mut Model) -> Option<Label> {
    let c = model.checked().clone();
    let mut exprs: Vec<T> = c.lets.iter().map(|l| l.expr.clone()).collect();
    exprs.extend(c.objective.iter().map(|o| o.expr.clone()));
    exprs.extend(c.constraints.iter().map(|k| k.g.clone()));
    exprs.extend(c.lagrangians.iter().map(|l| l.expr.clone()));
    for k in &c.conditions {
        exprs.push(k.lhs.clone());
        exprs.push(k.rhs.clone());
    }
    exprs.iter().find_map(|t| blame(model, t))
}
