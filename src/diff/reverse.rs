//! Reverse mode on the pointful graph: gradients as tensor expressions, never a tape.
//!
//! Every node `n` evaluated inside reductions is a tensor over its *context* C(n): its free
//! variables closed under range dependencies (plus the variables free in the whole expression,
//! which are held fixed). Its adjoint ā(n) is a tensor over the same context:
//!
//! ```text
//! ā(c) = Σ_{parents p} Σ_{E = ctx(p→c) ∖ C(c)} ā(p) · ∂p/∂c
//! ```
//!
//! The inner Σ_E runs over variables *inside* c's context (their ranges depend on C(c) only),
//! so it is an ordinary nested reduction. Only at a load `w[idx]` of the differentiated tensor
//! is the position inverted: `∂f/∂w[k] = Σ_{ctx : idx(ctx) = k} ā(ctx)`. There the equations
//! `idx = k` are solved for unit-coefficient variables (innermost first), the ranges of the
//! eliminated variables become bounds of the remaining ones where they can, and indicators
//! otherwise. Cost: each adjoint term mirrors one forward term, so with the kernel scheduler's
//! hoisting the gradient costs a small multiple of the function.

use super::forward::scale;
use super::rules;
use crate::affine::Domain;
use crate::ir::{subst_affine, Affine, Graph, IndexVar, Node, NodeId, RedOp, TensorExpr, TensorId};
use crate::ops::BinOp;
use std::collections::{BTreeSet, HashMap};

/// ∂f/∂wrt for a scalar node `f` (variables free in `f` are held fixed): a tensor of
/// wrt's shape.
pub fn grad(g: &mut Graph, f: NodeId, wrt: TensorId) -> TensorExpr {
    let shape = g.tensor(wrt).shape.clone();
    let k: Vec<IndexVar> = shape
        .iter()
        .enumerate()
        .map(|(p, &n)| {
            g.range_var(
                format!("grad:{}:{}:{p}", f.0, wrt.0),
                &format!("k{}", p + 1),
                n,
            )
        })
        .collect();
    let body = grad_body(g, f, wrt, &k);
    TensorExpr {
        shape,
        vars: k,
        body,
    }
}

/// Gradients with respect to several tensors at once (one reverse sweep).
pub fn grads(g: &mut Graph, f: NodeId, wrts: &[TensorId]) -> Vec<TensorExpr> {
    wrts.iter().map(|&w| grad(g, f, w)).collect()
}

struct Reverse<'g> {
    g: &'g mut Graph,
    ext: BTreeSet<IndexVar>,
    ctx_cache: HashMap<NodeId, BTreeSet<IndexVar>>,
}

impl Reverse<'_> {
    /// The variables of `set` plus every variable their ranges mention, transitively.
    fn closure(&self, set: impl IntoIterator<Item = IndexVar>) -> BTreeSet<IndexVar> {
        let mut out: BTreeSet<IndexVar> = BTreeSet::new();
        let mut stack: Vec<IndexVar> = set.into_iter().collect();
        while let Some(v) = stack.pop() {
            if out.insert(v) {
                let info = self.g.var(v);
                stack.extend(Graph::bound_vars(&info.lo));
                stack.extend(Graph::bound_vars(&info.hi));
            }
        }
        out
    }

    fn ctx(&mut self, n: NodeId) -> BTreeSet<IndexVar> {
        if let Some(c) = self.ctx_cache.get(&n) {
            return c.clone();
        }
        let mut c = self.closure(self.g.free_vars(n).to_vec());
        c.extend(self.ext.iter().copied());
        self.ctx_cache.insert(n, c.clone());
        c
    }

    /// Variables in nesting order (outer first).
    fn topo(&self, vars: impl IntoIterator<Item = IndexVar>) -> Vec<IndexVar> {
        self.g.nesting_order(vars)
    }

    /// Σ over `vars` (outer first) of `body`.
    fn sum_over(&mut self, vars: &[IndexVar], mut body: NodeId) -> NodeId {
        for &v in vars.iter().rev() {
            body = self.g.sum(v, body);
        }
        body
    }
}

/// One term of a gradient in scatter form: for every point of the loop nest over `vars`
/// (outer first), `∂f/∂tensor[idx] += value`. This is the transposition of one load.
#[derive(Clone, Debug)]
pub struct ScatterTerm {
    pub tensor: TensorId,
    pub idx: Vec<Affine>,
    pub value: NodeId,
    pub vars: Vec<IndexVar>,
}

/// The gradient of a closed scalar `f` with respect to several tensors, as scatter terms:
/// the kernel runs each term's loop nest once and accumulates into the adjoint buffers, so
/// work shared by several loads (both ends of a pair) is done once. `None` if `f` has free
/// index variables.
pub fn scatter_grads(g: &mut Graph, f: NodeId, wrts: &[TensorId]) -> Option<Vec<ScatterTerm>> {
    if !g.free_vars(f).is_empty() {
        return None;
    }
    let Some((mut r, leaves)) = sweep(g, f, wrts, true) else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for (leaf, a, ctx) in leaves {
        let Node::Load(t, idx) = r.g.node(leaf).clone() else {
            continue;
        };
        let ctx = ctx.unwrap_or_else(|| r.ctx(leaf));
        let vars = r.topo(ctx.iter().copied());
        out.push(ScatterTerm {
            tensor: t,
            idx: idx.to_vec(),
            value: a,
            vars,
        });
    }
    Some(out)
}

fn grad_body(g: &mut Graph, f: NodeId, wrt: TensorId, k: &[IndexVar]) -> NodeId {
    let Some((mut r, leaves)) = sweep(g, f, &[wrt], false) else {
        return g.zero();
    };
    let mut total = r.g.zero();
    for (leaf, a, _) in leaves {
        let Node::Load(_, idx) = r.g.node(leaf).clone() else {
            continue;
        };
        let lctx = r.ctx(leaf);
        let summed: Vec<IndexVar> = r.topo(lctx.difference(&r.ext).copied());
        let term = gather(&mut r, &idx, a, &summed, k);
        total = r.g.add(total, term);
    }
    total
}

/// A load of a differentiated tensor, its adjoint, and (in scatter mode) the context the
/// adjoint lives in when it is not the load's own.
type LeafAdjoint = (NodeId, NodeId, Option<BTreeSet<IndexVar>>);

/// The reverse sweep: adjoints of every node from the root down to the loads of `wrts`.
/// Returns the loads with their adjoints, or `None` when `f` does not depend on `wrts`.
///
/// In scatter mode a load's contributions are *not* summed down to the load's own context:
/// each stays in its parent's context, so both ends of a pair interaction land in the same
/// loop nest and share its work.
fn sweep<'g>(
    g: &'g mut Graph,
    f: NodeId,
    wrts: &[TensorId],
    scatter: bool,
) -> Option<(Reverse<'g>, Vec<LeafAdjoint>)> {
    let order = g.reachable(&[f]);
    let mut active: HashMap<NodeId, bool> = HashMap::new();
    for &n in &order {
        let a = match g.node(n) {
            Node::Load(t, _) => wrts.contains(t),
            _ => g.children(n).any(|c| active[&c]),
        };
        active.insert(n, a);
    }
    if !active[&f] {
        return None;
    }
    let ext0: Vec<IndexVar> = g.free_vars(f).to_vec();
    let mut r = Reverse {
        g,
        ext: BTreeSet::new(),
        ctx_cache: HashMap::new(),
    };
    r.ext = r.closure(ext0);
    let mut adj: HashMap<NodeId, NodeId> = HashMap::new();
    let one = r.g.one();
    adj.insert(f, one);
    let mut leaves: Vec<LeafAdjoint> = Vec::new();
    let mut direct: Vec<LeafAdjoint> = Vec::new();
    for &n in order.iter().rev() {
        if !active[&n] {
            continue;
        }
        let Some(&a) = adj.get(&n) else { continue };
        let ctx_n = r.ctx(n);
        let mut push =
            |r: &mut Reverse, child: NodeId, contrib: NodeId, parent_ctx: &BTreeSet<IndexVar>| {
                if scatter && matches!(r.g.node(child), Node::Load(..)) {
                    direct.push((child, contrib, Some(parent_ctx.clone())));
                    return;
                }
                let cctx = r.ctx(child);
                debug_assert!(
                    cctx.is_subset(parent_ctx),
                    "a child's context lies inside its parent's"
                );
                let extra: Vec<IndexVar> = r.topo(parent_ctx.difference(&cctx).copied());
                let term = r.sum_over(&extra, contrib);
                let prev = adj.get(&child).copied();
                let total = match prev {
                    Some(p) => r.g.add(p, term),
                    None => term,
                };
                adj.insert(child, total);
            };
        match r.g.node(n).clone() {
            Node::Load(..) => leaves.push((n, a, None)),
            Node::Const(_) | Node::Index(_) => {}
            Node::Unary(op, x) => {
                if active[&x] {
                    if let Some(p) = rules::unary(r.g, op, x, n) {
                        let c = scale(r.g, p, a);
                        push(&mut r, x, c, &ctx_n);
                    }
                }
            }
            Node::Binary(op, x, y) => {
                let (px, py) = rules::binary(r.g, op, x, y, n);
                if let (Some(p), true) = (px, active[&x]) {
                    let c = scale(r.g, p, a);
                    push(&mut r, x, c, &ctx_n);
                }
                if let (Some(p), true) = (py, active[&y]) {
                    let c = scale(r.g, p, a);
                    push(&mut r, y, c, &ctx_n);
                }
            }
            Node::Select(c, x, y) => {
                let zero = r.g.zero();
                if active[&x] {
                    let t = r.g.select(c, a, zero);
                    push(&mut r, x, t, &ctx_n);
                }
                if active[&y] {
                    let t = r.g.select(c, zero, a);
                    push(&mut r, y, t, &ctx_n);
                }
            }
            Node::Reduce(op, v, body) => {
                if active[&body] {
                    let mut pctx = ctx_n.clone();
                    pctx.insert(v);
                    let contrib = match op {
                        RedOp::Sum => a,
                        RedOp::Max | RedOp::Min => {
                            let hit = r.g.binary(BinOp::Eq, body, n);
                            let count = r.g.sum(v, hit);
                            let share = r.g.div(a, count);
                            let zero = r.g.zero();
                            r.g.select(hit, share, zero)
                        }
                    };
                    push(&mut r, body, contrib, &pctx);
                }
            }
        }
    }
    leaves.extend(direct);
    Some((r, leaves))
}

/// A linear constraint on index values.
enum Constraint {
    /// `a ≥ 0`
    NonNeg(Affine),
    /// `a = 0`
    Zero(Affine),
}

/// `Σ_{ctx : idx(ctx) = k} a(ctx)` over the `summed` variables (outer first).
fn gather(
    r: &mut Reverse,
    idx: &[Affine],
    a: NodeId,
    summed: &[IndexVar],
    k: &[IndexVar],
) -> NodeId {
    let mut remaining: Vec<IndexVar> = summed.to_vec();
    // Eliminated variables and their values, in terms of k, fixed and remaining variables.
    let mut map: Vec<(IndexVar, Affine)> = Vec::new();
    let mut eliminated: Vec<IndexVar> = Vec::new();
    let mut constraints: Vec<Constraint> = Vec::new();
    for (lhs, &kp) in idx.iter().zip(k) {
        let lhs = subst_affine(lhs, &map);
        // The innermost remaining variable with a unit coefficient.
        let pick = remaining
            .iter()
            .rev()
            .copied()
            .find(|&s| lhs.coef(s).abs() == 1);
        match pick {
            Some(s) => {
                let c = lhs.coef(s);
                let rest = lhs.add(&Affine::sym(s).scale(c), -1);
                let value = Affine::sym(kp).add(&rest, -1).scale(c);
                for (_, v) in map.iter_mut() {
                    *v = v.subst(s, &value);
                }
                map.push((s, value));
                eliminated.push(s);
                remaining.retain(|&x| x != s);
            }
            None => {
                let d = lhs.add(&Affine::sym(kp), -1);
                if d != Affine::constant(0) {
                    constraints.push(Constraint::Zero(d));
                }
            }
        }
    }
    // Equality constraints recorded before later eliminations must see the final map.
    let constraints: Vec<Constraint> = constraints
        .into_iter()
        .map(|c| match c {
            Constraint::Zero(d) => Constraint::Zero(subst_affine(&d, &map)),
            Constraint::NonNeg(d) => Constraint::NonNeg(subst_affine(&d, &map)),
        })
        .collect();
    let mut constraints = constraints;
    // The ranges of eliminated variables become constraints.
    for &s in &eliminated {
        let info = r.g.var(s).clone();
        let value = subst_affine(&Affine::sym(s), &map);
        for lo in &info.lo {
            constraints.push(Constraint::NonNeg(value.add(&subst_affine(lo, &map), -1)));
        }
        for hi in &info.hi {
            constraints.push(Constraint::NonNeg(subst_affine(hi, &map).add(&value, -1)));
        }
    }
    // New bounds of the remaining variables: their ranges after substitution.
    let mut bounds: Vec<(IndexVar, Vec<Affine>, Vec<Affine>)> = remaining
        .iter()
        .map(|&v| {
            let info = r.g.var(v);
            let lo = info.lo.iter().map(|b| subst_affine(b, &map)).collect();
            let hi = info.hi.iter().map(|b| subst_affine(b, &map)).collect();
            (v, lo, hi)
        })
        .collect();
    // The elimination is valid when every remaining range still only looks outward.
    let order_ok = bounds.iter().enumerate().all(|(p, (_, lo, hi))| {
        lo.iter()
            .chain(hi)
            .flat_map(|b| b.syms())
            .all(|s| !bounds[p..].iter().any(|(w, _, _)| *w == s))
    });
    if !order_ok {
        return gather_naive(r, idx, a, summed, k);
    }
    // Prove what can be proven; fold single-variable bounds into the ranges; keep the rest
    // as indicators.
    let mut domain = Domain::new();
    for &v in r.topo(r.ext.iter().copied()).iter() {
        let info = r.g.var(v);
        domain.push(v, info.lo.clone(), info.hi.clone());
    }
    for &kp in k {
        let info = r.g.var(kp);
        domain.push(kp, info.lo.clone(), info.hi.clone());
    }
    for (v, lo, hi) in &bounds {
        domain.push(*v, lo.clone(), hi.clone());
    }
    domain.tighten();
    let mut indicators: Vec<Constraint> = Vec::new();
    for c in constraints {
        match c {
            Constraint::Zero(d) => indicators.push(Constraint::Zero(d)),
            Constraint::NonNeg(d) => {
                if domain.min(&d).is_some_and(|m| m >= 0) {
                    continue;
                }
                let pos = bounds.iter().rposition(|(v, _, _)| d.coef(*v).abs() == 1);
                match pos {
                    Some(p) => {
                        let v = bounds[p].0;
                        let c = d.coef(v);
                        let rest = d.add(&Affine::sym(v).scale(c), -1);
                        // Only fold when the bound uses variables outside v (k, fixed, outer).
                        let outer_ok = rest
                            .syms()
                            .all(|s| !bounds[p..].iter().any(|(w, _, _)| *w == s));
                        if !outer_ok {
                            indicators.push(Constraint::NonNeg(d));
                        } else if c == 1 {
                            // v + rest ≥ 0  ⇒  v ≥ −rest
                            bounds[p].1.push(rest.scale(-1));
                        } else {
                            // −v + rest ≥ 0  ⇒  v ≤ rest
                            bounds[p].2.push(rest);
                        }
                    }
                    None => indicators.push(Constraint::NonNeg(d)),
                }
            }
        }
    }
    // Remaining variables whose ranges changed get new variables (outer first).
    let mut rename: Vec<(IndexVar, Affine)> = Vec::new();
    let mut new_vars = Vec::new();
    for (v, lo, hi) in bounds {
        let lo: Vec<Affine> = dedup(lo.iter().map(|b| subst_affine(b, &rename)).collect());
        let hi: Vec<Affine> = dedup(hi.iter().map(|b| subst_affine(b, &rename)).collect());
        let info = r.g.var(v);
        if info.lo == lo && info.hi == hi {
            new_vars.push(v);
        } else {
            let name = info.name.clone();
            let key = format!("gather:{}:{:?}:{:?}", v.0, lo, hi);
            let nv = r.g.keyed_var(key, &name, lo, hi);
            rename.push((v, Affine::sym(nv)));
            new_vars.push(nv);
        }
    }
    let mut full: Vec<(IndexVar, Affine)> = map
        .iter()
        .map(|(v, e)| (*v, subst_affine(e, &rename)))
        .collect();
    full.extend(rename.iter().cloned());
    let mut body = r.g.subst(a, &full);
    for c in indicators {
        let c = match c {
            Constraint::Zero(d) => Constraint::Zero(subst_affine(&d, &rename)),
            Constraint::NonNeg(d) => Constraint::NonNeg(subst_affine(&d, &rename)),
        };
        body = guard(r, body, c);
    }
    r.sum_over(&new_vars, body)
}

/// The gather without elimination: every context point, with an indicator per axis. Always
/// correct; used when elimination would need non-unit coefficients in an unusual order.
fn gather_naive(
    r: &mut Reverse,
    idx: &[Affine],
    a: NodeId,
    summed: &[IndexVar],
    k: &[IndexVar],
) -> NodeId {
    let zero = r.g.zero();
    let mut body = a;
    for (lhs, &kp) in idx.iter().zip(k) {
        let d = lhs.add(&Affine::sym(kp), -1);
        let dv = r.g.affine_value(&d);
        let cond = r.g.binary(BinOp::Eq, dv, zero);
        body = r.g.select(cond, body, zero);
    }
    r.sum_over(summed, body)
}

/// `body` where the constraint holds, 0 elsewhere.
///
/// When the body loads at positions that involve the constraint's variables, a select would
/// still *execute* those loads where the constraint fails (possibly out of bounds). Such
/// bodies are instead re-bound under single-iteration loops `t ∈ [u..u]` whose range is empty
/// when the constraint fails, so the loads run only where they are valid (and the kernel
/// verifier can prove it).
fn guard(r: &mut Reverse, body: NodeId, c: Constraint) -> NodeId {
    let zero = r.g.zero();
    let (d, is_eq) = match &c {
        Constraint::Zero(d) => (d.clone(), true),
        Constraint::NonNeg(d) => (d.clone(), false),
    };
    if let Some(k) = d.as_const() {
        let holds = if is_eq { k == 0 } else { k >= 0 };
        return if holds { body } else { zero };
    }
    let vars: Vec<IndexVar> = r.topo(d.syms());
    let loads_involved =
        r.g.reachable(&[body])
            .into_iter()
            .any(|n| match r.g.node(n) {
                Node::Load(_, idx) => idx.iter().any(|a| a.syms().any(|s| vars.contains(&s))),
                _ => false,
            });
    // The variable carrying the constraint: a unit coefficient, innermost preferred.
    let carrier = vars.iter().rev().copied().find(|&v| d.coef(v).abs() == 1);
    let (true, Some(carrier)) = (loads_involved, carrier) else {
        let dv = r.g.affine_value(&d);
        let op = if is_eq { BinOp::Eq } else { BinOp::Ge };
        let cond = r.g.binary(op, dv, zero);
        return r.g.select(cond, body, zero);
    };
    // Rebind every variable of the constraint; the carrier last, with the constraint.
    let mut order: Vec<IndexVar> = vars.iter().copied().filter(|&v| v != carrier).collect();
    order.push(carrier);
    let mut map: Vec<(IndexVar, Affine)> = Vec::new();
    let mut guards = Vec::new();
    for (p, &u) in order.iter().enumerate() {
        let mut lo = vec![Affine::sym(u)];
        let mut hi = vec![Affine::sym(u)];
        if p + 1 == order.len() {
            let dt = subst_affine(&d, &map);
            let c = dt.coef(u);
            let rest = dt.add(&Affine::sym(u).scale(c), -1);
            // c·u + rest (≥ or =) 0 with c = ±1.
            let bound = rest.scale(-c);
            if is_eq {
                lo.push(bound.clone());
                hi.push(bound);
            } else if c == 1 {
                lo.push(bound);
            } else {
                hi.push(bound);
            }
        }
        let key = format!("guard:{}:{:?}:{is_eq}:{:?}:{:?}", u.0, d, lo, hi);
        let t = r.g.keyed_var(key, "g", lo, hi);
        map.push((u, Affine::sym(t)));
        guards.push(t);
    }
    let guarded = r.g.subst(body, &map);
    r.sum_over(&guards, guarded)
}

fn dedup(mut v: Vec<Affine>) -> Vec<Affine> {
    let mut out: Vec<Affine> = Vec::new();
    for a in v.drain(..) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}
