//! Phase 1 — syntax. In: source text. Out: an AST with a byte span on every node, or coded
//! diagnostics. Knows nothing of names, shapes or IR.
//!
//! `lines` decides which newlines end statements, `parser` runs the pest grammar
//! (`grammar/opt.pest`) and builds the AST, `pretty` prints it back.

pub mod ast;
mod lines;
mod parser;
mod pretty;

pub use lines::MAX_BRACKET_DEPTH;
pub use parser::{parse, parse_expr, MAX_EXPR_DEPTH};
