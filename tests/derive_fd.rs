#![allow(clippy::needless_range_loop)]
//! `derive` against finite differences of re-solved problems, on generated problems of every
//! condition kind: smooth minimization, equality-constrained QPs, root systems, fixed points,
//! and inequality-constrained problems at a strictly complementary solution.

use optc::diag::Span;
use optc::{CompileOptions, Model};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn lit(&mut self, n: usize, scale: f64) -> String {
        let v: Vec<String> = (0..n)
            .map(|_| format!("{:.4}", self.next() * scale))
            .collect();
        format!("[{}]", v.join(", "))
    }
    fn mat(&mut self, m: usize, n: usize, scale: f64) -> String {
        let rows: Vec<String> = (0..m).map(|_| self.lit(n, scale)).collect();
        format!("[{}]", rows.join(", "))
    }
}

/// A problem with a scalar param `p` and a vector param `t` of length n; the solution is `x`.
fn problem(kind: usize, seed: u64) -> String {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n = 2 + (seed % 3) as usize;
    let head = format!("dim n = {n}\nparam A: real[n, n] = {}\nparam b: real[n] = {}\nparam p = {:.3}\nparam t: real[n] = {}\n", r.mat(n, n, 0.5), r.lit(n, 1.0), 1.0 + 0.5 * r.next(), r.lit(n, 0.5));
    let body = match kind {
        // Strongly convex smooth minimization.
        0 => "var x: real[n]\nminimize 0.5*dot(x, x)*(1 + p^2) + 0.5*dot(A*x, A*x) - dot(b + t, x) + 0.1*sum(log(1 + exp(p*x)))\nsolve\n",
        // An equality-constrained QP.
        1 => "var x: real[n]\nminimize 0.5*dot(x, x) + 0.5*dot(A*x, A*x) + dot(t, x)\nsubject to c: sum(x) == p\nsolve\n",
        // A root system.
        2 => "var x: real[n]\ncondition x + 0.3*tanh(A*x + t) == p*b\nsolve using newton\n",
        // A contractive fixed point.
        3 => "var x: real[n]\ncondition x == 0.4*cos(A*x + p*t) + b\nsolve using anderson(tol = 1e-13)\n",
        // An inequality-constrained QP whose constraint is active with μ > 0.
        _ => "var x: real[n]\nminimize 0.5*dot(x, x) - dot(b + t + 3, x)\nsubject to cap: sum(x) <= p\nsolve using interior_point(tol = 1e-12)\n",
    };
    format!("{head}{body}derive d(x)/d(p)\nderive d(x)/d(t)\n")
}

fn solve_x(model: &mut Model) -> Vec<f64> {
    let r = model.solve(None, Span::default(), None).expect("solve");
    assert!(r.converged, "re-solve did not converge");
    model.var("x").expect("x").to_vec()
}

/// Central differences of the solution in one direction of a param.
fn fd(src: &str, param: &str, dir: &[f64]) -> Vec<f64> {
    let base = Model::compile(src, &CompileOptions::default()).expect("compile");
    let p0 = base.param(param).expect("param").to_vec();
    let h = 1e-5;
    let at = |s: f64| {
        let mut m = Model::compile(src, &CompileOptions::default()).expect("compile");
        let v: Vec<f64> = p0.iter().zip(dir).map(|(a, d)| a + s * h * d).collect();
        m.set_param(param, &v).expect("set");
        solve_x(&mut m)
    };
    let (xp, xm) = (at(1.0), at(-1.0));
    xp.iter()
        .zip(&xm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect()
}

#[test]
fn derive_agrees_with_finite_differences_of_resolved_problems() {
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for kind in 0..5 {
        for seed in 1..=8u64 {
            let src = problem(kind, seed + 100 * kind as u64);
            let mut model = Model::compile(&src, &CompileOptions::default())
                .unwrap_or_else(|e| panic!("{e}\n{src}"));
            let report = optc::run::execute(
                &mut model,
                &optc::run::RunOptions {
                    quiet: true,
                    ..Default::default()
                },
                &mut std::io::sink(),
            );
            assert_eq!(
                report.status,
                optc::run::Status::Solved,
                "{src}\n{:?}",
                report.diagnostics
            );
            let n = model.var("x").unwrap().len();
            // d(x)/d(p): a column.
            let dp = &report.derivatives[0].values;
            let f = fd(&src, "p", &[1.0]);
            for i in 0..n {
                let e = (dp[i] - f[i]).abs() / (1.0 + f[i].abs());
                worst = worst.max(e);
                assert!(
                    e < 1e-6,
                    "kind {kind} seed {seed}: d(x)/d(p)[{i}] = {} vs FD {}\n{src}",
                    dp[i],
                    f[i]
                );
            }
            // d(x)/d(t) applied to a direction.
            let dt = &report.derivatives[1].values;
            let dir: Vec<f64> = (0..n)
                .map(|k| ((k * 5 + 1) % 7) as f64 / 7.0 - 0.4)
                .collect();
            let f = fd(&src, "t", &dir);
            for i in 0..n {
                let an: f64 = (0..n).map(|j| dt[i * n + j] * dir[j]).sum();
                let e = (an - f[i]).abs() / (1.0 + f[i].abs());
                worst = worst.max(e);
                assert!(
                    e < 1e-6,
                    "kind {kind} seed {seed}: d(x)/d(t)·v [{i}] = {an} vs FD {}\n{src}",
                    f[i]
                );
            }
            checked += 1;
        }
    }
    eprintln!("derive vs finite differences: {checked} problems, worst relative error {worst:.1e}");
    assert_eq!(checked, 40);
}
