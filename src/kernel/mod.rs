//! Phase 5 — kernel. In: IR tensor expressions to compute. Out: a loop program — loop nests
//! with three-address scalar bodies, stores, accumulators and materialized temporaries — the
//! one input of both back ends (the interpreter and the JIT).
//!
//! `schedule` decides where each value is computed: at the outermost loop where its
//! variables are bound (loop-invariant code motion), and into a temporary array when a
//! reduction would otherwise be recomputed across a loop it does not depend on. `verify`
//! proves every load and store in bounds; `print` shows the program as pseudo-code.

mod print;
mod schedule;
mod verify;

pub use print::print_kernel;
pub use schedule::{reduction_terms, schedule, schedule_with, GradOutput, Output};
pub use verify::verify;

use crate::ir::{IndexVar, RedOp, TensorId};
use crate::ops::{BinOp, UnOp};
use std::sync::Arc;

/// An integer affine form over loop variables (offsets, bounds).
pub type IExpr = crate::affine::Affine<IndexVar>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

impl BufId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Local(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub enum BufKind {
    /// A tensor supplied by the caller.
    Input(TensorId),
    /// The k-th output.
    Output(usize),
    /// A materialized intermediate, in the workspace.
    Temp,
    /// Data baked into the kernel (literals).
    Constant(Arc<[f64]>),
}

#[derive(Clone, Debug)]
pub struct Buffer {
    pub name: String,
    pub len: usize,
    pub kind: BufKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand {
    Local(Local),
    Const(f64),
}

/// One scalar instruction: `dst = ...`.
#[derive(Clone, Debug, PartialEq)]
pub enum Inst {
    Load {
        dst: Local,
        buf: BufId,
        offset: IExpr,
    },
    /// The value of an affine index form as a float.
    Index {
        dst: Local,
        value: IExpr,
    },
    Unary {
        dst: Local,
        op: UnOp,
        a: Operand,
    },
    Binary {
        dst: Local,
        op: BinOp,
        a: Operand,
        b: Operand,
    },
    Select {
        dst: Local,
        c: Operand,
        a: Operand,
        b: Operand,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Inst(Inst),
    /// `dst = value` before a reduction loop.
    Init {
        dst: Local,
        value: f64,
    },
    /// `dst = dst ⊕ a`
    Accum {
        dst: Local,
        op: RedOp,
        a: Operand,
    },
    /// `buf[offset] = a`
    Store {
        buf: BufId,
        offset: IExpr,
        a: Operand,
    },
    /// `buf[offset] += a` (transposed loads: gradients in scatter form)
    AccumStore {
        buf: BufId,
        offset: IExpr,
        a: Operand,
    },
    /// Every entry of `buf` set to `value`.
    Fill {
        buf: BufId,
        value: f64,
    },
    /// `for var in max(lo…) ..= min(hi…)`
    Loop {
        var: IndexVar,
        lo: Vec<IExpr>,
        hi: Vec<IExpr>,
        body: Vec<Stmt>,
    },
}

/// A loop program computing one or more output tensors.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub name: String,
    pub buffers: Vec<Buffer>,
    pub n_locals: u32,
    /// Loop variables are IR index variables; this bounds their ids.
    pub n_vars: u32,
    pub body: Vec<Stmt>,
}

impl Kernel {
    pub fn inputs(&self) -> impl Iterator<Item = (BufId, TensorId)> + '_ {
        self.buffers
            .iter()
            .enumerate()
            .filter_map(|(k, b)| match b.kind {
                BufKind::Input(t) => Some((BufId(k as u32), t)),
                _ => None,
            })
    }

    pub fn outputs(&self) -> impl Iterator<Item = (BufId, usize)> + '_ {
        self.buffers
            .iter()
            .enumerate()
            .filter_map(|(k, b)| match b.kind {
                BufKind::Output(o) => Some((BufId(k as u32), o)),
                _ => None,
            })
    }

    /// Entries of workspace the temporaries need.
    pub fn workspace_len(&self) -> usize {
        self.buffers
            .iter()
            .filter(|b| b.kind == BufKind::Temp)
            .map(|b| b.len)
            .sum()
    }

    /// Counts statements of each kind (for `optc emit --stats`).
    pub fn stats(&self) -> KernelStats {
        let mut s = KernelStats::default();
        fn walk(body: &[Stmt], s: &mut KernelStats, depth: usize) {
            for st in body {
                match st {
                    Stmt::Inst(i) => match i {
                        Inst::Load { .. } => s.loads += 1,
                        Inst::Index { .. } => s.other += 1,
                        Inst::Unary { .. } | Inst::Binary { .. } => s.arith += 1,
                        Inst::Select { .. } => s.other += 1,
                    },
                    Stmt::Init { .. } | Stmt::Fill { .. } => s.other += 1,
                    Stmt::Accum { .. } => s.arith += 1,
                    Stmt::Store { .. } => s.stores += 1,
                    Stmt::AccumStore { .. } => {
                        s.stores += 1;
                        s.arith += 1;
                    }
                    Stmt::Loop { body, .. } => {
                        s.loops += 1;
                        s.max_depth = s.max_depth.max(depth + 1);
                        walk(body, s, depth + 1);
                    }
                }
            }
        }
        walk(&self.body, &mut s, 0);
        s.temps = self
            .buffers
            .iter()
            .filter(|b| b.kind == BufKind::Temp)
            .count();
        s
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub loops: usize,
    pub max_depth: usize,
    pub loads: usize,
    pub stores: usize,
    pub arith: usize,
    pub other: usize,
    pub temps: usize,
}
