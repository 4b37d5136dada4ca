//! Typed model → IR. Each tensor expression is lowered *at a symbolic index*: `X*w` read at
//! `i` becomes `Σ_j X[i,j]·w[j]`; matrix syntax, slices, transposes and comprehensions all
//! disappear into index arithmetic.
//!
//! Binders get **deterministic** variables (keyed by the source binder and the range), so
//! lowering the same expression twice at the same index builds the very same nodes and
//! hash-consing shares them.

use super::graph::*;
use crate::check::{self, IndexSym, Model, ReduceOp, TExpr, TIndex, TKind, Wrt};
use crate::diag::{Code, Diagnostic};
use crate::ops::BinOp;
use std::collections::HashMap;

/// The IR of a model: the graph plus the tensor ids of its vars, params and multipliers.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub graph: Graph,
    pub vars: Vec<TensorId>,
    pub params: Vec<TensorId>,
    pub duals: Vec<TensorId>,
}

impl Program {
    /// Registers every var, param and constraint multiplier of the model as a tensor.
    pub fn new(model: &Model) -> Program {
        let mut p = Program::default();
        for (k, v) in model.vars.iter().enumerate() {
            let t = p.graph.add_tensor(TensorInfo {
                name: v.name.clone(),
                shape: v.shape.clone(),
                kind: TensorKind::Var(k as u32),
            });
            p.vars.push(t);
        }
        for (k, v) in model.params.iter().enumerate() {
            let t = p.graph.add_tensor(TensorInfo {
                name: v.name.clone(),
                shape: v.shape.clone(),
                kind: TensorKind::Param(k as u32),
            });
            p.params.push(t);
        }
        for (k, c) in model.constraints.iter().enumerate() {
            let t = p.graph.add_tensor(TensorInfo {
                name: format!("dual({})", c.name),
                shape: c.g.shape.clone(),
                kind: TensorKind::Dual(k as u32),
            });
            p.duals.push(t);
        }
        p
    }

    pub fn wrt_tensor(&self, w: Wrt) -> TensorId {
        match w {
            Wrt::Var(v) => self.vars[v.index()],
            Wrt::Param(p) => self.params[p.index()],
        }
    }
}

type MemoKey = (usize, Vec<Affine>, Vec<(IndexSym, Affine)>);

/// Lowers typed expressions of one model into a program's graph.
pub struct Lowerer<'a> {
    model: &'a Model,
    pub prog: &'a mut Program,
    /// Where each source index symbol currently points.
    syms: HashMap<IndexSym, Affine>,
    memo: HashMap<MemoKey, NodeId>,
    /// Tensors standing for pde function arguments (x, u, p), by position.
    pub inputs: Vec<TensorId>,
    /// Param values, for functions evaluated at load time (opnorm2).
    pub param_values: Vec<Option<Vec<f64>>>,
}

impl<'a> Lowerer<'a> {
    pub fn new(model: &'a Model, prog: &'a mut Program) -> Self {
        Lowerer {
            model,
            prog,
            syms: HashMap::new(),
            memo: HashMap::new(),
            inputs: Vec::new(),
            param_values: Vec::new(),
        }
    }

    fn g(&mut self) -> &mut Graph {
        &mut self.prog.graph
    }

    /// A tensor expression over fresh output variables.
    pub fn tensor(&mut self, t: &TExpr) -> Result<TensorExpr, Diagnostic> {
        let key = t as *const TExpr as usize;
        let vars: Vec<IndexVar> = t
            .shape
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                self.g()
                    .range_var(format!("out:{key}:{k}"), &axis_name(k), n)
            })
            .collect();
        let idx: Vec<Affine> = vars.iter().map(|&v| Affine::sym(v)).collect();
        let body = self.at(t, &idx)?;
        Ok(TensorExpr {
            shape: t.shape.clone(),
            vars,
            body,
        })
    }

    /// A scalar expression.
    pub fn scalar(&mut self, t: &TExpr) -> Result<NodeId, Diagnostic> {
        self.at(t, &[])
    }

    fn sym_affine(&self, a: &check::Affine) -> Affine {
        a.map_syms(|s| {
            self.syms
                .get(&s)
                .cloned()
                .unwrap_or_else(|| Affine::constant(0))
        })
    }

    fn bind(&mut self, s: IndexSym, to: Affine) -> Option<Affine> {
        self.syms.insert(s, to)
    }

    fn unbind(&mut self, s: IndexSym, prev: Option<Affine>) {
        match prev {
            Some(p) => self.syms.insert(s, p),
            None => self.syms.remove(&s),
        };
    }

    /// The value of `t` at index `idx` (one affine form per axis of `t`).
    pub fn at(&mut self, t: &TExpr, idx: &[Affine]) -> Result<NodeId, Diagnostic> {
        let mut env: Vec<(IndexSym, Affine)> =
            self.syms.iter().map(|(k, v)| (*k, v.clone())).collect();
        env.sort();
        let key = (t as *const TExpr as usize, idx.to_vec(), env);
        if let Some(&n) = self.memo.get(&key) {
            return Ok(n);
        }
        let n = self.at_uncached(t, idx)?;
        self.memo.insert(key, n);
        Ok(n)
    }

    /// An operand that may be a broadcast scalar.
    fn operand(&mut self, t: &TExpr, idx: &[Affine]) -> Result<NodeId, Diagnostic> {
        if t.shape.is_empty() {
            self.at(t, &[])
        } else {
            self.at(t, idx)
        }
    }

    fn at_uncached(&mut self, t: &TExpr, idx: &[Affine]) -> Result<NodeId, Diagnostic> {
        let key = t as *const TExpr as usize;
        Ok(match &t.kind {
            TKind::Const(v) => self.g().constant(*v),
            TKind::Literal(values) => {
                let tid = self.literal_tensor(key, &t.shape, values);
                self.g().load(tid, idx.to_vec())
            }
            TKind::Var(v) => {
                let tid = self.prog.vars[v.index()];
                self.g().load(tid, idx.to_vec())
            }
            TKind::Param(p) => {
                let tid = self.prog.params[p.index()];
                self.g().load(tid, idx.to_vec())
            }
            TKind::Dual(c) => {
                let tid = self.prog.duals[c.index()];
                self.g().load(tid, idx.to_vec())
            }
            TKind::Input(k) => {
                let tid = *self.inputs.get(*k as usize).ok_or_else(|| {
                    Diagnostic::error(Code::Unsupported, "a pde argument outside its pde block")
                        .at(t.span, "here")
                })?;
                self.g().load(tid, idx.to_vec())
            }
            TKind::Let(l) => {
                let e = self.model.lets[l.index()].expr.clone();
                // Lets are top-level: no source index symbol is free in them.
                let saved = std::mem::take(&mut self.syms);
                let r = self.at(&e, idx);
                self.syms = saved;
                r?
            }
            TKind::IndexVal(s) => {
                let a = self
                    .syms
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| Affine::constant(0));
                self.g().affine_value(&a)
            }
            TKind::Unary(op, a) => {
                let x = self.at(a, idx)?;
                self.g().unary(*op, x)
            }
            TKind::Binary(op, a, b) => {
                let x = self.operand(a, idx)?;
                let y = self.operand(b, idx)?;
                self.g().binary(*op, x, y)
            }
            TKind::Select(c, a, b) => {
                let c = self.operand(c, idx)?;
                let x = self.operand(a, idx)?;
                let y = self.operand(b, idx)?;
                self.g().select(c, x, y)
            }
            TKind::MatMul(a, b) => {
                let k = a.shape[1];
                let l = self.g().range_var(format!("mm:{key}"), "l", k);
                let lv = Affine::sym(l);
                let (ai, bi) = match (a.shape.len(), b.shape.len()) {
                    (2, 2) => (vec![idx[0].clone(), lv.clone()], vec![lv, idx[1].clone()]),
                    _ => (vec![idx[0].clone(), lv.clone()], vec![lv]),
                };
                let x = self.at(a, &ai)?;
                let y = self.at(b, &bi)?;
                let p = self.g().mul(x, y);
                self.g().sum(l, p)
            }
            TKind::Transpose(a) => match (a.shape.len(), t.shape.len()) {
                // [n] → [1, n]: the row index is always 1.
                (1, _) => self.at(a, &idx[1..2])?,
                // A row vector [1, n] transposed back to the vector [n].
                (2, 1) => self.at(a, &[Affine::constant(1), idx[0].clone()])?,
                _ => self.at(a, &[idx[1].clone(), idx[0].clone()])?,
            },
            TKind::Index(a, positions) => {
                let mut inner = Vec::new();
                let mut k = 0;
                for p in positions {
                    match p {
                        TIndex::At(s) => inner.push(self.sym_affine(s)),
                        TIndex::Slice { start, .. } => {
                            let st = self.sym_affine(start);
                            inner.push(st.add(&idx[k], 1).offset(-1));
                            k += 1;
                        }
                    }
                }
                self.at(a, &inner)?
            }
            TKind::Sum(s, lo, hi, body) => {
                let lo = self.sym_affine(lo);
                let hi = self.sym_affine(hi);
                let name = self.model.syms[s.index()].name.clone();
                let v = self
                    .g()
                    .keyed_var(format!("s{}", s.0), &name, vec![lo], vec![hi]);
                let prev = self.bind(*s, Affine::sym(v));
                let r = self.at(body, idx);
                self.unbind(*s, prev);
                let b = r?;
                self.g().sum(v, b)
            }
            TKind::Reduce(op, x) => {
                let red = match op {
                    ReduceOp::Max => RedOp::Max,
                    ReduceOp::Min => RedOp::Min,
                };
                let vars: Vec<IndexVar> = x
                    .shape
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| {
                        self.g()
                            .range_var(format!("red:{key}:{k}"), &axis_name(k), n)
                    })
                    .collect();
                let at: Vec<Affine> = vars.iter().map(|&v| Affine::sym(v)).collect();
                let mut body = self.at(x, &at)?;
                for &v in vars.iter().rev() {
                    body = self.g().reduce(red, v, body);
                }
                body
            }
            TKind::Comprehension(axes, body) => {
                let mut prevs = Vec::new();
                for (k, (s, lo, _)) in axes.iter().enumerate() {
                    let prev = self.bind(*s, idx[k].offset(lo - 1));
                    prevs.push((*s, prev));
                }
                let r = self.at(body, &idx[axes.len()..]);
                for (s, prev) in prevs.into_iter().rev() {
                    self.unbind(s, prev);
                }
                r?
            }
            TKind::Stack(items) => {
                let rest = &idx[1..];
                match idx[0].as_const() {
                    Some(k) => self.at(&items[(k - 1) as usize], rest)?,
                    None => {
                        // A symbolic position: select among the items.
                        let pos = self.g().affine_value(&idx[0]);
                        let mut acc = self.at(&items[items.len() - 1], rest)?;
                        for k in (0..items.len() - 1).rev() {
                            let item = self.at(&items[k], rest)?;
                            let kc = self.g().constant((k + 1) as f64);
                            let c = self.g().binary(BinOp::Eq, pos, kc);
                            acc = self.g().select(c, item, acc);
                        }
                        acc
                    }
                }
            }
            TKind::Grad(e, w) => {
                let body = self.scalar(e)?;
                let wt = self.prog.wrt_tensor(*w);
                let grad = crate::diff::grad(&mut self.prog.graph, body, wt);
                self.g().at(&grad, idx)
            }
            TKind::Jac(e, w) => {
                // Row i of the Jacobian: the gradient of e[i].
                let ne = e.shape.len();
                let wt = self.prog.wrt_tensor(*w);
                let row = self.at(e, &idx[..ne])?;
                let grad = crate::diff::grad(&mut self.prog.graph, row, wt);
                self.g().at(&grad, &idx[ne..])
            }
            TKind::Hess(e, w) => {
                let nw = self.model.wrt_shape(*w).len();
                let wt = self.prog.wrt_tensor(*w);
                let body = self.scalar(e)?;
                let grad = crate::diff::grad(&mut self.prog.graph, body, wt);
                let gi = self.g().at(&grad, &idx[..nw]);
                let h = crate::diff::grad(&mut self.prog.graph, gi, wt);
                self.g().at(&h, &idx[nw..])
            }
            TKind::LoadTime(f, x) => {
                let tx = self.tensor(x)?;
                let values = self.eval_now(&tx).map_err(|m| {
                    Diagnostic::error(
                        Code::NumericalFault,
                        format!("cannot evaluate at load time: {m}"),
                    )
                    .at(t.span, "here")
                    .help("load-time functions may use only params with values and literals")
                })?;
                let v = match f {
                    check::LoadTimeFn::OpNorm2 => opnorm2(&values, &x.shape),
                };
                self.g().constant(v)
            }
        })
    }

    fn literal_tensor(&mut self, key: usize, shape: &[usize], values: &[f64]) -> TensorId {
        // One tensor per literal node.
        let name = format!("literal{key:x}");
        if let Some(k) = self
            .prog
            .graph
            .tensors()
            .iter()
            .position(|t| t.name == name)
        {
            return TensorId(k as u32);
        }
        self.prog.graph.add_tensor(TensorInfo {
            name,
            shape: shape.to_vec(),
            kind: TensorKind::Constant(values.to_vec()),
        })
    }

    /// Evaluates a tensor expression of params with the values known so far.
    pub fn eval_now(&self, t: &TensorExpr) -> Result<Vec<f64>, String> {
        let g = &self.prog.graph;
        let mut tv = super::eval::TensorValues::new(g);
        for (k, v) in self.param_values.iter().enumerate() {
            if let Some(v) = v {
                tv.set(self.prog.params[k], v);
            }
        }
        let mut ev = super::eval::Evaluator::new(g, &tv);
        ev.tensor(t).map_err(|e| e.to_string())
    }
}

fn axis_name(k: usize) -> String {
    ["i", "j", "k", "l", "m", "n"]
        .get(k)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("i{k}"))
}

/// The largest singular value, by power iteration on XᵀX (deterministic start).
pub fn opnorm2(values: &[f64], shape: &[usize]) -> f64 {
    let (m, n) = match shape {
        [m, n] => (*m, *n),
        [n] => (*n, 1),
        _ => return values.first().map(|v| v.abs()).unwrap_or(0.0),
    };
    let mut v: Vec<f64> = (0..n).map(|k| 1.0 + 0.1 * (k as f64 + 1.0).sin()).collect();
    let mut sigma = 0.0;
    for _ in 0..1000 {
        let xv: Vec<f64> = (0..m)
            .map(|i| (0..n).map(|j| values[i * n + j] * v[j]).sum())
            .collect();
        let mut w: Vec<f64> = (0..n)
            .map(|j| (0..m).map(|i| values[i * n + j] * xv[i]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        for x in &mut w {
            *x /= norm;
        }
        let new_sigma = norm.sqrt();
        let done = (new_sigma - sigma).abs() <= 1e-15 * new_sigma;
        sigma = new_sigma;
        v = w;
        if done {
            break;
        }
    }
    sigma
}
