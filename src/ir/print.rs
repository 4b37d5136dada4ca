//! The readable form of IR expressions: math-like text with 1-based indices, as a user would
//! write it. Subexpressions that occur more than once are named (`t1 = ...`) when they can be
//! lifted out of every reduction, so a derivative prints in a size proportional to its graph.

use super::graph::*;
use crate::ops::{BinOp, UnOp};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

pub struct Printer<'g> {
    g: &'g Graph,
    names: HashMap<IndexVar, String>,
    used: HashMap<String, IndexVar>,
    temps: HashMap<NodeId, String>,
    /// Definitions of temporaries, in order.
    pub defs: Vec<(String, String)>,
}

const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_CMP: u8 = 3;
const P_ADD: u8 = 4;
const P_MUL: u8 = 5;
const P_NEG: u8 = 6;
const P_POW: u8 = 7;
const P_ATOM: u8 = 8;

impl<'g> Printer<'g> {
    pub fn new(g: &'g Graph) -> Self {
        Printer {
            g,
            names: HashMap::new(),
            used: HashMap::new(),
            temps: HashMap::new(),
            defs: Vec::new(),
        }
    }

    /// The display name of an index variable, unique within this printer.
    pub fn var_name(&mut self, v: IndexVar) -> String {
        if let Some(n) = self.names.get(&v) {
            return n.clone();
        }
        let base = self.g.var(v).name.clone();
        let mut name = base.clone();
        let mut k = 1;
        while self.used.contains_key(&name) {
            k += 1;
            name = format!("{base}{k}");
        }
        self.used.insert(name.clone(), v);
        self.names.insert(v, name.clone());
        name
    }

    pub fn affine(&mut self, a: &Affine) -> String {
        let mut s = String::new();
        for (k, &(v, c)) in a.terms.iter().enumerate() {
            let name = self.var_name(v);
            let (sign, mag) = if c < 0 { ("-", -c) } else { ("+", c) };
            if k == 0 {
                if sign == "-" {
                    s.push('-');
                }
            } else {
                let _ = write!(s, " {sign} ");
            }
            if mag == 1 {
                s.push_str(&name);
            } else {
                let _ = write!(s, "{mag}*{name}");
            }
        }
        if a.terms.is_empty() {
            let _ = write!(s, "{}", a.c);
        } else if a.c > 0 {
            let _ = write!(s, " + {}", a.c);
        } else if a.c < 0 {
            let _ = write!(s, " - {}", -a.c);
        }
        s
    }

    fn bound(&mut self, b: &Bound, lower: bool) -> String {
        if b.len() == 1 {
            return self.affine(&b[0]);
        }
        let parts: Vec<String> = b.iter().map(|a| self.affine(a)).collect();
        format!(
            "{}({})",
            if lower { "max" } else { "min" },
            parts.join(", ")
        )
    }

    /// Names repeated closed subexpressions before printing `roots`.
    pub fn share(&mut self, roots: &[NodeId], allowed_free: &[IndexVar]) {
        let order = self.g.reachable(roots);
        let mut uses: HashMap<NodeId, usize> = HashMap::new();
        for &n in &order {
            for c in self.g.children(n) {
                *uses.entry(c).or_default() += 1;
            }
        }
        let allowed: BTreeSet<IndexVar> = allowed_free.iter().copied().collect();
        let mut size: HashMap<NodeId, usize> = HashMap::new();
        for &n in &order {
            let s = 1 + self.g.children(n).map(|c| size[&c]).sum::<usize>();
            size.insert(n, s.min(1_000_000));
            let shared = uses.get(&n).copied().unwrap_or(0) > 1;
            let closed = self.g.free_vars(n).iter().all(|v| allowed.contains(v));
            if shared && closed && s > 6 && !matches!(self.g.node(n), Node::Load(..)) {
                let text = self.expr(n);
                let name = format!("t{}", self.defs.len() + 1);
                self.defs.push((name.clone(), text));
                self.temps.insert(n, name);
            }
        }
    }

    pub fn expr(&mut self, n: NodeId) -> String {
        self.prec(n, 0)
    }

    fn prec(&mut self, n: NodeId, outer: u8) -> String {
        if let Some(t) = self.temps.get(&n) {
            return t.clone();
        }
        let (s, p) = self.inner(n);
        if p < outer {
            format!("({s})")
        } else {
            s
        }
    }

    fn inner(&mut self, n: NodeId) -> (String, u8) {
        match self.g.node(n).clone() {
            Node::Const(F64(v)) => {
                let s = fmt_const(v);
                let p = if v < 0.0 { P_NEG } else { P_ATOM };
                (s, p)
            }
            Node::Index(v) => (self.var_name(v), P_ATOM),
            Node::Load(t, idx) => {
                let name = self.g.tensor(t).name.clone();
                if idx.is_empty() {
                    return (name, P_ATOM);
                }
                let parts: Vec<String> = idx.iter().map(|a| self.affine(a)).collect();
                (format!("{name}[{}]", parts.join(", ")), P_ATOM)
            }
            Node::Unary(op, a) => match op {
                UnOp::Neg => (format!("-{}", self.prec(a, P_NEG + 1)), P_NEG),
                UnOp::Not => (format!("not {}", self.prec(a, P_CMP + 1)), P_AND),
                _ => (format!("{}({})", op.name(), self.prec(a, 0)), P_ATOM),
            },
            Node::Binary(op, a, b) => {
                let (p, lp, rp) = match op {
                    BinOp::Or => (P_OR, P_OR, P_OR + 1),
                    BinOp::And => (P_AND, P_AND, P_AND + 1),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => {
                        (P_CMP, P_CMP + 1, P_CMP + 1)
                    }
                    BinOp::Add => (P_ADD, P_ADD, P_ADD),
                    BinOp::Sub => (P_ADD, P_ADD, P_ADD + 1),
                    BinOp::Mul => (P_MUL, P_MUL, P_MUL),
                    BinOp::Div => (P_MUL, P_MUL, P_MUL + 1),
                    BinOp::Pow => (P_POW, P_POW + 1, P_NEG),
                    BinOp::Max | BinOp::Min | BinOp::Atan2 => {
                        let x = self.prec(a, 0);
                        let y = self.prec(b, 0);
                        return (format!("{}({x}, {y})", op.name()), P_ATOM);
                    }
                };
                let x = self.prec(a, lp);
                let y = self.prec(b, rp);
                let sym = op.name();
                if op == BinOp::Pow || op == BinOp::Mul || op == BinOp::Div {
                    (format!("{x}{sym}{y}"), p)
                } else {
                    (format!("{x} {sym} {y}"), p)
                }
            }
            Node::Select(c, a, b) => {
                let c = self.prec(c, 0);
                let x = self.prec(a, 0);
                let y = self.prec(b, 0);
                (format!("if {c} then {x} else {y}"), 0)
            }
            Node::Reduce(op, v, body) => {
                let name = self.var_name(v);
                let info = self.g.var(v).clone();
                let lo = self.bound(&info.lo, true);
                let hi = self.bound(&info.hi, false);
                let b = self.prec(body, P_MUL);
                let kw = match op {
                    RedOp::Sum => "sum",
                    RedOp::Max => "maximum",
                    RedOp::Min => "minimum",
                };
                (format!("{kw}({name} in {lo}..{hi}) {b}"), P_MUL)
            }
        }
    }

    /// `[body for i in 1..n, ...]`, or the body alone for a scalar.
    pub fn tensor(&mut self, t: &TensorExpr) -> String {
        let body = self.expr(t.body);
        if t.vars.is_empty() {
            return body;
        }
        let parts: Vec<String> = t
            .vars
            .iter()
            .zip(&t.shape)
            .map(|(&v, n)| format!("{} in 1..{n}", self.var_name(v)))
            .collect();
        format!("[{body} for {}]", parts.join(", "))
    }
}

pub fn fmt_const(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{v}")
    }
}
