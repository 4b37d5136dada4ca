//! Checking expressions: names, shapes, index bounds, builtins and `fn` inlining.

use super::builtins::{self, Builtin};
use super::model::*;
use super::{Checker, Global, GlobalEntry, R};
use crate::affine::Domain;
use crate::diag::{did_you_mean, Code, Diagnostic, Span};
use crate::ops::{BinOp, UnOp};
use crate::syntax::ast::{self, BinaryOp, ExprKind, UnaryOp};
use std::sync::Arc;

/// Deepest chain of `fn` calls inside `fn` calls.
const MAX_INLINE_DEPTH: usize = 64;

#[derive(Clone)]
enum Local {
    Sym(IndexSym),
    Value(T),
}

/// What is in scope while checking one expression.
#[derive(Clone)]
pub(crate) struct Env {
    locals: Vec<(String, Local)>,
    /// Index symbols in scope, outermost first (for the range analysis).
    syms: Vec<IndexSym>,
    /// Inside a `fn` body: only globals declared up to this order are visible.
    visible: Option<usize>,
    /// Param defaults and var starts cannot use vars.
    no_vars: bool,
    /// Functions of a pde block, callable by later ones.
    local_fns: Vec<ast::FnDef>,
    inline_depth: usize,
}

impl Env {
    pub(crate) fn global() -> Env {
        Env {
            locals: Vec::new(),
            syms: Vec::new(),
            visible: None,
            no_vars: false,
            local_fns: Vec::new(),
            inline_depth: 0,
        }
    }

    pub(crate) fn param_default() -> Env {
        Env {
            no_vars: true,
            ..Env::global()
        }
    }

    /// The body of a pde function: its parameters are the inputs x, u, p by position.
    pub(crate) fn pde(params: &[ast::Ident], shapes: &[Shape], fns: &[ast::FnDef]) -> Env {
        let mut env = Env::global();
        for (k, (p, shape)) in params.iter().zip(shapes).enumerate() {
            let t = Arc::new(TExpr {
                kind: TKind::Input(k as u32),
                shape: shape.clone(),
                ty: Ty::Real,
                span: p.span,
            });
            env.locals.push((p.name.clone(), Local::Value(t)));
        }
        env.local_fns = fns.to_vec();
        env
    }

    fn lookup(&self, name: &str) -> Option<&Local> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l)
    }
}

impl Checker<'_> {
    pub(crate) fn mk(&mut self, kind: TKind, shape: Shape, ty: Ty, span: Span) -> R<T> {
        self.typed_nodes += 1;
        if self.typed_nodes > self.options.limits.max_typed_nodes {
            return Err(Diagnostic::error(
                Code::LimitExceeded,
                format!("the model grew past {} expression nodes", self.options.limits.max_typed_nodes),
            )
            .at(span, "while expanding this")
            .help("fn calls are inlined: deeply nested calls multiply the size; simplify, or raise the limit"));
        }
        Ok(Arc::new(TExpr {
            kind,
            shape,
            ty,
            span,
        }))
    }

    fn real_node(&mut self, kind: TKind, shape: Shape, span: Span) -> R<T> {
        self.mk(kind, shape, Ty::Real, span)
    }

    pub(crate) fn real(&self, t: &T) -> R<()> {
        if t.ty == Ty::Bool {
            return Err(
                Diagnostic::error(Code::NotBoolean, "a comparison used as a number")
                    .at(t.span, "this is true/false, not a number")
                    .help("use `if c then a else b` to turn a condition into a value"),
            );
        }
        Ok(())
    }

    pub(crate) fn scalar_real(&self, t: &T, what: &str) -> R<()> {
        self.real(t)?;
        if !t.shape.is_empty() {
            return Err(Diagnostic::error(
                Code::ExpectedScalar,
                format!("{what} must be a scalar"),
            )
            .at(t.span, format!("this is {}", shape_str(&t.shape)))
            .help("reduce it to a number, e.g. with sum(...), dot(...) or norm2(...)"));
        }
        Ok(())
    }

    fn new_sym(&mut self, name: &str, lo: Affine, hi: Affine, span: Span) -> IndexSym {
        let id = IndexSym(self.model.syms.len() as u32);
        self.model.syms.push(SymInfo {
            name: name.to_string(),
            lo,
            hi,
            span,
        });
        id
    }

    /// A scalar filling a shape.
    pub(crate) fn broadcast(&mut self, t: T, shape: &Shape) -> T {
        if shape.is_empty() || t.shape == *shape {
            return t;
        }
        let span = t.span;
        let syms: Vec<(IndexSym, i64, usize)> = shape
            .iter()
            .map(|&n| {
                (
                    self.new_sym("b", Affine::constant(1), Affine::constant(n as i64), span),
                    1,
                    n,
                )
            })
            .collect();
        Arc::new(TExpr {
            kind: TKind::Comprehension(syms, t),
            shape: shape.clone(),
            ty: Ty::Real,
            span,
        })
    }

    /// An elementwise binary operation; a scalar operand broadcasts.
    pub(crate) fn elementwise(&mut self, op: BinOp, a: T, b: T, span: Span) -> R<T> {
        let shape = if a.shape == b.shape || b.shape.is_empty() {
            a.shape.clone()
        } else if a.shape.is_empty() {
            b.shape.clone()
        } else {
            return Err(Diagnostic::error(
                Code::ShapeMismatch,
                format!(
                    "`{}` between {} and {}",
                    op.name(),
                    shape_str(&a.shape),
                    shape_str(&b.shape)
                ),
            )
            .at(operator_span(a.span, b.span, span), "shapes do not fit")
            .also(a.span, format!("this is {}", shape_str(&a.shape)))
            .also(b.span, format!("this is {}", shape_str(&b.shape)))
            .help("elementwise operations need equal shapes or a scalar on one side"));
        };
        let ty = if op.is_boolean() {
            Ty::Bool
        } else if (a.ty == Ty::Row || a.shape.is_empty())
            && (b.ty == Ty::Row || b.shape.is_empty())
            && (a.ty == Ty::Row || b.ty == Ty::Row)
        {
            Ty::Row
        } else {
            Ty::Real
        };
        self.mk(TKind::Binary(op, a, b), shape, ty, span)
    }

    // ---- the main walk ------------------------------------------------------------------

    pub(crate) fn expr(&mut self, e: &ast::Expr, env: &mut Env) -> R<T> {
        match &e.kind {
            ExprKind::Number(v) => self.real_node(TKind::Const(*v), vec![], e.span),
            ExprKind::Str(_) => Err(Diagnostic::error(
                Code::BadArgument,
                "a string where a value belongs",
            )
            .at(e.span, "strings only name files in load(\"...\")")
            .help("remove the quotes, or use load(...) in a param declaration")),
            ExprKind::Name(n) => self.name(n, e.span, env),
            ExprKind::Paren(a) => self.expr(a, env),
            ExprKind::Unary(op, a) => {
                let t = self.expr(a, env)?;
                match op {
                    UnaryOp::Plus => {
                        self.real(&t)?;
                        Ok(t)
                    }
                    UnaryOp::Neg => {
                        self.real(&t)?;
                        let shape = t.shape.clone();
                        self.real_node(TKind::Unary(UnOp::Neg, t), shape, e.span)
                    }
                    UnaryOp::Not => {
                        if t.ty != Ty::Bool {
                            return Err(not_bool(&t, "not"));
                        }
                        let shape = t.shape.clone();
                        self.mk(TKind::Unary(UnOp::Not, t), shape, Ty::Bool, e.span)
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e.span, env),
            ExprKind::Transpose(a) => {
                let t = self.expr(a, env)?;
                self.real(&t)?;
                if t.ty == Ty::Row {
                    // (x')' is x again.
                    let n = t.shape[1];
                    return self.real_node(TKind::Transpose(t), vec![n], e.span);
                }
                let shape = match t.shape.as_slice() {
                    [] => return Ok(t),
                    [n] => {
                        let n = *n;
                        return self.mk(TKind::Transpose(t), vec![1, n], Ty::Row, e.span);
                    }
                    [m, n] => vec![*n, *m],
                    _ => {
                        return Err(Diagnostic::error(Code::IndexRank, "transpose of a tensor of rank above 2")
                            .at(e.span, format!("this is {}", shape_str(&t.shape)))
                            .help("write the permutation as a comprehension: [A[k, j, i] for i in .., j in .., k in ..]"))
                    }
                };
                self.real_node(TKind::Transpose(t), shape, e.span)
            }
            ExprKind::Call(f, args) => self.call(f, args, e.span, env),
            ExprKind::Index(base, args) => self.index(base, args, e.span, env),
            ExprKind::Sum(bindings, body) => self.sum(bindings, body, env),
            ExprKind::Comprehension(body, bindings) => {
                self.comprehension(body, bindings, e.span, env)
            }
            ExprKind::Array(items) => self.array(items, e.span, env),
            ExprKind::If(c, a, b) => {
                let tc = self.expr(c, env)?;
                if tc.ty != Ty::Bool {
                    return Err(not_bool(&tc, "if"));
                }
                let ta = self.expr(a, env)?;
                let tb = self.expr(b, env)?;
                self.real(&ta)?;
                self.real(&tb)?;
                let mut shape: Shape = vec![];
                for t in [&tc, &ta, &tb] {
                    if !t.shape.is_empty() {
                        if !shape.is_empty() && shape != t.shape {
                            return Err(Diagnostic::error(
                                Code::ShapeMismatch,
                                "the parts of `if` have different shapes",
                            )
                            .at(e.span, "shapes do not fit")
                            .also(tc.span, shape_str(&tc.shape))
                            .also(ta.span, shape_str(&ta.shape))
                            .also(tb.span, shape_str(&tb.shape))
                            .help("condition and branches need equal shapes or scalars"));
                        }
                        shape = t.shape.clone();
                    }
                }
                self.real_node(TKind::Select(tc, ta, tb), shape, e.span)
            }
        }
    }

    fn name(&mut self, n: &str, span: Span, env: &mut Env) -> R<T> {
        match env.lookup(n) {
            Some(Local::Sym(s)) => return self.real_node(TKind::IndexVal(*s), vec![], span),
            Some(Local::Value(t)) => return Ok(t.clone()),
            None => {}
        }
        if env.local_fns.iter().any(|f| f.name.name == n) {
            return Err(
                Diagnostic::error(Code::NotInScope, format!("`{n}` is a function"))
                    .at(span, "used as a value")
                    .help(format!("call it: `{n}(x)`")),
            );
        }
        if let Some(entry) = self.visible(n, env) {
            return match entry.what {
                Global::Dim(id) => {
                    let v = self.dim_value(id, span)?;
                    self.real_node(TKind::Const(v as f64), vec![], span)
                }
                Global::Param(id) => {
                    let shape = self.model.param(id).shape.clone();
                    self.real_node(TKind::Param(id), shape, span)
                }
                Global::Var(id) => {
                    if env.no_vars {
                        return Err(Diagnostic::error(Code::DependsOnVar, format!("`{n}` is a var"))
                            .at(span, "a var here")
                            .also(entry.span, "declared here")
                            .help("param values and var starting values are computed before solving; they cannot use vars"));
                    }
                    let shape = self.model.var(id).shape.clone();
                    self.real_node(TKind::Var(id), shape, span)
                }
                Global::Let(id) => {
                    let l = &self.model.lets[id.index()];
                    let shape = l.expr.shape.clone();
                    if env.no_vars && !super::system::vars_in(&l.expr, &self.model).is_empty() {
                        return Err(Diagnostic::error(
                            Code::DependsOnVar,
                            format!("`{n}` depends on vars"),
                        )
                        .at(span, "used here")
                        .also(entry.span, "defined here")
                        .help("param values and var starting values cannot depend on vars"));
                    }
                    self.real_node(TKind::Let(id), shape, span)
                }
                Global::Fn(_) => Err(Diagnostic::error(
                    Code::NotInScope,
                    format!("`{n}` is a function"),
                )
                .at(span, "used as a value")
                .help(format!("call it: `{n}(...)`"))),
                Global::Constraint(_) => Err(Diagnostic::error(
                    Code::NotInScope,
                    format!("`{n}` is a constraint"),
                )
                .at(span, "used as a value")
                .help(format!("its multipliers are `dual({n})`"))),
                Global::Pde => Err(Diagnostic::error(
                    Code::NotInScope,
                    format!("`{n}` is a pde block"),
                )
                .at(span, "used as a value")
                .help(format!("solve it with `solve {n} using barron(...)`"))),
            };
        }
        if let Some((_, v)) = builtins::CONSTANTS.iter().find(|c| c.0 == n) {
            return self.real_node(TKind::Const(*v), vec![], span);
        }
        if builtins::lookup(n).is_some() {
            return Err(Diagnostic::error(
                Code::NotInScope,
                format!("`{n}` is a builtin function"),
            )
            .at(span, "used as a value")
            .help(format!("call it: `{n}(...)`")));
        }
        // A global declared later than the fn being inlined.
        if let Some(entry) = self.globals.get(n) {
            return Err(Diagnostic::error(
                Code::UnknownName,
                format!("`{n}` is declared after this fn"),
            )
            .at(span, "not visible here")
            .also(entry.span, "declared here")
            .help("declare it before the fn that uses it"));
        }
        let locals: Vec<&str> = env.locals.iter().map(|(n, _)| n.as_str()).collect();
        Err(self.unknown_name(n, span, &locals))
    }

    fn visible(&mut self, n: &str, env: &Env) -> Option<GlobalEntry> {
        let entry = self.globals.get(n)?;
        let entry = match env.visible {
            Some(limit) if entry.order > limit => return None,
            _ => entry.clone(),
        };
        self.used.insert(n.to_string());
        Some(entry)
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        a: &ast::Expr,
        b: &ast::Expr,
        span: Span,
        env: &mut Env,
    ) -> R<T> {
        let ta = self.expr(a, env)?;
        let tb = self.expr(b, env)?;
        if op.is_logical() {
            for t in [&ta, &tb] {
                if t.ty != Ty::Bool {
                    return Err(not_bool(t, op.symbol()));
                }
            }
            let bop = if op == BinaryOp::And {
                BinOp::And
            } else {
                BinOp::Or
            };
            return self.elementwise(bop, ta, tb, span);
        }
        self.real(&ta)?;
        self.real(&tb)?;
        let bop = match op {
            BinaryOp::Add => BinOp::Add,
            BinaryOp::Sub => BinOp::Sub,
            BinaryOp::EMul => BinOp::Mul,
            BinaryOp::EDiv | BinaryOp::Div => BinOp::Div,
            BinaryOp::Pow => BinOp::Pow,
            BinaryOp::Eq => BinOp::Eq,
            BinaryOp::Ne => BinOp::Ne,
            BinaryOp::Lt => BinOp::Lt,
            BinaryOp::Le => BinOp::Le,
            BinaryOp::Gt => BinOp::Gt,
            BinaryOp::Ge => BinOp::Ge,
            BinaryOp::Mul => {
                if ta.shape.is_empty() || tb.shape.is_empty() {
                    BinOp::Mul
                } else {
                    return self.matmul(ta, tb, span);
                }
            }
            BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
        };
        self.elementwise(bop, ta, tb, span)
    }

    fn matmul(&mut self, a: T, b: T, span: Span) -> R<T> {
        let mismatch = |this: &Self, help: &str| -> Diagnostic {
            let _ = this;
            Diagnostic::error(
                Code::ProductMismatch,
                format!(
                    "cannot multiply {} by {}",
                    shape_str(&a.shape),
                    shape_str(&b.shape)
                ),
            )
            .at(operator_span(a.span, b.span, span), "in this product")
            .also(a.span, format!("this is {}", shape_str(&a.shape)))
            .also(b.span, format!("this is {}", shape_str(&b.shape)))
            .help(help.to_string())
        };
        match (a.shape.as_slice(), b.shape.as_slice()) {
            ([m, k], [k2, n]) if k == k2 => {
                let shape = vec![*m, *n];
                let ty = if a.ty == Ty::Row { Ty::Row } else { Ty::Real };
                self.mk(TKind::MatMul(a, b), shape, ty, span)
            }
            ([1, k], [k2]) if k == k2 && a.ty == Ty::Row => {
                // A row vector times a vector is a number: x'*y.
                let prod = self.real_node(TKind::MatMul(a, b), vec![1], span)?;
                self.real_node(TKind::Index(prod, vec![TIndex::At(Affine::constant(1))]), vec![], span)
            }
            ([m, k], [k2]) if k == k2 => {
                let shape = vec![*m];
                self.real_node(TKind::MatMul(a, b), shape, span)
            }
            ([m], [1, n]) => {
                // A vector times a row vector is the outer product.
                let (m, n) = (*m, *n);
                let i = self.new_sym("i", Affine::constant(1), Affine::constant(m as i64), span);
                let j = self.new_sym("j", Affine::constant(1), Affine::constant(n as i64), span);
                let ai = self.real_node(TKind::Index(a.clone(), vec![TIndex::At(Affine::sym(i))]), vec![], span)?;
                let bj = self.real_node(
                    TKind::Index(b.clone(), vec![TIndex::At(Affine::constant(1)), TIndex::At(Affine::sym(j))]),
                    vec![],
                    span,
                )?;
                let body = self.real_node(TKind::Binary(BinOp::Mul, ai, bj), vec![], span)?;
                self.real_node(TKind::Comprehension(vec![(i, 1, m), (j, 1, n)], body), vec![m, n], span)
            }
            ([_], [_]) => Err(mismatch(self, "a product of two vectors is ambiguous: use dot(a, b), a'*b, outer(a, b) or a .* b")),
            (sa, sb) if sa.len() > 2 || sb.len() > 2 => Err(mismatch(self, "`*` multiplies matrices and vectors; for tensors use sum(...) with indices")),
            _ => Err(mismatch(self, "the columns of the left factor must match the rows of the right; `.*` multiplies elementwise")),
        }
    }

    // ---- calls --------------------------------------------------------------------------

    fn call(&mut self, f: &ast::Ident, args: &[ast::Expr], span: Span, env: &mut Env) -> R<T> {
        if let Some(def) = env
            .local_fns
            .iter()
            .find(|d| d.name.name == f.name)
            .cloned()
        {
            return self.inline(&def, None, args, span, env);
        }
        if let Some(entry) = self.visible(&f.name, env) {
            if let Global::Fn(idx) = entry.what {
                let info = self.fns[idx].clone();
                return self.inline(&info.def, Some(info.order), args, span, env);
            }
            if builtins::lookup(&f.name).is_none() {
                return Err(Diagnostic::error(
                    Code::UnknownFunction,
                    format!(
                        "`{}` is a {}, not a function",
                        f.name,
                        entry.what.describe()
                    ),
                )
                .at(f.span, "called here")
                .also(entry.span, "declared here")
                .help(
                    if matches!(
                        entry.what,
                        Global::Param(_) | Global::Var(_) | Global::Let(_)
                    ) {
                        format!("index it with brackets: `{}[i]`", f.name)
                    } else {
                        "only fns and builtins can be called".to_string()
                    },
                ));
            }
        }
        let Some((builtin, lo, hi)) = builtins::lookup(&f.name) else {
            let mut candidates: Vec<&str> = builtins::names().collect();
            let fn_names: Vec<String> = self
                .globals
                .iter()
                .filter(|(_, g)| matches!(g.what, Global::Fn(_)))
                .map(|(n, _)| n.clone())
                .collect();
            candidates.extend(fn_names.iter().map(String::as_str));
            let mut d = Diagnostic::error(
                Code::UnknownFunction,
                format!("unknown function `{}`", f.name),
            )
            .at(f.span, "not a builtin or a fn");
            d = match did_you_mean(&f.name, candidates) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None if self.globals.contains_key(&f.name) => d.help("it is declared after the fn that calls it; a fn cannot call itself or later fns"),
                None => d.help(format!("define it first: `fn {}(x) = ...`, or `use` the module that has it", f.name)),
            };
            return Err(d);
        };
        if args.len() < lo || args.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo} to {hi}")
            };
            let mut d = Diagnostic::error(
                Code::Arity,
                format!("`{}` takes {want} argument(s), got {}", f.name, args.len()),
            )
            .at(span, "in this call");
            if matches!(builtin, Builtin::Binary(BinOp::Max | BinOp::Min)) && args.len() == 1 {
                d = d.help(format!(
                    "for the largest or smallest entry of a tensor use `{}imum(x)`",
                    f.name
                ));
            } else {
                d = d.help(format!("call it with {want} argument(s)"));
            }
            return Err(d);
        }
        self.builtin(builtin, f, args, span, env)
    }

    /// Inlines a `fn`: its body is checked with the parameters bound to the arguments.
    fn inline(
        &mut self,
        def: &ast::FnDef,
        order: Option<usize>,
        args: &[ast::Expr],
        span: Span,
        env: &mut Env,
    ) -> R<T> {
        if args.len() != def.params.len() {
            return Err(Diagnostic::error(
                Code::Arity,
                format!(
                    "`{}` takes {} argument(s), got {}",
                    def.name.name,
                    def.params.len(),
                    args.len()
                ),
            )
            .at(span, "in this call")
            .also(def.name.span, "defined here")
            .help(format!("call it with {} argument(s)", def.params.len())));
        }
        if env.inline_depth >= MAX_INLINE_DEPTH {
            return Err(Diagnostic::error(
                Code::TooDeep,
                format!("fn calls nested more than {MAX_INLINE_DEPTH} deep"),
            )
            .at(span, "here")
            .help("flatten the chain of fns"));
        }
        let mut bound = Vec::new();
        for (p, a) in def.params.iter().zip(args) {
            let t = self.expr(a, env)?;
            bound.push((p.name.clone(), Local::Value(t)));
        }
        let mut inner = Env {
            locals: bound,
            syms: env.syms.clone(),
            visible: order.or(env.visible),
            no_vars: env.no_vars,
            local_fns: if order.is_some() {
                Vec::new()
            } else {
                env.local_fns.clone()
            },
            inline_depth: env.inline_depth + 1,
        };
        self.expr(&def.body, &mut inner).map_err(|d| {
            if d.primary.as_ref().map(|p| p.span.file) != Some(span.file)
                || !d.secondary.iter().any(|s| s.span == span)
            {
                d.also(span, format!("in this call of `{}`", def.name.name))
            } else {
                d
            }
        })
    }

    fn wrt(&mut self, e: &ast::Expr, env: &Env, what: &str) -> R<Wrt> {
        let ExprKind::Name(n) = &e.kind else {
            return Err(Diagnostic::error(
                Code::BadArgument,
                format!("{what} differentiates with respect to a var or param by name"),
            )
            .at(e.span, "not a name")
            .help(format!("write {what}(e, x) with x a var or param")));
        };
        match self.visible(n, env).map(|g| g.what) {
            Some(Global::Var(v)) if !env.no_vars => Ok(Wrt::Var(v)),
            Some(Global::Param(p)) => Ok(Wrt::Param(p)),
            Some(other) => Err(Diagnostic::error(
                Code::NotAParam,
                format!("`{n}` is a {}", other.describe()),
            )
            .at(e.span, "not a var or param")
            .help("derivatives are taken with respect to a var or a param")),
            None => {
                if env.lookup(n).is_some() {
                    return Err(Diagnostic::error(Code::NotAParam, format!("`{n}` is a local name"))
                        .at(e.span, "not a var or param")
                        .help("inside a fn, differentiate with respect to the var itself: grad(f(w), w) at the call site"));
                }
                Err(self.unknown_name(n, e.span, &[]))
            }
        }
    }

    fn builtin(
        &mut self,
        b: Builtin,
        f: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        env: &mut Env,
    ) -> R<T> {
        // Builtins whose arguments are not ordinary values.
        match b {
            Builtin::Load => {
                return Err(Diagnostic::error(
                    Code::LoadMisplaced,
                    "load(...) inside an expression",
                )
                .at(span, "not allowed here")
                .help("load data into a param first: `param X: real[m, n] = load(\"X.csv\")`"))
            }
            Builtin::Dual => {
                let ExprKind::Name(n) = &args[0].kind else {
                    return Err(Diagnostic::error(
                        Code::BadArgument,
                        "dual takes the name of a constraint",
                    )
                    .at(args[0].span, "not a name")
                    .help("write dual(NAME) for `subject to NAME: ...`"));
                };
                return match self.visible(n, env).map(|g| g.what) {
                    Some(Global::Constraint(c)) => {
                        let shape = self.model.constraints[c.index()].g.shape.clone();
                        self.real_node(TKind::Dual(c), shape, span)
                    }
                    _ => {
                        let names: Vec<&str> = self
                            .model
                            .constraints
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect();
                        let mut d = Diagnostic::error(
                            Code::UnknownConstraint,
                            format!("no constraint named `{n}`"),
                        )
                        .at(args[0].span, "not a constraint");
                        d = match did_you_mean(n, names.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("dual(NAME) takes the name of a `subject to NAME: ...` declared before"),
                        };
                        Err(d)
                    }
                };
            }
            Builtin::Grad | Builtin::Jac | Builtin::Hess => {
                let w = self.wrt(&args[1], env, &f.name)?;
                let e = self.expr(&args[0], env)?;
                self.real(&e)?;
                let wshape = self.model.wrt_shape(w).clone();
                return match b {
                    Builtin::Grad => {
                        self.scalar_real(&e, "the first argument of grad")?;
                        self.real_node(TKind::Grad(e, w), wshape, span)
                    }
                    Builtin::Jac => {
                        let shape: Shape = e.shape.iter().chain(&wshape).copied().collect();
                        self.check_entries(&shape, span)?;
                        self.real_node(TKind::Jac(e, w), shape, span)
                    }
                    _ => {
                        self.scalar_real(&e, "the first argument of hess")?;
                        let shape: Shape = wshape.iter().chain(&wshape).copied().collect();
                        self.check_entries(&shape, span)?;
                        self.real_node(TKind::Hess(e, w), shape, span)
                    }
                };
            }
            Builtin::Eye | Builtin::Ones | Builtin::Zeros => {
                let mut shape = Vec::new();
                for a in args {
                    let n = self.const_int(a, env)?;
                    if n <= 0 {
                        return Err(Diagnostic::error(
                            Code::BadDim,
                            format!("size {n} is not positive"),
                        )
                        .at(a.span, "here")
                        .help("sizes are positive integers"));
                    }
                    shape.push(n as usize);
                }
                if b == Builtin::Eye {
                    if shape.len() != 1 {
                        return Err(Diagnostic::error(Code::Arity, "eye takes one size")
                            .at(span, "here")
                            .help("eye(n) is n×n"));
                    }
                    shape.push(shape[0]);
                }
                self.check_entries(&shape, span)?;
                let n = numel(&shape);
                let values: Vec<f64> = match b {
                    Builtin::Ones => vec![1.0; n],
                    Builtin::Zeros => vec![0.0; n],
                    _ => (0..n)
                        .map(|k| {
                            if k / shape[0] == k % shape[0] {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                };
                return self.real_node(TKind::Literal(Arc::from(values)), shape, span);
            }
            _ => {}
        }
        let mut ts = Vec::new();
        for a in args {
            let t = self.expr(a, env)?;
            self.real(&t)?;
            ts.push(t);
        }
        let x = ts[0].clone();
        match b {
            Builtin::Unary(op) => {
                let shape = x.shape.clone();
                self.real_node(TKind::Unary(op, x), shape, span)
            }
            Builtin::Binary(op) => self.elementwise(op, x, ts[1].clone(), span),
            Builtin::Relu => {
                let zero = self.real_node(TKind::Const(0.0), vec![], span)?;
                self.elementwise(BinOp::Max, x, zero, span)
            }
            Builtin::Sum => self.sum_all(x, span),
            Builtin::Mean => {
                let n = numel(&x.shape) as f64;
                let s = self.sum_all(x, span)?;
                let d = self.real_node(TKind::Const(n), vec![], span)?;
                self.elementwise(BinOp::Div, s, d, span)
            }
            Builtin::Maximum => self.real_node(TKind::Reduce(ReduceOp::Max, x), vec![], span),
            Builtin::Minimum => self.real_node(TKind::Reduce(ReduceOp::Min, x), vec![], span),
            Builtin::Dot => {
                let y = ts[1].clone();
                if x.shape != y.shape {
                    return Err(Diagnostic::error(
                        Code::ShapeMismatch,
                        format!("dot of {} and {}", shape_str(&x.shape), shape_str(&y.shape)),
                    )
                    .at(span, "shapes differ")
                    .also(x.span, shape_str(&x.shape))
                    .also(y.span, shape_str(&y.shape))
                    .help("dot(a, b) needs two tensors of the same shape"));
                }
                let p = self.elementwise(BinOp::Mul, x, y, span)?;
                self.sum_all(p, span)
            }
            Builtin::Norm2 => {
                let p = self.elementwise(BinOp::Mul, x.clone(), x, span)?;
                let s = self.sum_all(p, span)?;
                self.real_node(TKind::Unary(UnOp::Sqrt, s), vec![], span)
            }
            Builtin::Norm1 => {
                let shape = x.shape.clone();
                let a = self.real_node(TKind::Unary(UnOp::Abs, x), shape, span)?;
                self.sum_all(a, span)
            }
            Builtin::NormInf => {
                let shape = x.shape.clone();
                let a = self.real_node(TKind::Unary(UnOp::Abs, x), shape, span)?;
                self.real_node(TKind::Reduce(ReduceOp::Max, a), vec![], span)
            }
            Builtin::Trace | Builtin::Diag => {
                let n = match x.shape.as_slice() {
                    [m, n] if m == n => *n,
                    _ => {
                        return Err(Diagnostic::error(
                            Code::NotSquareMatrix,
                            format!("{} of {}", f.name, shape_str(&x.shape)),
                        )
                        .at(args[0].span, format!("this is {}", shape_str(&x.shape)))
                        .help("the argument must be a square matrix"))
                    }
                };
                let i = self.new_sym("i", Affine::constant(1), Affine::constant(n as i64), span);
                let at = Affine::sym(i);
                let xii = self.real_node(
                    TKind::Index(x, vec![TIndex::At(at.clone()), TIndex::At(at)]),
                    vec![],
                    span,
                )?;
                if b == Builtin::Trace {
                    self.real_node(
                        TKind::Sum(i, Affine::constant(1), Affine::constant(n as i64), xii),
                        vec![],
                        span,
                    )
                } else {
                    self.real_node(TKind::Comprehension(vec![(i, 1, n)], xii), vec![n], span)
                }
            }
            Builtin::DiagM => {
                let [n] = x.shape.as_slice() else {
                    return Err(Diagnostic::error(
                        Code::ShapeMismatch,
                        format!("diagm of {}", shape_str(&x.shape)),
                    )
                    .at(args[0].span, "not a vector")
                    .help("diagm(v) takes a vector"));
                };
                let n = *n;
                let i = self.new_sym("i", Affine::constant(1), Affine::constant(n as i64), span);
                let j = self.new_sym("j", Affine::constant(1), Affine::constant(n as i64), span);
                let iv = self.real_node(TKind::IndexVal(i), vec![], span)?;
                let jv = self.real_node(TKind::IndexVal(j), vec![], span)?;
                let c = self.mk(TKind::Binary(BinOp::Eq, iv, jv), vec![], Ty::Bool, span)?;
                let xi = self.real_node(
                    TKind::Index(x, vec![TIndex::At(Affine::sym(i))]),
                    vec![],
                    span,
                )?;
                let zero = self.real_node(TKind::Const(0.0), vec![], span)?;
                let body = self.real_node(TKind::Select(c, xi, zero), vec![], span)?;
                self.real_node(
                    TKind::Comprehension(vec![(i, 1, n), (j, 1, n)], body),
                    vec![n, n],
                    span,
                )
            }
            Builtin::Outer => {
                let y = ts[1].clone();
                let (m, n) = match (x.shape.as_slice(), y.shape.as_slice()) {
                    ([m], [n]) => (*m, *n),
                    _ => {
                        return Err(Diagnostic::error(
                            Code::ShapeMismatch,
                            "outer takes two vectors",
                        )
                        .at(
                            span,
                            format!("{} and {}", shape_str(&x.shape), shape_str(&y.shape)),
                        )
                        .help("outer(a, b) = a bᵀ for vectors a, b"))
                    }
                };
                self.check_entries(&[m, n], span)?;
                let i = self.new_sym("i", Affine::constant(1), Affine::constant(m as i64), span);
                let j = self.new_sym("j", Affine::constant(1), Affine::constant(n as i64), span);
                let xi = self.real_node(
                    TKind::Index(x, vec![TIndex::At(Affine::sym(i))]),
                    vec![],
                    span,
                )?;
                let yj = self.real_node(
                    TKind::Index(y, vec![TIndex::At(Affine::sym(j))]),
                    vec![],
                    span,
                )?;
                let body = self.real_node(TKind::Binary(BinOp::Mul, xi, yj), vec![], span)?;
                self.real_node(
                    TKind::Comprehension(vec![(i, 1, m), (j, 1, n)], body),
                    vec![m, n],
                    span,
                )
            }
            Builtin::Length => self.real_node(TKind::Const(numel(&x.shape) as f64), vec![], span),
            Builtin::Size => {
                let k = self.const_int(&args[1], env)?;
                if k < 1 || k as usize > x.shape.len() {
                    return Err(Diagnostic::error(
                        Code::IndexOutOfRange,
                        format!("size(x, {k}) of {}", shape_str(&x.shape)),
                    )
                    .at(args[1].span, format!("x has rank {}", x.shape.len()))
                    .help("k counts the sizes from 1"));
                }
                self.real_node(TKind::Const(x.shape[k as usize - 1] as f64), vec![], span)
            }
            Builtin::OpNorm2 => {
                if !env.no_vars {
                    return Err(Diagnostic::error(
                        Code::NotInScope,
                        "opnorm2 is computed once, at load time",
                    )
                    .at(span, "not allowed here")
                    .help("compute it in a param: `param L = opnorm2(X)`"));
                }
                if x.shape.len() > 2 {
                    return Err(Diagnostic::error(
                        Code::ShapeMismatch,
                        "opnorm2 of a tensor of rank above 2",
                    )
                    .at(args[0].span, shape_str(&x.shape))
                    .help("opnorm2 takes a matrix or a vector"));
                }
                self.real_node(TKind::LoadTime(LoadTimeFn::OpNorm2, x), vec![], span)
            }
            Builtin::Eye
            | Builtin::Ones
            | Builtin::Zeros
            | Builtin::Load
            | Builtin::Dual
            | Builtin::Grad
            | Builtin::Jac
            | Builtin::Hess => {
                unreachable!("handled before the arguments are checked")
            }
        }
    }

    /// Σ over every entry.
    fn sum_all(&mut self, x: T, span: Span) -> R<T> {
        if x.shape.is_empty() {
            return Ok(x);
        }
        let shape = x.shape.clone();
        let syms: Vec<IndexSym> = shape
            .iter()
            .map(|&n| self.new_sym("k", Affine::constant(1), Affine::constant(n as i64), span))
            .collect();
        let idx = syms.iter().map(|&s| TIndex::At(Affine::sym(s))).collect();
        let mut body = self.real_node(TKind::Index(x, idx), vec![], span)?;
        for (&s, &n) in syms.iter().zip(&shape).rev() {
            body = self.real_node(
                TKind::Sum(s, Affine::constant(1), Affine::constant(n as i64), body),
                vec![],
                span,
            )?;
        }
        Ok(body)
    }

    // ---- indexing ------------------------------------------------------------------------

    fn index(
        &mut self,
        base: &ast::Expr,
        args: &[ast::IndexArg],
        span: Span,
        env: &mut Env,
    ) -> R<T> {
        let t = self.expr(base, env)?;
        self.real(&t)?;
        if args.len() != t.shape.len() {
            return Err(Diagnostic::error(
                Code::IndexRank,
                format!(
                    "{} indices for a tensor of rank {}",
                    args.len(),
                    t.shape.len()
                ),
            )
            .at(span, format!("{} indices", args.len()))
            .also(base.span, format!("this is {}", shape_str(&t.shape)))
            .help(if t.shape.is_empty() {
                "a scalar takes no index".to_string()
            } else {
                format!("give {} indices (use `:` for a whole axis)", t.shape.len())
            }));
        }
        let domain = self.domain(env);
        let mut out = Vec::new();
        let mut shape = Vec::new();
        for (k, (arg, &size)) in args.iter().zip(&t.shape).enumerate() {
            match arg {
                ast::IndexArg::At(e) => {
                    let a = self.affine(e, env)?;
                    self.check_in_range(&domain, &a, 0, size, e.span, k)?;
                    out.push(TIndex::At(a));
                }
                ast::IndexArg::Full(_) => {
                    out.push(TIndex::Slice {
                        start: Affine::constant(1),
                        len: size,
                    });
                    shape.push(size);
                }
                ast::IndexArg::Range(lo, hi) => {
                    let a = self.affine(lo, env)?;
                    let b = self.affine(hi, env)?;
                    let Some(len) = b.add(&a, -1).as_const() else {
                        return Err(Diagnostic::error(
                            Code::NonStaticRange,
                            "a slice whose length depends on an index variable",
                        )
                        .at(lo.span.to(hi.span), "length not fixed")
                        .help("slices must have a fixed length, e.g. x[i..i+2]"));
                    };
                    if len < 0 {
                        return Err(Diagnostic::error(Code::IndexOutOfRange, "an empty slice")
                            .at(lo.span.to(hi.span), "the end is before the start")
                            .help("ranges a..b are inclusive and need a ≤ b"));
                    }
                    let len = len as usize + 1;
                    self.check_in_range(&domain, &a, len - 1, size, lo.span.to(hi.span), k)?;
                    out.push(TIndex::Slice { start: a, len });
                    shape.push(len);
                }
            }
        }
        self.real_node(TKind::Index(t, out), shape, span)
    }

    fn domain(&self, env: &Env) -> Domain<IndexSym> {
        let mut d = Domain::new();
        for &s in &env.syms {
            let info = &self.model.syms[s.index()];
            d.push(s, vec![info.lo.clone()], vec![info.hi.clone()]);
        }
        d.tighten();
        d
    }

    /// Proves `1 ≤ a` and `a + extra ≤ size` over the index domain.
    fn check_in_range(
        &self,
        domain: &Domain<IndexSym>,
        a: &Affine,
        extra: usize,
        size: usize,
        span: Span,
        axis: usize,
    ) -> R<()> {
        let lo = domain.min(a);
        let hi = domain.max(a).map(|h| h + extra as i64);
        let ok = matches!((lo, hi), (Some(l), Some(h)) if l >= 1 && h <= size as i64);
        if ok {
            return Ok(());
        }
        let range = match (lo, hi) {
            (Some(l), Some(h)) if l == h => format!("{l}"),
            (Some(l), Some(h)) => format!("{l}..{h}"),
            _ => "an unknown range".to_string(),
        };
        Err(Diagnostic::error(
            Code::IndexOutOfRange,
            format!("index {} takes values {range}, outside 1..{size}", axis + 1),
        )
        .at(span, format!("can be {range}"))
        .help(format!(
            "axis {} has size {size}; indices are 1-based and ranges a..b inclusive",
            axis + 1
        )))
    }

    /// An integer affine form of index symbols, dims and integer constants.
    pub(crate) fn affine(&mut self, e: &ast::Expr, env: &Env) -> R<Affine> {
        let not_affine = |why: &str| {
            Diagnostic::error(Code::NonAffineIndex, "an index must be affine in index variables")
                .at(e.span, why.to_string())
                .help("indices are integers like i, i+1, n-j, 2*i: made of index variables, dims and integer constants")
        };
        match &e.kind {
            ExprKind::Number(v) => {
                if *v == v.trunc() && v.abs() < 1e15 {
                    Ok(Affine::constant(*v as i64))
                } else {
                    Err(not_affine("not an integer"))
                }
            }
            ExprKind::Paren(a) => self.affine(a, env),
            ExprKind::Name(n) => match env.lookup(n) {
                Some(Local::Sym(s)) => Ok(Affine::sym(*s)),
                Some(Local::Value(t)) => match &t.kind {
                    TKind::IndexVal(s) => Ok(Affine::sym(*s)),
                    TKind::Const(v) if *v == v.trunc() => Ok(Affine::constant(*v as i64)),
                    _ => Err(not_affine("a value, not an index")),
                },
                None => match self.visible(n, env).map(|g| g.what) {
                    Some(Global::Dim(id)) => {
                        Ok(Affine::constant(self.dim_value(id, e.span)? as i64))
                    }
                    Some(_) => Err(not_affine("a param, var or let cannot be an index")),
                    None => Err(self.unknown_name(n, e.span, &[])),
                },
            },
            ExprKind::Unary(UnaryOp::Neg, a) => Ok(self.affine(a, env)?.scale(-1)),
            ExprKind::Unary(UnaryOp::Plus, a) => self.affine(a, env),
            ExprKind::Binary(BinaryOp::Add, a, b) => {
                Ok(self.affine(a, env)?.add(&self.affine(b, env)?, 1))
            }
            ExprKind::Binary(BinaryOp::Sub, a, b) => {
                Ok(self.affine(a, env)?.add(&self.affine(b, env)?, -1))
            }
            ExprKind::Binary(BinaryOp::Mul, a, b) => {
                let x = self.affine(a, env)?;
                let y = self.affine(b, env)?;
                match (x.as_const(), y.as_const()) {
                    (Some(k), _) => Ok(y.scale(k)),
                    (_, Some(k)) => Ok(x.scale(k)),
                    _ => Err(not_affine("a product of two index variables")),
                }
            }
            ExprKind::Call(f, args) if f.name == "length" || f.name == "size" => {
                let mut scratch = env.clone();
                let t = self.call(f, args, e.span, &mut scratch)?;
                match t.kind {
                    TKind::Const(v) => Ok(Affine::constant(v as i64)),
                    _ => Err(not_affine("not a constant")),
                }
            }
            _ => Err(not_affine("not an affine integer expression")),
        }
    }

    /// An integer known when the model is built (sizes, cube(d), size(...)).
    pub(crate) fn const_int(&mut self, e: &ast::Expr, env: &Env) -> R<i64> {
        let a = self.affine(e, env).map_err(|d| {
            if d.code == Code::NonAffineIndex {
                Diagnostic::error(
                    Code::NonStaticRange,
                    "a size must be an integer known when the model is built",
                )
                .at(e.span, "not a constant integer")
                .help("use numbers and dims, e.g. `n`, `2*n + 1`")
            } else {
                d
            }
        })?;
        a.as_const().ok_or_else(|| {
            Diagnostic::error(
                Code::NonStaticRange,
                "a size must not depend on an index variable",
            )
            .at(e.span, "depends on an index variable")
            .help("use numbers and dims")
        })
    }

    /// A number known when the model is built (option values).
    pub(crate) fn const_f64(&mut self, e: &ast::Expr, env: &Env) -> R<f64> {
        let bad = || {
            Diagnostic::error(Code::BadArgument, "a constant number is needed here")
                .at(e.span, "not a constant")
                .help("write a number such as 1e-8, or a dim")
        };
        Ok(match &e.kind {
            ExprKind::Number(v) => *v,
            ExprKind::Paren(a) => self.const_f64(a, env)?,
            ExprKind::Unary(UnaryOp::Neg, a) => -self.const_f64(a, env)?,
            ExprKind::Unary(UnaryOp::Plus, a) => self.const_f64(a, env)?,
            ExprKind::Name(n) => {
                if let Some((_, v)) = builtins::CONSTANTS.iter().find(|c| c.0 == n.as_str()) {
                    *v
                } else {
                    match self.visible(n, env).map(|g| g.what) {
                        Some(Global::Dim(id)) => self.dim_value(id, e.span)? as f64,
                        _ => return Err(bad()),
                    }
                }
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.const_f64(a, env)?;
                let y = self.const_f64(b, env)?;
                match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul | BinaryOp::EMul => x * y,
                    BinaryOp::Div | BinaryOp::EDiv => x / y,
                    BinaryOp::Pow => x.powf(y),
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        })
    }

    // ---- binders ---------------------------------------------------------------------------

    fn bind(&mut self, b: &ast::Binding, env: &mut Env) -> R<IndexSym> {
        if builtins::is_builtin_name(&b.var.name) {
            return Err(Diagnostic::error(
                Code::ShadowsBuiltin,
                format!("`{}` is a builtin", b.var.name),
            )
            .at(b.var.span, "index name taken by a builtin")
            .help("pick another index name"));
        }
        let lo = self.affine(&b.lo, env)?;
        let hi = self.affine(&b.hi, env)?;
        let s = self.new_sym(&b.var.name, lo, hi, b.var.span);
        env.locals.push((b.var.name.clone(), Local::Sym(s)));
        env.syms.push(s);
        Ok(s)
    }

    fn sum(&mut self, bindings: &[ast::Binding], body: &ast::Expr, env: &mut Env) -> R<T> {
        let saved = (env.locals.len(), env.syms.len());
        let mut syms = Vec::new();
        let r = (|| {
            for b in bindings {
                syms.push((self.bind(b, env)?, b.span));
            }
            let t = self.expr(body, env)?;
            self.real(&t)?;
            let mut acc = t;
            for &(s, span) in syms.iter().rev() {
                let info = &self.model.syms[s.index()];
                let (lo, hi) = (info.lo.clone(), info.hi.clone());
                let shape = acc.shape.clone();
                let whole = span.to(acc.span);
                acc = self.real_node(TKind::Sum(s, lo, hi, acc), shape, whole)?;
            }
            Ok(acc)
        })();
        env.locals.truncate(saved.0);
        env.syms.truncate(saved.1);
        r
    }

    fn comprehension(
        &mut self,
        body: &ast::Expr,
        bindings: &[ast::Binding],
        span: Span,
        env: &mut Env,
    ) -> R<T> {
        let saved = (env.locals.len(), env.syms.len());
        let r = (|| {
            let mut axes = Vec::new();
            for b in bindings {
                let s = self.bind(b, env)?;
                let info = &self.model.syms[s.index()];
                let (Some(lo), Some(hi)) = (info.lo.as_const(), info.hi.as_const()) else {
                    return Err(Diagnostic::error(
                        Code::NonStaticRange,
                        "a comprehension's range must be fixed",
                    )
                    .at(b.span, "depends on an index variable")
                    .help("the size of a tensor is static: use numbers and dims in the range"));
                };
                if hi < lo {
                    return Err(Diagnostic::error(Code::BadDim, "an empty comprehension")
                        .at(b.span, format!("{lo}..{hi} is empty"))
                        .help("ranges a..b are inclusive and need a ≤ b"));
                }
                axes.push((s, lo, (hi - lo + 1) as usize));
            }
            let t = self.expr(body, env)?;
            self.real(&t)?;
            let shape: Shape = axes
                .iter()
                .map(|a| a.2)
                .chain(t.shape.iter().copied())
                .collect();
            self.check_entries(&shape, span)?;
            self.real_node(TKind::Comprehension(axes, t), shape, span)
        })();
        env.locals.truncate(saved.0);
        env.syms.truncate(saved.1);
        r
    }

    fn array(&mut self, items: &[ast::Expr], span: Span, env: &mut Env) -> R<T> {
        if items.is_empty() {
            return Err(Diagnostic::error(Code::RaggedLiteral, "an empty array")
                .at(span, "no elements")
                .help("arrays need at least one element"));
        }
        let mut ts = Vec::new();
        for e in items {
            let t = self.expr(e, env)?;
            self.real(&t)?;
            ts.push(t);
        }
        let first = ts[0].shape.clone();
        if let Some(bad) = ts.iter().find(|t| t.shape != first) {
            return Err(Diagnostic::error(
                Code::RaggedLiteral,
                "array elements of different shapes",
            )
            .at(bad.span, format!("this is {}", shape_str(&bad.shape)))
            .also(ts[0].span, format!("the first is {}", shape_str(&first)))
            .help("every element must have the same shape: [[1, 2], [3, 4]]"));
        }
        let shape: Shape = std::iter::once(ts.len())
            .chain(first.iter().copied())
            .collect();
        // A literal of constants stays a constant tensor.
        let mut values = Vec::new();
        let all_const = ts.iter().all(|t| match &t.kind {
            TKind::Const(v) => {
                values.push(*v);
                true
            }
            TKind::Literal(vs) => {
                values.extend_from_slice(vs);
                true
            }
            _ => false,
        });
        if all_const {
            return self.real_node(TKind::Literal(Arc::from(values)), shape, span);
        }
        self.real_node(TKind::Stack(ts), shape, span)
    }

    /// Resolves the names in a `fn` body without shapes (shapes are known only at calls).
    pub(crate) fn resolve_names_only(
        &self,
        body: &ast::Expr,
        params: &[String],
        fn_name: &str,
    ) -> R<()> {
        let mut scope: Vec<String> = params.to_vec();
        self.names_walk(body, &mut scope, fn_name)
    }

    fn names_walk(&self, e: &ast::Expr, scope: &mut Vec<String>, fn_name: &str) -> R<()> {
        match &e.kind {
            ExprKind::Number(_) | ExprKind::Str(_) => Ok(()),
            ExprKind::Name(n) => {
                if scope.iter().any(|s| s == n)
                    || self.globals.contains_key(n)
                    || builtins::CONSTANTS.iter().any(|c| c.0 == n)
                {
                    Ok(())
                } else {
                    let extra: Vec<&str> = scope.iter().map(String::as_str).collect();
                    Err(self.unknown_name(n, e.span, &extra))
                }
            }
            ExprKind::Unary(_, a) | ExprKind::Transpose(a) | ExprKind::Paren(a) => {
                self.names_walk(a, scope, fn_name)
            }
            ExprKind::Binary(_, a, b) => {
                self.names_walk(a, scope, fn_name)?;
                self.names_walk(b, scope, fn_name)
            }
            ExprKind::Call(f, args) => {
                if f.name == fn_name {
                    return Err(Diagnostic::error(Code::UnknownFunction, format!("`{fn_name}` calls itself"))
                        .at(f.span, "recursive call")
                        .help("fns are inlined, so they cannot be recursive; write the expansion with sum(...)"));
                }
                let known = builtins::lookup(&f.name).is_some()
                    || matches!(
                        self.globals.get(&f.name).map(|g| g.what),
                        Some(Global::Fn(_))
                    );
                if !known {
                    let mut candidates: Vec<&str> = builtins::names().collect();
                    candidates.extend(
                        self.globals
                            .iter()
                            .filter(|(_, g)| matches!(g.what, Global::Fn(_)))
                            .map(|(n, _)| n.as_str()),
                    );
                    let mut d = Diagnostic::error(
                        Code::UnknownFunction,
                        format!("unknown function `{}`", f.name),
                    )
                    .at(f.span, "not a builtin or a fn");
                    d = match did_you_mean(&f.name, candidates) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!("define `fn {}(...)` before this fn", f.name)),
                    };
                    return Err(d);
                }
                // grad/jac/hess and dual take names checked at the call.
                for a in args {
                    self.names_walk(a, scope, fn_name)?;
                }
                Ok(())
            }
            ExprKind::Index(base, args) => {
                self.names_walk(base, scope, fn_name)?;
                for a in args {
                    match a {
                        ast::IndexArg::At(x) => self.names_walk(x, scope, fn_name)?,
                        ast::IndexArg::Range(x, y) => {
                            self.names_walk(x, scope, fn_name)?;
                            self.names_walk(y, scope, fn_name)?;
                        }
                        ast::IndexArg::Full(_) => {}
                    }
                }
                Ok(())
            }
            ExprKind::Sum(bs, body) | ExprKind::Comprehension(body, bs) => {
                let n = scope.len();
                for b in bs {
                    self.names_walk(&b.lo, scope, fn_name)?;
                    self.names_walk(&b.hi, scope, fn_name)?;
                    scope.push(b.var.name.clone());
                }
                let r = self.names_walk(body, scope, fn_name);
                scope.truncate(n);
                r
            }
            ExprKind::Array(items) => items
                .iter()
                .try_for_each(|x| self.names_walk(x, scope, fn_name)),
            ExprKind::If(c, a, b) => {
                self.names_walk(c, scope, fn_name)?;
                self.names_walk(a, scope, fn_name)?;
                self.names_walk(b, scope, fn_name)
            }
        }
    }
}

fn not_bool(t: &T, what: &str) -> Diagnostic {
    Diagnostic::error(Code::NotBoolean, format!("`{what}` needs a condition"))
        .at(t.span, "this is a number, not a comparison")
        .help("write a comparison such as `x > 0`")
}

/// The text between two operands (the operator), so that the three labels of a binary
/// shape error do not overlap; the whole expression when the operands are not in order.
fn operator_span(a: Span, b: Span, whole: Span) -> Span {
    if a.file == b.file && a.end < b.start {
        Span {
            file: a.file,
            start: a.end,
            end: b.start,
        }
    } else {
        whole
    }
}
