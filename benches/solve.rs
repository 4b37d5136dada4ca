//! Solve + derive benchmarks for ridge regression at 200×20 and 1000×100:
//! - `optc run` wall time, cold (a new process: parse, load the CSVs, compile, solve, derive);
//! - steady state through the library API (the model compiled once; each call resets the
//!   start, solves, and differentiates the solution with respect to λ).
//!
//! Run: `cargo bench --bench solve`

use criterion::Criterion;
use optc::check::Request;
use optc::diag::Span;
use optc::{CompileOptions, Model};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn write_case(dir: &Path, m: usize, n: usize) -> PathBuf {
    let mut r = Rng(99 + m as u64);
    let mut xs = String::new();
    for _ in 0..m {
        let row: Vec<String> = (0..n).map(|_| format!("{:e}", r.next())).collect();
        xs.push_str(&row.join(","));
        xs.push('\n');
    }
    std::fs::write(dir.join(format!("X_{m}.csv")), xs).expect("X");
    let ys: Vec<String> = (0..m).map(|_| format!("{:e}", r.next())).collect();
    std::fs::write(dir.join(format!("y_{m}.csv")), ys.join("\n")).expect("y");
    let src = format!(
        "dim m, n\nparam X: real[m, n] = load(\"X_{m}.csv\")\nparam y: real[m] = load(\"y_{m}.csv\")\nparam lambda = 0.1\nvar w: real[n]\nminimize 0.5*norm2(X*w - y)^2 + 0.5*lambda*dot(w, w)\nsolve\nderive d(w)/d(lambda)\n"
    );
    let path = dir.join(format!("ridge_{m}.opt"));
    std::fs::write(&path, src).expect("opt");
    path
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let dir = std::env::temp_dir().join(format!("optc-solve-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let exe = env!("CARGO_BIN_EXE_optc");
    for (m, n) in [(200, 20), (1000, 100)] {
        let path = write_case(&dir, m, n);
        let mut g = c.benchmark_group(format!("ridge_{m}x{n}"));
        g.sample_size(20);
        g.bench_function("cold_cli_run", |b| {
            b.iter(|| {
                let out = std::process::Command::new(exe)
                    .args(["run", "--quiet"])
                    .arg(&path)
                    .output()
                    .expect("run optc");
                assert!(out.status.success());
                black_box(out)
            })
        });
        let mut model = Model::compile_file(&path, &CompileOptions::default()).expect("compile");
        let (of, text, wrt) = model
            .checked()
            .requests
            .iter()
            .find_map(|r| match r {
                Request::Derive {
                    of, of_text, wrt, ..
                } => Some((of.clone(), of_text.clone(), *wrt)),
                _ => None,
            })
            .expect("a derive");
        let zero = vec![0.0; n];
        g.bench_function("steady_solve_and_derive", |b| {
            b.iter(|| {
                model.set_var("w", &zero).expect("reset");
                let r = model.solve(None, Span::default(), None).expect("solve");
                assert!(r.converged);
                black_box(
                    model
                        .derive(&of, &text, wrt, 1, None, Span::default())
                        .expect("derive"),
                )
            })
        });
        g.finish();
    }
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n== summary ==");
    for (m, n) in [(200, 20), (1000, 100)] {
        for id in ["cold_cli_run", "steady_solve_and_derive"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "target/criterion/ridge_{m}x{n}/{id}/new/estimates.json"
            ));
            if let Some(t) = std::fs::read_to_string(p)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["median"]["point_estimate"].as_f64())
            {
                println!("ridge {m}×{n} {id}: {:.3} ms", t / 1e6);
            }
        }
    }
}
