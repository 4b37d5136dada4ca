//! Equality of nodes up to a renaming of index variables.
//!
//! Differentiation introduces fresh index variables: the gradient of `Σ_s Σ_i a_i tanh(z_si)`
//! with respect to `W` contains `tanh(z_{s,k1})` where the forward pass has `tanh(z_{s,i})`.
//! Hash-consing sees two nodes; they are one computation over variables with the same ranges.
//! [`alpha_key`] gives both the same key, and the variables in the order the key numbers
//! them, so the kernel scheduler can compute such a node once into a temporary and read it
//! back under the other names.

use super::graph::{Affine, Bound, Graph, Node, NodeId};
use super::IndexVar;
use crate::ops::BinOp;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// A key of `n` modulo renaming of index variables (bound ones included), with the variables
/// in the order the key numbers them; `None` when the key would exceed `cap` tokens.
///
/// Equal keys mean equal values: the keys are the same token sequence exactly when the two
/// nodes have the same structure under the bijection between their variable lists, with the
/// same ranges (ranges are part of the key). Operands of commutative operations are put in an
/// order that does not depend on variable identity, so `x*w` and `w*x` agree; where that
/// order cannot be decided two equal nodes may get different keys, which only costs sharing.
pub fn alpha_key(g: &Graph, n: NodeId, cap: usize) -> Option<(Vec<i64>, Vec<IndexVar>)> {
    let mut k = Keyer {
        g,
        map: HashMap::new(),
        order: Vec::new(),
        out: Vec::new(),
        cap,
        shapes: HashMap::new(),
    };
    k.node(n)?;
    Some((k.out, k.order))
}

/// Operations whose operands can be exchanged without changing the value (bit for bit).
fn commutative(op: BinOp) -> bool {
    matches!(op, BinOp::Add | BinOp::Mul)
}

struct Keyer<'g> {
    g: &'g Graph,
    map: HashMap<IndexVar, i64>,
    order: Vec<IndexVar>,
    out: Vec<i64>,
    cap: usize,
    shapes: HashMap<NodeId, u64>,
}

impl Keyer<'_> {
    fn push(&mut self, t: i64) -> Option<()> {
        if self.out.len() >= self.cap {
            return None;
        }
        self.out.push(t);
        Some(())
    }

    fn var(&mut self, v: IndexVar) -> Option<()> {
        if let Some(&k) = self.map.get(&v) {
            self.push(0)?;
            return self.push(k);
        }
        let k = self.order.len() as i64;
        self.map.insert(v, k);
        self.order.push(v);
        self.push(1)?;
        let info = self.g.var(v);
        let (lo, hi) = (info.lo.clone(), info.hi.clone());
        self.bound(&lo)?;
        self.bound(&hi)
    }

    fn bound(&mut self, b: &Bound) -> Option<()> {
        self.push(b.len() as i64)?;
        b.iter().try_for_each(|a| self.affine(a))
    }

    fn affine(&mut self, a: &Affine) -> Option<()> {
        self.push(a.c)?;
        self.push(a.terms.len() as i64)?;
        for &(v, c) in &a.terms {
            self.var(v)?;
            self.push(c)?;
        }
        Some(())
    }

    fn node(&mut self, n: NodeId) -> Option<()> {
        match self.g.node(n).clone() {
            Node::Const(c) => {
                self.push(10)?;
                self.push(c.0.to_bits() as i64)
            }
            Node::Load(t, idx) => {
                self.push(11)?;
                self.push(t.index() as i64)?;
                self.push(idx.len() as i64)?;
                idx.iter().try_for_each(|a| self.affine(a))
            }
            Node::Index(v) => {
                self.push(12)?;
                self.var(v)
            }
            Node::Unary(op, a) => {
                self.push(13)?;
                self.push(op as i64)?;
                self.node(a)
            }
            Node::Binary(op, a, b) => {
                self.push(14)?;
                self.push(op as i64)?;
                let (a, b) = if commutative(op) && self.shape(b) < self.shape(a) {
                    (b, a)
                } else {
                    (a, b)
                };
                self.node(a)?;
                self.node(b)
            }
            Node::Select(c, a, b) => {
                self.push(15)?;
                self.node(c)?;
                self.node(a)?;
                self.node(b)
            }
            Node::Reduce(op, v, body) => {
                self.push(16)?;
                self.push(op as i64)?;
                self.var(v)?;
                self.node(body)
            }
        }
    }

    /// A hash of the node's structure that ignores which variables it uses (their ranges'
    /// constants are kept): equal for nodes equal up to renaming.
    fn shape(&mut self, n: NodeId) -> u64 {
        if let Some(&h) = self.shapes.get(&n) {
            return h;
        }
        let mut s = std::collections::hash_map::DefaultHasher::new();
        let affine = |a: &Affine, s: &mut std::collections::hash_map::DefaultHasher| {
            a.c.hash(s);
            for (_, c) in &a.terms {
                c.hash(s);
            }
        };
        match self.g.node(n).clone() {
            Node::Const(c) => (0u8, c.0.to_bits()).hash(&mut s),
            Node::Load(t, idx) => {
                (1u8, t.index()).hash(&mut s);
                idx.iter().for_each(|a| affine(a, &mut s));
            }
            Node::Index(_) => 2u8.hash(&mut s),
            Node::Unary(op, a) => (3u8, op as i64, self.shape(a)).hash(&mut s),
            Node::Binary(op, a, b) => {
                let (x, y) = (self.shape(a), self.shape(b));
                let (x, y) = if commutative(op) {
                    (x.min(y), x.max(y))
                } else {
                    (x, y)
                };
                (4u8, op as i64, x, y).hash(&mut s)
            }
            Node::Select(c, a, b) => {
                (5u8, self.shape(c), self.shape(a), self.shape(b)).hash(&mut s)
            }
            Node::Reduce(op, _, body) => (6u8, op as i64, self.shape(body)).hash(&mut s),
        }
        let h = s.finish();
        self.shapes.insert(n, h);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::{TensorInfo, TensorKind};
    use crate::ops::UnOp;

    fn setup() -> (Graph, crate::ir::TensorId, crate::ir::TensorId) {
        let mut g = Graph::new();
        let w = g.add_tensor(TensorInfo {
            name: "W".into(),
            shape: vec![4, 3],
            kind: TensorKind::Var(0),
        });
        let x = g.add_tensor(TensorInfo {
            name: "X".into(),
            shape: vec![5, 3],
            kind: TensorKind::Param(0),
        });
        (g, w, x)
    }

    fn range(g: &mut Graph, name: &str, hi: i64) -> IndexVar {
        g.fresh_var(name, vec![Affine::constant(1)], vec![Affine::constant(hi)])
    }

    /// tanh(Σ_k W[i, k] X[s, k]), with the product's operands in either order.
    fn hidden(
        g: &mut Graph,
        w: crate::ir::TensorId,
        x: crate::ir::TensorId,
        s: IndexVar,
        i: IndexVar,
        k: IndexVar,
        swap: bool,
    ) -> NodeId {
        let wl = g.intern(Node::Load(w, vec![Affine::sym(i), Affine::sym(k)].into()));
        let xl = g.intern(Node::Load(x, vec![Affine::sym(s), Affine::sym(k)].into()));
        let (a, b) = if swap { (xl, wl) } else { (wl, xl) };
        let p = g.intern(Node::Binary(BinOp::Mul, a, b));
        let r = g.intern(Node::Reduce(crate::ir::RedOp::Sum, k, p));
        g.intern(Node::Unary(UnOp::Tanh, r))
    }

    #[test]
    fn renamed_nodes_share_a_key_and_map_their_variables() {
        let (mut g, w, x) = setup();
        let (s, i, k) = (
            range(&mut g, "s", 5),
            range(&mut g, "i", 4),
            range(&mut g, "k", 3),
        );
        let (s2, i2, k2) = (
            range(&mut g, "s2", 5),
            range(&mut g, "i2", 4),
            range(&mut g, "k2", 3),
        );
        let a = hidden(&mut g, w, x, s, i, k, false);
        let b = hidden(&mut g, w, x, s2, i2, k2, true);
        assert_ne!(a, b);
        let (ka, va) = alpha_key(&g, a, 1000).unwrap();
        let (kb, vb) = alpha_key(&g, b, 1000).unwrap();
        assert_eq!(ka, kb);
        // The bijection pairs each variable with its counterpart.
        let pairs: Vec<_> = va.iter().zip(&vb).map(|(p, q)| (*p, *q)).collect();
        assert!(pairs.contains(&(s, s2)) && pairs.contains(&(i, i2)) && pairs.contains(&(k, k2)));
    }

    #[test]
    fn different_ranges_or_roles_give_different_keys() {
        let (mut g, w, x) = setup();
        let (s, i, k) = (
            range(&mut g, "s", 5),
            range(&mut g, "i", 4),
            range(&mut g, "k", 3),
        );
        let short = range(&mut g, "k_short", 2);
        let a = hidden(&mut g, w, x, s, i, k, false);
        let b = hidden(&mut g, w, x, s, i, short, false);
        assert_ne!(
            alpha_key(&g, a, 1000).unwrap().0,
            alpha_key(&g, b, 1000).unwrap().0
        );
        // W[i, k]·X[s, k] against W[s, k]·X[i, k]: the same variables in swapped roles.
        let (s5, i5) = (range(&mut g, "s5", 4), range(&mut g, "i5", 4));
        let c = hidden(&mut g, w, x, s5, i5, k, false);
        let d = hidden(&mut g, w, x, i5, s5, k, false);
        let (kc, vc) = alpha_key(&g, c, 1000).unwrap();
        let (kd, vd) = alpha_key(&g, d, 1000).unwrap();
        // The same computation with i5 and s5 exchanged: equal keys, and the bijection
        // exchanges them.
        assert_eq!(kc, kd);
        let pairs: Vec<_> = vc.iter().zip(&vd).map(|(p, q)| (*p, *q)).collect();
        assert!(pairs.contains(&(i5, s5)) && pairs.contains(&(s5, i5)));
        assert!(alpha_key(&g, c, 3).is_none());
    }
}
