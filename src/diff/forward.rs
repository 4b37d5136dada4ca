//! Forward mode: tangent propagation. The tangent of a node has the node's free variables;
//! a reduction's tangent is the reduction of the body's tangent, so no index bookkeeping is
//! needed in this direction.

use super::rules;
use crate::ir::{Graph, Node, NodeId, RedOp, TensorExpr, TensorId};
use crate::ops::BinOp;
use std::collections::HashMap;

/// `partial · x`, written as a select when the partial is 0/1-valued (no 0·∞ = NaN).
pub(crate) fn scale(g: &mut Graph, partial: NodeId, x: NodeId) -> NodeId {
    if g.is_boolean(partial) && g.as_const(partial).is_none() {
        let zero = g.zero();
        g.select(partial, x, zero)
    } else {
        g.mul(partial, x)
    }
}

/// The directional derivative of `roots` when each tensor `wrt` moves along `dir`:
/// `Σ ∂root/∂wrt · dir`. Returns one tangent per root.
pub fn jvp_nodes(g: &mut Graph, roots: &[NodeId], seeds: &[(TensorId, TensorId)]) -> Vec<NodeId> {
    let order = g.reachable(roots);
    let mut tan: HashMap<NodeId, NodeId> = HashMap::new();
    let zero = g.zero();
    for &n in &order {
        let t = match g.node(n).clone() {
            Node::Const(_) | Node::Index(_) => zero,
            Node::Load(t, idx) => match seeds.iter().find(|(w, _)| *w == t) {
                Some(&(_, d)) => g.load(d, idx.to_vec()),
                None => zero,
            },
            Node::Unary(op, a) => {
                let ta = tan[&a];
                if ta == zero {
                    zero
                } else {
                    match rules::unary(g, op, a, n) {
                        Some(p) => scale(g, p, ta),
                        None => zero,
                    }
                }
            }
            Node::Binary(op, a, b) => {
                let (ta, tb) = (tan[&a], tan[&b]);
                if ta == zero && tb == zero {
                    zero
                } else {
                    let (pa, pb) = rules::binary(g, op, a, b, n);
                    let mut acc = zero;
                    if let (Some(p), true) = (pa, ta != zero) {
                        let term = scale(g, p, ta);
                        acc = g.add(acc, term);
                    }
                    if let (Some(p), true) = (pb, tb != zero) {
                        let term = scale(g, p, tb);
                        acc = g.add(acc, term);
                    }
                    acc
                }
            }
            Node::Select(c, a, b) => {
                let (ta, tb) = (tan[&a], tan[&b]);
                g.select(c, ta, tb)
            }
            Node::Reduce(op, v, body) => {
                let tb = tan[&body];
                if tb == zero {
                    zero
                } else {
                    match op {
                        RedOp::Sum => g.sum(v, tb),
                        RedOp::Max | RedOp::Min => {
                            // Average of the tangents of the entries attaining the extremum.
                            let hit = g.binary(BinOp::Eq, body, n);
                            let z = g.zero();
                            let picked = g.select(hit, tb, z);
                            let num = g.sum(v, picked);
                            let den = g.sum(v, hit);
                            g.div(num, den)
                        }
                    }
                }
            }
        };
        tan.insert(n, t);
    }
    roots.iter().map(|r| tan[r]).collect()
}

/// The JVP of a tensor expression: same index variables, tangent body.
pub fn jvp(g: &mut Graph, t: &TensorExpr, seeds: &[(TensorId, TensorId)]) -> TensorExpr {
    let body = jvp_nodes(g, &[t.body], seeds)[0];
    TensorExpr {
        shape: t.shape.clone(),
        vars: t.vars.clone(),
        body,
    }
}
