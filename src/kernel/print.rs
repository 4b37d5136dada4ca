//! Kernels as pseudo-code (`optc emit --kernel`).

use super::*;
use crate::ir::Graph;
use std::fmt::Write;

/// Renders a kernel; loop variables are named from the graph.
pub fn print_kernel(k: &Kernel, g: &Graph) -> String {
    let mut out = String::new();
    let sig: Vec<String> = k
        .buffers
        .iter()
        .filter(|b| !matches!(b.kind, BufKind::Temp | BufKind::Constant(_)))
        .map(|b| {
            let role = match b.kind {
                BufKind::Output(_) => "out ",
                _ => "",
            };
            format!("{role}{}[{}]", b.name, b.len)
        })
        .collect();
    let _ = writeln!(out, "kernel {}({}) {{", k.name, sig.join(", "));
    for b in &k.buffers {
        if b.kind == BufKind::Temp {
            let _ = writeln!(out, "  temp {}[{}]", b.name, b.len);
        }
    }
    let mut names = VarNames {
        g,
        taken: Vec::new(),
    };
    block(&mut out, k, &k.body, 1, &mut names);
    out.push_str("}\n");
    out
}

struct VarNames<'g> {
    g: &'g Graph,
    taken: Vec<(IndexVar, String)>,
}

impl VarNames<'_> {
    fn name(&mut self, v: IndexVar) -> String {
        if let Some((_, n)) = self.taken.iter().find(|(w, _)| *w == v) {
            return n.clone();
        }
        let base = self.g.var(v).name.clone();
        let mut n = base.clone();
        let mut k = 1;
        while self.taken.iter().any(|(_, m)| *m == n) {
            k += 1;
            n = format!("{base}{k}");
        }
        self.taken.push((v, n.clone()));
        n
    }

    fn affine(&mut self, a: &IExpr) -> String {
        let mut s = String::new();
        for (k, &(v, c)) in a.terms.iter().enumerate() {
            let n = self.name(v);
            let (sign, mag) = if c < 0 { ("-", -c) } else { ("+", c) };
            if k > 0 {
                let _ = write!(s, " {sign} ");
            } else if sign == "-" {
                s.push('-');
            }
            if mag == 1 {
                s.push_str(&n);
            } else {
                let _ = write!(s, "{mag}*{n}");
            }
        }
        if a.terms.is_empty() {
            let _ = write!(s, "{}", a.c);
        } else if a.c != 0 {
            let _ = write!(s, " {} {}", if a.c < 0 { "-" } else { "+" }, a.c.abs());
        }
        s
    }

    fn bound(&mut self, b: &[IExpr], f: &str) -> String {
        if b.len() == 1 {
            return self.affine(&b[0]);
        }
        let parts: Vec<String> = b.iter().map(|a| self.affine(a)).collect();
        format!("{f}({})", parts.join(", "))
    }
}

fn operand(o: &Operand) -> String {
    match o {
        Operand::Local(l) => format!("r{}", l.0),
        Operand::Const(c) => crate::ir::fmt_const(*c),
    }
}

fn block(out: &mut String, k: &Kernel, body: &[Stmt], depth: usize, names: &mut VarNames) {
    let pad = "  ".repeat(depth);
    for st in body {
        match st {
            Stmt::Inst(i) => {
                let text = match i {
                    Inst::Load { dst, buf, offset } => format!(
                        "r{} = {}[{}]",
                        dst.0,
                        k.buffers[buf.index()].name,
                        names.affine(offset)
                    ),
                    Inst::Index { dst, value } => {
                        format!("r{} = float({})", dst.0, names.affine(value))
                    }
                    Inst::Unary { dst, op, a } => {
                        format!("r{} = {}({})", dst.0, op.name(), operand(a))
                    }
                    Inst::Binary { dst, op, a, b } => {
                        if op.is_infix() {
                            format!("r{} = {} {} {}", dst.0, operand(a), op.name(), operand(b))
                        } else {
                            format!("r{} = {}({}, {})", dst.0, op.name(), operand(a), operand(b))
                        }
                    }
                    Inst::Select { dst, c, a, b } => format!(
                        "r{} = {} ? {} : {}",
                        dst.0,
                        operand(c),
                        operand(a),
                        operand(b)
                    ),
                };
                let _ = writeln!(out, "{pad}{text}");
            }
            Stmt::Init { dst, value } => {
                let _ = writeln!(out, "{pad}r{} = {}", dst.0, crate::ir::fmt_const(*value));
            }
            Stmt::Accum { dst, op, a } => {
                let text = match op {
                    crate::ir::RedOp::Sum => format!("r{} += {}", dst.0, operand(a)),
                    crate::ir::RedOp::Max => format!("r{0} = max(r{0}, {1})", dst.0, operand(a)),
                    crate::ir::RedOp::Min => format!("r{0} = min(r{0}, {1})", dst.0, operand(a)),
                };
                let _ = writeln!(out, "{pad}{text}");
            }
            Stmt::Store { buf, offset, a } => {
                let _ = writeln!(
                    out,
                    "{pad}{}[{}] = {}",
                    k.buffers[buf.index()].name,
                    names.affine(offset),
                    operand(a)
                );
            }
            Stmt::AccumStore { buf, offset, a } => {
                let _ = writeln!(
                    out,
                    "{pad}{}[{}] += {}",
                    k.buffers[buf.index()].name,
                    names.affine(offset),
                    operand(a)
                );
            }
            Stmt::Fill { buf, value } => {
                let _ = writeln!(
                    out,
                    "{pad}{}[:] = {}",
                    k.buffers[buf.index()].name,
                    crate::ir::fmt_const(*value)
                );
            }
            Stmt::Loop { var, lo, hi, body } => {
                let v = names.name(*var);
                let lo = names.bound(lo, "max");
                let hi = names.bound(hi, "min");
                let _ = writeln!(out, "{pad}for {v} in {lo}..{hi} {{");
                block(out, k, body, depth + 1, names);
                let _ = writeln!(out, "{pad}}}");
            }
        }
    }
}
