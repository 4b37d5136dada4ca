//! Compile and run arbitrary text on the JIT (no file access, small tensors, a time cap on
//! every solve): a report or diagnostics, and a report that says "solved" never carries a
//! non-finite value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use optc::{CompileOptions, Model};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let mut opts = CompileOptions::untrusted(0.5);
    opts.limits.max_tensor_entries = 10_000;
    opts.limits.max_typed_nodes = 100_000;
    let Ok(mut model) = Model::compile(src, &opts) else {
        return;
    };
    let ro = optc::run::RunOptions {
        quiet: true,
        ..Default::default()
    };
    let report = optc::run::execute(&mut model, &ro, &mut std::io::sink());
    if report.status == optc::run::Status::Solved {
        for v in report.values.iter().chain(&report.prints) {
            assert!(
                v.values.iter().all(|x| x.is_finite()),
                "non-finite `{}` in a solved report",
                v.name
            );
        }
        for d in &report.derivatives {
            assert!(
                d.values.iter().all(|x| x.is_finite()),
                "non-finite derivative"
            );
        }
    }
});
