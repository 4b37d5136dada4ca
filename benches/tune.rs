//! Hypergradients: implicit differentiation against the inner solve, and against
//! differentiating through N unrolled iterations of the inner solver (reverse mode over the
//! stored iterates, as an autodiff framework would), on ridge regression tuned on a
//! validation loss (train 400×60 with features of decaying scale, validation 200×60,
//! θ = log λ).
//!
//! - `inner_solve`: Newton from w = 0 (what every outer step pays, before warm starts);
//! - `hypergradient`: de/dθ at the solution by the implicit function theorem (one
//!   transposed solve);
//! - `unrolled_N`: N gradient-descent steps w ← w − η ∇_w f(w, θ) from w = 0, then the reverse
//!   sweep through all N steps (a VJP in w and one in θ per step), storing the N iterates.
//!
//! The summary prints times as ratios to `hypergradient`, the memory each method keeps, and
//! the error of the unrolled gradient against the implicit one.
//! Run: `cargo bench --bench tune`

use criterion::Criterion;
use optc::check::{ParamId, Request};
use optc::diag::Span;
use optc::{CompileOptions, Model};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const M: usize = 400;
const MV: usize = 200;
const N: usize = 60;
const UNROLLS: [usize; 3] = [10, 100, 1000];

/// Column j scaled by 1/(j+1): the features differ in scale, so ∂wF is ill-conditioned
/// (κ ≈ 130 at λ = 1) as in real regression data.
fn matrix(r: &mut Rng, m: usize, n: usize) -> Vec<Vec<f64>> {
    (0..m)
        .map(|_| (0..n).map(|j| r.next() / (j + 1) as f64).collect())
        .collect()
}

fn csv(rows: &[Vec<f64>]) -> String {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| format!("{v:e}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Case {
    model: Model,
    loglam: ParamId,
    xv: Vec<Vec<f64>>,
    yv: Vec<f64>,
}

fn setup(dir: &Path) -> Case {
    let mut r = Rng(2026);
    let w: Vec<f64> = (0..N).map(|_| 0.3 * r.next()).collect();
    let data = |r: &mut Rng, m: usize| {
        let x = matrix(r, m, N);
        let y: Vec<f64> = x
            .iter()
            .map(|row| row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + 0.5 * r.next())
            .collect();
        (x, y)
    };
    let (x, y) = data(&mut r, M);
    let (xv, yv) = data(&mut r, MV);
    std::fs::write(dir.join("X.csv"), csv(&x)).expect("X");
    std::fs::write(dir.join("Xv.csv"), csv(&xv)).expect("Xv");
    let col = |v: &[f64]| csv(&v.iter().map(|a| vec![*a]).collect::<Vec<_>>());
    std::fs::write(dir.join("y.csv"), col(&y)).expect("y");
    std::fs::write(dir.join("yv.csv"), col(&yv)).expect("yv");
    let src =
        "dim m, n, mv\nparam X: real[m, n] = load(\"X.csv\")\nparam y: real[m] = load(\"y.csv\")\n\
               param Xv: real[mv, n] = load(\"Xv.csv\")\nparam yv: real[mv] = load(\"yv.csv\")\n\
               param loglam = 0.0\nvar w: real[n]\n\
               minimize 0.5*norm2(X*w - y)^2 + 0.5*exp(loglam)*dot(w, w)\nsolve\n\
               tune loglam to minimize 0.5*norm2(Xv*w - yv)^2\n";
    let path = dir.join("ridge_tune.opt");
    std::fs::write(&path, src).expect("opt");
    let model = Model::compile_file(&path, &CompileOptions::default()).expect("compile");
    let loglam = model.checked().param_by_name("loglam").expect("loglam");
    Case {
        model,
        loglam,
        xv,
        yv,
    }
}

/// ∂e/∂w for e = ½‖Xv w − yv‖².
fn outer_grad(c: &Case, w: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; N];
    for (row, yi) in c.xv.iter().zip(&c.yv) {
        let r: f64 = row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - yi;
        for (gj, xj) in g.iter_mut().zip(row) {
            *gj += r * xj;
        }
    }
    g
}

/// de/dθ through `steps` unrolled gradient-descent steps with step `eta`; returns it and the
/// bytes of the stored iterates.
fn unrolled(c: &Case, steps: usize, eta: f64) -> (f64, usize) {
    let fns = c.model.fns().expect("compiled");
    let param = c.model.program().params[c.loglam.index()];
    let st = c.model.state();
    // Forward: keep every iterate (the tape).
    let mut tape = Vec::with_capacity(steps + 1);
    let mut w = vec![0.0; N];
    let mut f = vec![0.0; N];
    tape.push(w.clone());
    for _ in 0..steps {
        fns.residual(&w, st, &mut f).expect("F");
        for (a, b) in w.iter_mut().zip(&f) {
            *a -= eta * b;
        }
        tape.push(w.clone());
    }
    // Reverse: λ_N = ∂e/∂w(w_N); per step, dθ −= η λᵀ∂θF(w_k), λ ← λ − η ∂wF(w_k)ᵀλ.
    let mut lam = outer_grad(c, &tape[steps]);
    let mut dtheta = 0.0;
    let (mut vz, mut vp) = (vec![0.0; N], [0.0]);
    for k in (0..steps).rev() {
        fns.param_vjp(param, &tape[k], st, &lam, &mut vp)
            .expect("θ-VJP");
        dtheta -= eta * vp[0];
        fns.vjp(&tape[k], st, &lam, &mut vz).expect("VJP");
        for (a, b) in lam.iter_mut().zip(&vz) {
            *a -= eta * b;
        }
    }
    (dtheta, tape.len() * N * 8)
}

fn median_ns(group: &str, id: &str) -> Option<f64> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/criterion/{group}/{id}/new/estimates.json"));
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["median"]["point_estimate"].as_f64())
}

fn main() {
    let mut crit = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let dir = std::env::temp_dir().join(format!("optc-tune-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut c = setup(&dir);
    let (objective, text, params, span) = c
        .model
        .checked()
        .requests
        .iter()
        .find_map(|r| match r {
            Request::Tune {
                objective,
                objective_text,
                params,
                span,
                ..
            } => Some((
                objective.clone(),
                objective_text.clone(),
                params.clone(),
                *span,
            )),
            _ => None,
        })
        .expect("a tune");
    let r = c.model.solve(None, span, None).expect("solve");
    assert!(r.converged);
    c.model.param_fns("loglam").expect("θ-derivatives");
    let h = c
        .model
        .hypergradient_fns(&objective, &text, &params, span)
        .expect("compile");
    let implicit = c.model.hypergradient(&h, span).expect("hypergradient").1[0][0];
    // The unrolled solver's step: 1/L with L = λmax(XᵀX) + λ, by power iteration on ∂wF.
    let fns = c.model.fns().expect("fns");
    let (z, st) = (c.model.var("w").expect("w").to_vec(), c.model.state());
    let mut v = vec![1.0; N];
    let mut lmax = 0.0;
    for _ in 0..200 {
        let mut jv = vec![0.0; N];
        fns.jvp(&z, st, &v, &mut jv).expect("JVP");
        lmax = jv.iter().map(|a| a * a).sum::<f64>().sqrt();
        v = jv.iter().map(|a| a / lmax).collect();
    }
    let eta = 1.0 / lmax;

    let mut g = crit.benchmark_group("tune_ridge");
    g.sample_size(20);
    let zero = vec![0.0; N];
    g.bench_function("inner_solve", |b| {
        b.iter(|| {
            c.model.set_var("w", &zero).expect("reset");
            let r = c.model.solve(None, Span::default(), None).expect("solve");
            black_box(r.converged)
        })
    });
    g.bench_function("hypergradient", |b| {
        b.iter(|| black_box(c.model.hypergradient(&h, span).expect("hypergradient")))
    });
    for steps in UNROLLS {
        g.bench_function(format!("unrolled_{steps}"), |b| {
            b.iter(|| black_box(unrolled(&c, steps, eta)))
        });
    }
    g.finish();
    crit.final_summary();
    let _ = std::fs::remove_dir_all(&dir);

    println!("\n== summary: ridge {M}×{N}, validation {MV}×{N}, θ = log λ ==");
    println!("implicit de/dθ = {implicit:.12e}");
    let base = median_ns("tune_ridge", "hypergradient");
    let jac_bytes = N * N * 8;
    if let (Some(h), Some(s)) = (base, median_ns("tune_ridge", "inner_solve")) {
        println!(
            "hypergradient {:.3} ms = {:.2}× the inner solve ({:.3} ms); keeps ∂F/∂z: {} bytes",
            h / 1e6,
            h / s,
            s / 1e6,
            jac_bytes
        );
    }
    for steps in UNROLLS {
        let (d, bytes) = unrolled(&c, steps, eta);
        let t = median_ns("tune_ridge", &format!("unrolled_{steps}"));
        let ratio = match (t, base) {
            (Some(t), Some(b)) => format!("{:.2}× the hypergradient", t / b),
            _ => "-".into(),
        };
        println!(
            "unrolled {steps:>5}: {ratio}, tape {bytes} bytes, relative error {:.2e}",
            (d - implicit).abs() / implicit.abs()
        );
    }
}
