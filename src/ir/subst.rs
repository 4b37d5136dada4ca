//! Substitution of index variables by affine forms: how a tensor expression is read at an
//! index, and how diff fixes variables to a position.

use super::graph::*;
use std::collections::HashMap;

impl Graph {
    /// `n` with each variable of `map` replaced by its affine form. Reductions whose range
    /// changes, or whose variable would be captured, get a renamed variable.
    pub fn subst(&mut self, n: NodeId, map: &[(IndexVar, Affine)]) -> NodeId {
        if map.is_empty() {
            return n;
        }
        let mut s = Substituter {
            maps: vec![map.to_vec()],
            memo: HashMap::new(),
        };
        s.run(self, n, 0)
    }

    /// A bound with the variables of `map` replaced.
    pub fn subst_bound(b: &Bound, map: &[(IndexVar, Affine)]) -> Bound {
        b.iter().map(|a| subst_affine(a, map)).collect()
    }

    /// Reads a tensor expression at an index.
    pub fn at(&mut self, t: &TensorExpr, idx: &[Affine]) -> NodeId {
        let map: Vec<(IndexVar, Affine)> =
            t.vars.iter().copied().zip(idx.iter().cloned()).collect();
        self.subst(t.body, &map)
    }
}

pub fn subst_affine(a: &Affine, map: &[(IndexVar, Affine)]) -> Affine {
    a.map_syms(|s| match map.iter().find(|(v, _)| *v == s) {
        Some((_, r)) => r.clone(),
        None => Affine::sym(s),
    })
}

struct Substituter {
    maps: Vec<Vec<(IndexVar, Affine)>>,
    memo: HashMap<(NodeId, usize), NodeId>,
}

impl Substituter {
    fn run(&mut self, g: &mut Graph, n: NodeId, m: usize) -> NodeId {
        // Nothing to do when the node mentions none of the mapped variables.
        if !g
            .free_vars(n)
            .iter()
            .any(|v| self.maps[m].iter().any(|(w, _)| w == v))
        {
            return n;
        }
        if let Some(&r) = self.memo.get(&(n, m)) {
            return r;
        }
        let r = match g.node(n).clone() {
            Node::Const(_) => n,
            Node::Load(t, idx) => {
                let idx: Vec<Affine> = idx.iter().map(|a| subst_affine(a, &self.maps[m])).collect();
                g.load(t, idx)
            }
            Node::Index(v) => match self.maps[m].iter().find(|(w, _)| *w == v) {
                Some((_, a)) => {
                    let a = a.clone();
                    g.affine_value(&a)
                }
                None => n,
            },
            Node::Unary(op, a) => {
                let a = self.run(g, a, m);
                g.unary(op, a)
            }
            Node::Binary(op, a, b) => {
                let a = self.run(g, a, m);
                let b = self.run(g, b, m);
                g.binary(op, a, b)
            }
            Node::Select(c, a, b) => {
                let c = self.run(g, c, m);
                let a = self.run(g, a, m);
                let b = self.run(g, b, m);
                g.select(c, a, b)
            }
            Node::Reduce(op, v, body) => {
                let info = g.var(v).clone();
                let map = &self.maps[m];
                let range_changes = Graph::bound_vars(&info.lo)
                    .chain(Graph::bound_vars(&info.hi))
                    .any(|x| map.iter().any(|(w, _)| *w == x));
                let captured = map.iter().any(|(_, a)| a.mentions(v));
                // The variable itself is bound here: drop it from the map.
                let inner: Vec<(IndexVar, Affine)> =
                    map.iter().filter(|(w, _)| *w != v).cloned().collect();
                if range_changes || captured {
                    let lo = Graph::subst_bound(&info.lo, &inner);
                    let hi = Graph::subst_bound(&info.hi, &inner);
                    let mut nv = g.keyed_var(
                        format!("rename:{}", v.0),
                        &info.name,
                        lo.clone(),
                        hi.clone(),
                    );
                    if nv == v || inner.iter().any(|(_, a)| a.mentions(nv)) {
                        nv = g.fresh_var(&info.name, lo, hi);
                    }
                    let mut m2 = inner;
                    m2.push((v, Affine::sym(nv)));
                    let k = self.push_map(m2);
                    let body = self.run(g, body, k);
                    g.reduce(op, nv, body)
                } else {
                    let k = if inner.len() == map.len() {
                        m
                    } else {
                        self.push_map(inner)
                    };
                    let body = self.run(g, body, k);
                    g.reduce(op, v, body)
                }
            }
        };
        self.memo.insert((n, m), r);
        r
    }

    fn push_map(&mut self, map: Vec<(IndexVar, Affine)>) -> usize {
        if let Some(k) = self.maps.iter().position(|x| *x == map) {
            return k;
        }
        self.maps.push(map);
        self.maps.len() - 1
    }
}
