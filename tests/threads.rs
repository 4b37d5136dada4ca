#![allow(clippy::needless_range_loop)]
//! Compiled functions are `Send + Sync` and can be called from many threads at once.

use optc::{Backend, CompileOptions, Model};

const SRC: &str = "
dim N = 12
param sigma = 1.0
var q: real[N, 2]
fn lj(r2) = 4*((sigma^2/r2)^6 - (sigma^2/r2)^3)
minimize energy = sum(i in 1..N, j in i+1..N) lj(sum(k in 1..2) (q[i,k] - q[j,k])^2)
";

fn assert_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn jit_functions_are_callable_from_many_threads() {
    for backend in [Backend::Jit, Backend::Interp] {
        let mut model = Model::compile(
            SRC,
            &CompileOptions {
                backend,
                ..CompileOptions::default()
            },
        )
        .expect("compile");
        model.system_fns().expect("functions");
        let fns = model.fns().expect("functions");
        assert_send_sync(fns);
        let st = model.state().clone();
        let point = |seed: usize| -> Vec<f64> {
            (0..24)
                .map(|k| {
                    (k / 2) as f64 * 1.3
                        + if k % 2 == 0 {
                            0.0
                        } else {
                            0.1 * ((seed + k) % 5) as f64
                        }
                })
                .collect()
        };
        // Sequential reference values.
        let expected: Vec<Vec<f64>> = (0..8)
            .map(|s| {
                let mut g = vec![0.0; 24];
                fns.residual(&point(s), &st, &mut g).expect("F");
                g
            })
            .collect();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (fns, st, expected) = (&fns, &st, &expected);
                scope.spawn(move || {
                    for rep in 0..200 {
                        let s = (t + rep) % 8;
                        let mut g = vec![0.0; 24];
                        fns.residual(&point(s), st, &mut g).expect("F");
                        assert_eq!(g, expected[s], "thread {t} differs");
                    }
                });
            }
        });
    }
}
