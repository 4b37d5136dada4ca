//! `CompileOptions::untrusted`: what a service compiling users' `.opt` text relies on — no
//! file access, size caps, and a wall-clock cap on every solve — each ends in a coded
//! diagnostic.

use optc::run::{execute, RunOptions, Status};
use optc::{CompileOptions, Model};
use std::time::Instant;

fn codes(src: &str) -> Vec<String> {
    match Model::compile(src, &CompileOptions::untrusted(0.2)) {
        Ok(_) => vec![],
        Err(e) => e
            .diagnostics
            .iter()
            .map(|d| d.code.as_str().to_string())
            .collect(),
    }
}

#[test]
fn load_is_refused() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/ridge_X.csv");
    let src = format!("dim m, n\nparam X: real[m, n] = load(\"{path}\")\nprint sum(X)\n");
    let c = codes(&src);
    assert!(!c.is_empty(), "an absolute path was read");
    assert!(c.iter().all(|c| c.starts_with('E')), "{c:?}");
}

#[test]
fn sizes_are_capped() {
    // 2000 × 2000 = 4e6 entries: over the 1e6 cap.
    let c = codes("dim n = 2000\nvar X: real[n, n]\nminimize sum(X .* X)\nsolve\n");
    assert_eq!(c, vec!["E0803"], "{c:?}");
    // The same under the default limits compiles.
    let ok = Model::compile(
        "dim n = 2000\nvar X: real[n, n]\nminimize sum(X .* X)\n",
        &CompileOptions::default(),
    );
    assert!(ok.is_ok());
}

#[test]
fn solves_stop_at_the_time_cap() {
    // A fixed-point iteration contracting by 1 − 1e-7 per step, asked for a tolerance it
    // cannot reach in 1e8 iterations, with a `max_time` above the cap: the cap (0.2 s) wins.
    let src = "var x = 1\ncondition x == 0.9999999*x + 1e-9\n\
               solve using fixed_point(tol = 1e-300, max_iter = 100000000, max_time = 1000)\n";
    let mut model = Model::compile(src, &CompileOptions::untrusted(0.2)).expect("compiles");
    let start = Instant::now();
    let report = execute(
        &mut model,
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
        &mut std::io::sink(),
    );
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(report.status, Status::NotConverged);
    assert_eq!(report.exit_code(), 2);
    let d = &report.diagnostics[0];
    assert!(d.to_string().contains("time limit"), "{d}");
    // Stopped by the cap, not by the billion iterations (generous bound for loaded CI).
    assert!(elapsed < 20.0, "{elapsed} s");
}
