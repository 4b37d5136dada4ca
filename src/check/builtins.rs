//! The builtin functions: one row each with its arity and what the checker turns it into.
//! Most builtins desugar into the core typed forms (sums, comprehensions, elementwise ops),
//! so later phases never see them by name.

use crate::ops::{BinOp, UnOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// An elementwise function of one scalar.
    Unary(UnOp),
    /// An elementwise function of two scalars (scalars broadcast).
    Binary(BinOp),
    Relu,
    Sum,
    Mean,
    Maximum,
    Minimum,
    Dot,
    Norm2,
    Norm1,
    NormInf,
    Trace,
    Diag,
    DiagM,
    Outer,
    Eye,
    Ones,
    Zeros,
    Length,
    Size,
    OpNorm2,
    Grad,
    Jac,
    Hess,
    Dual,
    Load,
}

/// (name, builtin, min arity, max arity, one-line description)
pub const TABLE: &[(&str, Builtin, usize, usize, &str)] = &[
    ("exp", Builtin::Unary(UnOp::Exp), 1, 1, "eˣ, elementwise"),
    (
        "log",
        Builtin::Unary(UnOp::Log),
        1,
        1,
        "natural logarithm, elementwise",
    ),
    (
        "log1p",
        Builtin::Unary(UnOp::Log1p),
        1,
        1,
        "log(1 + x), accurate near 0",
    ),
    (
        "expm1",
        Builtin::Unary(UnOp::Expm1),
        1,
        1,
        "eˣ − 1, accurate near 0",
    ),
    (
        "sqrt",
        Builtin::Unary(UnOp::Sqrt),
        1,
        1,
        "square root, elementwise",
    ),
    ("sin", Builtin::Unary(UnOp::Sin), 1, 1, "sine"),
    ("cos", Builtin::Unary(UnOp::Cos), 1, 1, "cosine"),
    ("tan", Builtin::Unary(UnOp::Tan), 1, 1, "tangent"),
    ("asin", Builtin::Unary(UnOp::Asin), 1, 1, "arcsine"),
    ("acos", Builtin::Unary(UnOp::Acos), 1, 1, "arccosine"),
    ("atan", Builtin::Unary(UnOp::Atan), 1, 1, "arctangent"),
    ("sinh", Builtin::Unary(UnOp::Sinh), 1, 1, "hyperbolic sine"),
    (
        "cosh",
        Builtin::Unary(UnOp::Cosh),
        1,
        1,
        "hyperbolic cosine",
    ),
    (
        "tanh",
        Builtin::Unary(UnOp::Tanh),
        1,
        1,
        "hyperbolic tangent",
    ),
    (
        "abs",
        Builtin::Unary(UnOp::Abs),
        1,
        1,
        "|x|; generalized derivative sign(x) (0 at 0)",
    ),
    (
        "sign",
        Builtin::Unary(UnOp::Sign),
        1,
        1,
        "−1, 0 or 1; derivative 0",
    ),
    (
        "floor",
        Builtin::Unary(UnOp::Floor),
        1,
        1,
        "round down; derivative 0",
    ),
    (
        "ceil",
        Builtin::Unary(UnOp::Ceil),
        1,
        1,
        "round up; derivative 0",
    ),
    (
        "relu",
        Builtin::Relu,
        1,
        1,
        "max(x, 0); derivative 1 where x > 0, else 0",
    ),
    (
        "max",
        Builtin::Binary(BinOp::Max),
        2,
        2,
        "elementwise maximum; derivative to the first on ties",
    ),
    (
        "min",
        Builtin::Binary(BinOp::Min),
        2,
        2,
        "elementwise minimum; derivative to the first on ties",
    ),
    (
        "atan2",
        Builtin::Binary(BinOp::Atan2),
        2,
        2,
        "angle of (x, y) written atan2(y, x)",
    ),
    ("sum", Builtin::Sum, 1, 1, "sum of all entries"),
    ("mean", Builtin::Mean, 1, 1, "mean of all entries"),
    (
        "maximum",
        Builtin::Maximum,
        1,
        1,
        "largest entry; derivative to every maximal entry",
    ),
    (
        "minimum",
        Builtin::Minimum,
        1,
        1,
        "smallest entry; derivative to every minimal entry",
    ),
    (
        "dot",
        Builtin::Dot,
        2,
        2,
        "Σ aᵢbᵢ over tensors of one shape",
    ),
    ("norm2", Builtin::Norm2, 1, 1, "Euclidean (Frobenius) norm"),
    ("norm1", Builtin::Norm1, 1, 1, "Σ |xᵢ|"),
    ("norminf", Builtin::NormInf, 1, 1, "max |xᵢ|"),
    ("trace", Builtin::Trace, 1, 1, "Σ Aᵢᵢ of a square matrix"),
    (
        "diag",
        Builtin::Diag,
        1,
        1,
        "the diagonal of a square matrix, as a vector",
    ),
    (
        "diagm",
        Builtin::DiagM,
        1,
        1,
        "the diagonal matrix with the vector on its diagonal",
    ),
    ("outer", Builtin::Outer, 2, 2, "a bᵀ of two vectors"),
    ("eye", Builtin::Eye, 1, 1, "the n×n identity"),
    (
        "ones",
        Builtin::Ones,
        1,
        4,
        "a tensor of ones of the given sizes",
    ),
    (
        "zeros",
        Builtin::Zeros,
        1,
        4,
        "a tensor of zeros of the given sizes",
    ),
    (
        "length",
        Builtin::Length,
        1,
        1,
        "number of entries (a constant)",
    ),
    (
        "size",
        Builtin::Size,
        2,
        2,
        "size(x, k): the k-th size (a constant)",
    ),
    (
        "opnorm2",
        Builtin::OpNorm2,
        1,
        1,
        "spectral norm of a matrix of params, computed once at load time",
    ),
    (
        "grad",
        Builtin::Grad,
        2,
        2,
        "grad(e, v): ∂e/∂v of a scalar e, shape of v",
    ),
    (
        "jac",
        Builtin::Jac,
        2,
        2,
        "jac(e, v): ∂e/∂v, shape(e) ++ shape(v)",
    ),
    (
        "hess",
        Builtin::Hess,
        2,
        2,
        "hess(e, v): ∂²e/∂v² of a scalar e, shape(v) ++ shape(v)",
    ),
    (
        "dual",
        Builtin::Dual,
        1,
        1,
        "dual(c): the multipliers of constraint c at the solution",
    ),
    (
        "load",
        Builtin::Load,
        1,
        1,
        "load(\"file.csv\" | \"file.json\"): data for a param or a var's start",
    ),
];

/// Builtin constants.
pub const CONSTANTS: &[(&str, f64)] = &[("pi", std::f64::consts::PI), ("inf", f64::INFINITY)];

pub fn lookup(name: &str) -> Option<(Builtin, usize, usize)> {
    TABLE
        .iter()
        .find(|row| row.0 == name)
        .map(|row| (row.1, row.2, row.3))
}

pub fn is_builtin_name(name: &str) -> bool {
    lookup(name).is_some() || CONSTANTS.iter().any(|c| c.0 == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .map(|r| r.0)
        .chain(CONSTANTS.iter().map(|c| c.0))
}
