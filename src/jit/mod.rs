//! Phase 6a — jit. In: a verified kernel. Out: native code from Cranelift, callable from many
//! threads at once.
//!
//! A kernel becomes `extern "C" fn(bufs: *const *mut f64)`: one base pointer per kernel buffer
//! (inputs, outputs, temporaries, constants). Loops become counted loops over i64 loop
//! variables, kernel locals become Cranelift variables, transcendental functions are calls to
//! Rust wrappers registered by name (so results equal the interpreter's bit for bit). Very
//! large straight-line bodies are split into chunk functions that pass values through memory,
//! because register allocation time grows faster than linearly in function size.
//!
//! **This is the only module with `unsafe`**: calling the generated code, and freeing its
//! memory. Both rely on the kernel verifier, which proves every access in bounds.

mod codegen;

use crate::compiled::{Engine, KernelFn};
use crate::ir::TensorId;
use crate::kernel::{BufKind, Kernel};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use std::sync::{Arc, Mutex, OnceLock};

/// The JIT engine for this machine (one shared target ISA).
pub fn engine() -> Arc<dyn Engine> {
    static ENGINE: OnceLock<Result<Arc<JitEngine>, String>> = OnceLock::new();
    match ENGINE.get_or_init(|| JitEngine::new().map(Arc::new)) {
        Ok(e) => e.clone(),
        // A host Cranelift cannot target: the interpreter still gives the same numbers.
        Err(_) => Arc::new(crate::compiled::InterpEngine),
    }
}

pub struct JitEngine {
    isa: OwnedTargetIsa,
}

impl JitEngine {
    pub fn new() -> Result<JitEngine, String> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| format!("cranelift flag {k}: {e}"))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        set(
            &mut flags,
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("this host is not supported by Cranelift: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("cranelift: {e}"))?;
        Ok(JitEngine { isa })
    }

    fn module(&self) -> JITModule {
        let mut b =
            JITBuilder::with_isa(self.isa.clone(), cranelift_module::default_libcall_names());
        for (name, ptr) in codegen::symbols() {
            b.symbol(name, ptr);
        }
        JITModule::new(b)
    }

    /// The Cranelift IR of a kernel (for `optc emit --clif`).
    pub fn clif(&self, k: &Kernel) -> Result<String, String> {
        let mut module = self.module();
        let text = codegen::compile(&mut module, k, true).map(|(_, t)| t);
        // SAFETY: nothing from this module was called or kept; its code is freed unused.
        unsafe { module.free_memory() };
        text
    }
}

impl Engine for JitEngine {
    fn compile(&self, k: Kernel) -> Result<Arc<dyn KernelFn>, String> {
        crate::kernel::verify(&k)?;
        let mut module = self.module();
        let (entry, _) = match codegen::compile(&mut module, &k, false) {
            Ok(x) => x,
            Err(e) => {
                // SAFETY: compilation failed, no pointer into the module escaped.
                unsafe { module.free_memory() };
                return Err(e);
            }
        };
        Ok(Arc::new(JitKernel {
            module: Mutex::new(Some(module)),
            entry,
            locals_len: codegen::locals_area(&k),
            kernel: k,
        }))
    }

    fn name(&self) -> &'static str {
        "jit"
    }
}

type Entry = unsafe extern "C" fn(*const *mut f64);

/// A compiled kernel: owns its code memory (freed on drop) and the entry point.
struct JitKernel {
    module: Mutex<Option<JITModule>>,
    entry: Entry,
    /// Length of the memory area chunked kernels pass values through (0: not chunked).
    locals_len: usize,
    kernel: Kernel,
}

// SAFETY: the module is touched only in `drop` (exclusive access); the generated code is
// immutable after `finalize_definitions`, reads only the buffers passed to each call and its
// own stack, so calls from many threads do not interfere.
unsafe impl Send for JitKernel {}
// SAFETY: as above: shared use is limited to calling the reentrant entry point.
unsafe impl Sync for JitKernel {}

impl Drop for JitKernel {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(m) = module {
            // SAFETY: the only pointer into this module's code is `self.entry`, which dies
            // with `self`; no call can be running because we have `&mut self`.
            unsafe { m.free_memory() };
        }
    }
}

impl KernelFn for JitKernel {
    fn run<'a>(
        &self,
        input: &dyn Fn(TensorId) -> Option<&'a [f64]>,
        outputs: &mut [&mut [f64]],
    ) -> Result<(), String> {
        let k = &self.kernel;
        let mut temps: Vec<f64> = vec![0.0; k.workspace_len()];
        let mut table: Vec<*mut f64> = Vec::with_capacity(k.buffers.len());
        let mut temp_off = 0usize;
        for b in &k.buffers {
            let ptr = match &b.kind {
                BufKind::Input(t) => {
                    let data = input(*t).ok_or_else(|| {
                        format!("kernel {}: no value for input `{}`", k.name, b.name)
                    })?;
                    if data.len() != b.len {
                        return Err(format!(
                            "kernel {}: input `{}` has {} entries, expected {}",
                            k.name,
                            b.name,
                            data.len(),
                            b.len
                        ));
                    }
                    // Inputs are only read: the verifier rejects stores to them.
                    data.as_ptr() as *mut f64
                }
                BufKind::Constant(values) => values.as_ptr() as *mut f64,
                BufKind::Temp => {
                    let p = temps[temp_off..].as_mut_ptr();
                    temp_off += b.len;
                    p
                }
                BufKind::Output(o) => {
                    let out = outputs
                        .get_mut(*o)
                        .ok_or_else(|| format!("kernel {}: missing output {o}", k.name))?;
                    if out.len() != b.len {
                        return Err(format!(
                            "kernel {}: output `{}` has {} entries, expected {}",
                            k.name,
                            b.name,
                            out.len(),
                            b.len
                        ));
                    }
                    out.as_mut_ptr()
                }
            };
            table.push(ptr);
        }
        let mut locals: Vec<f64> = vec![0.0; self.locals_len];
        if self.locals_len > 0 {
            table.push(locals.as_mut_ptr());
        }
        clear_upper_vector_state();
        // SAFETY: `entry` was produced from this verified kernel, whose every load and store
        // was proven within `0..len` of its buffer; each table entry points to a live
        // allocation of exactly that length (checked above), outputs and temporaries are
        // exclusively borrowed for the call, and inputs are never written.
        unsafe { (self.entry)(table.as_ptr()) };
        Ok(())
    }
}

/// Clears the upper halves of the vector registers before generated code runs.
///
/// The generated code uses legacy SSE encodings. Code that used 256- or 512-bit registers
/// without a `vzeroupper` on exit (a hand-vectorized matrix product, say) leaves their upper
/// halves dirty, and on many x86 cores every SSE instruction then pays a merge penalty: a
/// network's Jacobian ran 20× slower right after a dense matrix product. One `vzeroupper`
/// per call removes that (it costs a few cycles).
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `vzeroupper` exists on every CPU with AVX (checked just above). It zeroes
        // the upper bits of the vector registers; the compiler models the intrinsic as
        // clobbering them, so no live value is lost.
        unsafe { std::arch::x86_64::_mm256_zeroupper() };
    }
}
