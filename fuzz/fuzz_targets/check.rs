//! Parse and check arbitrary text (no file access), and render every diagnostic: a model or
//! diagnostics with codes, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use optc::{CompileOptions, Model};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let mut opts = CompileOptions {
        backend: optc::Backend::Interp,
        ..CompileOptions::default()
    };
    opts.limits.max_tensor_entries = 100_000;
    if let Err(e) = Model::compile(src, &opts) {
        assert!(
            !e.diagnostics.is_empty(),
            "a failed compile without a diagnostic"
        );
        let _ = e.render(optc::diag::RenderStyle::Plain);
    }
});
