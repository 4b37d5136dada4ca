#![allow(clippy::needless_range_loop)]
//! Generated programs: random well-typed models (scalars, vectors, matrices, sums with
//! dependent ranges, index offsets, comprehensions, selects, nested fns, every builtin),
//! checked for what must hold whatever the program:
//!
//! - the JIT and the interpreter agree (1e-13 relative);
//! - JVPs agree with central finite differences (smooth programs);
//! - the adjoint identity ⟨u, J v⟩ = ⟨Jᵀu, v⟩ holds to rounding, for ∂ₓF and ∂_θF;
//! - the Jacobian of a gradient is symmetric (HVP symmetry);
//! - the gradient agrees with finite differences of the objective.
//!
//! A fixed number of programs runs by default; `OPTC_GEN_CASES=N` runs N.

use optc::{Backend, CompileOptions, Model};

#[path = "support/program_gen.rs"]
mod program_gen;
use program_gen::{Gen, Rng};

/// The finite-difference step; with Richardson extrapolation the error is O(h⁴).
const H: f64 = 1e-5;

/// (4·D(h/2) − D(h)) / 3 for central differences D.
fn richardson(d_h: f64, d_half: f64) -> f64 {
    (4.0 * d_half - d_h) / 3.0
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn rel(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(1e-300)
}

#[derive(Default, Debug)]
struct Stats {
    programs: usize,
    max_jit_interp: f64,
    max_fd: f64,
    max_adjoint: f64,
    max_symmetry: f64,
}

/// Checks one program; returns an error describing the first violated property.
fn check_program(seed: u64, stats: &mut Stats) -> Result<(), String> {
    let mut rng = Rng::seeded(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let smooth = rng.below(3) > 0;
    let mut g = Gen::new(rng, smooth);
    let n = g.n;
    let src = g.program();
    let compile = |backend| {
        Model::compile(
            &src,
            &CompileOptions {
                backend,
                ..CompileOptions::default()
            },
        )
        .map_err(|e| format!("does not compile:\n{src}\n{}", e))
    };
    let mut jit = compile(Backend::Jit)?;
    let mut interp = compile(Backend::Interp)?;
    let pj = jit.param_fns("p").map_err(|d| format!("{d}\n{src}"))?;
    let pi = interp.param_fns("p").map_err(|d| format!("{d}\n{src}"))?;
    assert_eq!(pj, pi);
    let fj = jit.fns().ok_or("no fns")?;
    let fi = interp.fns().ok_or("no fns")?;
    let (nz, mz) = (fj.layout.n, fj.layout.m);
    let st = jit.state().clone();
    let mut rng = Rng::seeded(seed ^ 0xABCD_EF01_2345_6789);
    let z: Vec<f64> = (0..nz).map(|_| rng.unit() * 1.6 - 0.8).collect();
    let v: Vec<f64> = (0..nz).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let u: Vec<f64> = (0..mz).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let t: Vec<f64> = (0..n).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let run =
        |f: &dyn Fn(&mut [f64]) -> Result<(), String>, len: usize| -> Result<Vec<f64>, String> {
            let mut out = vec![0.0; len];
            f(&mut out)?;
            Ok(out)
        };
    let ctx = |what: &str, e: String| format!("{what}: {e}\n{src}");
    // JIT == interpreter, for every function.
    let pairs: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        (
            "F",
            run(&|o| fj.residual(&z, &st, o), mz)?,
            run(&|o| fi.residual(&z, &st, o), mz)?,
        ),
        (
            "JVP",
            run(&|o| fj.jvp(&z, &st, &v, o), mz)?,
            run(&|o| fi.jvp(&z, &st, &v, o), mz)?,
        ),
        (
            "VJP",
            run(&|o| fj.vjp(&z, &st, &u, o), nz)?,
            run(&|o| fi.vjp(&z, &st, &u, o), nz)?,
        ),
        (
            "param JVP",
            run(&|o| fj.param_jvp(pj, &z, &st, &t, o), mz)?,
            run(&|o| fi.param_jvp(pi, &z, &st, &t, o), mz)?,
        ),
        (
            "param VJP",
            run(&|o| fj.param_vjp(pj, &z, &st, &u, o), n)?,
            run(&|o| fi.param_vjp(pi, &z, &st, &u, o), n)?,
        ),
    ];
    for (what, a, b) in &pairs {
        for (x, y) in a.iter().zip(b) {
            if !x.is_finite() || !y.is_finite() {
                return Err(ctx(what, format!("non-finite value {x} / {y}")));
            }
            let e = rel(*x, *y, y.abs().max(1.0));
            stats.max_jit_interp = stats.max_jit_interp.max(e);
            if e > 1e-13 {
                return Err(ctx(what, format!("JIT {x} vs interpreter {y}")));
            }
        }
    }
    let (f0, jv, uj) = (&pairs[0].1, &pairs[1].1, &pairs[2].1);
    let scale = |a: &[f64]| a.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    // Adjoint identity ⟨u, Jv⟩ = ⟨Jᵀu, v⟩.
    let (l, r) = (dot(&u, jv), dot(uj, &v));
    let e = rel(l, r, scale(jv) * scale(&u) * (mz as f64));
    stats.max_adjoint = stats.max_adjoint.max(e);
    if e > 1e-12 {
        return Err(ctx(
            "adjoint identity",
            format!("⟨u, Jv⟩ = {l}, ⟨Jᵀu, v⟩ = {r}"),
        ));
    }
    let (pjv, pvj) = (&pairs[3].1, &pairs[4].1);
    let (l, r) = (dot(&u, pjv), dot(pvj, &t));
    let e = rel(l, r, scale(pjv) * scale(&u) * (mz as f64));
    stats.max_adjoint = stats.max_adjoint.max(e);
    if e > 1e-12 {
        return Err(ctx(
            "parameter adjoint identity",
            format!("⟨u, ∂θF t⟩ = {l}, ⟨uᵀ∂θF, t⟩ = {r}"),
        ));
    }
    // Symmetry of the Jacobian of a gradient: ⟨w, Jv⟩ = ⟨v, Jw⟩.
    let sys = jit.system().ok_or("no system")?;
    if sys.kind == optc::system::SystemKind::Stationarity {
        let w: Vec<f64> = (0..nz).map(|_| rng.unit() * 2.0 - 1.0).collect();
        let jw = run(&|o| fj.jvp(&z, &st, &w, o), mz)?;
        let (l, r) = (dot(&w, jv), dot(&v, &jw));
        let e = rel(l, r, scale(jv).max(scale(&jw)) * nz as f64);
        stats.max_symmetry = stats.max_symmetry.max(e);
        if e > 1e-12 {
            return Err(ctx("HVP symmetry", format!("⟨w, Hv⟩ = {l}, ⟨v, Hw⟩ = {r}")));
        }
        // The gradient against finite differences of the objective.
        if smooth {
            let along = |h: f64| -> Result<f64, String> {
                let zp: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a + h * b).collect();
                let zm: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a - h * b).collect();
                Ok((fj.objective(&zp, &st, None)? - fj.objective(&zm, &st, None)?) / (2.0 * h))
            };
            let fd = richardson(along(H)?, along(H / 2.0)?);
            let an = dot(f0, &v);
            let e = (fd - an).abs() / (1.0 + an.abs());
            stats.max_fd = stats.max_fd.max(e);
            if e > 1e-5 {
                return Err(ctx(
                    "gradient vs finite differences",
                    format!("∇f·v = {an}, FD = {fd}"),
                ));
            }
        }
    }
    // JVPs against central differences of F.
    if smooth {
        let diff = |h: f64| -> Result<Vec<f64>, String> {
            let zp: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a + h * b).collect();
            let zm: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a - h * b).collect();
            let fp = run(&|o| fj.residual(&zp, &st, o), mz)?;
            let fm = run(&|o| fj.residual(&zm, &st, o), mz)?;
            Ok(fp
                .iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect())
        };
        let (d1, d2) = (diff(H)?, diff(H / 2.0)?);
        let sc = scale(jv);
        for k in 0..mz {
            let fd = richardson(d1[k], d2[k]);
            let e = (fd - jv[k]).abs() / sc;
            stats.max_fd = stats.max_fd.max(e);
            if e > 1e-5 {
                return Err(ctx(
                    "JVP vs finite differences",
                    format!("entry {k}: J v = {}, FD = {fd}", jv[k]),
                ));
            }
        }
        // ∂θF·t against differences in the param.
        let pk = jit.checked().param_by_name("p").ok_or("no p")?.index();
        let pdiff = |h: f64| -> Result<Vec<f64>, String> {
            let mut stp = st.clone();
            let mut stm = st.clone();
            for k in 0..n {
                stp.params[pk][k] += h * t[k];
                stm.params[pk][k] -= h * t[k];
            }
            let fp = run(&|o| fj.residual(&z, &stp, o), mz)?;
            let fm = run(&|o| fj.residual(&z, &stm, o), mz)?;
            Ok(fp
                .iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect())
        };
        let (d1, d2) = (pdiff(H)?, pdiff(H / 2.0)?);
        let sc = scale(pjv);
        for k in 0..mz {
            let fd = richardson(d1[k], d2[k]);
            let e = (fd - pjv[k]).abs() / sc;
            stats.max_fd = stats.max_fd.max(e);
            if e > 1e-5 {
                return Err(ctx(
                    "∂θF·t vs finite differences",
                    format!("entry {k}: {} vs FD {fd}", pjv[k]),
                ));
            }
        }
    }
    let _ = &mut interp;
    stats.programs += 1;
    Ok(())
}

#[test]
fn generated_programs_satisfy_the_derivative_identities() {
    let cases: u64 = std::env::var("OPTC_GEN_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for seed in 1..=cases {
        if let Err(e) = check_program(seed, &mut stats) {
            failures.push(format!("seed {seed}: {e}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    eprintln!(
        "generated programs: {} checked; max JIT/interp difference {:.1e}, max FD error {:.1e}, max adjoint error {:.1e}, max symmetry error {:.1e}",
        stats.programs, stats.max_jit_interp, stats.max_fd, stats.max_adjoint, stats.max_symmetry
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
