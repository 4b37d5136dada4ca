//! Phase 3 — ir. In: the checked model. Out: a pointful, hash-consed expression graph —
//! scalar nodes over index variables (loads `x[idx]`, scalar ops, select, reductions over
//! index ranges) and tensor expressions `[body for vars]`.
//!
//! `graph` holds the arena and its invariants, `build` the simplifying constructors, `subst`
//! index substitution, `lower` the translation from typed expressions, `eval` the reference
//! evaluator, `print` the readable form.

mod alpha;
mod build;
mod eval;
mod graph;
mod lower;
mod print;
mod subst;
mod values;

pub use alpha::alpha_key;
pub use build::const_offset;
pub use eval::{EvalError, Evaluator, TensorValues};
pub use graph::*;
pub use lower::{opnorm2, Lowerer, Program};
pub use print::{fmt_const, Printer};
pub use subst::subst_affine;
pub use values::{bound_values, param_values, var_starts};
