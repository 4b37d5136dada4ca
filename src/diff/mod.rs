//! Phase 4 — diff. In: IR nodes and the tensors to differentiate against. Out: new IR nodes
//! (tangents, gradients) in the same graph. Symbolic and exact; no tape, no finite
//! differences.
//!
//! JVP by tangent propagation (`forward`), gradients and VJPs by transposition (`reverse`),
//! HVP as the JVP of a gradient. The local rules live in one table (`rules`).

mod forward;
mod reverse;
mod rules;

pub use forward::{jvp, jvp_nodes};
pub use reverse::{grad, grads, scatter_grads, ScatterTerm};

use crate::ir::{Graph, Node, NodeId, TensorExpr, TensorId};

/// `uᵀ J` for the tensor expression `t` with respect to `wrt`, with cotangent tensor `u` of
/// t's shape: the gradient of `Σ_k u[k]·t[k]`.
pub fn vjp(g: &mut Graph, t: &TensorExpr, wrt: TensorId, u: TensorId) -> TensorExpr {
    let f = contract(g, t, u);
    grad(g, f, wrt)
}

/// `Σ_k u[k]·t[k]` as a scalar node.
pub fn contract(g: &mut Graph, t: &TensorExpr, u: TensorId) -> NodeId {
    let idx: Vec<crate::ir::Affine> = t.vars.iter().map(|&v| crate::ir::Affine::sym(v)).collect();
    let ul = g.load(u, idx);
    let mut body = g.mul(ul, t.body);
    for &v in t.vars.iter().rev() {
        body = g.sum(v, body);
    }
    body
}

/// Does the node (transitively) load this tensor?
pub fn depends_on_tensor(g: &Graph, n: NodeId, t: TensorId) -> bool {
    g.reachable(&[n])
        .into_iter()
        .any(|m| matches!(g.node(m), Node::Load(x, _) if *x == t))
}
