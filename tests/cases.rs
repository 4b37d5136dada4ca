//! Data-driven cases: every `tests/cases/*.opt` carries its expected results in header
//! comments, checked here on every back end.
//!
//! ```text
//! # expect: status = solved
//! # expect: exit = 3
//! # expect: code = E0603
//! # expect: w = [0.37, 0.31] tol 1e-9        (a var, let or objective)
//! # expect: dual(budget) = -2.75
//! # expect: d(w)/d(lambda) = [-0.064, 0.044]  (the derive's text as written)
//! # expect: d2(x)/d(theta) = -0.09375          (a second derivative)
//! # expect: print norm2(r) = 0.45
//! ```

use optc::{Backend, CompileOptions, Model};
use std::path::Path;

#[derive(Debug)]
enum Expect {
    Status(String),
    Exit(i32),
    Code(String),
    Value {
        key: String,
        values: Vec<f64>,
        tol: f64,
    },
}

fn parse_values(text: &str) -> Vec<f64> {
    text.replace(['[', ']'], " ")
        .split([',', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad number `{s}` in an expectation"))
        })
        .collect()
}

fn expectations(src: &str) -> Vec<Expect> {
    let mut out = Vec::new();
    for line in src.lines() {
        let Some(rest) = line.trim().strip_prefix("# expect:") else {
            continue;
        };
        let (key, value) = rest
            .split_once(" = ")
            .unwrap_or_else(|| panic!("bad expectation `{line}`"));
        let key = key.trim().to_string();
        let (value, tol) = match value.split_once(" tol ") {
            Some((v, t)) => (v.trim(), t.trim().parse::<f64>().expect("tolerance")),
            None => (value.trim(), 1e-8),
        };
        out.push(match key.as_str() {
            "status" => Expect::Status(value.to_string()),
            "exit" => Expect::Exit(value.parse().expect("exit code")),
            "code" => Expect::Code(value.to_string()),
            _ => Expect::Value {
                key,
                values: parse_values(value),
                tol,
            },
        });
    }
    out
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * y.abs().max(1.0))
}

fn run_case(path: &Path, backend: Backend) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let exps = expectations(&src);
    let opts = CompileOptions {
        backend,
        ..CompileOptions::default()
    };
    let (status, exit, codes, report) = match Model::compile_file(path, &opts) {
        Err(e) => (
            "error".to_string(),
            e.exit_code(),
            e.diagnostics
                .iter()
                .map(|d| d.code.as_str().to_string())
                .collect(),
            None,
        ),
        Ok(mut m) => {
            let r = optc::run::execute(
                &mut m,
                &optc::run::RunOptions {
                    quiet: true,
                    ..Default::default()
                },
                &mut std::io::sink(),
            );
            let codes: Vec<String> = r
                .diagnostics
                .iter()
                .map(|d| d.code.as_str().to_string())
                .collect();
            (r.status.as_str().to_string(), r.exit_code(), codes, Some(r))
        }
    };
    let mut errors = Vec::new();
    for e in &exps {
        match e {
            Expect::Status(s) if *s != status => errors.push(format!(
                "status {status}, expected {s} (diagnostics: {codes:?})"
            )),
            Expect::Exit(c) if *c != exit => errors.push(format!("exit {exit}, expected {c}")),
            Expect::Code(c) if !codes.contains(c) => {
                errors.push(format!("no diagnostic {c} (got {codes:?})"))
            }
            Expect::Value { key, values, tol } => {
                let Some(r) = &report else {
                    errors.push(format!("{key}: no report (compile failed: {codes:?})"));
                    continue;
                };
                let got: Option<Vec<f64>> = if let Some(inner) =
                    key.strip_prefix("dual(").and_then(|k| k.strip_suffix(')'))
                {
                    r.duals
                        .iter()
                        .find(|d| d.name == inner)
                        .map(|d| d.values.clone())
                } else if let Some(p) = key.strip_prefix("print ") {
                    r.prints
                        .iter()
                        .find(|x| x.name == p)
                        .map(|x| x.values.clone())
                } else if key.starts_with("d(") || key.starts_with("d2(") {
                    let order = if key.starts_with("d2(") { 2 } else { 1 };
                    let body = key.trim_start_matches("d2(").trim_start_matches("d(");
                    let (of, wrt) = body
                        .rsplit_once(")/d(")
                        .map(|(a, b)| (a, b.trim_end_matches(')')))
                        .unwrap_or(("", ""));
                    r.derivatives
                        .iter()
                        .find(|d| d.of == of && d.wrt == wrt && d.order == order)
                        .map(|d| d.values.clone())
                } else {
                    r.values
                        .iter()
                        .find(|v| v.name == *key)
                        .map(|v| v.values.clone())
                };
                match got {
                    None => errors.push(format!("{key}: not in the report")),
                    Some(g) if !close(&g, values, *tol) => {
                        errors.push(format!("{key} = {g:?}, expected {values:?} (tol {tol})"))
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n    "))
    }
}

#[test]
fn cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "opt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for f in &files {
        for backend in [Backend::Interp, Backend::Jit] {
            if let Err(e) = run_case(f, backend) {
                failures.push(format!(
                    "{} [{backend:?}]:\n    {e}",
                    f.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
