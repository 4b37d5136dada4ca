//! The parser on arbitrary text: a syntax tree or diagnostics, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let _ = optc::syntax::parse(src, optc::diag::FileId(0));
    }
});
