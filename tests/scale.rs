#![allow(clippy::needless_range_loop)]
//! Solutions and implicit derivatives at scale, against independent dense computations:
//! ridge at 200×20 and 1000×100 against the normal equations, lasso at 100×1000 (JAXopt's
//! scale case) against its optimality conditions and the support formula
//! dw_S/dλ = −(X_SᵀX_S)⁻¹ sign(w_S).

use faer::linalg::solvers::Solve;
use faer::Mat;
use optc::{CompileOptions, Model};
use std::path::{Path, PathBuf};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optc-scale-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_matrix(path: &Path, a: &[f64], m: usize, n: usize) {
    let mut s = String::new();
    for i in 0..m {
        let row: Vec<String> = (0..n).map(|j| format!("{:e}", a[i * n + j])).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn run(src: &str, dir: &Path) -> (Model, optc::run::RunReport) {
    let opts = CompileOptions {
        base_dir: Some(dir.to_path_buf()),
        ..CompileOptions::default()
    };
    let mut m = Model::compile(src, &opts).unwrap_or_else(|e| panic!("{e}"));
    let r = optc::run::execute(
        &mut m,
        &optc::run::RunOptions {
            quiet: true,
            ..Default::default()
        },
        &mut std::io::sink(),
    );
    assert_eq!(r.status, optc::run::Status::Solved, "{:?}", r.diagnostics);
    (m, r)
}

fn ridge_case(m: usize, n: usize) {
    let dir = temp_dir(&format!("ridge{m}"));
    let mut rng = Rng(0xDEAD_BEEF ^ (m as u64));
    let x: Vec<f64> = (0..m * n).map(|_| rng.next()).collect();
    let y: Vec<f64> = (0..m).map(|_| rng.next()).collect();
    write_matrix(&dir.join("X.csv"), &x, m, n);
    write_matrix(&dir.join("y.csv"), &y, m, 1);
    let lambda = 0.7;
    let src = format!(
        "dim m, n\nparam X: real[m, n] = load(\"X.csv\")\nparam y: real[m] = load(\"y.csv\")\nparam lambda = {lambda}\nvar w: real[n]\nminimize 0.5*norm2(X*w - y)^2 + 0.5*lambda*dot(w, w)\nsolve\nderive d(w)/d(lambda)\n"
    );
    let (model, report) = run(&src, &dir);
    // Independent: (XᵀX + λI) w = Xᵀy, dw/dλ = −(XᵀX + λI)⁻¹ w.
    let a = Mat::from_fn(n, n, |i, j| {
        (0..m).map(|k| x[k * n + i] * x[k * n + j]).sum::<f64>() + if i == j { lambda } else { 0.0 }
    });
    let b = Mat::from_fn(n, 1, |i, _| {
        (0..m).map(|k| x[k * n + i] * y[k]).sum::<f64>()
    });
    let lu = a.partial_piv_lu();
    let w = lu.solve(&b);
    let neg_w = Mat::from_fn(n, 1, |i, _| -w[(i, 0)]);
    let dw = lu.solve(&neg_w);
    let got = model.var("w").unwrap();
    let der = &report.derivatives[0].values;
    for i in 0..n {
        assert!(
            (got[i] - w[(i, 0)]).abs() <= 1e-8 * (1.0 + w[(i, 0)].abs()),
            "w[{i}]: {} vs {}",
            got[i],
            w[(i, 0)]
        );
        assert!(
            (der[i] - dw[(i, 0)]).abs() <= 1e-8 * (1.0 + dw[(i, 0)].abs()),
            "dw[{i}]: {} vs {}",
            der[i],
            dw[(i, 0)]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ridge_200x20_matches_the_normal_equations() {
    ridge_case(200, 20);
}

#[test]
fn ridge_1000x100_matches_the_normal_equations() {
    ridge_case(1000, 100);
}

#[test]
fn lasso_100x1000_matches_its_optimality_conditions_and_the_support_formula() {
    let (m, n) = (100, 1000);
    let dir = temp_dir("lasso");
    let mut rng = Rng(0x5EED);
    let x: Vec<f64> = (0..m * n).map(|_| rng.next() / (m as f64).sqrt()).collect();
    let mut w_true = vec![0.0; n];
    for k in 0..10 {
        w_true[k * 97 % n] = if k % 2 == 0 { 2.0 } else { -1.5 };
    }
    let y: Vec<f64> = (0..m)
        .map(|i| (0..n).map(|j| x[i * n + j] * w_true[j]).sum::<f64>() + 0.05 * rng.next())
        .collect();
    write_matrix(&dir.join("X.csv"), &x, m, n);
    write_matrix(&dir.join("y.csv"), &y, m, 1);
    // λ at a fifth of the value that zeroes every coefficient.
    let xty = (0..n)
        .map(|j| (0..m).map(|i| x[i * n + j] * y[i]).sum::<f64>().abs())
        .fold(0.0, f64::max);
    let lambda = 0.2 * xty;
    let src = format!(
        "use prox\ndim m, n\nparam X: real[m, n] = load(\"X.csv\")\nparam y: real[m] = load(\"y.csv\")\nparam lambda = {lambda:e}\nparam eta = 1 / opnorm2(X)^2\nvar w: real[n]\ncondition w == soft_threshold(w - eta*(X'*(X*w - y)), eta*lambda)\nsolve using anderson(memory = 10, tol = 1e-12, max_iter = 50000)\nderive d(w)/d(lambda)\n"
    );
    let (model, report) = run(&src, &dir);
    let w = model.var("w").unwrap().to_vec();
    // Optimality: Xᵀ(y − Xw) = λ sign(w) on the support, |·| ≤ λ off it.
    let r: Vec<f64> = (0..m)
        .map(|i| y[i] - (0..n).map(|j| x[i * n + j] * w[j]).sum::<f64>())
        .collect();
    let support: Vec<usize> = (0..n).filter(|&j| w[j].abs() > 1e-9).collect();
    assert!(
        support.len() >= 3 && support.len() < 60,
        "support of {} entries",
        support.len()
    );
    for j in 0..n {
        let c: f64 = (0..m).map(|i| x[i * n + j] * r[i]).sum();
        if w[j].abs() > 1e-9 {
            assert!(
                (c - lambda * w[j].signum()).abs() <= 1e-8 * lambda,
                "KKT on the support at {j}"
            );
        } else {
            assert!(
                c.abs() <= lambda * (1.0 + 1e-8),
                "KKT off the support at {j}"
            );
        }
    }
    // dw_S/dλ = −(X_SᵀX_S)⁻¹ sign(w_S), 0 elsewhere.
    let s = support.len();
    let a = Mat::from_fn(s, s, |p, q| {
        (0..m)
            .map(|i| x[i * n + support[p]] * x[i * n + support[q]])
            .sum::<f64>()
    });
    let rhs = Mat::from_fn(s, 1, |p, _| -w[support[p]].signum());
    let d = a.partial_piv_lu().solve(&rhs);
    let got = &report.derivatives[0].values;
    for j in 0..n {
        let expect = support
            .iter()
            .position(|&k| k == j)
            .map(|p| d[(p, 0)])
            .unwrap_or(0.0);
        assert!(
            (got[j] - expect).abs() <= 1e-7 * (1.0 + expect.abs()),
            "dw[{j}]: {} vs {expect}",
            got[j]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
