//! `tune`: hypergradients from implicit differentiation against finite differences of
//! re-solved inner problems, for every bilevel example; the outer loop lowers the objective;
//! the ridge optimum against a one-dimensional search over the closed-form ridge solution; the
//! molecular example against its scaling law.

use optc::check::{MethodSpec, OptValue, Request};
#[path = "support/quiet.rs"]
mod quiet;
use optc::{CompileOptions, Model};
use quiet::run_quiet;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn compile(name: &str) -> Model {
    Model::compile_file(&example(name), &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {}", e.render(optc::diag::RenderStyle::Plain)))
}

/// The file's inner `solve` spec with a tightened tolerance (finite differences divide the
/// inner solve's error by the step), and its `tune` request.
fn parts(model: &Model) -> (MethodSpec, Request) {
    let mut spec = None;
    let mut tune = None;
    for r in &model.checked().requests {
        match r {
            Request::Solve {
                target: None,
                method,
                span,
            } => spec = Some((method.clone(), *span)),
            Request::Tune { .. } => tune = Some(r.clone()),
            _ => {}
        }
    }
    let (method, span) = spec.expect("a solve");
    let mut spec = method.unwrap_or(MethodSpec {
        name: "newton".into(),
        options: vec![],
        span,
    });
    spec.options.retain(|(n, _, _)| n != "tol");
    spec.options
        .push(("tol".into(), OptValue::Number(1e-13), span));
    (spec, tune.expect("a tune"))
}

/// Largest relative error of the hypergradient against central differences (step `h`) of
/// the outer objective at re-solved inner problems, over every entry of the tuned params.
fn hypergradient_error(name: &str, h: f64) -> f64 {
    let mut model = compile(name);
    let (spec, tune) = parts(&model);
    let Request::Tune {
        params,
        objective,
        objective_text,
        span,
        ..
    } = tune
    else {
        unreachable!()
    };
    let solve = |m: &mut Model| {
        let r = m.solve(Some(&spec), span, None).expect("solves");
        assert!(r.converged, "{name}: inner solve did not converge");
    };
    solve(&mut model);
    let hg = model
        .hypergradient_fns(&objective, &objective_text, &params, span)
        .expect("compiles");
    let (_, grads) = model.hypergradient(&hg, span).expect("differentiates");
    let solution = model.state().vars.clone();
    let e = model.lower(&objective).expect("lowers");
    let mut worst = 0.0_f64;
    for (k, &p) in params.iter().enumerate() {
        let pname = model.checked().param(p).name.clone();
        let base = model.state().params[p.index()].clone();
        for j in 0..base.len() {
            let mut at = |t: f64| {
                let mut v = base.clone();
                v[j] += t;
                model.set_param(&pname, &v).expect("in bounds");
                model.state_mut().vars = solution.clone();
                solve(&mut model);
                model.evaluate(std::slice::from_ref(&e)).expect("evaluates")[0][0]
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let g = grads[k][j];
            let err = (g - fd).abs() / fd.abs().max(1e-3);
            eprintln!("{name}: d/d{pname}[{j}] implicit {g:.10e}, finite differences {fd:.10e}, rel. error {err:.1e}");
            worst = worst.max(err);
        }
        model.set_param(&pname, &base).expect("restores");
    }
    worst
}

#[test]
fn hypergradients_match_finite_differences_of_resolved_inner_problems() {
    // The fixed-point examples are solved to about 1e-13, which sets the finite-difference
    // step: with h = 1e-5 that error divided by h is already 1e-8 of the derivative.
    for (name, h) in [
        ("tune.opt", 1e-5),
        ("tune_logistic.opt", 1e-5),
        ("tune_lasso.opt", 1e-4),
        ("tune_svm.opt", 1e-4),
        ("distill.opt", 1e-5),
        ("molecular.opt", 1e-5),
    ] {
        let err = hypergradient_error(name, h);
        assert!(err < 1e-6, "{name}: relative error {err:.2e}");
    }
}

fn tuned(name: &str) -> optc::run::TuneReport {
    let mut model = compile(name);
    let report = run_quiet(&mut model);
    assert_eq!(report.exit_code(), 0, "{name}: {:?}", report.diagnostics);
    report.tune.expect("a tune report")
}

#[test]
fn every_example_tunes_to_a_lower_objective() {
    for name in [
        "tune.opt",
        "tune_logistic.opt",
        "tune_lasso.opt",
        "tune_svm.opt",
        "distill.opt",
        "molecular.opt",
    ] {
        let t = tuned(name);
        assert!(t.converged, "{name}: {}", t.reason);
        assert!(
            t.objective < t.initial_objective,
            "{name}: {} is not below {}",
            t.objective,
            t.initial_objective
        );
        // The history is the accepted iterates: never increasing.
        for w in t.history.windows(2) {
            assert!(w[1].1 <= w[0].1, "{name}: the objective rose");
        }
    }
}

fn read_csv(name: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(example("data").join(name)).expect("data file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse().expect("number"))
                .collect()
        })
        .collect()
}

/// Solves the symmetric positive definite system A x = b by Cholesky.
fn cholesky_solve(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            l[i][j] = if i == j {
                (a[i][i] - s).sqrt()
            } else {
                (a[i][j] - s) / l[j][j]
            };
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

#[test]
fn the_tuned_ridge_penalty_is_the_minimizer_of_the_closed_form_validation_loss() {
    let x = read_csv("tune_X.csv");
    let y: Vec<f64> = read_csv("tune_y.csv").into_iter().map(|r| r[0]).collect();
    let xv = read_csv("tune_Xv.csv");
    let yv: Vec<f64> = read_csv("tune_yv.csv").into_iter().map(|r| r[0]).collect();
    let n = x[0].len();
    // w(λ) = (XᵀX + λI)⁻¹ Xᵀy; the validation loss ½‖Xv w − yv‖².
    let loss = |loglam: f64| {
        let mut a = vec![vec![0.0; n]; n];
        let mut b = vec![0.0; n];
        for (row, yi) in x.iter().zip(&y) {
            for i in 0..n {
                b[i] += row[i] * yi;
                for j in 0..n {
                    a[i][j] += row[i] * row[j];
                }
            }
        }
        for (i, r) in a.iter_mut().enumerate() {
            r[i] += loglam.exp();
        }
        let w = cholesky_solve(&a, &b);
        xv.iter()
            .zip(&yv)
            .map(|(r, yi)| {
                let p: f64 = r.iter().zip(&w).map(|(a, b)| a * b).sum();
                0.5 * (p - yi).powi(2)
            })
            .sum::<f64>()
    };
    // A grid over the declared box, then golden-section search around the best point.
    let grid: Vec<f64> = (0..=160).map(|k| -8.0 + 0.1 * k as f64).collect();
    let best = grid
        .iter()
        .copied()
        .min_by(|a, b| loss(*a).total_cmp(&loss(*b)))
        .expect("grid");
    let (mut a, mut b) = (best - 0.1, best + 0.1);
    let r = (5f64.sqrt() - 1.0) / 2.0;
    while b - a > 1e-10 {
        let (c, d) = (b - r * (b - a), a + r * (b - a));
        if loss(c) < loss(d) {
            b = d;
        } else {
            a = c;
        }
    }
    let search = 0.5 * (a + b);
    let t = tuned("tune.opt");
    let got = t.params[0].values[0];
    assert!(
        (got - search).abs() < 1e-5,
        "tune gives loglam = {got}, the closed-form search {search}"
    );
    assert!((t.objective - loss(search)).abs() < 1e-9 * loss(search));
}

#[test]
fn molecular_distances_scale_with_the_diameter() {
    let mut model = compile("molecular.opt");
    let report = run_quiet(&mut model);
    assert_eq!(report.exit_code(), 0, "{:?}", report.diagnostics);
    // derive d(r)/d(sigma) ran at sigma = 1, before the tune: dr/dσ = r/σ = r(1).
    let d = &report.derivatives[0];
    let n = 7;
    let t = report.tune.as_ref().expect("tune");
    let sigma = t.params[0].values[0];
    let r_end = &report
        .values
        .iter()
        .find(|v| v.name == "r")
        .expect("r")
        .values;
    assert_eq!(r_end.len(), n * n);
    for (k, (dr, r)) in d.values.iter().zip(r_end).enumerate() {
        // r at σ = 1 is r at the tuned σ divided by σ (the scaling law once more).
        let r1 = r / sigma;
        assert!((dr - r1).abs() < 1e-8, "entry {k}: {dr} vs {r1}");
    }
    // The tuned diameter gives the target mean distance: σ* = target / mean r(1).
    let mean1: f64 = d.values.iter().sum::<f64>() / (n * (n - 1)) as f64;
    assert!(
        (sigma - 1.5 / mean1).abs() < 1e-8,
        "{sigma} vs {}",
        1.5 / mean1
    );
}

#[test]
fn adam_and_gradient_descent_reach_the_lbfgs_optimum() {
    let dir = example("");
    let text = std::fs::read_to_string(example("tune.opt")).expect("example");
    let reference = tuned("tune.opt").params[0].values[0];
    for using in ["adam(lr = 0.1, steps = 400)", "gd(lr = 0.02, steps = 400)"] {
        let src = text.replace("using lbfgs", &format!("using {using}"));
        let opts = CompileOptions {
            base_dir: Some(dir.clone()),
            ..CompileOptions::default()
        };
        let mut model = Model::compile(&src, &opts).expect("compiles");
        let report = run_quiet(&mut model);
        let t = report.tune.expect("tune");
        assert_eq!(t.method, &using[..using.find('(').unwrap_or(0)]);
        let got = t.params[0].values[0];
        assert!(
            (got - reference).abs() < 1e-3,
            "{using}: {got} vs {reference}"
        );
    }
}

#[test]
fn maximize_tunes_uphill() {
    // max over a of −(x*(a) − 2)² with x* = a: a = 2.
    let src = "param a = 0 in [-5, 5]\nvar x\nminimize 0.5*(x - a)^2\nsolve\n\
               tune a to maximize -(x - 2)^2\n";
    let mut model = Model::compile(src, &CompileOptions::default()).expect("compiles");
    let report = run_quiet(&mut model);
    let t = report.tune.expect("tune");
    assert!((t.params[0].values[0] - 2.0).abs() < 1e-8);
    assert!(t.objective > t.initial_objective);
}
