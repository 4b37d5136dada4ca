#![allow(clippy::needless_range_loop)]
//! Cost: derivatives cost a small multiple of the function, never a multiple of n.
//! Counted with the interpreter's floating-point operation counter, so the numbers are exact
//! and machine-independent.

use optc::{CompileOptions, Model};
use std::path::Path;

fn flops(model: &mut Model) -> std::collections::HashMap<String, u64> {
    model
        .function_stats()
        .expect("stats")
        .into_iter()
        .map(|s| (s.name, s.flops))
        .collect()
}

/// VJP (or gradient) operation count ≤ 4× the function's, on every example with a system.
#[test]
fn derivatives_cost_a_small_multiple_of_the_function_on_the_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for name in ["ridge", "qp", "lasso", "root", "cluster", "tune"] {
        let mut m =
            Model::compile_file(&dir.join(format!("{name}.opt")), &CompileOptions::default())
                .expect(name);
        let f = flops(&mut m);
        // The gradient of an objective against the objective; else the VJP against F.
        let (what, ratio) = match (f.get("f"), f.get("F"), f.get("uᵀ∂F")) {
            (Some(&fv), Some(&grad), _) if f.contains_key("f, ∇f") => {
                ("∇f / f", grad as f64 / fv.max(1) as f64)
            }
            (_, Some(&fv), Some(&vjp)) => ("uᵀ∂F / F", vjp as f64 / fv.max(1) as f64),
            _ => panic!("{name}: missing functions {f:?}"),
        };
        assert!(ratio <= 4.0, "{name}: {what} = {ratio:.2}");
        // The HVP (JVP of the gradient) stays a small multiple as well.
        if let (Some(&fv), Some(&jv)) = (f.get("F"), f.get("∂F·v")) {
            let r = jv as f64 / fv.max(1) as f64;
            assert!(r <= 4.0, "{name}: ∂F·v / F = {r:.2}");
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

fn ridge_source(m: usize, n: usize) -> String {
    let mut s = 0x1234_5678u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * 0.9
    };
    let rows: Vec<String> = (0..m)
        .map(|_| {
            format!(
                "[{}]",
                (0..n)
                    .map(|_| format!("{:.3}", rnd()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let y: Vec<String> = (0..m).map(|_| format!("{:.3}", rnd())).collect();
    format!(
        "dim m = {m}\ndim n = {n}\nparam X: real[m, n] = [{}]\nparam y: real[m] = [{}]\nparam lambda = 0.5\nvar w: real[n]\nminimize 0.5*norm2(X*w - y)^2 + 0.5*lambda*dot(w, w)\n",
        rows.join(", "),
        y.join(", ")
    )
}

/// X'(Xw − y) + λw costs O(mn), not O(mn²): the gradient's count grows linearly in m·n.
#[test]
fn ridge_gradient_cost_is_linear_in_m_times_n() {
    let sizes = [(20, 5), (40, 10), (80, 20)];
    let mut per_entry = Vec::new();
    for (m, n) in sizes {
        let mut model =
            Model::compile(&ridge_source(m, n), &CompileOptions::default()).expect("ridge");
        let f = flops(&mut model);
        let grad = f["F"] as f64;
        let hvp = f["∂F·v"] as f64;
        per_entry.push((grad / (m * n) as f64, hvp / (m * n) as f64));
    }
    // Constant per matrix entry (up to lower-order m + n terms): at most 2 flops per entry
    // for each pass over X, and never growing with the size.
    for w in per_entry.windows(2) {
        assert!(
            w[1].0 <= w[0].0 * 1.01,
            "gradient flops per entry grew: {per_entry:?}"
        );
        assert!(
            w[1].1 <= w[0].1 * 1.01,
            "HVP flops per entry grew: {per_entry:?}"
        );
    }
    let (g, h) = per_entry[2];
    assert!(
        g <= 4.5 && h <= 4.5,
        "flops per matrix entry: {per_entry:?}"
    );
}
