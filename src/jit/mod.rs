//! Phase 6a — jit. In: a verified kernel. Out: native code (Cranelift).

use crate::compiled::{Engine, InterpEngine};
use std::sync::Arc;

/// The JIT engine (falls back to the interpreter until native code generation lands).
pub fn engine() -> Arc<dyn Engine> {
    Arc::new(InterpEngine)
}
