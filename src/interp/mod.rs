//! Phase 6b — interp. In: a kernel and buffers. Out: the outputs, and a count of the
//! floating-point operations executed. The reference back end: plain Rust, every access
//! checked; the JIT is tested against it.

use crate::ir::{RedOp, TensorId};
use crate::kernel::{BufKind, IExpr, Inst, Kernel, Operand, Stmt};
use crate::ops;

/// Runs a kernel. `input` supplies each input tensor; `outputs[k]` receives output k.
/// Returns the number of floating-point operations executed.
pub fn run<'a>(
    k: &Kernel,
    input: &dyn Fn(TensorId) -> Option<&'a [f64]>,
    outputs: &mut [&mut [f64]],
) -> Result<u64, String> {
    let mut bufs: Vec<Buf> = Vec::with_capacity(k.buffers.len());
    for b in &k.buffers {
        bufs.push(match &b.kind {
            BufKind::Input(t) => {
                let data = input(*t)
                    .ok_or_else(|| format!("kernel {}: no value for input `{}`", k.name, b.name))?;
                if data.len() != b.len {
                    return Err(format!(
                        "kernel {}: input `{}` has {} entries, expected {}",
                        k.name,
                        b.name,
                        data.len(),
                        b.len
                    ));
                }
                Buf::Input(data)
            }
            BufKind::Constant(values) => Buf::Owned(values.to_vec()),
            BufKind::Temp => Buf::Owned(vec![0.0; b.len]),
            BufKind::Output(o) => {
                let len = outputs.get(*o).map(|s| s.len()).unwrap_or(0);
                if len != b.len {
                    return Err(format!(
                        "kernel {}: output `{}` has {len} entries, expected {}",
                        k.name, b.name, b.len
                    ));
                }
                Buf::Output(*o)
            }
        });
    }
    let mut m = Machine {
        k,
        bufs,
        outputs,
        locals: vec![0.0; k.n_locals as usize],
        vars: vec![0; k.n_vars as usize],
        flops: 0,
    };
    m.block(&k.body)?;
    Ok(m.flops)
}

enum Buf<'a> {
    Input(&'a [f64]),
    Owned(Vec<f64>),
    Output(usize),
}

struct Machine<'a, 'o, 'p> {
    k: &'a Kernel,
    bufs: Vec<Buf<'a>>,
    outputs: &'o mut [&'p mut [f64]],
    locals: Vec<f64>,
    vars: Vec<i64>,
    flops: u64,
}

impl Machine<'_, '_, '_> {
    fn affine(&self, a: &IExpr) -> i64 {
        a.c + a
            .terms
            .iter()
            .map(|&(v, c)| c * self.vars[v.index()])
            .sum::<i64>()
    }

    fn operand(&self, o: &Operand) -> f64 {
        match o {
            Operand::Local(l) => self.locals[l.0 as usize],
            Operand::Const(c) => *c,
        }
    }

    fn load(&self, buf: crate::kernel::BufId, offset: i64) -> Result<f64, String> {
        let out_of_bounds = || {
            format!(
                "kernel {}: read outside `{}` at {offset}",
                self.k.name,
                self.k.buffers[buf.index()].name
            )
        };
        let i = usize::try_from(offset).map_err(|_| out_of_bounds())?;
        let v = match &self.bufs[buf.index()] {
            Buf::Input(d) => d.get(i).copied(),
            Buf::Owned(d) => d.get(i).copied(),
            Buf::Output(o) => self.outputs[*o].get(i).copied(),
        };
        v.ok_or_else(out_of_bounds)
    }

    fn store(&mut self, buf: crate::kernel::BufId, offset: i64, v: f64) -> Result<(), String> {
        let name = &self.k.buffers[buf.index()].name;
        let err = || format!("kernel {}: write outside `{name}` at {offset}", self.k.name);
        let i = usize::try_from(offset).map_err(|_| err())?;
        let slot = match &mut self.bufs[buf.index()] {
            Buf::Input(_) => {
                return Err(format!("kernel {}: write to input `{name}`", self.k.name))
            }
            Buf::Owned(d) => d.get_mut(i),
            Buf::Output(o) => self.outputs[*o].get_mut(i),
        };
        *slot.ok_or_else(err)? = v;
        Ok(())
    }

    fn block(&mut self, body: &[Stmt]) -> Result<(), String> {
        for st in body {
            match st {
                Stmt::Inst(i) => self.inst(i)?,
                Stmt::Init { dst, value } => self.locals[dst.0 as usize] = *value,
                Stmt::Accum { dst, op, a } => {
                    let x = self.operand(a);
                    let d = &mut self.locals[dst.0 as usize];
                    *d = match op {
                        RedOp::Sum => *d + x,
                        RedOp::Max => ops::max(*d, x),
                        RedOp::Min => ops::min(*d, x),
                    };
                    self.flops += 1;
                }
                Stmt::Store { buf, offset, a } => {
                    let v = self.operand(a);
                    let off = self.affine(offset);
                    self.store(*buf, off, v)?;
                }
                Stmt::AccumStore { buf, offset, a } => {
                    let v = self.operand(a);
                    let off = self.affine(offset);
                    let old = self.load(*buf, off)?;
                    self.store(*buf, off, old + v)?;
                    self.flops += 1;
                }
                Stmt::Fill { buf, value } => {
                    let len = self.k.buffers[buf.index()].len;
                    for i in 0..len {
                        self.store(*buf, i as i64, *value)?;
                    }
                }
                Stmt::Loop { var, lo, hi, body } => {
                    let lo = lo.iter().map(|a| self.affine(a)).max().unwrap_or(1);
                    let hi = hi.iter().map(|a| self.affine(a)).min().unwrap_or(0);
                    for i in lo..=hi {
                        self.vars[var.index()] = i;
                        self.block(body)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn inst(&mut self, i: &Inst) -> Result<(), String> {
        let (dst, v) = match i {
            Inst::Load { dst, buf, offset } => {
                let off = self.affine(offset);
                (dst, self.load(*buf, off)?)
            }
            Inst::Index { dst, value } => (dst, self.affine(value) as f64),
            Inst::Unary { dst, op, a } => {
                self.flops += 1;
                (dst, op.eval(self.operand(a)))
            }
            Inst::Binary { dst, op, a, b } => {
                self.flops += 1;
                (dst, op.eval(self.operand(a), self.operand(b)))
            }
            Inst::Select { dst, c, a, b } => {
                let v = if self.operand(c) != 0.0 {
                    self.operand(a)
                } else {
                    self.operand(b)
                };
                (dst, v)
            }
        };
        self.locals[dst.0 as usize] = v;
        Ok(())
    }
}
