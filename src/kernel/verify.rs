//! Proves every load and store of a kernel in bounds, over the iteration domain of the loops
//! around it. The JIT compiles only verified kernels: **no kernel that passes can read or
//! write outside its buffers.**

use super::*;
use crate::affine::Domain;

/// Checks all accesses; the error names the first one that cannot be proven.
pub fn verify(k: &Kernel) -> Result<(), String> {
    let mut loops: Vec<(IndexVar, Vec<IExpr>, Vec<IExpr>)> = Vec::new();
    walk(k, &k.body, &mut loops)
}

fn walk(
    k: &Kernel,
    body: &[Stmt],
    loops: &mut Vec<(IndexVar, Vec<IExpr>, Vec<IExpr>)>,
) -> Result<(), String> {
    for st in body {
        match st {
            Stmt::Inst(Inst::Load { buf, offset, .. }) => {
                check(k, *buf, offset, loops, "load from")?
            }
            Stmt::Store { buf, offset, .. } | Stmt::AccumStore { buf, offset, .. } => {
                writable(k, *buf)?;
                check(k, *buf, offset, loops, "store to")?
            }
            Stmt::Fill { buf, .. } => writable(k, *buf)?,
            Stmt::Inst(Inst::Index { value, .. })
                if value.syms().any(|v| !loops.iter().any(|l| l.0 == v)) =>
            {
                return Err(format!(
                    "kernel {}: an index value uses a variable outside its loop",
                    k.name
                ));
            }
            Stmt::Loop { var, lo, hi, body } => {
                for b in lo.iter().chain(hi) {
                    if b.syms().any(|v| !loops.iter().any(|l| l.0 == v)) {
                        return Err(format!(
                            "kernel {}: a loop bound uses a variable outside its loop",
                            k.name
                        ));
                    }
                }
                loops.push((*var, lo.clone(), hi.clone()));
                let r = walk(k, body, loops);
                loops.pop();
                r?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Only outputs and temporaries are written (inputs are shared with the caller).
fn writable(k: &Kernel, buf: BufId) -> Result<(), String> {
    match k.buffers.get(buf.index()).map(|b| &b.kind) {
        Some(BufKind::Output(_) | BufKind::Temp) => Ok(()),
        _ => Err(format!(
            "kernel {}: a store to a buffer that is not an output or a temporary",
            k.name
        )),
    }
}

fn check(
    k: &Kernel,
    buf: BufId,
    offset: &IExpr,
    loops: &[(IndexVar, Vec<IExpr>, Vec<IExpr>)],
    what: &str,
) -> Result<(), String> {
    let b = k
        .buffers
        .get(buf.index())
        .ok_or_else(|| format!("kernel {}: unknown buffer", k.name))?;
    let mut d = Domain::new();
    for (v, lo, hi) in loops {
        d.push(*v, lo.clone(), hi.clone());
    }
    d.tighten();
    let (lo, hi) = (d.min(offset), d.max(offset));
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo >= 0 && hi < b.len as i64 => Ok(()),
        _ => Err(format!(
            "kernel {}: cannot prove the {what} `{}` in bounds (offset range {lo:?}..{hi:?}, length {})",
            k.name, b.name, b.len
        )),
    }
}
