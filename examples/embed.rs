//! Embedding optc in a Rust program: compile a model from a string, set a parameter, call
//! the JIT-compiled residual and VJP on flat buffers, then solve and differentiate.
//!
//! Run: `cargo run --example embed`

use optc::{CompileOptions, Model};

const MODEL: &str = "
param theta = 2
var x = 0.5
condition x^3 + x - theta == 0
solve
derive d(x)/d(theta)
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Compile (parse, check, lower, differentiate, JIT) from a string.
    let mut model = Model::compile(MODEL, &CompileOptions::default())?;

    // Parameters can change without recompiling: shapes are fixed, values are data.
    model.set_param("theta", &[10.0])?;

    // The compiled functions work on flat f64 buffers: F(z, θ), ∂F·v and uᵀ∂F.
    model.system_fns()?;
    let fns = model.fns().ok_or("no system")?;
    let state = model.state().clone();
    let z = [1.5];
    let (mut f, mut jv, mut uj) = ([0.0], [0.0], [0.0]);
    fns.residual(&z, &state, &mut f)?;
    fns.jvp(&z, &state, &[1.0], &mut jv)?;
    fns.vjp(&z, &state, &[1.0], &mut uj)?;
    println!(
        "at x = 1.5, theta = 10:  F = {:.4}  dF/dx = {:.4}  (VJP {:.4})",
        f[0], jv[0], uj[0]
    );
    // Check against the formulas F = x³ + x − θ, ∂F/∂x = 3x² + 1.
    assert!((f[0] - (1.5f64.powi(3) + 1.5 - 10.0)).abs() < 1e-12);
    assert!((jv[0] - (3.0 * 1.5f64.powi(2) + 1.0)).abs() < 1e-12);

    // Run the file's requests: solve, then d(x)/d(theta) by the implicit function theorem.
    let report = optc::run::execute(
        &mut model,
        &optc::run::RunOptions {
            quiet: true,
            ..Default::default()
        },
        &mut std::io::sink(),
    );
    let x = model.var("x").ok_or("no x")?[0];
    let dx = report.derivatives.first().ok_or("no derivative")?.values[0];
    println!(
        "solved: x = {x:.12}, dx/dtheta = {dx:.12} (expected 1/(3x² + 1) = {:.12})",
        1.0 / (3.0 * x * x + 1.0)
    );
    assert!((x - 2.0).abs() < 1e-10 && (dx - 1.0 / 13.0).abs() < 1e-10);
    Ok(())
}
