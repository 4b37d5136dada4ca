//! Simplifying constructors. Every node goes through these, so the graph is always folded:
//! constants are evaluated, identities applied, commutative operands put in a canonical order
//! (CSE then finds `a*b` and `b*a` to be one node).
//!
//! Identities are exact for finite operands; two are not bit-exact and are documented:
//! `x*0 → 0` and `x - x → 0` drop NaN/∞ propagation and the sign of zero, and
//! `sqrt(a)^2 → a` holds for a ≥ 0 (elsewhere the original is NaN).

use super::graph::*;
use crate::ops::{BinOp, UnOp};

impl Graph {
    pub fn constant(&mut self, v: f64) -> NodeId {
        self.intern(Node::Const(F64(v)))
    }

    pub fn zero(&mut self) -> NodeId {
        self.constant(0.0)
    }

    pub fn one(&mut self) -> NodeId {
        self.constant(1.0)
    }

    pub fn load(&mut self, t: TensorId, idx: Vec<Affine>) -> NodeId {
        // A load of a constant tensor at a constant position is the constant.
        if let TensorKind::Constant(values) = &self.tensor(t).kind {
            if let Some(off) = const_offset(&self.tensor(t).shape, &idx) {
                let v = values[off];
                return self.constant(v);
            }
        }
        self.intern(Node::Load(t, idx.into_boxed_slice()))
    }

    pub fn index_value(&mut self, v: IndexVar) -> NodeId {
        self.intern(Node::Index(v))
    }

    /// The value of an affine index form, as a float expression.
    pub fn affine_value(&mut self, a: &Affine) -> NodeId {
        let mut acc = self.constant(a.c as f64);
        for &(v, k) in &a.terms {
            let iv = self.index_value(v);
            let kv = self.constant(k as f64);
            let term = self.binary(BinOp::Mul, kv, iv);
            acc = self.binary(BinOp::Add, acc, term);
        }
        acc
    }

    pub fn unary(&mut self, op: UnOp, a: NodeId) -> NodeId {
        if let Some(x) = self.as_const(a) {
            return self.constant(op.eval(x));
        }
        match (op, self.node(a).clone()) {
            (UnOp::Neg, Node::Unary(UnOp::Neg, x)) => return x,
            (UnOp::Not, Node::Unary(UnOp::Not, x)) if self.is_boolean(x) => return x,
            (UnOp::Abs, Node::Unary(UnOp::Abs, _)) => return a,
            (UnOp::Sign | UnOp::Floor | UnOp::Ceil, _) if self.is_boolean(a) => return a,
            _ => {}
        }
        self.intern(Node::Unary(op, a))
    }

    pub fn neg(&mut self, a: NodeId) -> NodeId {
        self.unary(UnOp::Neg, a)
    }

    /// Is the node's value always 0 or 1?
    pub fn is_boolean(&self, a: NodeId) -> bool {
        match self.node(a) {
            Node::Const(F64(v)) => *v == 0.0 || *v == 1.0,
            Node::Unary(op, _) => op.is_boolean(),
            Node::Binary(op, _, _) => op.is_boolean(),
            _ => false,
        }
    }

    pub fn binary(&mut self, op: BinOp, a: NodeId, b: NodeId) -> NodeId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb) {
            return self.constant(op.eval(x, y));
        }
        match op {
            BinOp::Add => {
                if ca == Some(0.0) {
                    return b;
                }
                if cb == Some(0.0) {
                    return a;
                }
                if let Node::Unary(UnOp::Neg, y) = *self.node(b) {
                    return self.binary(BinOp::Sub, a, y);
                }
                if let Node::Unary(UnOp::Neg, x) = *self.node(a) {
                    return self.binary(BinOp::Sub, b, x);
                }
                // a + a = 2a exactly.
                if a == b {
                    let two = self.constant(2.0);
                    return self.binary(BinOp::Mul, two, a);
                }
            }
            BinOp::Sub => {
                if cb == Some(0.0) {
                    return a;
                }
                if ca == Some(0.0) {
                    return self.neg(b);
                }
                if a == b {
                    return self.zero();
                }
                if let Node::Unary(UnOp::Neg, y) = *self.node(b) {
                    return self.binary(BinOp::Add, a, y);
                }
            }
            BinOp::Mul => {
                if ca == Some(0.0) || cb == Some(0.0) {
                    return self.zero();
                }
                if ca == Some(1.0) {
                    return b;
                }
                if cb == Some(1.0) {
                    return a;
                }
                if ca == Some(-1.0) {
                    return self.neg(b);
                }
                if cb == Some(-1.0) {
                    return self.neg(a);
                }
                // c1*(c2*x) = (c1*c2)*x exactly when one factor is a power of two.
                if let Some(c1) = ca.or(cb) {
                    let other = if ca.is_some() { b } else { a };
                    if let Node::Binary(BinOp::Mul, x, y) = *self.node(other) {
                        if let Some(c2) = self.as_const(x) {
                            if is_pow2(c1) || is_pow2(c2) {
                                let c = self.constant(c1 * c2);
                                return self.binary(BinOp::Mul, c, y);
                            }
                        }
                    }
                }
                // (-x)*(-y) = x*y and (-x)*y = -(x*y): exact, and keeps negations outside.
                match (self.node(a).clone(), self.node(b).clone()) {
                    (Node::Unary(UnOp::Neg, x), Node::Unary(UnOp::Neg, y)) => {
                        return self.binary(BinOp::Mul, x, y)
                    }
                    (Node::Unary(UnOp::Neg, x), _) => {
                        let p = self.binary(BinOp::Mul, x, b);
                        return self.neg(p);
                    }
                    (_, Node::Unary(UnOp::Neg, y)) => {
                        let p = self.binary(BinOp::Mul, a, y);
                        return self.neg(p);
                    }
                    _ => {}
                }
            }
            BinOp::Div => {
                if ca == Some(0.0) {
                    return self.zero();
                }
                if cb == Some(1.0) {
                    return a;
                }
                if cb == Some(-1.0) {
                    return self.neg(a);
                }
            }
            BinOp::Pow => {
                if cb == Some(1.0) {
                    return a;
                }
                if cb == Some(0.0) {
                    return self.one();
                }
                if cb == Some(2.0) {
                    if let Node::Unary(UnOp::Sqrt, x) = *self.node(a) {
                        return x;
                    }
                }
                if cb == Some(0.5) {
                    return self.unary(UnOp::Sqrt, a);
                }
            }
            BinOp::And => {
                if ca == Some(0.0) || cb == Some(0.0) {
                    return self.zero();
                }
                if ca.is_some_and(|x| x != 0.0) && self.is_boolean(b) {
                    return b;
                }
                if cb.is_some_and(|x| x != 0.0) && self.is_boolean(a) {
                    return a;
                }
            }
            BinOp::Or => {
                if ca.is_some_and(|x| x != 0.0) || cb.is_some_and(|x| x != 0.0) {
                    return self.one();
                }
                if ca == Some(0.0) && self.is_boolean(b) {
                    return b;
                }
                if cb == Some(0.0) && self.is_boolean(a) {
                    return a;
                }
            }
            BinOp::Max | BinOp::Min if a == b => return a,
            _ => {}
        }
        let (a, b) = if op.is_commutative() && b < a {
            (b, a)
        } else {
            (a, b)
        };
        self.intern(Node::Binary(op, a, b))
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinOp::Add, a, b)
    }

    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinOp::Sub, a, b)
    }

    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinOp::Mul, a, b)
    }

    pub fn div(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinOp::Div, a, b)
    }

    pub fn select(&mut self, c: NodeId, a: NodeId, b: NodeId) -> NodeId {
        if a == b {
            return a;
        }
        if let Some(x) = self.as_const(c) {
            return if x != 0.0 { a } else { b };
        }
        // select(c, 1, 0) is c itself when c is 0/1-valued.
        if self.as_const(a) == Some(1.0) && self.as_const(b) == Some(0.0) && self.is_boolean(c) {
            return c;
        }
        self.intern(Node::Select(c, a, b))
    }

    /// A reduction over `v`'s range. Sums of 0 vanish; a constant summand over a constant
    /// range is multiplied by the count.
    pub fn reduce(&mut self, op: RedOp, v: IndexVar, body: NodeId) -> NodeId {
        let count = self.const_count(v);
        if count == Some(0) {
            return self.constant(op.identity());
        }
        match op {
            RedOp::Sum => {
                if let Some(c) = self.as_const(body) {
                    if c == 0.0 {
                        return body;
                    }
                    if let Some(n) = count {
                        return self.constant(c * n as f64);
                    }
                }
            }
            RedOp::Max | RedOp::Min => {
                if !self.depends_on(body, v) && count.is_some_and(|n| n > 0) {
                    return body;
                }
            }
        }
        self.intern(Node::Reduce(op, v, body))
    }

    pub fn sum(&mut self, v: IndexVar, body: NodeId) -> NodeId {
        self.reduce(RedOp::Sum, v, body)
    }

    /// The number of values of `v` when its range is constant.
    pub fn const_count(&self, v: IndexVar) -> Option<i64> {
        let info = self.var(v);
        let lo = info
            .lo
            .iter()
            .map(|a| a.as_const())
            .collect::<Option<Vec<i64>>>()?;
        let hi = info
            .hi
            .iter()
            .map(|a| a.as_const())
            .collect::<Option<Vec<i64>>>()?;
        let lo = lo.into_iter().max()?;
        let hi = hi.into_iter().min()?;
        Some((hi - lo + 1).max(0))
    }

    /// A variable ranging over `1..=n`.
    pub fn range_var(&mut self, key: String, name: &str, n: usize) -> IndexVar {
        self.keyed_var(
            key,
            name,
            vec![Affine::constant(1)],
            vec![Affine::constant(n as i64)],
        )
    }
}

/// ±2^k: multiplying by it is exact (barring overflow and underflow).
fn is_pow2(c: f64) -> bool {
    let a = c.abs();
    a.is_normal() && a.to_bits() & ((1u64 << 52) - 1) == 0
}

/// The row-major offset of a constant index, if every position is constant and in range.
pub fn const_offset(shape: &[usize], idx: &[Affine]) -> Option<usize> {
    if shape.len() != idx.len() {
        return None;
    }
    let mut off = 0usize;
    for (a, &n) in idx.iter().zip(shape) {
        let k = a.as_const()?;
        if k < 1 || k as usize > n {
            return None;
        }
        off = off * n + (k as usize - 1);
    }
    Some(off)
}
