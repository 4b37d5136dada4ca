//! Structure-aware: the input bytes steer the generator of well-typed programs
//! (tests/support/program_gen.rs). Each program is compiled for the JIT and the interpreter;
//! the residual, a JVP and a VJP at a point must agree between the two back ends, and
//! running it must end in a report or a diagnostic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use optc::{Backend, CompileOptions, Model};

#[path = "../../tests/support/program_gen.rs"]
mod program_gen;
use program_gen::{Gen, Rng};

fn close(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| {
        (x.is_nan() && y.is_nan())
            || x == y
            || (x - y).abs() <= 1e-12 * (1.0 + x.abs().max(y.abs()))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_bytes(data);
    let smooth = rng.below(2) == 0;
    let mut g = Gen::new(rng, smooth);
    let src = g.program();
    let compile = |backend| {
        let mut opts = CompileOptions {
            backend,
            ..CompileOptions::default()
        };
        opts.limits.max_solve_seconds = 0.5;
        Model::compile(&src, &opts)
    };
    let (Ok(mut jit), Ok(mut interp)) = (compile(Backend::Jit), compile(Backend::Interp)) else {
        // The generator writes well-typed programs: both compile or neither does.
        assert!(compile(Backend::Jit).is_err() && compile(Backend::Interp).is_err());
        return;
    };
    if jit.system_fns().is_err() || interp.system_fns().is_err() {
        return;
    }
    let (Some(fj), Some(fi)) = (jit.fns(), interp.fns()) else {
        return;
    };
    let (nz, mz) = (fj.layout.n, fj.layout.m);
    let z: Vec<f64> = (0..nz).map(|_| g.rng.unit() * 1.6 - 0.8).collect();
    let v: Vec<f64> = (0..nz).map(|_| g.rng.unit() * 2.0 - 1.0).collect();
    let u: Vec<f64> = (0..mz).map(|_| g.rng.unit() * 2.0 - 1.0).collect();
    let st = jit.state().clone();
    let (mut rj, mut ri) = (vec![0.0; mz], vec![0.0; mz]);
    let a = fj.residual(&z, &st, &mut rj);
    let b = fi.residual(&z, &st, &mut ri);
    assert_eq!(a.is_ok(), b.is_ok());
    assert!(close(&rj, &ri), "F differs between back ends\n{src}");
    let (mut jj, mut ji) = (vec![0.0; mz], vec![0.0; mz]);
    if fj.jvp(&z, &st, &v, &mut jj).is_ok() && fi.jvp(&z, &st, &v, &mut ji).is_ok() {
        assert!(close(&jj, &ji), "J·v differs between back ends\n{src}");
    }
    let (mut vj, mut vi) = (vec![0.0; nz], vec![0.0; nz]);
    if fj.vjp(&z, &st, &u, &mut vj).is_ok() && fi.vjp(&z, &st, &u, &mut vi).is_ok() {
        assert!(close(&vj, &vi), "uᵀJ differs between back ends\n{src}");
    }
    let ro = optc::run::RunOptions {
        quiet: true,
        ..Default::default()
    };
    let report = optc::run::execute(&mut jit, &ro, &mut std::io::sink());
    if report.status == optc::run::Status::Solved {
        for v in &report.values {
            assert!(
                v.values.iter().all(|x| x.is_finite()),
                "non-finite `{}`\n{src}",
                v.name
            );
        }
    }
});
