//! The checked model: every name resolved, every shape known, every `fn` inlined.

use crate::diag::Span;
use crate::ops::{BinOp, UnOp};
use std::fmt;
use std::sync::Arc;

/// A tensor shape; `[]` is a scalar. Sizes are static.
pub type Shape = Vec<usize>;

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

pub fn shape_str(shape: &[usize]) -> String {
    if shape.is_empty() {
        "real".to_string()
    } else {
        let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        format!("real[{}]", parts.join(", "))
    }
}

macro_rules! id_type {
    ($($name:ident),*) => {$(
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}
id_type!(VarId, ParamId, LetId, ConstraintId, IndexSym, DimId);

/// An affine index form over the source's index symbols.
pub type Affine = crate::affine::Affine<IndexSym>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Real,
    Bool,
    /// A real row vector `[1, n]` made by transposing a vector (like Julia's adjoint):
    /// row·vector is a number, and transposing it again gives the vector back.
    Row,
}

/// A typed tensor expression. Children are shared (`Arc`): a `fn` argument used twice in the
/// body is one node.
#[derive(Debug)]
pub struct TExpr {
    pub kind: TKind,
    pub shape: Shape,
    pub ty: Ty,
    pub span: Span,
}

pub type T = Arc<TExpr>;

/// What a partial derivative is taken with respect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wrt {
    Var(VarId),
    Param(ParamId),
}

/// One position of an index expression.
#[derive(Clone, Debug, PartialEq)]
pub enum TIndex {
    At(Affine),
    /// A slice of static length starting at an affine position.
    Slice {
        start: Affine,
        len: usize,
    },
}

/// Functions evaluated once on param values, before anything is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadTimeFn {
    /// The spectral norm ‖X‖₂ (largest singular value).
    OpNorm2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Max,
    Min,
}

#[derive(Debug)]
pub enum TKind {
    Const(f64),
    /// A constant tensor, row-major.
    Literal(Arc<[f64]>),
    Var(VarId),
    Param(ParamId),
    Let(LetId),
    /// The multipliers of a named constraint (`dual(name)`).
    Dual(ConstraintId),
    /// An argument of a pde function (x, u or p), by position.
    Input(u32),
    /// The value of an index variable (1-based).
    IndexVal(IndexSym),
    Unary(UnOp, T),
    /// Elementwise, a scalar operand broadcasts.
    Binary(BinOp, T, T),
    /// Elementwise select, scalars broadcast.
    Select(T, T, T),
    MatMul(T, T),
    Transpose(T),
    Index(T, Vec<TIndex>),
    /// `Σ_{sym = lo..hi} body`, elementwise when the body is a tensor.
    Sum(IndexSym, Affine, Affine, T),
    /// max or min over all entries of the operand.
    Reduce(ReduceOp, T),
    /// `[body for s₁ in lo₁.., s₂ …]`: static ranges, shape = lengths ++ shape(body).
    Comprehension(Vec<(IndexSym, i64, usize)>, T),
    /// `[a, b, ...]`: shape = `[k] ++ shape(a)`.
    Stack(Vec<T>),
    /// ∂e/∂v: shape(v) for a scalar e.
    Grad(T, Wrt),
    /// ∂e/∂v: shape(e) ++ shape(v).
    Jac(T, Wrt),
    /// ∂²e/∂v²: shape(v) ++ shape(v).
    Hess(T, Wrt),
    LoadTime(LoadTimeFn, T),
}

impl TExpr {
    pub fn is_scalar(&self) -> bool {
        self.shape.is_empty()
    }
}

/// Range of an index symbol as declared: `sym in lo..hi` (affine in outer symbols).
#[derive(Clone, Debug)]
pub struct SymInfo {
    pub name: String,
    pub lo: Affine,
    pub hi: Affine,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Dim {
    pub name: String,
    pub value: usize,
    pub span: Span,
    /// Where the size came from, for diagnostics.
    pub origin: Span,
}

/// How a param or var initial value is given.
#[derive(Clone, Debug)]
pub enum Value {
    /// Not given.
    None,
    /// An expression of params, dims and literals.
    Expr(T),
    /// Loaded from a file or given on the command line: row-major data.
    Data(Arc<[f64]>),
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub shape: Shape,
    pub value: Value,
    pub lo: Option<T>,
    pub hi: Option<T>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Var {
    pub name: String,
    pub shape: Shape,
    pub init: Value,
    pub lo: Option<T>,
    pub hi: Option<T>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Let {
    pub name: String,
    pub expr: T,
    pub span: Span,
    /// Lets made from a named objective or lagrangian are reported with the values.
    pub kind: LetKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LetKind {
    Let,
    Objective,
    Lagrangian,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sense {
    Minimize,
    Maximize,
}

#[derive(Clone, Debug)]
pub struct Objective {
    pub sense: Sense,
    pub name: Option<String>,
    pub expr: T,
    pub span: Span,
}

/// Constraint kinds after normalization: `g == 0` or `g <= 0`, with `g = lhs - rhs` (or
/// `rhs - lhs` for `>=`). The multiplier enters the Lagrangian as `+ λ·g`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstraintKind {
    Eq,
    Le,
}

#[derive(Clone, Debug)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// The normalized function g (shape = the constraint's shape).
    pub g: T,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub name: Option<String>,
    pub lhs: T,
    pub rhs: T,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Lagrangian {
    pub name: Option<String>,
    pub expr: T,
    pub span: Span,
}

/// A value of an option in `using method(k = v)`.
#[derive(Clone, Debug, PartialEq)]
pub enum OptValue {
    Number(f64),
    Name(String),
}

impl fmt::Display for OptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptValue::Number(v) => write!(f, "{v}"),
            OptValue::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Clone, Debug)]
pub struct MethodSpec {
    pub name: String,
    pub options: Vec<(String, OptValue, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Request {
    Solve {
        target: Option<String>,
        method: Option<MethodSpec>,
        span: Span,
    },
    /// `derive d(of)/d(wrt)`; `order` 2 for `d(d(of)/d(p))/d(p)`.
    Derive {
        of: T,
        of_text: String,
        wrt: ParamId,
        order: u8,
        method: Option<MethodSpec>,
        span: Span,
    },
    Tune {
        params: Vec<ParamId>,
        sense: Sense,
        objective: T,
        objective_text: String,
        method: Option<MethodSpec>,
        span: Span,
    },
    Print {
        items: Vec<(String, T)>,
        span: Span,
    },
}

/// A `pde` block: functions of (x, u, p) checked with x, p ∈ ℝᵈ and u ∈ ℝ.
#[derive(Clone, Debug)]
pub struct Pde {
    pub name: String,
    pub dim: usize,
    pub domain: PdeDomain,
    pub lagrangian: T,
    pub source: Option<T>,
    pub exact: Option<T>,
    pub boundary: PdeBoundary,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum PdeDomain {
    Cube,
    Box { lo: Vec<f64>, hi: Vec<f64> },
}

#[derive(Clone, Debug)]
pub enum PdeBoundary {
    Neumann,
    /// u = g on the boundary, g an expression of x (Input 0).
    Dirichlet {
        g: T,
        penalty: Option<f64>,
    },
    Periodic,
}

/// Everything the checker learned about a file.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub dims: Vec<Dim>,
    pub params: Vec<Param>,
    pub vars: Vec<Var>,
    pub lets: Vec<Let>,
    pub objective: Option<Objective>,
    pub constraints: Vec<Constraint>,
    pub lagrangians: Vec<Lagrangian>,
    pub conditions: Vec<Condition>,
    pub requests: Vec<Request>,
    pub pdes: Vec<Pde>,
    pub syms: Vec<SymInfo>,
}

impl Model {
    pub fn param_by_name(&self, name: &str) -> Option<ParamId> {
        self.params
            .iter()
            .position(|p| p.name == name)
            .map(|i| ParamId(i as u32))
    }

    pub fn var_by_name(&self, name: &str) -> Option<VarId> {
        self.vars
            .iter()
            .position(|v| v.name == name)
            .map(|i| VarId(i as u32))
    }

    pub fn dim_by_name(&self, name: &str) -> Option<DimId> {
        self.dims
            .iter()
            .position(|d| d.name == name)
            .map(|i| DimId(i as u32))
    }

    pub fn param(&self, id: ParamId) -> &Param {
        &self.params[id.index()]
    }

    pub fn var(&self, id: VarId) -> &Var {
        &self.vars[id.index()]
    }

    pub fn wrt_shape(&self, w: Wrt) -> &Shape {
        match w {
            Wrt::Var(v) => &self.vars[v.index()].shape,
            Wrt::Param(p) => &self.params[p.index()].shape,
        }
    }

    pub fn wrt_name(&self, w: Wrt) -> &str {
        match w {
            Wrt::Var(v) => &self.vars[v.index()].name,
            Wrt::Param(p) => &self.params[p.index()].name,
        }
    }
}
