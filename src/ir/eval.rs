//! The reference evaluator: reads the graph directly, one scalar at a time. Slow and simple —
//! it is the oracle the kernel interpreter and the JIT are tested against.

use super::graph::*;
use std::collections::HashMap;

/// Values of the tensors a graph loads, by tensor id (constant tensors need no entry).
pub struct TensorValues<'a> {
    values: Vec<Option<&'a [f64]>>,
}

impl<'a> TensorValues<'a> {
    pub fn new(g: &Graph) -> TensorValues<'a> {
        TensorValues {
            values: vec![None; g.tensors().len()],
        }
    }

    pub fn set(&mut self, t: TensorId, v: &'a [f64]) {
        if t.index() >= self.values.len() {
            self.values.resize(t.index() + 1, None);
        }
        self.values[t.index()] = Some(v);
    }

    pub fn get(&self, t: TensorId) -> Option<&'a [f64]> {
        self.values.get(t.index()).copied().flatten()
    }
}

pub struct Evaluator<'g, 'v> {
    g: &'g Graph,
    tensors: &'v TensorValues<'v>,
    /// Current value of every index variable.
    env: Vec<i64>,
    memo: HashMap<(NodeId, Vec<i64>), f64>,
}

/// Why evaluation could not proceed (only possible for graphs that skipped the checker).
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    MissingTensor(String),
    OutOfBounds { tensor: String, index: Vec<i64> },
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::MissingTensor(t) => write!(f, "no value for tensor `{t}`"),
            EvalError::OutOfBounds { tensor, index } => {
                write!(f, "index {index:?} out of bounds of `{tensor}`")
            }
        }
    }
}

impl<'g, 'v> Evaluator<'g, 'v> {
    pub fn new(g: &'g Graph, tensors: &'v TensorValues<'v>) -> Self {
        Evaluator {
            g,
            tensors,
            env: vec![0; g.var_count()],
            memo: HashMap::new(),
        }
    }

    fn affine(&self, a: &Affine) -> i64 {
        a.c + a
            .terms
            .iter()
            .map(|&(v, k)| k * self.env[v.index()])
            .sum::<i64>()
    }

    /// The range of a variable under the current values of outer variables.
    pub fn range(&self, v: IndexVar) -> (i64, i64) {
        let info = self.g.var(v);
        let lo = info.lo.iter().map(|a| self.affine(a)).max().unwrap_or(1);
        let hi = info.hi.iter().map(|a| self.affine(a)).min().unwrap_or(0);
        (lo, hi)
    }

    pub fn set_index(&mut self, v: IndexVar, value: i64) {
        if v.index() >= self.env.len() {
            self.env.resize(v.index() + 1, 0);
        }
        self.env[v.index()] = value;
    }

    pub fn eval(&mut self, n: NodeId) -> Result<f64, EvalError> {
        let key_vals: Vec<i64> = self
            .g
            .free_vars(n)
            .iter()
            .map(|v| self.env[v.index()])
            .collect();
        if let Some(&v) = self.memo.get(&(n, key_vals.clone())) {
            return Ok(v);
        }
        let v = match self.g.node(n) {
            Node::Const(F64(c)) => *c,
            Node::Index(v) => self.env[v.index()] as f64,
            Node::Load(t, idx) => {
                let info = self.g.tensor(*t);
                let pos: Vec<i64> = idx.iter().map(|a| self.affine(a)).collect();
                let mut off = 0usize;
                for (&p, &size) in pos.iter().zip(&info.shape) {
                    if p < 1 || p as usize > size {
                        return Err(EvalError::OutOfBounds {
                            tensor: info.name.clone(),
                            index: pos,
                        });
                    }
                    off = off * size + (p as usize - 1);
                }
                match &info.kind {
                    TensorKind::Constant(values) => values[off],
                    _ => {
                        let data = self
                            .tensors
                            .get(*t)
                            .ok_or_else(|| EvalError::MissingTensor(info.name.clone()))?;
                        *data.get(off).ok_or_else(|| EvalError::OutOfBounds {
                            tensor: info.name.clone(),
                            index: pos.clone(),
                        })?
                    }
                }
            }
            Node::Unary(op, a) => {
                let (op, a) = (*op, *a);
                op.eval(self.eval(a)?)
            }
            Node::Binary(op, a, b) => {
                let (op, a, b) = (*op, *a, *b);
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                op.eval(x, y)
            }
            Node::Select(c, a, b) => {
                let (c, a, b) = (*c, *a, *b);
                if self.eval(c)? != 0.0 {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Node::Reduce(op, v, body) => {
                let (op, v, body) = (*op, *v, *body);
                let (lo, hi) = self.range(v);
                let saved = self.env[v.index()];
                let mut acc = op.identity();
                for k in lo..=hi {
                    self.env[v.index()] = k;
                    let x = self.eval(body)?;
                    acc = match op {
                        RedOp::Sum => acc + x,
                        RedOp::Max => crate::ops::max(acc, x),
                        RedOp::Min => crate::ops::min(acc, x),
                    };
                }
                self.env[v.index()] = saved;
                acc
            }
        };
        self.memo.insert((n, key_vals), v);
        Ok(v)
    }

    /// Every entry of a tensor expression, row-major.
    pub fn tensor(&mut self, t: &TensorExpr) -> Result<Vec<f64>, EvalError> {
        let n: usize = t.shape.iter().product();
        let mut out = Vec::with_capacity(n);
        let mut pos = vec![1i64; t.shape.len()];
        for _ in 0..n {
            for (&v, &p) in t.vars.iter().zip(&pos) {
                self.set_index(v, p);
            }
            out.push(self.eval(t.body)?);
            // Row-major increment.
            for k in (0..pos.len()).rev() {
                pos[k] += 1;
                if pos[k] as usize <= t.shape[k] {
                    break;
                }
                pos[k] = 1;
            }
        }
        Ok(out)
    }
}
