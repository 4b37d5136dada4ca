//! AST → source text. Printing a parsed program and parsing the text again gives the same AST
//! (up to spans): grouping is kept through `Paren` nodes, so no parentheses are invented.

use super::ast::*;
use std::fmt::{self, Display, Formatter, Write};

fn fmt_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        // Rust's shortest round-trip representation; `1e-7` style exponents parse back.
        let s = format!("{v:?}");
        if s.contains('e') || s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    Ok(())
}

impl Display for Binding {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}..{}", self.var.name, self.lo, self.hi)
    }
}

impl Display for IndexArg {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            IndexArg::At(e) => write!(f, "{e}"),
            IndexArg::Range(a, b) => write!(f, "{a}..{b}"),
            IndexArg::Full(_) => f.write_str(":"),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Number(v) => f.write_str(&fmt_number(*v)),
            ExprKind::Str(s) => write!(f, "\"{s}\""),
            ExprKind::Name(n) => f.write_str(n),
            ExprKind::Unary(op, a) => match op {
                UnaryOp::Neg => write!(f, "-{a}"),
                UnaryOp::Plus => write!(f, "+{a}"),
                UnaryOp::Not => write!(f, "not {a}"),
            },
            ExprKind::Binary(op, a, b) => match op {
                BinaryOp::Pow => write!(f, "{a}^{b}"),
                _ => write!(f, "{a} {} {b}", op.symbol()),
            },
            ExprKind::Transpose(a) => write!(f, "{a}'"),
            ExprKind::Call(name, args) => {
                write!(f, "{}(", name.name)?;
                list(f, args)?;
                f.write_char(')')
            }
            ExprKind::Index(base, args) => {
                write!(f, "{base}[")?;
                list(f, args)?;
                f.write_char(']')
            }
            ExprKind::Sum(bs, body) => {
                f.write_str("sum(")?;
                list(f, bs)?;
                write!(f, ") {body}")
            }
            ExprKind::Comprehension(body, bs) => {
                write!(f, "[{body} for ")?;
                list(f, bs)?;
                f.write_char(']')
            }
            ExprKind::Array(items) => {
                f.write_char('[')?;
                list(f, items)?;
                f.write_char(']')
            }
            ExprKind::If(c, a, b) => write!(f, "if {c} then {a} else {b}"),
            ExprKind::Paren(a) => write!(f, "({a})"),
        }
    }
}

impl Display for Type {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("real")?;
        if !self.dims.is_empty() {
            f.write_char('[')?;
            list(f, &self.dims)?;
            f.write_char(']')?;
        }
        Ok(())
    }
}

impl Display for Decl {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.name)?;
        if let Some(t) = &self.ty {
            write!(f, ": {t}")?;
        }
        for c in &self.clauses {
            match c {
                DeclClause::Ge(e) => write!(f, " >= {e}")?,
                DeclClause::Le(e) => write!(f, " <= {e}")?,
                DeclClause::In(a, b) => write!(f, " in [{a}, {b}]")?,
                DeclClause::Init(e) => write!(f, " = {e}")?,
            }
        }
        Ok(())
    }
}

impl Display for Method {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.name)?;
        if !self.args.is_empty() {
            f.write_char('(')?;
            for (i, a) in self.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                if let Some(n) = &a.name {
                    write!(f, "{} = ", n.name)?;
                }
                write!(f, "{}", a.value)?;
            }
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl Display for Derivative {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.of {
            DerivOf::Expr(e) => write!(f, "d({e})/d({})", self.wrt.name),
            DerivOf::Derivative(d) => write!(f, "d({d})/d({})", self.wrt.name),
        }
    }
}

impl Display for Relation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if let Some((_, rhs)) = &self.single_eq {
            write!(f, " = {rhs}")?;
        }
        Ok(())
    }
}

impl Display for FnDef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name.name)?;
        let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        write!(f, "{}) = {}", names.join(", "), self.body)
    }
}

impl Display for Stmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let sense = |s: &Sense| match s {
            Sense::Minimize => "minimize",
            Sense::Maximize => "maximize",
        };
        match &self.kind {
            StmtKind::Dim(items) => {
                f.write_str("dim ")?;
                for (i, (n, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&n.name)?;
                    if let Some(v) = v {
                        write!(f, " = {v}")?;
                    }
                }
                Ok(())
            }
            StmtKind::Param(d) => write!(f, "param {d}"),
            StmtKind::Var(d) => write!(f, "var {d}"),
            StmtKind::Let(n, t, e) => {
                write!(f, "let {}", n.name)?;
                if let Some(t) = t {
                    write!(f, ": {t}")?;
                }
                write!(f, " = {e}")
            }
            StmtKind::Fn(def) => write!(f, "fn {def}"),
            StmtKind::Use(names) => {
                let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                write!(f, "use {}", names.join(", "))
            }
            StmtKind::Objective {
                sense: s,
                name,
                expr,
            } => match name {
                Some(n) => write!(f, "{} {} = {expr}", sense(s), n.name),
                None => write!(f, "{} {expr}", sense(s)),
            },
            StmtKind::Constraint { name, rel } => write!(f, "subject to {}: {rel}", name.name),
            StmtKind::Lagrangian { name, expr } => match name {
                Some(n) => write!(f, "lagrangian {} = {expr}", n.name),
                None => write!(f, "lagrangian {expr}"),
            },
            StmtKind::Condition { name, rel } => match name {
                Some(n) => write!(f, "condition {}: {rel}", n.name),
                None => write!(f, "condition {rel}"),
            },
            StmtKind::Solve { target, using } => {
                f.write_str("solve")?;
                if let Some(t) = target {
                    write!(f, " {}", t.name)?;
                }
                if let Some(u) = using {
                    write!(f, " using {u}")?;
                }
                Ok(())
            }
            StmtKind::Derive { d, using } => {
                write!(f, "derive {d}")?;
                if let Some(u) = using {
                    write!(f, " using {u}")?;
                }
                Ok(())
            }
            StmtKind::Tune {
                params,
                sense: s,
                expr,
                using,
            } => {
                let names: Vec<&str> = params.iter().map(|n| n.name.as_str()).collect();
                write!(f, "tune {} to {} {expr}", names.join(", "), sense(s))?;
                if let Some(u) = using {
                    write!(f, " using {u}")?;
                }
                Ok(())
            }
            StmtKind::Print(items) => {
                f.write_str("print ")?;
                list(f, items)
            }
            StmtKind::Pde { name, items } => {
                writeln!(f, "pde {} {{", name.name)?;
                for item in items {
                    f.write_str("  ")?;
                    match item {
                        PdeItem::Domain(m) => write!(f, "domain {m}")?,
                        PdeItem::Boundary(m) => write!(f, "boundary {m}")?,
                        PdeItem::Fn(kind, def) => {
                            let k = match kind {
                                PdeFnKind::Lagrangian => "lagrangian",
                                PdeFnKind::Source => "source",
                                PdeFnKind::Exact => "exact",
                            };
                            write!(f, "{k} {def}")?
                        }
                        PdeItem::Let(n, t, e) => {
                            write!(f, "let {}", n.name)?;
                            if let Some(t) = t {
                                write!(f, ": {t}")?;
                            }
                            write!(f, " = {e}")?
                        }
                        PdeItem::Param(d) => write!(f, "param {d}")?,
                    }
                    f.write_char('\n')?;
                }
                f.write_char('}')
            }
        }
    }
}

impl Display for Program {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for s in &self.stmts {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}
