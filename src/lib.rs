//! optc — a compiler for optimality conditions.
//!
//! A `.opt` file states unknowns, parameters and the conditions a solution satisfies. optc
//! parses and checks it, lowers it to a pointful IR, differentiates it symbolically, compiles
//! native kernels, solves the conditions, and differentiates the solution with respect to the
//! parameters by the implicit function theorem. See ARCHITECTURE.md for the map of phases.
//!
//! The façade is [`Model`]: compile a file or a string, set params, evaluate, solve, derive.
//! [`run::execute`] runs a model's requests the way `optc run` does:
//!
//! ```
//! use optc::{CompileOptions, Model};
//! let src = "param theta = 2\nvar x = 0.5\ncondition x^3 + x - theta == 0\n\
//!            solve\nderive d(x)/d(theta)\n";
//! let mut model = Model::compile(src, &CompileOptions::default()).unwrap();
//! model.set_param("theta", &[10.0]).unwrap(); // data only: no recompilation
//! let opts = optc::run::RunOptions { quiet: true, ..Default::default() };
//! let report = optc::run::execute(&mut model, &opts, &mut std::io::sink());
//! // x³ + x = 10 at x = 2, and dx/dθ = 1/(3x² + 1) = 1/13.
//! assert!((model.var("x").unwrap()[0] - 2.0).abs() < 1e-12);
//! assert!((report.derivatives[0].values[0] - 1.0 / 13.0).abs() < 1e-12);
//! ```
//!
//! The `optc repl` session ([`repl::Session`]) is built on the same façade.

// Diagnostics are the error type of every phase. They are returned once per failure, never in
// a hot loop, so their size does not matter; boxing them would only add noise everywhere.
#![allow(clippy::result_large_err)]
// Numerical loops index several arrays with one counter; that reads like the mathematics.
#![allow(clippy::needless_range_loop)]

pub mod affine;
mod api;
pub mod check;
pub mod cli;
pub mod diag;
pub mod diff;
pub mod interp;
pub mod ir;
pub mod kernel;
pub mod ops;
pub mod pde;
pub mod repl;
pub mod report;
pub mod run;
pub mod stdlib;
pub mod syntax;
pub mod system;

pub use api::{Backend, CompileError, CompileOptions, FunctionStats, Model, State};
pub mod compiled;
pub mod jit;
pub mod solve;
