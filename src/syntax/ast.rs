//! The abstract syntax tree. Every node carries the byte span of the text it came from.

use crate::diag::Span;

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Plus,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    /// `*`: a product of matrices/vectors, or scaling when one side is a scalar.
    Mul,
    /// `/`: division by a scalar (elementwise when both sides have the same shape).
    Div,
    /// `.*`
    EMul,
    /// `./`
    EDiv,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::EMul => ".*",
            BinaryOp::EDiv => "./",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or)
    }
}

/// `i in lo..hi`
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub var: Ident,
    pub lo: Expr,
    pub hi: Expr,
    pub span: Span,
}

/// One position inside `x[...]`.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexArg {
    At(Expr),
    Range(Expr, Expr),
    /// `:`
    Full(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Str(String),
    Name(String),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// Postfix `'`.
    Transpose(Box<Expr>),
    Call(Ident, Vec<Expr>),
    Index(Box<Expr>, Vec<IndexArg>),
    /// `sum(i in a..b, j in c..d) body`
    Sum(Vec<Binding>, Box<Expr>),
    /// `[body for i in a..b, j in c..d]`
    Comprehension(Box<Expr>, Vec<Binding>),
    /// `[a, b, c]`
    Array(Vec<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `( e )`, kept so printing reproduces the user's grouping.
    Paren(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Type {
    pub dims: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DeclClause {
    Ge(Expr),
    Le(Expr),
    In(Expr, Expr),
    Init(Expr),
}

impl DeclClause {
    pub fn span(&self) -> Span {
        match self {
            DeclClause::Ge(e) | DeclClause::Le(e) | DeclClause::Init(e) => e.span,
            DeclClause::In(a, b) => a.span.to(b.span),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    pub name: Ident,
    pub ty: Option<Type>,
    pub clauses: Vec<DeclClause>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sense {
    Minimize,
    Maximize,
}

/// `lhs op rhs`, or a lone expression when the relation is missing (an error the checker reports).
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub expr: Expr,
    /// Set when the user wrote a single `=`: the span of the `=` and the right side.
    pub single_eq: Option<(Span, Expr)>,
}

/// `name(k = v, ...)` after `using`, and the argument lists of `domain` and `boundary`.
#[derive(Clone, Debug, PartialEq)]
pub struct Method {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

/// `d(of)/d(wrt)`, possibly nested for second derivatives.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivative {
    pub of: DerivOf,
    pub wrt: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DerivOf {
    Expr(Expr),
    Derivative(Box<Derivative>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdeFnKind {
    Lagrangian,
    Source,
    Exact,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    pub name: Ident,
    pub params: Vec<Ident>,
    pub body: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PdeItem {
    Domain(Method),
    Boundary(Method),
    Fn(PdeFnKind, FnDef),
    Let(Ident, Option<Type>, Expr),
    Param(Decl),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Dim(Vec<(Ident, Option<Expr>)>),
    Param(Decl),
    Var(Decl),
    Let(Ident, Option<Type>, Expr),
    Fn(FnDef),
    Use(Vec<Ident>),
    Objective {
        sense: Sense,
        name: Option<Ident>,
        expr: Expr,
    },
    Constraint {
        name: Ident,
        rel: Relation,
    },
    Lagrangian {
        name: Option<Ident>,
        expr: Expr,
    },
    Condition {
        name: Option<Ident>,
        rel: Relation,
    },
    Solve {
        target: Option<Ident>,
        using: Option<Method>,
    },
    Derive {
        d: Derivative,
        using: Option<Method>,
    },
    Tune {
        params: Vec<Ident>,
        sense: Sense,
        expr: Expr,
        using: Option<Method>,
    },
    Print(Vec<Expr>),
    Pde {
        name: Ident,
        items: Vec<PdeItem>,
    },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub stmts: Vec<Stmt>,
}
