//! Scripted REPL sessions: input piped into `optc repl`, output asserted. Expected numbers
//! come from closed forms.

use std::io::Write;
use std::process::{Command, Stdio};

fn session(input: &str) -> String {
    session_with(&[], input)
}

fn session_with(args: &[&str], input: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_optc"))
        .arg("repl")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("optc runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("optc finishes");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "the REPL panicked:\n{stderr}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The value printed on the line `name = value`.
fn value(out: &str, name: &str) -> f64 {
    let prefix = format!("{name} = ");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{out}"));
    line[prefix.len()..].trim().parse().expect("a number")
}

/// Values are printed with 10 significant digits.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn values(out: &str, name: &str) -> Vec<f64> {
    let prefix = format!("{name} = ");
    out.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().parse().expect("a number"))
        .collect()
}

#[test]
fn solve_derive_set_solve() {
    // x³ + x = θ: θ = 2 gives x = 1 and dx/dθ = 1/(3x² + 1) = 1/4; θ = 10 gives x = 2.
    let out = session(
        "param theta = 2\nvar x = 0.5\ncondition x^3 + x - theta == 0\n:solve\n\
         :derive d(x)/d(theta)\n:set theta = 10\n:solve\n:derive d(x)/d(theta)\n:quit\n",
    );
    let xs = values(&out, "x");
    assert_eq!(xs.len(), 2, "{out}");
    assert!((xs[0] - 1.0).abs() < 1e-12, "{out}");
    assert!((xs[1] - 2.0).abs() < 1e-12, "{out}");
    let ds = values(&out, "d(x)/d(theta)");
    assert!((ds[0] - 0.25).abs() < 1e-12, "{out}");
    assert!(close(ds[1], 1.0 / 13.0), "{out}");
    assert!((value(&out, "theta") - 10.0).abs() < 1e-15, "{out}");
}

#[test]
fn expressions_are_evaluated_at_the_current_point() {
    let out = session("param a = 3\nvar x = 0.5\na^2 + x\n[a, 2*a]\nsum(i in 1..4) i^2\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["9.5", "[3, 6]", "30"], "{out}");
}

#[test]
fn multiline_input_continues_after_operators_and_open_brackets() {
    // minimise Σ (wᵢ − i)² + λ‖w‖²: wᵢ = i/(1 + λ); dwᵢ/dλ = −i/(1 + λ)².
    let out = session(
        "param \\lambda = 0.5\nvar w: real[3]\nminimize f = sum(i in 1..3) (w[i] - i)^2 +\n\
         \\lambda * norm2(w)^2\nlet v = [w[1],\n  w[2]]\n:solve\n:derive d(w[3])/d(λ)\nv\n",
    );
    assert!(out.contains("converged"), "{out}");
    let d = value(&out, "d(w[3])/d(λ)");
    assert!(close(d, -3.0 / 2.25), "{out}");
    let v = out.lines().last().expect("v printed");
    assert_eq!(v, "[0.6666666667, 1.333333333]", "{out}");
}

#[test]
fn an_error_is_reported_and_the_session_recovers() {
    let out = session(
        "param a = 2\nvar x = 1\ncondition x - a + y == 0\ncondition x - a == 0\n\
         [x, x] + [1, 2, 3]\n:solve\nx\n",
    );
    assert!(out.contains("E0201"), "unknown name reported:\n{out}");
    assert!(
        out.contains("condition x - a + y == 0"),
        "span shown:\n{out}"
    );
    assert!(out.contains("help:"), "{out}");
    assert!(
        out.contains("E0301"),
        "shape error for [x, x] + [1, 2, 3]:\n{out}"
    );
    // The rejected condition is not part of the session: the second one alone solves.
    assert!((value(&out, "x") - 2.0).abs() < 1e-12, "{out}");
    assert_eq!(out.lines().last(), Some("2"), "{out}");
}

#[test]
fn derive_needs_a_current_solution() {
    let out = session(
        "param t = 1\nvar x = 0\ncondition x - t == 0\n:derive d(x)/d(t)\n:solve\n\
         :set t = 4\n:derive d(x)/d(t)\n",
    );
    assert_eq!(out.matches("run :solve first").count(), 2, "{out}");
}

#[test]
fn type_info_emit_explain_and_unknown_commands() {
    let out = session(
        "dim n = 3\nparam c: real[n] = [1, 2, 3]\nvar x: real[n]\nminimize f = norm2(x - c)^2\n\
         :type x * x'\n:type sum(i in 1..n) x[i]\n:info c\n:emit grad\n:explain E0301\n:frobnicate\n",
    );
    assert!(out.contains("real[3, 3]"), "{out}");
    assert!(out.contains("\nreal\n"), "{out}");
    assert!(out.contains("param c: real[n] = [1, 2, 3]"), "{out}");
    assert!(out.contains("value: [1, 2, 3]"), "{out}");
    assert!(
        out.contains("used in:\n    minimize f = norm2(x - c)^2"),
        "{out}"
    );
    assert!(out.contains("∇x f"), "{out}");
    assert!(out.contains("E0301:"), "{out}");
    assert!(out.contains("unknown command :frobnicate"), "{out}");
}

#[test]
fn save_then_load_reproduces_the_session() {
    let dir = std::env::temp_dir().join(format!("optc-repl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("s.opt");
    let f = file.display();
    let out = session(&format!(
        "param a = 5\nvar x = 1\nminimize g = (x - a)^2\n:save {f}\n:quit\n"
    ));
    assert!(out.contains("saved"), "{out}");
    let out = session_with(&[&f.to_string()], ":solve\n:reload\nx\n");
    assert!(out.contains("loaded"), "{out}");
    assert!((value(&out, "x") - 5.0).abs() < 1e-12, "{out}");
    // :reload starts again from the file's declared values.
    assert_eq!(out.lines().last(), Some("1"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn greek_spellings_and_continuation_rules() {
    assert_eq!(
        optc::repl::greek(r"\lambda * \Sigma + \notgreek"),
        r"λ * Σ + \notgreek"
    );
    assert!(optc::repl::continues("minimize f = x +\n"));
    assert!(optc::repl::continues("let v = [1,\n"));
    assert!(optc::repl::continues("condition a == b and\n"));
    assert!(!optc::repl::continues("x'\n"));
    assert!(!optc::repl::continues("let r = 1..n # a comment with (\n"));
    assert!(!optc::repl::continues(":type x +\n"));
}

#[test]
fn set_respects_declared_bounds() {
    let out =
        session("param t = 1 in [0, 2]\nvar x = 0\ncondition x - t == 0\n:set t = 5\n:solve\n");
    assert!(out.contains("cannot set `t`"), "{out}");
    assert!(out.contains("above its upper bound 2"), "{out}");
    assert!(
        (value(&out, "x") - 1.0).abs() < 1e-12,
        "the old value is kept:\n{out}"
    );
}

#[test]
fn tune_moves_the_params_and_the_point() {
    // min over a of (x*(a) − 3)² with x*(a) = a/(1 + 0.5): the optimum a = 4.5, x = 3.
    let out = session(
        "param a = 1 in [-10, 10]\nvar x\nminimize 0.5*(x - a)^2 + 0.25*x^2\n:solve\n\
         tune a to minimize (x - 3)^2\n:solve\nderive d(x)/d(a)\n",
    );
    assert!(out.contains("tune (lbfgs, converged)"), "{out}");
    assert!(close(value(&out, "a"), 4.5), "{out}");
    let xs = values(&out, "x");
    assert!(close(*xs.last().expect("x"), 3.0), "{out}");
    assert!(close(value(&out, "d(x)/d(a)"), 1.0 / 1.5), "{out}");
}

#[test]
fn a_pde_block_trains_in_the_session() {
    // −u'' + u = (π² + 1) cos(πx), Neumann: u = cos(πx).
    let out = session(
        "pde s {\n  domain cube(1)\n  lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2\n\
         source f(x) = (pi^2 + 1)*cos(pi*x[1])\n  exact u(x) = cos(pi*x[1])\n}\n\
         solve s using barron(width = 8, samples = 32, steps = 60)\n",
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("relative L² error"))
        .unwrap_or_else(|| panic!("no error line in:\n{out}"));
    let l2: f64 = line["relative L² error ".len()..]
        .split(',')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .expect("a number");
    assert!(l2 < 1e-3, "{out}");
}
