//! pest parse tree → AST, with precedence climbing for expressions.

use super::ast::*;
use super::lines;
use crate::diag::{Code, Diagnostic, Diagnostics, FileId, Span};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::cell::RefCell;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/opt.pest"]
struct OptParser;

/// Deepest expression nesting accepted (protects every recursive phase downstream).
pub const MAX_EXPR_DEPTH: usize = 500;

/// Longest chain of prefix or right-associative operators in one expression (pest's
/// precedence climbing recurses once per such operator).
const MAX_OPERATOR_CHAIN: usize = 200;

/// Parses one source text into a program. Errors carry spans in `file`.
pub fn parse(src: &str, file: FileId) -> Result<Program, Diagnostics> {
    let text = lines::join_lines(src, file)?;
    let pairs = OptParser::parse(Rule::file, &text).map_err(|e| pest_error(e, &text, file))?;
    let builder = Builder {
        file,
        pratt: pratt(),
        errors: RefCell::new(Vec::new()),
    };
    let mut program = Program::default();
    for pair in pairs.flatten().take(1) {
        for stmt in kids(pair) {
            if stmt.as_rule() == Rule::EOI {
                continue;
            }
            match builder.stmt(stmt) {
                Ok(s) => program.stmts.push(s),
                Err(d) => builder.errors.borrow_mut().push(d),
            }
        }
    }
    let errors = builder.errors.into_inner();
    if errors.is_empty() {
        Ok(program)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Parses a single expression (used by the REPL and by `--set` values).
pub fn parse_expr(src: &str, file: FileId) -> Result<Expr, Diagnostics> {
    let text = lines::join_lines(src, file)?;
    let wrapped = OptParser::parse(Rule::expr, &text).map_err(|e| pest_error(e, &text, file))?;
    let pair = wrapped.peek().ok_or_else(|| {
        Diagnostic::error(Code::Syntax, "expected an expression").at(Span::new(file, 0, 0), "here")
    })?;
    if pair.as_span().end() != text.trim_end().len() {
        let at = pair.as_span().end();
        return Err(
            Diagnostic::error(Code::Syntax, "unexpected text after the expression")
                .at(
                    Span::new(file, at, text.len()),
                    "not part of the expression",
                )
                .into(),
        );
    }
    let builder = Builder {
        file,
        pratt: pratt(),
        errors: RefCell::new(Vec::new()),
    };
    let e = builder.expr(pair)?;
    let errors = builder.errors.into_inner();
    if errors.is_empty() {
        Ok(e)
    } else {
        Err(Diagnostics(errors))
    }
}

fn pratt() -> PrattParser<Rule> {
    PrattParser::new()
        .op(Op::prefix(Rule::if_prefix))
        .op(Op::infix(Rule::or_op, Assoc::Left))
        .op(Op::infix(Rule::and_op, Assoc::Left))
        .op(Op::prefix(Rule::not_op))
        .op(Op::infix(Rule::cmp_op, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        // `sum(...) body` binds like a product term: its body takes * and / but not + and -.
        .op(Op::prefix(Rule::sum_prefix))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::emul, Assoc::Left)
            | Op::infix(Rule::ediv, Assoc::Left))
        // Unary minus binds below ^: -x^2 is -(x^2).
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::plus))
        .op(Op::infix(Rule::pow, Assoc::Right))
        .op(Op::postfix(Rule::transpose) | Op::postfix(Rule::index))
}

type R<T> = Result<T, Diagnostic>;

/// The children of a pair that carry meaning (keyword tokens are dropped).
type Kids<'i> = std::vec::IntoIter<Pair<'i, Rule>>;

fn kids(p: Pair<'_, Rule>) -> Kids<'_> {
    p.into_inner()
        .filter(|q| !is_keyword(q.as_rule()))
        .collect::<Vec<_>>()
        .into_iter()
}

fn is_keyword(r: Rule) -> bool {
    format!("{r:?}").starts_with("k_")
}

struct Builder {
    file: FileId,
    pratt: PrattParser<Rule>,
    /// Errors that do not stop the statement (reserved words as names).
    errors: RefCell<Vec<Diagnostic>>,
}

impl Builder {
    /// The pair's span without trailing whitespace (pest keeps what optional parts skipped).
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        let trimmed = s.as_str().trim_end().len();
        Span::new(self.file, s.start(), s.start() + trimmed)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        let span = self.span(&p);
        if p.as_rule() == Rule::reserved {
            self.errors.borrow_mut().push(
                Diagnostic::error(
                    Code::ReservedWord,
                    format!("`{}` is a reserved word", p.as_str()),
                )
                .at(span, "cannot be used as a name")
                .help(format!("rename it, e.g. `{}_`", p.as_str())),
            );
        }
        Ident {
            name: p.as_str().to_string(),
            span,
        }
    }

    fn stmt(&self, p: Pair<Rule>) -> R<Stmt> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = kids(p);
        let kind = match rule {
            Rule::dim_stmt => {
                let mut items = Vec::new();
                for item in it {
                    let mut parts = kids(item);
                    let name = self.ident(next(&mut parts)?);
                    let value = parts.next().map(|e| self.expr(e)).transpose()?;
                    items.push((name, value));
                }
                StmtKind::Dim(items)
            }
            Rule::param_stmt => StmtKind::Param(self.decl(it)?),
            Rule::var_stmt => StmtKind::Var(self.decl(it)?),
            Rule::let_stmt => {
                let (name, ty, e) = self.let_parts(it)?;
                StmtKind::Let(name, ty, e)
            }
            Rule::fn_stmt => StmtKind::Fn(self.fn_def(it)?),
            Rule::use_stmt => StmtKind::Use(it.map(|n| self.ident(n)).collect()),
            Rule::objective_stmt => {
                let sense = sense(next(&mut it)?);
                let (name, expr) = self.optional_name_expr(it)?;
                StmtKind::Objective { sense, name, expr }
            }
            Rule::constraint_stmt => {
                let name = self.ident(next(&mut it)?);
                let rel = self.relation(next(&mut it)?)?;
                StmtKind::Constraint { name, rel }
            }
            Rule::lagrangian_stmt => {
                let (name, expr) = self.optional_name_expr(it)?;
                StmtKind::Lagrangian { name, expr }
            }
            Rule::condition_stmt => {
                let mut name = None;
                let mut rel = None;
                for q in it {
                    match q.as_rule() {
                        Rule::ident => name = Some(self.ident(q)),
                        _ => rel = Some(self.relation(q)?),
                    }
                }
                StmtKind::Condition {
                    name,
                    rel: rel.ok_or_else(|| self.internal(span))?,
                }
            }
            Rule::solve_stmt => {
                let mut target = None;
                let mut using = None;
                for q in it {
                    match q.as_rule() {
                        Rule::ident => target = Some(self.ident(q)),
                        _ => using = Some(self.using(q)?),
                    }
                }
                StmtKind::Solve { target, using }
            }
            Rule::derive_stmt => {
                let d = self.derivative(next(&mut it)?)?;
                let using = it.next().map(|u| self.using(u)).transpose()?;
                StmtKind::Derive { d, using }
            }
            Rule::tune_stmt => {
                let mut params = Vec::new();
                let mut sense_ = Sense::Minimize;
                let mut expr = None;
                let mut using = None;
                for q in it {
                    match q.as_rule() {
                        Rule::ident => params.push(self.ident(q)),
                        Rule::sense => sense_ = sense(q),
                        Rule::expr => expr = Some(self.expr(q)?),
                        _ => using = Some(self.using(q)?),
                    }
                }
                StmtKind::Tune {
                    params,
                    sense: sense_,
                    expr: expr.ok_or_else(|| self.internal(span))?,
                    using,
                }
            }
            Rule::print_stmt => StmtKind::Print(it.map(|e| self.expr(e)).collect::<R<_>>()?),
            Rule::pde_stmt => {
                let name = self.ident(next(&mut it)?);
                let mut items = Vec::new();
                for q in it {
                    items.push(self.pde_item(q)?);
                }
                StmtKind::Pde { name, items }
            }
            _ => return Err(self.internal(span)),
        };
        Ok(Stmt { kind, span })
    }

    fn pde_item(&self, q: Pair<Rule>) -> R<PdeItem> {
        let span = self.span(&q);
        let rule = q.as_rule();
        let mut it = kids(q);
        Ok(match rule {
            Rule::pde_domain => PdeItem::Domain(self.method(next(&mut it)?)?),
            Rule::pde_boundary => PdeItem::Boundary(self.method(next(&mut it)?)?),
            Rule::pde_fn => {
                let kind = match next(&mut it)?.as_str() {
                    "lagrangian" => PdeFnKind::Lagrangian,
                    "source" => PdeFnKind::Source,
                    _ => PdeFnKind::Exact,
                };
                PdeItem::Fn(kind, self.fn_def(it)?)
            }
            Rule::let_stmt => {
                let (n, t, e) = self.let_parts(it)?;
                PdeItem::Let(n, t, e)
            }
            Rule::param_stmt => PdeItem::Param(self.decl(it)?),
            _ => return Err(self.internal(span)),
        })
    }

    fn optional_name_expr(&self, it: Kids) -> R<(Option<Ident>, Expr)> {
        let mut name = None;
        let mut expr = None;
        for q in it {
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                _ => expr = Some(self.expr(q)?),
            }
        }
        let expr = expr.ok_or_else(|| self.internal(Span::new(self.file, 0, 0)))?;
        Ok((name, expr))
    }

    fn let_parts(&self, mut it: Kids) -> R<(Ident, Option<Type>, Expr)> {
        let name = self.ident(next(&mut it)?);
        let mut ty = None;
        let mut e = None;
        for q in it {
            match q.as_rule() {
                Rule::ty => ty = Some(self.ty(q)?),
                _ => e = Some(self.expr(q)?),
            }
        }
        Ok((name.clone(), ty, e.ok_or_else(|| self.internal(name.span))?))
    }

    fn fn_def(&self, mut it: Kids) -> R<FnDef> {
        let name = self.ident(next(&mut it)?);
        let mut params = Vec::new();
        let mut body = None;
        for q in it {
            match q.as_rule() {
                Rule::ident | Rule::reserved => params.push(self.ident(q)),
                _ => body = Some(self.expr(q)?),
            }
        }
        Ok(FnDef {
            body: body.ok_or_else(|| self.internal(name.span))?,
            name,
            params,
        })
    }

    fn decl(&self, mut it: Kids) -> R<Decl> {
        let name = self.ident(next(&mut it)?);
        let mut ty = None;
        let mut clauses = Vec::new();
        for q in it {
            let rule = q.as_rule();
            if rule == Rule::ty {
                ty = Some(self.ty(q)?);
                continue;
            }
            let mut parts = kids(q);
            let a = self.expr(next(&mut parts)?)?;
            clauses.push(match rule {
                Rule::bound_ge => DeclClause::Ge(a),
                Rule::bound_le => DeclClause::Le(a),
                Rule::bound_in => DeclClause::In(a, self.expr(next(&mut parts)?)?),
                _ => DeclClause::Init(a),
            });
        }
        Ok(Decl { name, ty, clauses })
    }

    fn ty(&self, q: Pair<Rule>) -> R<Type> {
        let span = self.span(&q);
        let dims = kids(q).map(|e| self.expr(e)).collect::<R<_>>()?;
        Ok(Type { dims, span })
    }

    fn relation(&self, q: Pair<Rule>) -> R<Relation> {
        let mut it = kids(q);
        let expr = self.expr(next(&mut it)?)?;
        let single_eq = match it.next() {
            Some(eq) => {
                let eq_span = self.span(&eq);
                let rhs = self.expr(next(&mut it)?)?;
                Some((eq_span, rhs))
            }
            None => None,
        };
        Ok(Relation { expr, single_eq })
    }

    fn using(&self, q: Pair<Rule>) -> R<Method> {
        let mut it = kids(q);
        self.method(next(&mut it)?)
    }

    fn method(&self, q: Pair<Rule>) -> R<Method> {
        let span = self.span(&q);
        let mut it = kids(q);
        let name = self.ident(next(&mut it)?);
        let mut args = Vec::new();
        for a in it {
            let mut parts = kids(a);
            let first = next(&mut parts)?;
            if first.as_rule() == Rule::ident {
                let value = self.expr(next(&mut parts)?)?;
                args.push(Arg {
                    name: Some(self.ident(first)),
                    value,
                });
            } else {
                args.push(Arg {
                    name: None,
                    value: self.expr(first)?,
                });
            }
        }
        Ok(Method { name, args, span })
    }

    fn derivative(&self, q: Pair<Rule>) -> R<Derivative> {
        let span = self.span(&q);
        let mut it = kids(q);
        let first = next(&mut it)?;
        let of = if first.as_rule() == Rule::derivative {
            DerivOf::Derivative(Box::new(self.derivative(first)?))
        } else {
            DerivOf::Expr(self.expr(first)?)
        };
        let wrt = self.ident(next(&mut it)?);
        Ok(Derivative { of, wrt, span })
    }

    fn binding(&self, q: Pair<Rule>) -> R<Binding> {
        let span = self.span(&q);
        let mut it = kids(q);
        let var = self.ident(next(&mut it)?);
        let (lo, hi) = self.range(next(&mut it)?)?;
        Ok(Binding { var, lo, hi, span })
    }

    fn range(&self, q: Pair<Rule>) -> R<(Expr, Expr)> {
        let mut it = kids(q);
        let lo = self.expr(next(&mut it)?)?;
        let hi = self.expr(next(&mut it)?)?;
        Ok((lo, hi))
    }

    /// An `expr` or `aexpr` pair → Expr.
    fn expr(&self, p: Pair<Rule>) -> R<Expr> {
        Ok(self.expr_d(p)?.0)
    }

    /// An expression with its nesting depth.
    fn expr_d(&self, p: Pair<Rule>) -> R<(Expr, usize)> {
        let span = self.span(&p);
        // The longest run of operators that precedence climbing nests (prefix operators and
        // right-associative `^`); any other infix operator ends a run.
        let mut chain = 0usize;
        let mut run = 0usize;
        for q in p.clone().into_inner() {
            match q.as_rule() {
                Rule::neg
                | Rule::plus
                | Rule::not_op
                | Rule::sum_prefix
                | Rule::if_prefix
                | Rule::pow => {
                    run += 1;
                    chain = chain.max(run);
                }
                Rule::or_op
                | Rule::and_op
                | Rule::cmp_op
                | Rule::add
                | Rule::sub
                | Rule::mul
                | Rule::div
                | Rule::emul
                | Rule::ediv => run = 0,
                _ => {}
            }
        }
        if chain > MAX_OPERATOR_CHAIN {
            return Err(too_deep(span));
        }
        let (e, d) = self
            .pratt
            .map_primary(|q| self.primary(q))
            .map_prefix(|op, rhs| self.prefix(op, rhs?))
            .map_postfix(|lhs, op| self.postfix(lhs?, op))
            .map_infix(|lhs, op, rhs| self.infix(lhs?, op, rhs?))
            .parse(kids(p))?;
        Ok((balance_sums(e), d))
    }

    fn primary(&self, q: Pair<Rule>) -> R<(Expr, usize)> {
        let span = self.span(&q);
        let leaf = |kind| Ok((Expr { kind, span }, 1));
        match q.as_rule() {
            Rule::number => match q.as_str().parse::<f64>() {
                Ok(v) if v.is_finite() => leaf(ExprKind::Number(v)),
                _ => Err(Diagnostic::error(
                    Code::BadNumber,
                    format!("`{}` is not a finite number", q.as_str()),
                )
                .at(span, "out of the range of 64-bit floats")
                .help("use a number between -1.8e308 and 1.8e308")),
            },
            Rule::string => {
                let inner = q
                    .into_inner()
                    .next()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                leaf(ExprKind::Str(inner))
            }
            Rule::ident => leaf(ExprKind::Name(q.as_str().to_string())),
            Rule::paren => {
                let (inner, d) = self.expr_d(one(q)?)?;
                let d = d + 1;
                check_depth(d, span)?;
                Ok((
                    Expr {
                        kind: ExprKind::Paren(Box::new(inner)),
                        span,
                    },
                    d,
                ))
            }
            Rule::sum_call => {
                let (arg, d) = self.expr_d(one(q)?)?;
                let d = d + 1;
                check_depth(d, span)?;
                let name = Ident {
                    name: "sum".into(),
                    span: Span::new(self.file, span.start as usize, span.start as usize + 3),
                };
                Ok((
                    Expr {
                        kind: ExprKind::Call(name, vec![arg]),
                        span,
                    },
                    d,
                ))
            }
            Rule::call => {
                let mut it = kids(q);
                let name = self.ident(next(&mut it)?);
                let (args, d) = self.exprs_d(it)?;
                check_depth(d, span)?;
                Ok((
                    Expr {
                        kind: ExprKind::Call(name, args),
                        span,
                    },
                    d,
                ))
            }
            Rule::comprehension => {
                let mut it = kids(q);
                let (body, d) = self.expr_d(next(&mut it)?)?;
                let bindings: Vec<Binding> = it.map(|b| self.binding(b)).collect::<R<_>>()?;
                let d = d + 1;
                check_depth(d, span)?;
                Ok((
                    Expr {
                        kind: ExprKind::Comprehension(Box::new(body), bindings),
                        span,
                    },
                    d,
                ))
            }
            Rule::array => {
                let (items, d) = self.exprs_d(kids(q))?;
                check_depth(d, span)?;
                Ok((
                    Expr {
                        kind: ExprKind::Array(items),
                        span,
                    },
                    d,
                ))
            }
            _ => Err(self.internal(span)),
        }
    }

    /// Several expressions and their largest depth plus one.
    fn exprs_d(&self, it: Kids) -> R<(Vec<Expr>, usize)> {
        let mut out = Vec::new();
        let mut depth = 0;
        for q in it {
            let (e, d) = self.expr_d(q)?;
            depth = depth.max(d);
            out.push(e);
        }
        Ok((out, depth + 1))
    }

    fn prefix(&self, op: Pair<Rule>, (rhs, d): (Expr, usize)) -> R<(Expr, usize)> {
        let op_span = self.span(&op);
        let span = op_span.to(rhs.span);
        let mut d = d + 1;
        check_depth(d, span)?;
        let kind = match op.as_rule() {
            Rule::neg => ExprKind::Unary(UnaryOp::Neg, Box::new(rhs)),
            Rule::plus => ExprKind::Unary(UnaryOp::Plus, Box::new(rhs)),
            Rule::not_op => ExprKind::Unary(UnaryOp::Not, Box::new(rhs)),
            Rule::sum_prefix => {
                let bindings = kids(op).map(|b| self.binding(b)).collect::<R<_>>()?;
                ExprKind::Sum(bindings, Box::new(rhs))
            }
            Rule::if_prefix => {
                let mut it = kids(op);
                let (c, dc) = self.expr_d(next(&mut it)?)?;
                let (a, da) = self.expr_d(next(&mut it)?)?;
                d = d.max(dc + 1).max(da + 1);
                check_depth(d, span)?;
                ExprKind::If(Box::new(c), Box::new(a), Box::new(rhs))
            }
            _ => return Err(self.internal(span)),
        };
        Ok((Expr { kind, span }, d))
    }

    fn postfix(&self, (lhs, d): (Expr, usize), op: Pair<Rule>) -> R<(Expr, usize)> {
        let span = lhs.span.to(self.span(&op));
        let d = d + 1;
        check_depth(d, span)?;
        let kind = match op.as_rule() {
            Rule::transpose => ExprKind::Transpose(Box::new(lhs)),
            _ => {
                let mut args = Vec::new();
                for a in kids(op) {
                    args.push(match a.as_rule() {
                        Rule::full => IndexArg::Full(self.span(&a)),
                        Rule::range => {
                            let (lo, hi) = self.range(a)?;
                            IndexArg::Range(lo, hi)
                        }
                        _ => IndexArg::At(self.expr(a)?),
                    });
                }
                ExprKind::Index(Box::new(lhs), args)
            }
        };
        Ok((Expr { kind, span }, d))
    }

    fn infix(
        &self,
        (lhs, dl): (Expr, usize),
        op: Pair<Rule>,
        (rhs, dr): (Expr, usize),
    ) -> R<(Expr, usize)> {
        let span = lhs.span.to(rhs.span);
        // A long `a + b + c + ...` is rebalanced afterwards (see `balance_sums`): its length
        // does not count as nesting.
        let continues_sum =
            op.as_rule() == Rule::add && matches!(lhs.kind, ExprKind::Binary(BinaryOp::Add, _, _));
        let d = if continues_sum {
            dl.max(dr + 1)
        } else {
            dl.max(dr) + 1
        };
        check_depth(d, span)?;
        let bop = match op.as_rule() {
            Rule::or_op => BinaryOp::Or,
            Rule::and_op => BinaryOp::And,
            Rule::add => BinaryOp::Add,
            Rule::sub => BinaryOp::Sub,
            Rule::mul => BinaryOp::Mul,
            Rule::div => BinaryOp::Div,
            Rule::emul => BinaryOp::EMul,
            Rule::ediv => BinaryOp::EDiv,
            Rule::pow => BinaryOp::Pow,
            Rule::cmp_op => match op.as_str() {
                "==" => BinaryOp::Eq,
                "!=" => BinaryOp::Ne,
                "<=" => BinaryOp::Le,
                ">=" => BinaryOp::Ge,
                "<" => BinaryOp::Lt,
                _ => BinaryOp::Gt,
            },
            _ => return Err(self.internal(span)),
        };
        Ok((
            Expr {
                kind: ExprKind::Binary(bop, Box::new(lhs), Box::new(rhs)),
                span,
            },
            d,
        ))
    }

    fn internal(&self, span: Span) -> Diagnostic {
        Diagnostic::error(Code::Syntax, "the parser met a form it does not know")
            .at(span, "here")
            .help("this is a bug in optc; please report the file")
    }
}

/// Sums longer than this are rebalanced into a tree of logarithmic depth.
const BALANCE_SUMS_OVER: usize = 32;

/// Rebalances long left-nested chains `((a + b) + c) + ...` into balanced trees, so a
/// machine-generated sum of thousands of terms does not become thousands of levels of
/// nesting for every later phase. Short sums keep their written order; parenthesized groups
/// are never regrouped. (Floating-point addition is not associative: the order in which a
/// long sum is added is not part of the language's contract.)
fn balance_sums(e: Expr) -> Expr {
    match e.kind {
        ExprKind::Binary(BinaryOp::Add, _, _) => {
            // Collect the chain's operands iteratively (the chain may be very long).
            let mut operands = Vec::new();
            let mut cur = e;
            loop {
                match cur.kind {
                    ExprKind::Binary(BinaryOp::Add, l, r) => {
                        operands.push(*r);
                        cur = *l;
                    }
                    kind => {
                        operands.push(Expr {
                            kind,
                            span: cur.span,
                        });
                        break;
                    }
                }
            }
            operands.reverse();
            let operands: Vec<Expr> = operands.into_iter().map(balance_inside).collect();
            if operands.len() > BALANCE_SUMS_OVER {
                build_balanced(operands)
            } else {
                let mut it = operands.into_iter();
                let mut acc = it.next().unwrap_or(Expr {
                    kind: ExprKind::Number(0.0),
                    span: Span::default(),
                });
                for r in it {
                    let span = acc.span.to(r.span);
                    acc = Expr {
                        kind: ExprKind::Binary(BinaryOp::Add, Box::new(acc), Box::new(r)),
                        span,
                    };
                }
                acc
            }
        }
        kind => balance_inside(Expr { kind, span: e.span }),
    }
}

/// `balance_sums` applied to the children of a node that is not itself a sum.
fn balance_inside(e: Expr) -> Expr {
    let span = e.span;
    let b = |x: Box<Expr>| Box::new(balance_sums(*x));
    let kind = match e.kind {
        ExprKind::Binary(op @ BinaryOp::Add, l, r) => {
            return balance_sums(Expr {
                kind: ExprKind::Binary(op, l, r),
                span,
            })
        }
        ExprKind::Binary(op, l, r) => ExprKind::Binary(op, b(l), b(r)),
        ExprKind::Unary(op, a) => ExprKind::Unary(op, b(a)),
        ExprKind::If(c, t, f) => ExprKind::If(b(c), b(t), b(f)),
        ExprKind::Sum(bs, body) => ExprKind::Sum(bs, b(body)),
        ExprKind::Transpose(a) => ExprKind::Transpose(b(a)),
        ExprKind::Index(a, args) => ExprKind::Index(b(a), args),
        other => other,
    };
    Expr { kind, span }
}

fn build_balanced(mut operands: Vec<Expr>) -> Expr {
    if operands.len() == 1 {
        return operands.remove(0);
    }
    let right = operands.split_off(operands.len() / 2);
    let l = build_balanced(operands);
    let r = build_balanced(right);
    let span = l.span.to(r.span);
    Expr {
        kind: ExprKind::Binary(BinaryOp::Add, Box::new(l), Box::new(r)),
        span,
    }
}

fn check_depth(d: usize, span: Span) -> R<()> {
    if d > MAX_EXPR_DEPTH {
        Err(too_deep(span))
    } else {
        Ok(())
    }
}

fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::TooDeep,
        format!("expression nested more than {MAX_EXPR_DEPTH} levels deep"),
    )
    .at(span, "in this expression")
    .help("split it into several `let` definitions")
}

fn sense(p: Pair<Rule>) -> Sense {
    if p.as_str() == "maximize" {
        Sense::Maximize
    } else {
        Sense::Minimize
    }
}

fn next<'i>(it: &mut Kids<'i>) -> R<Pair<'i, Rule>> {
    it.next().ok_or_else(|| {
        Diagnostic::error(Code::Syntax, "incomplete statement")
            .help("this is a bug in optc; please report the file")
    })
}

fn one(p: Pair<Rule>) -> R<Pair<Rule>> {
    let mut it = kids(p);
    next(&mut it)
}

/// Converts a pest error into a diagnostic with readable expectations.
fn pest_error(e: pest::error::Error<Rule>, text: &str, file: FileId) -> Diagnostics {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let ch = text.get(pos..).and_then(|s| s.chars().next());
    // Show a whole word when the parser stopped at one.
    let word_len = text
        .get(pos..)
        .map(|t| {
            t.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .map(char::len_utf8)
                .sum::<usize>()
        })
        .unwrap_or(0);
    let end = pos
        + if word_len > 0 {
            word_len
        } else {
            ch.map(|c| c.len_utf8()).unwrap_or(0)
        };
    let span = Span::new(file, pos, end);
    if let ErrorVariant::CustomError { message } = &e.variant {
        if message.contains("stack") || message.contains("limit") {
            return too_deep(span).into();
        }
    }
    if let Some(c) = ch {
        if c.is_control() && c != '\n' && c != '\t' || c == '\u{FFFD}' {
            return Diagnostic::error(Code::BadCharacter, format!("unexpected character {c:?}"))
                .at(span, "not part of the language")
                .help("remove it; the file may be binary or use a wrong encoding")
                .into();
        }
    }
    let expected: Vec<String> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut v: Vec<String> = positives
                .iter()
                .filter_map(|r| rule_name(*r))
                .map(String::from)
                .collect();
            v.sort();
            v.dedup();
            v
        }
        ErrorVariant::CustomError { message } => vec![message.clone()],
    };
    let found = match ch {
        None => "end of file".to_string(),
        Some('\n') => "end of line".to_string(),
        Some(_) if word_len > 0 => format!("`{}`", &text[pos..pos + word_len]),
        Some(c) => format!("`{c}`"),
    };
    let (msg, help) = if expected.is_empty() {
        (
            format!("unexpected {found}"),
            "check the statement's form in docs/LANGUAGE.md".to_string(),
        )
    } else {
        (
            format!("unexpected {found}"),
            format!("expected {}", join_or(&expected)),
        )
    };
    let mut d = Diagnostic::error(Code::Syntax, msg)
        .at(span, "here")
        .help(help);
    if ch == Some('=')
        && text
            .get(..pos)
            .map(|t| t.trim_end().ends_with('='))
            .unwrap_or(false)
    {
        d = d.note("`==` compares; a single `=` defines");
    }
    d.into()
}

fn join_or(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

const STATEMENT: &str =
    "a statement (dim, param, var, let, fn, use, minimize, maximize, subject to, lagrangian, condition, solve, derive, tune, print or pde)";

fn rule_name(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::dim_stmt
        | Rule::param_stmt
        | Rule::var_stmt
        | Rule::let_stmt
        | Rule::fn_stmt
        | Rule::use_stmt
        | Rule::objective_stmt
        | Rule::constraint_stmt
        | Rule::lagrangian_stmt
        | Rule::condition_stmt
        | Rule::solve_stmt
        | Rule::derive_stmt
        | Rule::tune_stmt
        | Rule::print_stmt
        | Rule::pde_stmt
        | Rule::file
        | Rule::sense
        | Rule::k_dim
        | Rule::k_param
        | Rule::k_var
        | Rule::k_let
        | Rule::k_fn
        | Rule::k_use
        | Rule::k_subject
        | Rule::k_lagrangian
        | Rule::k_condition
        | Rule::k_solve
        | Rule::k_derive
        | Rule::k_tune
        | Rule::k_print
        | Rule::k_pde => STATEMENT,
        Rule::k_using => "`using`",
        Rule::k_in => "`in`",
        Rule::k_to => "`to`",
        Rule::k_then => "`then`",
        Rule::k_else => "`else`",
        Rule::k_for => "`for`",
        Rule::k_real => "a type (`real` or `real[n, ...]`)",
        Rule::k_domain | Rule::k_boundary => {
            "a pde item (domain, lagrangian, source, boundary, exact)"
        }
        Rule::pde_domain | Rule::pde_boundary | Rule::pde_fn => {
            "a pde item (domain, lagrangian, source, boundary, exact)"
        }
        Rule::expr
        | Rule::aexpr
        | Rule::number
        | Rule::ident
        | Rule::call
        | Rule::paren
        | Rule::array => "an expression",
        Rule::name | Rule::reserved => "a name",
        Rule::ty => "a type (`real` or `real[n, ...]`)",
        Rule::or_op
        | Rule::and_op
        | Rule::cmp_op
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div => "an operator",
        Rule::emul | Rule::ediv | Rule::pow => "an operator",
        Rule::transpose | Rule::index => "an operator",
        Rule::EOI => "end of file",
        Rule::range => "a range `a..b`",
        Rule::binding => "a binding `i in a..b`",
        Rule::using => "`using`",
        Rule::method => "a method name",
        Rule::derivative => "`d(expression)/d(param)`",
        Rule::bound_ge | Rule::bound_le | Rule::bound_in | Rule::init => {
            "`=`, `>=`, `<=` or `in [a, b]`"
        }
        Rule::single_eq => "`==`",
        _ => return None,
    })
}
