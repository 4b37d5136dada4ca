//! IR → kernel: where each value is computed.
//!
//! A node is computed once per iteration of the loops binding its variables, in the
//! outermost loop where they are all bound (loop-invariant code motion falls out of this),
//! and memoized there for everything nested inside (CSE). A node containing a reduction that
//! would still be recomputed across an enclosing loop it does not depend on is *materialized*:
//! computed once into a temporary array over its variables, then loaded. This is what makes
//! `X'*(X*w - y)` cost O(mn) and not O(mn²).

use super::*;
use crate::affine::Domain;
use crate::ir::{Affine, Graph, IndexVar, Node, NodeId, TensorExpr, TensorKind};
use std::collections::{BTreeSet, HashMap};

/// A tensor to compute, with a name for printing.
#[derive(Clone, Debug)]
pub struct Output {
    pub name: String,
    pub expr: TensorExpr,
}

/// A gradient to accumulate in scatter form (see `diff::scatter_grads`): the buffer is
/// zeroed, then every term's loop nest adds into it. Terms of all gradient outputs that
/// share a loop nest are emitted together, so their common work is done once.
#[derive(Clone, Debug)]
pub struct GradOutput {
    pub name: String,
    pub shape: Vec<usize>,
    pub terms: Vec<crate::diff::ScatterTerm>,
}

struct Frame {
    var: Option<IndexVar>,
    parent: Option<usize>,
    stmts: Vec<Stmt>,
    memo: HashMap<NodeId, Operand>,
}

struct Temp {
    buf: BufId,
    /// (variable, lowest value, stride) per axis.
    axes: Vec<(IndexVar, i64, i64)>,
}

struct Scheduler<'g> {
    g: &'g Graph,
    frames: Vec<Frame>,
    buffers: Vec<Buffer>,
    tensor_bufs: HashMap<crate::ir::TensorId, BufId>,
    temps: HashMap<NodeId, Temp>,
    n_locals: u32,
    has_reduce: HashMap<NodeId, bool>,
    /// Calls to transcendental functions that several top-level loop nests use: computed
    /// once into a temporary, not once per nest. (Shared reductions are not: recomputing a
    /// short sum such as a pair distance is cheaper than the memory traffic of a temporary.)
    shared: std::collections::HashSet<NodeId>,
    /// Shared calls that are the same computation as another under a renaming of index
    /// variables (differentiation makes such copies): the node whose temporary they read and
    /// the renaming from its variables to theirs.
    alias: HashMap<NodeId, (NodeId, HashMap<IndexVar, IndexVar>)>,
    loads_cache: HashMap<NodeId, Vec<NodeId>>,
    provable_cache: HashMap<(NodeId, usize), bool>,
}

/// Unary operations that are library calls (an order of magnitude above an add).
fn costly_unary(n: &Node) -> bool {
    use crate::ops::UnOp as U;
    matches!(
        n,
        Node::Unary(
            U::Exp
                | U::Log
                | U::Log1p
                | U::Expm1
                | U::Sqrt
                | U::Sin
                | U::Cos
                | U::Tan
                | U::Asin
                | U::Acos
                | U::Atan
                | U::Sinh
                | U::Cosh
                | U::Tanh,
            _
        )
    )
}

/// Largest temporary for a node shared between loop nests (entries).
const MAX_SHARED_TEMP: usize = 1 << 22;

/// Largest call (key tokens) compared up to renaming of index variables.
const ALPHA_KEY_CAP: usize = 4096;

/// Schedules the outputs into one kernel.
pub fn schedule(g: &Graph, outputs: &[Output], name: &str) -> Result<Kernel, String> {
    schedule_with(g, outputs, &[], name)
}

/// Schedules tensor outputs, then gradient outputs (numbered after them).
pub fn schedule_with(
    g: &Graph,
    outputs: &[Output],
    grads: &[GradOutput],
    name: &str,
) -> Result<Kernel, String> {
    let mut s = Scheduler {
        g,
        frames: vec![Frame {
            var: None,
            parent: None,
            stmts: Vec::new(),
            memo: HashMap::new(),
        }],
        buffers: Vec::new(),
        tensor_bufs: HashMap::new(),
        temps: HashMap::new(),
        n_locals: 0,
        has_reduce: HashMap::new(),
        shared: Default::default(),
        alias: HashMap::new(),
        loads_cache: HashMap::new(),
        provable_cache: HashMap::new(),
    };
    let mut roots: Vec<NodeId> = outputs.iter().map(|o| o.expr.body).collect();
    roots.extend(grads.iter().flat_map(|o| o.terms.iter().map(|t| t.value)));
    for n in g.reachable(&roots) {
        let r = matches!(g.node(n), Node::Reduce(..)) || g.children(n).any(|c| s.has_reduce[&c]);
        s.has_reduce.insert(n, r);
    }
    // Nodes reached from more than one root run in more than one loop nest.
    if roots.len() > 1 {
        let mut seen: HashMap<NodeId, usize> = HashMap::new();
        let mut distinct = roots.clone();
        distinct.sort();
        distinct.dedup();
        for &r in &distinct {
            for n in g.reachable(&[r]) {
                *seen.entry(n).or_default() += 1;
            }
        }
        s.shared = seen
            .into_iter()
            .filter(|&(n, k)| {
                let node = g.node(n);
                k > 1 && costly_unary(node) && !g.free_vars(n).is_empty()
            })
            .map(|(n, _)| n)
            .collect();
    }
    s.find_aliases(&roots);
    for (k, out) in outputs.iter().enumerate() {
        let len: usize = out.expr.shape.iter().product();
        let buf = s.add_buffer(out.name.clone(), len, BufKind::Output(k));
        let mut scope = 0;
        for &v in &out.expr.vars {
            scope = s.open(scope, v);
        }
        let value = s.value(out.expr.body, scope)?;
        let offset = row_major(
            &out.expr.shape,
            &out.expr
                .vars
                .iter()
                .map(|&v| Affine::sym(v))
                .collect::<Vec<_>>(),
        );
        s.frames[scope].stmts.push(Stmt::Store {
            buf,
            offset,
            a: value,
        });
        for _ in &out.expr.vars {
            scope = s.close(scope);
        }
    }
    // Gradients: zero the buffers, then one loop nest per distinct context.
    let mut grad_bufs = Vec::new();
    for (k, out) in grads.iter().enumerate() {
        let len: usize = out.shape.iter().product();
        let buf = s.add_buffer(out.name.clone(), len, BufKind::Output(outputs.len() + k));
        s.frames[0].stmts.push(Stmt::Fill { buf, value: 0.0 });
        grad_bufs.push(buf);
    }
    // Loop nests as a trie: terms whose nests share a prefix of loops share those loops,
    // and everything computed in the shared loops (a pair's distance, say) is computed once.
    let mut trie = Trie::default();
    for (k, out) in grads.iter().enumerate() {
        for (t, term) in out.terms.iter().enumerate() {
            trie.insert(&term.vars, (k, t));
        }
    }
    s.emit_trie(&trie, 0, grads, &grad_bufs)?;
    let n_vars = g.var_count() as u32;
    let body = std::mem::take(&mut s.frames[0].stmts);
    Ok(Kernel {
        name: name.to_string(),
        buffers: s.buffers,
        n_locals: s.n_locals,
        n_vars,
        body,
    })
}

/// Accumulation terms organized by their loop nests: the terms of a node run inside the
/// loops of its path, before its children's loops.
#[derive(Default)]
struct Trie {
    terms: Vec<(usize, usize)>,
    children: Vec<(IndexVar, Trie)>,
}

impl Trie {
    fn insert(&mut self, vars: &[IndexVar], term: (usize, usize)) {
        match vars.split_first() {
            None => self.terms.push(term),
            Some((v, rest)) => {
                let pos = match self.children.iter().position(|(w, _)| w == v) {
                    Some(p) => p,
                    None => {
                        self.children.push((*v, Trie::default()));
                        self.children.len() - 1
                    }
                };
                self.children[pos].1.insert(rest, term);
            }
        }
    }
}

/// A scalar as accumulation terms over loop nests: an add-tree of sums becomes one term per
/// summand, `Σ_i Σ_j b(i, j)` the term `b` over (i, j). Emitted with a gradient's terms, the
/// function value then shares the gradient's loops.
pub fn reduction_terms(g: &Graph, f: NodeId) -> Vec<crate::diff::ScatterTerm> {
    let mut out = Vec::new();
    let mut stack = vec![(f, Vec::new())];
    while let Some((n, vars)) = stack.pop() {
        match g.node(n) {
            Node::Binary(crate::ops::BinOp::Add, a, b) => {
                stack.push((*b, vars.clone()));
                stack.push((*a, vars));
            }
            Node::Reduce(crate::ir::RedOp::Sum, v, body) => {
                let mut vs = vars;
                vs.push(*v);
                stack.push((*body, vs));
            }
            _ => out.push(crate::diff::ScatterTerm {
                tensor: crate::ir::TensorId(u32::MAX),
                idx: Vec::new(),
                value: n,
                vars,
            }),
        }
    }
    out
}

/// The row-major offset of a 1-based index.
pub(crate) fn row_major(shape: &[usize], idx: &[Affine]) -> IExpr {
    let mut off = IExpr::constant(0);
    let mut stride: i64 = 1;
    for (a, &n) in idx.iter().zip(shape).rev() {
        off = off.add(&a.offset(-1).scale(stride), 1);
        stride *= n as i64;
    }
    off
}

impl Scheduler<'_> {
    fn add_buffer(&mut self, name: String, len: usize, kind: BufKind) -> BufId {
        self.buffers.push(Buffer { name, len, kind });
        BufId((self.buffers.len() - 1) as u32)
    }

    fn local(&mut self) -> Local {
        self.n_locals += 1;
        Local(self.n_locals - 1)
    }

    fn open(&mut self, parent: usize, v: IndexVar) -> usize {
        self.frames.push(Frame {
            var: Some(v),
            parent: Some(parent),
            stmts: Vec::new(),
            memo: HashMap::new(),
        });
        self.frames.len() - 1
    }

    /// Closes a loop frame into a `Loop` statement of its parent; returns the parent.
    fn close(&mut self, f: usize) -> usize {
        let parent = self.frames[f].parent.unwrap_or(0);
        let var = self.frames[f].var;
        let stmts = std::mem::take(&mut self.frames[f].stmts);
        self.frames[f].memo.clear();
        if let Some(v) = var {
            let info = self.g.var(v);
            self.frames[parent].stmts.push(Stmt::Loop {
                var: v,
                lo: info.lo.clone(),
                hi: info.hi.clone(),
                body: stmts,
            });
        }
        parent
    }

    /// Frames from the root to `scope`.
    fn chain(&self, scope: usize) -> Vec<usize> {
        let mut c = vec![scope];
        let mut f = scope;
        while let Some(p) = self.frames[f].parent {
            c.push(p);
            f = p;
        }
        c.reverse();
        c
    }

    fn closure(&self, vars: &[IndexVar]) -> BTreeSet<IndexVar> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<IndexVar> = vars.to_vec();
        while let Some(v) = stack.pop() {
            if out.insert(v) {
                let info = self.g.var(v);
                stack.extend(Graph::bound_vars(&info.lo));
                stack.extend(Graph::bound_vars(&info.hi));
            }
        }
        out
    }

    fn tensor_buf(&mut self, t: crate::ir::TensorId) -> BufId {
        if let Some(&b) = self.tensor_bufs.get(&t) {
            return b;
        }
        let info = self.g.tensor(t);
        let len: usize = info.shape.iter().product();
        let kind = match &info.kind {
            TensorKind::Constant(values) => BufKind::Constant(Arc::from(values.clone())),
            _ => BufKind::Input(t),
        };
        let b = self.add_buffer(info.name.clone(), len, kind);
        self.tensor_bufs.insert(t, b);
        b
    }

    /// Groups the transcendental calls that are equal up to renaming of index variables;
    /// each group is computed once (into its first member's temporary).
    fn find_aliases(&mut self, roots: &[NodeId]) {
        let mut groups: HashMap<Vec<i64>, Vec<(NodeId, Vec<IndexVar>)>> = HashMap::new();
        for n in self.g.reachable(roots) {
            if !costly_unary(self.g.node(n)) || self.g.free_vars(n).is_empty() {
                continue;
            }
            if let Some((key, vars)) = crate::ir::alpha_key(self.g, n, ALPHA_KEY_CAP) {
                groups.entry(key).or_default().push((n, vars));
            }
        }
        for members in groups.into_values() {
            let Some((rep, rep_vars)) = members.iter().min_by_key(|m| m.0).cloned() else {
                continue;
            };
            if members.len() < 2 {
                continue;
            }
            for (n, vars) in members {
                self.shared.insert(n);
                if n != rep {
                    let map = rep_vars.iter().copied().zip(vars).collect();
                    self.alias.insert(n, (rep, map));
                }
            }
        }
    }

    fn value(&mut self, n: NodeId, scope: usize) -> Result<Operand, String> {
        Ok(self.place(n, scope)?.0)
    }

    /// Computes `n` for use in `scope`: in the outermost frame where its variables are bound
    /// **and its loads are provably in bounds** (an enclosing loop's non-emptiness can be what
    /// keeps an index in range, so such loads must not be hoisted out of it). Returns the
    /// operand and the position in the chain where it was placed.
    fn place(&mut self, n: NodeId, scope: usize) -> Result<(Operand, usize), String> {
        if let Node::Const(c) = self.g.node(n) {
            return Ok((Operand::Const(c.0), 0));
        }
        let chain = self.chain(scope);
        for (pos, &f) in chain.iter().enumerate().rev() {
            if let Some(&op) = self.frames[f].memo.get(&n) {
                return Ok((op, pos));
            }
        }
        let ctx = self.closure(self.g.free_vars(n));
        // The deepest frame binding a variable of the context.
        let mut lf = 0;
        for (p, &f) in chain.iter().enumerate() {
            if self.frames[f].var.is_some_and(|v| ctx.contains(&v)) {
                lf = p;
            }
        }
        let bound: BTreeSet<IndexVar> = chain.iter().filter_map(|&f| self.frames[f].var).collect();
        if let Some(v) = ctx.iter().find(|v| !bound.contains(v)) {
            return Err(format!(
                "index variable {} is used outside its loop",
                self.g.var(*v).name
            ));
        }
        let recomputed = chain[1..=lf]
            .iter()
            .any(|&f| self.frames[f].var.is_some_and(|v| !ctx.contains(&v)));
        let worth = (recomputed && self.has_reduce.get(&n).copied().unwrap_or(false))
            || (self.shared.contains(&n) && self.temp_len(&ctx) <= MAX_SHARED_TEMP);
        if worth && self.loads_safe(n, &chain[..1]) {
            let (buf, offset) = self.materialize(n, &ctx)?;
            let dst = self.local();
            let target = chain[lf];
            self.frames[target]
                .stmts
                .push(Stmt::Inst(Inst::Load { dst, buf, offset }));
            let op = Operand::Local(dst);
            self.frames[target].memo.insert(n, op);
            return Ok((op, lf));
        }
        let (op, level) = self.compute(n, &chain, lf)?;
        self.frames[chain[level]].memo.insert(n, op);
        Ok((op, level))
    }

    /// Are all loads under `n` provably in bounds inside the loops of `chain` (plus the
    /// loops of their own variables)?
    fn loads_safe(&mut self, n: NodeId, chain: &[usize]) -> bool {
        let loads = self.loads_in(n);
        loads.iter().all(|&l| self.provable(l, chain))
    }

    /// The loads reachable from `n` (cached).
    fn loads_in(&mut self, n: NodeId) -> Vec<NodeId> {
        if let Some(v) = self.loads_cache.get(&n) {
            return v.clone();
        }
        let v: Vec<NodeId> = self
            .g
            .reachable(&[n])
            .into_iter()
            .filter(|&m| matches!(self.g.node(m), Node::Load(..)))
            .collect();
        self.loads_cache.insert(n, v.clone());
        v
    }

    /// Is a load in bounds for every iteration of the loops in `chain`, inside the loops of
    /// its own variables?
    fn provable(&mut self, load: NodeId, chain: &[usize]) -> bool {
        let key = (load, *chain.last().unwrap_or(&0));
        if let Some(&b) = self.provable_cache.get(&key) {
            return b;
        }
        let Node::Load(t, idx) = self.g.node(load).clone() else {
            return true;
        };
        let shape = self.g.tensor(t).shape.clone();
        let mut dom = Domain::new();
        let mut seen: BTreeSet<IndexVar> = BTreeSet::new();
        for &f in chain {
            if let Some(v) = self.frames[f].var {
                let info = self.g.var(v);
                dom.push(v, info.lo.clone(), info.hi.clone());
                seen.insert(v);
            }
        }
        let inner: BTreeSet<IndexVar> = self
            .closure(self.g.free_vars(load))
            .into_iter()
            .filter(|v| !seen.contains(v))
            .collect();
        for v in self.topo(&inner) {
            let info = self.g.var(v);
            dom.push(v, info.lo.clone(), info.hi.clone());
        }
        dom.tighten();
        let ok = idx.iter().zip(&shape).all(|(a, &size)| {
            matches!((dom.min(a), dom.max(a)), (Some(lo), Some(hi)) if lo >= 1 && hi <= size as i64)
        });
        self.provable_cache.insert(key, ok);
        ok
    }

    /// Emits `n` at the outermost safe position ≥ `lf` of `chain`; returns where it went.
    fn compute(
        &mut self,
        n: NodeId,
        chain: &[usize],
        lf: usize,
    ) -> Result<(Operand, usize), String> {
        let scope = *chain.last().unwrap_or(&0);
        let node = self.g.node(n).clone();
        let (inst, level) = match node {
            Node::Const(c) => return Ok((Operand::Const(c.0), 0)),
            Node::Load(t, idx) => {
                let level = (lf..chain.len())
                    .find(|&p| self.provable(n, &chain[..=p]))
                    .unwrap_or(chain.len() - 1);
                let buf = self.tensor_buf(t);
                let shape = self.g.tensor(t).shape.clone();
                let offset = row_major(&shape, &idx);
                let dst = self.local();
                (Inst::Load { dst, buf, offset }, level)
            }
            Node::Index(v) => {
                let dst = self.local();
                (
                    Inst::Index {
                        dst,
                        value: IExpr::sym(v),
                    },
                    lf,
                )
            }
            Node::Unary(op, a) => {
                let (a, la) = self.place(a, scope)?;
                let dst = self.local();
                (Inst::Unary { dst, op, a }, lf.max(la))
            }
            Node::Binary(op, a, b) => {
                let (a, la) = self.place(a, scope)?;
                let (b, lb) = self.place(b, scope)?;
                let dst = self.local();
                (Inst::Binary { dst, op, a, b }, lf.max(la).max(lb))
            }
            Node::Select(c, a, b) => {
                let (c, lc) = self.place(c, scope)?;
                let (a, la) = self.place(a, scope)?;
                let (b, lb) = self.place(b, scope)?;
                let dst = self.local();
                (Inst::Select { dst, c, a, b }, lf.max(lc).max(la).max(lb))
            }
            Node::Reduce(op, v, body) => {
                // The loop goes where every load of its body is provably in bounds.
                let level = (lf..chain.len())
                    .find(|&p| self.loads_safe(n, &chain[..=p]))
                    .unwrap_or(chain.len() - 1);
                let f = chain[level];
                let acc = self.local();
                self.frames[f].stmts.push(Stmt::Init {
                    dst: acc,
                    value: op.identity(),
                });
                let r = self.open(f, v);
                let b = self.value(body, r)?;
                self.frames[r]
                    .stmts
                    .push(Stmt::Accum { dst: acc, op, a: b });
                self.close(r);
                return Ok((Operand::Local(acc), level));
            }
        };
        let dst = match &inst {
            Inst::Load { dst, .. }
            | Inst::Index { dst, .. }
            | Inst::Unary { dst, .. }
            | Inst::Binary { dst, .. }
            | Inst::Select { dst, .. } => *dst,
        };
        self.frames[chain[level]].stmts.push(Stmt::Inst(inst));
        Ok((Operand::Local(dst), level))
    }

    /// Computes `n` into a temporary over its context variables (once, at the top of the
    /// kernel) and returns the buffer and the offset to read at the current loop variables.
    /// Entries of a temporary over the variables `ctx` (their full ranges).
    fn temp_len(&self, ctx: &BTreeSet<IndexVar>) -> usize {
        let mut dom = Domain::new();
        let vars = self.topo(ctx);
        for &v in &vars {
            let info = self.g.var(v);
            dom.push(v, info.lo.clone(), info.hi.clone());
        }
        dom.tighten();
        vars.iter()
            .map(
                |&v| match (dom.min(&Affine::sym(v)), dom.max(&Affine::sym(v))) {
                    (Some(lo), Some(hi)) => (hi - lo + 1).max(0) as usize,
                    _ => usize::MAX,
                },
            )
            .fold(1usize, |a, b| a.saturating_mul(b))
    }

    fn materialize(
        &mut self,
        n: NodeId,
        ctx: &BTreeSet<IndexVar>,
    ) -> Result<(BufId, IExpr), String> {
        if let Some((rep, map)) = self.alias.get(&n).cloned() {
            // The same values as `rep`'s temporary, under our names for its variables.
            let rep_ctx = self.closure(self.g.free_vars(rep));
            let (buf, _) = self.materialize(rep, &rep_ctx)?;
            let axes: Vec<(IndexVar, i64, i64)> = self.temps[&rep]
                .axes
                .iter()
                .map(|&(v, lo, stride)| (map.get(&v).copied().unwrap_or(v), lo, stride))
                .collect();
            return Ok((buf, temp_offset(&axes)));
        }
        if !self.temps.contains_key(&n) {
            let vars = self.topo(ctx);
            let mut dom = Domain::new();
            for &v in &vars {
                let info = self.g.var(v);
                dom.push(v, info.lo.clone(), info.hi.clone());
            }
            dom.tighten();
            let mut boxes = Vec::new();
            for &v in &vars {
                let lo = dom.min(&Affine::sym(v)).ok_or("unbounded temporary")?;
                let hi = dom.max(&Affine::sym(v)).ok_or("unbounded temporary")?;
                boxes.push((v, lo, (hi - lo + 1).max(0)));
            }
            let mut axes = Vec::new();
            let mut stride: i64 = 1;
            for &(v, lo, len) in boxes.iter().rev() {
                axes.push((v, lo, stride));
                stride = stride.saturating_mul(len.max(1));
            }
            axes.reverse();
            let len = boxes.iter().map(|b| b.2 as usize).product::<usize>();
            let k = self
                .buffers
                .iter()
                .filter(|b| b.kind == BufKind::Temp)
                .count();
            let buf = self.add_buffer(format!("t{}", k + 1), len, BufKind::Temp);
            // The loop nest that fills it, at the top level.
            let mut scope = 0;
            for &v in &vars {
                scope = self.open(scope, v);
            }
            let value = self.compute_fresh(n, scope)?;
            let offset = temp_offset(&axes);
            self.frames[scope].stmts.push(Stmt::Store {
                buf,
                offset,
                a: value,
            });
            for _ in &vars {
                scope = self.close(scope);
            }
            self.temps.insert(n, Temp { buf, axes });
        }
        let t = &self.temps[&n];
        Ok((t.buf, temp_offset(&t.axes)))
    }

    /// Computes `n` in `scope` without consulting the materialization rule for `n` itself.
    fn compute_fresh(&mut self, n: NodeId, scope: usize) -> Result<Operand, String> {
        let chain = self.chain(scope);
        let lf = chain.len() - 1;
        let (op, level) = self.compute(n, &chain, lf)?;
        self.frames[chain[level]].memo.insert(n, op);
        Ok(op)
    }

    fn emit_trie(
        &mut self,
        t: &Trie,
        scope: usize,
        grads: &[GradOutput],
        bufs: &[BufId],
    ) -> Result<(), String> {
        for &(k, i) in &t.terms {
            let term = &grads[k].terms[i];
            let value = self.value(term.value, scope)?;
            let offset = row_major(&grads[k].shape, &term.idx);
            self.frames[scope].stmts.push(Stmt::AccumStore {
                buf: bufs[k],
                offset,
                a: value,
            });
        }
        for (v, child) in &t.children {
            let inner = self.open(scope, *v);
            self.emit_trie(child, inner, grads, bufs)?;
            self.close(inner);
        }
        Ok(())
    }

    /// Variables in nesting order: those a range mentions come first.
    fn topo(&self, vars: &BTreeSet<IndexVar>) -> Vec<IndexVar> {
        self.g.nesting_order(vars.iter().copied())
    }
}

fn temp_offset(axes: &[(IndexVar, i64, i64)]) -> IExpr {
    let mut off = IExpr::constant(0);
    for &(v, lo, stride) in axes {
        off = off.add(&IExpr::sym(v).offset(-lo).scale(stride), 1);
    }
    off
}
