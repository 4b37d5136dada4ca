//! Kernel benchmarks: compile latency, and compiled derivative kernels against the same
//! computations written by hand in plain Rust, measured in the same run. The summary at the
//! end prints the ratios (optc / hand-written) that the README reports.
//!
//! Run: `cargo bench --bench kernels`

use criterion::Criterion;
use optc::{Backend, CompileOptions, Model};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Deterministic pseudo-random numbers in [-1, 1].
#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn data_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("optc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Writes X (m×n) and y (m) and returns a ridge model reading them.
fn ridge_model(dir: &Path, m: usize, n: usize) -> (String, Vec<f64>, Vec<f64>) {
    let mut r = Rng(42);
    let x: Vec<f64> = (0..m * n).map(|_| r.next()).collect();
    let y: Vec<f64> = (0..m).map(|_| r.next()).collect();
    let mut xs = String::new();
    for i in 0..m {
        let row: Vec<String> = (0..n).map(|j| format!("{}", x[i * n + j])).collect();
        xs.push_str(&row.join(","));
        xs.push('\n');
    }
    std::fs::write(dir.join(format!("X_{m}_{n}.csv")), xs).expect("write X");
    let ys: Vec<String> = y.iter().map(|v| v.to_string()).collect();
    std::fs::write(dir.join(format!("y_{m}_{n}.csv")), ys.join("\n")).expect("write y");
    let src = format!(
        "dim m, n\nparam X: real[m, n] = load(\"X_{m}_{n}.csv\")\nparam y: real[m] = load(\"y_{m}_{n}.csv\")\nparam lambda = 0.1\nvar w: real[n]\nlet r = X*w - y\nminimize loss = 0.5*dot(r, r) + 0.5*lambda*dot(w, w)\n"
    );
    (src, x, y)
}

fn lj_model(n: usize) -> (String, Vec<f64>) {
    // Points on a jittered grid, so no pair is too close.
    let side = (n as f64).sqrt().ceil() as usize;
    let mut r = Rng(7);
    let mut q = Vec::new();
    for k in 0..n {
        q.push((k % side) as f64 * 1.1 + 0.05 * r.next());
        q.push((k / side) as f64 * 1.1 + 0.05 * r.next());
    }
    let rows: Vec<String> = (0..n)
        .map(|k| format!("[{}, {}]", q[2 * k], q[2 * k + 1]))
        .collect();
    let src = format!(
        "dim N = {n}\nparam sigma = 1.0\nvar q: real[N, 2] = [{}]\nfn lj(r2) = 4*((sigma^2/r2)^6 - (sigma^2/r2)^3)\nminimize energy = sum(i in 1..N, j in i+1..N) lj(sum(k in 1..2) (q[i,k] - q[j,k])^2)\n",
        rows.join(", ")
    );
    (src, q)
}

/// Hand-written ridge: F = Xᵀ(Xw − y) + λw and uᵀJ = Xᵀ(Xu) + λu.
#[allow(clippy::too_many_arguments)]
fn ridge_by_hand(
    x: &[f64],
    y: &[f64],
    m: usize,
    n: usize,
    w: &[f64],
    u: &[f64],
    f: &mut [f64],
    vjp: &mut [f64],
    tmp: &mut [f64],
) {
    let lambda = 0.1;
    for i in 0..m {
        let mut s = 0.0;
        for j in 0..n {
            s += x[i * n + j] * w[j];
        }
        tmp[i] = s - y[i];
    }
    for j in 0..n {
        f[j] = lambda * w[j];
    }
    for i in 0..m {
        for j in 0..n {
            f[j] += x[i * n + j] * tmp[i];
        }
    }
    for i in 0..m {
        let mut s = 0.0;
        for j in 0..n {
            s += x[i * n + j] * u[j];
        }
        tmp[i] = s;
    }
    for j in 0..n {
        vjp[j] = lambda * u[j];
    }
    for i in 0..m {
        for j in 0..n {
            vjp[j] += x[i * n + j] * tmp[i];
        }
    }
}

/// Hand-written Lennard-Jones energy and gradient over pairs.
fn lj_by_hand(q: &[f64], n: usize, g: &mut [f64]) -> f64 {
    let mut e = 0.0;
    g.iter_mut().for_each(|x| *x = 0.0);
    for i in 0..n {
        for j in i + 1..n {
            let dx = q[2 * i] - q[2 * j];
            let dy = q[2 * i + 1] - q[2 * j + 1];
            let r2 = dx * dx + dy * dy;
            let s2 = 1.0 / r2;
            let s6 = s2 * s2 * s2;
            let s12 = s6 * s6;
            e += 4.0 * (s12 - s6);
            let de = 4.0 * (-12.0 * s12 + 6.0 * s6) * s2;
            g[2 * i] += de * dx;
            g[2 * i + 1] += de * dy;
            g[2 * j] -= de * dx;
            g[2 * j + 1] -= de * dy;
        }
    }
    e
}

fn compile_latency(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut group = c.benchmark_group("compile");
    for name in ["ridge", "qp", "lasso", "root", "cluster", "tune"] {
        let path = dir.join(format!("{name}.opt"));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut m =
                    Model::compile_file(&path, &CompileOptions::default()).expect("compile");
                m.system_fns().expect("functions");
                black_box(m)
            })
        });
    }
    group.finish();
}

fn ridge(c: &mut Criterion) {
    let (m, n) = (1000, 100);
    let dir = data_dir();
    let (src, x, y) = ridge_model(&dir, m, n);
    let opts = CompileOptions {
        base_dir: Some(dir.clone()),
        backend: Backend::Jit,
        ..CompileOptions::default()
    };
    let mut model = Model::compile(&src, &opts).expect("ridge");
    model.system_fns().expect("functions");
    let fns = model.fns().expect("functions");
    let st = model.state().clone();
    let mut r = Rng(3);
    let w: Vec<f64> = (0..n).map(|_| r.next()).collect();
    let u: Vec<f64> = (0..n).map(|_| r.next()).collect();
    let mut f = vec![0.0; n];
    let mut v = vec![0.0; n];
    let mut tmp = vec![0.0; m];
    // The two must agree before their speed is compared.
    let (mut f2, mut v2) = (vec![0.0; n], vec![0.0; n]);
    fns.residual(&w, &st, &mut f).expect("F");
    fns.vjp(&w, &st, &u, &mut v).expect("VJP");
    ridge_by_hand(&x, &y, m, n, &w, &u, &mut f2, &mut v2, &mut tmp);
    for k in 0..n {
        assert!(
            (f[k] - f2[k]).abs() <= 1e-9 * (1.0 + f2[k].abs()),
            "F differs"
        );
        assert!(
            (v[k] - v2[k]).abs() <= 1e-9 * (1.0 + v2[k].abs()),
            "VJP differs"
        );
    }
    let mut group = c.benchmark_group("ridge_1000x100");
    group.bench_function("optc_F_and_VJP", |b| {
        b.iter(|| {
            fns.residual(black_box(&w), &st, &mut f).expect("F");
            fns.vjp(black_box(&w), &st, black_box(&u), &mut v)
                .expect("VJP");
        })
    });
    group.bench_function("hand_F_and_VJP", |b| {
        b.iter(|| {
            ridge_by_hand(
                &x,
                &y,
                m,
                n,
                black_box(&w),
                black_box(&u),
                &mut f2,
                &mut v2,
                &mut tmp,
            )
        })
    });
    group.bench_function("optc_objective", |b| {
        b.iter(|| fns.objective(black_box(&w), &st, None).expect("f"))
    });
    group.bench_function("optc_objective_and_gradient", |b| {
        b.iter(|| fns.objective(black_box(&w), &st, Some(&mut f)).expect("f"))
    });
    group.bench_function("optc_F", |b| {
        b.iter(|| fns.residual(black_box(&w), &st, &mut f).expect("F"))
    });
    group.bench_function("optc_VJP", |b| {
        b.iter(|| {
            fns.vjp(black_box(&w), &st, black_box(&u), &mut v)
                .expect("VJP")
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn lennard_jones(c: &mut Criterion) {
    let n = 100;
    let (src, q) = lj_model(n);
    let mut model = Model::compile(&src, &CompileOptions::default()).expect("lj");
    model.system_fns().expect("functions");
    let fns = model.fns().expect("functions");
    let st = model.state().clone();
    let mut g = vec![0.0; 2 * n];
    let mut g2 = vec![0.0; 2 * n];
    let e = fns.objective(&q, &st, Some(&mut g)).expect("f");
    let e2 = lj_by_hand(&q, n, &mut g2);
    assert!(
        (e - e2).abs() <= 1e-9 * e2.abs().max(1.0),
        "energies differ: {e} vs {e2}"
    );
    for k in 0..2 * n {
        assert!(
            (g[k] - g2[k]).abs() <= 1e-8 * (1.0 + g2[k].abs()),
            "gradients differ"
        );
    }
    let u: Vec<f64> = (0..2 * n)
        .map(|k| ((k * 7) % 11) as f64 / 11.0 - 0.5)
        .collect();
    let mut v = vec![0.0; 2 * n];
    let mut group = c.benchmark_group("lj_100");
    group.bench_function("optc_energy_and_gradient", |b| {
        b.iter(|| fns.objective(black_box(&q), &st, Some(&mut g)).expect("f"))
    });
    group.bench_function("hand_energy_and_gradient", |b| {
        b.iter(|| lj_by_hand(black_box(&q), n, &mut g2))
    });
    group.bench_function("optc_objective", |b| {
        b.iter(|| fns.objective(black_box(&q), &st, None).expect("f"))
    });
    group.bench_function("optc_F", |b| {
        b.iter(|| fns.residual(black_box(&q), &st, &mut g).expect("F"))
    });
    group.bench_function("optc_VJP", |b| {
        b.iter(|| {
            fns.vjp(black_box(&q), &st, black_box(&u), &mut v)
                .expect("VJP")
        })
    });
    group.finish();
}

/// Median time of a benchmark from criterion's report, in nanoseconds.
fn median(group: &str, id: &str) -> Option<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/criterion")
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn summary() {
    println!("\n== summary (times are medians from this run) ==");
    println!("compile latency, source text → callable functions (JIT):");
    for name in ["ridge", "qp", "lasso", "root", "cluster", "tune"] {
        if let Some(t) = median("compile", name) {
            println!("  {name:<10} {:>8.2} ms", t / 1e6);
        }
    }
    let ratio = |g: &str, a: &str, b: &str| Some(median(g, a)? / median(g, b)?);
    if let Some(r) = ratio("ridge_1000x100", "optc_F_and_VJP", "hand_F_and_VJP") {
        println!("ridge 1000×100, F + VJP: optc / hand-written Rust = {r:.2}");
    }
    if let Some(r) = ratio(
        "lj_100",
        "optc_energy_and_gradient",
        "hand_energy_and_gradient",
    ) {
        println!("Lennard-Jones N=100, energy + gradient: optc / hand-written Rust = {r:.2}");
    }
    for g in ["ridge_1000x100", "lj_100"] {
        if let (Some(vf), Some(gf)) = (
            ratio(g, "optc_VJP", "optc_F"),
            ratio(g, "optc_objective_and_gradient", "optc_objective"),
        ) {
            println!("{g}: VJP / F = {vf:.2}, (f + ∇f) / f = {gf:.2}");
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    compile_latency(&mut c);
    ridge(&mut c);
    lennard_jones(&mut c);
    c.final_summary();
    summary();
}
