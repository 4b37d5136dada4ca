//! The PDE driver's results table (docs/PDE.md): relative L² error reached and wall time, for
//! REFERENCE P1 (screened Poisson) and P2 (semilinear, u³), a quasilinear Lagrangian, in
//! several dimensions and with each training method. Each row is one `optc` training run
//! through the library; the figures are measurements, not assertions.
//! Run: `cargo bench --bench pde` (`-- quick` for the rows up to d = 2).

use optc::run::{execute, RunOptions};
use optc::{CompileOptions, Model};

/// (name, lagrangian, source) with u* = d^{-1/2} Σ cos(π xᵢ) as the exact solution `us`.
const PROBLEMS: [(&str, &str, &str); 3] = [
    ("P1", "0.5*dot(p, p) + 0.5*u^2", "(pi^2 + 1)*us(x)"),
    (
        "P2",
        "0.5*dot(p, p) + 0.5*u^2 + 0.25*u^4",
        "(pi^2 + 1)*us(x) + us(x)^3",
    ),
    // −div((1 + u²)∇u) + u|∇u|² + u = f
    (
        "quasilinear",
        "0.5*(1 + u^2)*dot(p, p) + 0.5*u^2",
        "(1 + us(x)^2)*pi^2*us(x) - us(x)*(pi^2/d)*sum(i in 1..d) sin(pi*x[i])^2 + us(x)",
    ),
];

fn source(problem: usize, d: usize, using: &str) -> String {
    let (_, l, f) = PROBLEMS[problem];
    format!(
        "dim d = {d}\npde p {{\n  domain cube(d)\n  lagrangian L(x, u, p) = {l}\n  \
         exact us(x) = sum(i in 1..d) cos(pi*x[i]) / sqrt(d)\n  source f(x) = {f}\n}}\n\
         solve p using barron({using})\n"
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    // (problem, d, barron options)
    let ng = "natural_gradient";
    let eng = "energy_natural_gradient";
    let mut rows: Vec<(usize, usize, String)> = Vec::new();
    for p in 0..3 {
        for m in [ng, eng] {
            rows.push((
                p,
                1,
                format!("width = 16, samples = 64, steps = 200, method = {m}"),
            ));
            rows.push((
                p,
                2,
                format!("width = 32, samples = 1024, steps = 200, method = {m}"),
            ));
        }
    }
    rows.push((
        0,
        1,
        "width = 16, samples = 64, steps = 3000, method = adam".into(),
    ));
    rows.push((
        0,
        2,
        "width = 32, samples = 1024, steps = 3000, method = adam".into(),
    ));
    if !quick {
        // Above three dimensions: Adam on scrambled Sobol points (the default), with Monte
        // Carlo and the energy natural gradient for comparison.
        let adam = |w: usize, n: usize, steps: usize, q: &str| {
            format!(
                "width = {w}, samples = {n}, steps = {steps}, method = adam, lr = 0.03, \
                 quadrature = {q}"
            )
        };
        rows.push((0, 5, adam(64, 2048, 2000, "sobol")));
        rows.push((1, 5, adam(64, 2048, 2000, "sobol")));
        rows.push((
            0,
            5,
            format!("width = 32, samples = 2048, steps = 40, method = {eng}"),
        ));
        rows.push((0, 10, adam(64, 2048, 2000, "monte_carlo")));
        rows.push((0, 10, adam(64, 2048, 2000, "sobol")));
        rows.push((1, 10, adam(64, 2048, 2000, "sobol")));
        rows.push((2, 10, adam(64, 2048, 2000, "sobol")));
        rows.push((0, 10, adam(64, 2048, 5000, "sobol")));
        rows.push((0, 20, adam(64, 2048, 1000, "sobol")));
        rows.push((1, 20, adam(64, 2048, 1000, "sobol")));
        rows.push((0, 100, adam(32, 1024, 300, "sobol")));
    }
    println!(
        "| problem | d | method | width | points | steps | relative L² | relative H¹ | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (p, d, using) in rows {
        let src = source(p, d, &using);
        let mut model = match Model::compile(&src, &CompileOptions::default()) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{}", e.render(optc::diag::RenderStyle::Plain));
                continue;
            }
        };
        let report = execute(
            &mut model,
            &RunOptions {
                quiet: true,
                ..Default::default()
            },
            &mut std::io::sink(),
        );
        let Some(r) = report.pde.first() else {
            eprintln!("{}: no report {:?}", PROBLEMS[p].0, report.diagnostics);
            continue;
        };
        let fmt = |v: Option<f64>| v.map(|x| format!("{x:.1e}")).unwrap_or("-".into());
        println!(
            "| {} | {d} | {} | {} | {} | {} | {} | {} | {:.2} |",
            PROBLEMS[p].0,
            r.method,
            r.width,
            r.quadrature,
            r.steps,
            fmt(r.rel_l2),
            fmt(r.rel_h1),
            r.time_s
        );
    }
}
