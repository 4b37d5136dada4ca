//! The JIT and the interpreter give the same numbers: on every example and test case (whole
//! runs, compared bit for bit), and on kernels large enough to be split into chunks.

use optc::{Backend, CompileOptions, Model};
use std::path::Path;

fn report(path: &Path, backend: Backend) -> Option<optc::run::RunReport> {
    let opts = CompileOptions {
        backend,
        ..CompileOptions::default()
    };
    let mut m = Model::compile_file(path, &opts).ok()?;
    // Network training is compared on its own, at a small size (tests/pde.rs).
    if !m.checked().pdes.is_empty() {
        return None;
    }
    Some(optc::run::execute(
        &mut m,
        &optc::run::RunOptions {
            quiet: true,
            ..Default::default()
        },
        &mut std::io::sink(),
    ))
}

fn numbers(r: &optc::run::RunReport) -> Vec<(String, Vec<u64>)> {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    let mut out = Vec::new();
    out.extend(
        r.values
            .iter()
            .map(|v| (format!("value {}", v.name), bits(&v.values))),
    );
    out.extend(
        r.duals
            .iter()
            .map(|v| (format!("dual {}", v.name), bits(&v.values))),
    );
    out.extend(
        r.prints
            .iter()
            .map(|v| (format!("print {}", v.name), bits(&v.values))),
    );
    out.extend(
        r.derivatives
            .iter()
            .map(|d| (format!("d({})/d({})", d.of, d.wrt), bits(&d.values))),
    );
    out
}

#[test]
fn jit_and_interpreter_reports_are_identical_on_examples_and_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "tests/cases"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "opt") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut compared = 0;
    for f in &files {
        let (Some(a), Some(b)) = (report(f, Backend::Jit), report(f, Backend::Interp)) else {
            continue;
        };
        assert_eq!(a.status, b.status, "{}", f.display());
        assert_eq!(
            numbers(&a),
            numbers(&b),
            "{}: the back ends disagree",
            f.display()
        );
        if let (Some(sa), Some(sb)) = (&a.solve, &b.solve) {
            assert_eq!(sa.iterations, sb.iterations, "{}", f.display());
        }
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} files compared");
}

#[test]
fn large_straight_line_kernels_are_chunked_and_still_exact() {
    // 1500 distinct terms without loops: thousands of instructions in one body.
    let terms: Vec<String> = (0..1500)
        .map(|k| {
            format!(
                "{:.3}*(x[{}] - {:.2})^2*exp(0.01*x[{}])",
                1.0 + (k % 7) as f64 * 0.1,
                k % 5 + 1,
                (k % 11) as f64 * 0.1,
                (k * 3) % 5 + 1
            )
        })
        .collect();
    let src = format!("var x: real[5]\nminimize {}\n", terms.join(" + "));
    let eval = |backend| {
        let mut m = Model::compile(
            &src,
            &CompileOptions {
                backend,
                ..CompileOptions::default()
            },
        )
        .map_err(|e| e.diagnostics[0].message.clone())
        .expect("compile");
        m.system_fns().expect("functions");
        let fns = m.fns().expect("functions");
        let st = m.state().clone();
        let z = [0.3, -0.2, 0.5, 0.1, -0.4];
        let v = [1.0, 0.5, -0.25, 0.75, -1.0];
        let (mut f, mut jv, mut uj) = (vec![0.0; 5], vec![0.0; 5], vec![0.0; 5]);
        fns.residual(&z, &st, &mut f).expect("F");
        fns.jvp(&z, &st, &v, &mut jv).expect("JVP");
        fns.vjp(&z, &st, &v, &mut uj).expect("VJP");
        let e = fns.objective(&z, &st, None).expect("f");
        (e, f, jv, uj)
    };
    let a = eval(Backend::Jit);
    let b = eval(Backend::Interp);
    assert_eq!(a.0.to_bits(), b.0.to_bits());
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert_eq!(a.3, b.3);
}
