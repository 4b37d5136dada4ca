//! Local derivatives: one row per scalar operation. Forward and reverse mode both use this
//! table, so each rule is written once.
//!
//! Generalized derivatives of non-smooth operations (documented in docs/LANGUAGE.md):
//! - `abs'(x) = sign(x)`, so 0 at 0;
//! - `sign`, `floor`, `ceil`, comparisons and logic have derivative 0;
//! - `max(a, b)` passes the derivative to `a` when `a ≥ b` (ties go to the first operand,
//!   like the value), `min(a, b)` to `a` when `a ≤ b`;
//! - `select(c, a, b)` follows the branch taken;
//! - `maximum`/`minimum` of a tensor average the derivatives of all entries that attain it.

use crate::ir::{Graph, NodeId};
use crate::ops::{BinOp, UnOp};

/// ∂op(a)/∂a, given `y = op(a)` (the node itself, reused where it saves work).
/// `None` when the derivative is identically zero.
pub fn unary(g: &mut Graph, op: UnOp, a: NodeId, y: NodeId) -> Option<NodeId> {
    let one = g.one();
    Some(match op {
        UnOp::Neg => g.constant(-1.0),
        UnOp::Not | UnOp::Sign | UnOp::Floor | UnOp::Ceil => return None,
        UnOp::Exp => y,
        UnOp::Log => g.div(one, a),
        UnOp::Log1p => {
            let d = g.add(one, a);
            g.div(one, d)
        }
        UnOp::Expm1 => g.add(y, one),
        UnOp::Sqrt => {
            let half = g.constant(0.5);
            g.div(half, y)
        }
        UnOp::Sin => g.unary(UnOp::Cos, a),
        UnOp::Cos => {
            let s = g.unary(UnOp::Sin, a);
            g.neg(s)
        }
        UnOp::Tan => {
            let y2 = g.mul(y, y);
            g.add(one, y2)
        }
        UnOp::Asin | UnOp::Acos => {
            let a2 = g.mul(a, a);
            let r = g.sub(one, a2);
            let s = g.unary(UnOp::Sqrt, r);
            let d = g.div(one, s);
            if op == UnOp::Acos {
                g.neg(d)
            } else {
                d
            }
        }
        UnOp::Atan => {
            let a2 = g.mul(a, a);
            let r = g.add(one, a2);
            g.div(one, r)
        }
        UnOp::Sinh => g.unary(UnOp::Cosh, a),
        UnOp::Cosh => g.unary(UnOp::Sinh, a),
        UnOp::Tanh => {
            let y2 = g.mul(y, y);
            g.sub(one, y2)
        }
        UnOp::Abs => g.unary(UnOp::Sign, a),
    })
}

/// (∂op/∂a, ∂op/∂b) given `y = op(a, b)`; `None` for identically zero partials.
pub fn binary(
    g: &mut Graph,
    op: BinOp,
    a: NodeId,
    b: NodeId,
    y: NodeId,
) -> (Option<NodeId>, Option<NodeId>) {
    let one = g.one();
    match op {
        BinOp::Add => (Some(one), Some(one)),
        BinOp::Sub => (Some(one), Some(g.constant(-1.0))),
        BinOp::Mul => (Some(b), Some(a)),
        BinOp::Div => {
            let da = g.div(one, b);
            let q = g.div(y, b);
            (Some(da), Some(g.neg(q)))
        }
        BinOp::Pow => {
            // ∂a: b·a^(b−1); ∂b: y·log(a) (absent when the exponent is a constant).
            let da = match g.as_const(b) {
                Some(k) => {
                    let km1 = g.constant(k - 1.0);
                    let p = g.binary(BinOp::Pow, a, km1);
                    let kc = g.constant(k);
                    g.mul(kc, p)
                }
                None => {
                    let bm1 = g.sub(b, one);
                    let p = g.binary(BinOp::Pow, a, bm1);
                    g.mul(b, p)
                }
            };
            let db = if g.as_const(b).is_some() {
                None
            } else {
                let l = g.unary(UnOp::Log, a);
                Some(g.mul(y, l))
            };
            (Some(da), db)
        }
        BinOp::Max | BinOp::Min => {
            // The winner takes the derivative; a tie splits it evenly. The even split makes
            // the derivative exact wherever kinks cancel in a smooth function, as in the
            // stable softplus max(t, 0) + log(1 + exp(−|t|)) at t = 0.
            let (first, second) = if op == BinOp::Max {
                (BinOp::Gt, BinOp::Lt)
            } else {
                (BinOp::Lt, BinOp::Gt)
            };
            let tie = g.binary(BinOp::Eq, a, b);
            let half = g.constant(0.5);
            let half_tie = g.mul(half, tie);
            let wa = g.binary(first, a, b);
            let wb = g.binary(second, a, b);
            (Some(g.add(wa, half_tie)), Some(g.add(wb, half_tie)))
        }
        BinOp::Atan2 => {
            // atan2(a, b): ∂a = b/(a²+b²), ∂b = −a/(a²+b²)
            let a2 = g.mul(a, a);
            let b2 = g.mul(b, b);
            let r = g.add(a2, b2);
            let da = g.div(b, r);
            let q = g.div(a, r);
            (Some(da), Some(g.neg(q)))
        }
        BinOp::Lt
        | BinOp::Le
        | BinOp::Gt
        | BinOp::Ge
        | BinOp::Eq
        | BinOp::Ne
        | BinOp::And
        | BinOp::Or => (None, None),
    }
}
