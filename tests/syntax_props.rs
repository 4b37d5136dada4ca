//! Properties of the front end: printing a parsed program and parsing it again gives the
//! same AST; no input — arbitrary bytes, arbitrarily deep nesting — panics or overflows.

use optc::diag::FileId;
use optc::syntax::parse;
use optc::{CompileOptions, Model};
use proptest::prelude::*;

/// The AST's debug form without spans (printing changes offsets, not structure).
fn shape_of(p: &optc::syntax::ast::Program) -> String {
    let s = format!("{p:?}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let close = after.find('}').map(|j| j + 1).unwrap_or(after.len());
        rest = &after[close..];
    }
    out.push_str(rest);
    out
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000).prop_map(|n| n.to_string()),
        (0u32..1000, 1u32..99).prop_map(|(a, b)| format!("{a}.{b}")),
        Just("1e-7".to_string()),
        prop::sample::select(vec!["a", "b", "x", "λ", "θ", "w_2", "pi"]).prop_map(String::from),
        Just("x[i]".to_string()),
        Just("X[i, :]".to_string()),
        Just("x[2..n]".to_string()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 40, 4, |inner| {
        let ops = prop::sample::select(vec!["+", "-", "*", "/", ".*", "./", "^"]);
        let cmp = prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
        prop_oneof![
            (inner.clone(), ops, inner.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.clone().prop_map(|a| format!("({a})'")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
            inner
                .clone()
                .prop_map(|a| format!("sum(i in 1..n, j in i+1..n) {a}")),
            inner.clone().prop_map(|a| format!("[{a} for k in 1..3]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
            (
                inner.clone(),
                cmp,
                inner.clone(),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(a, c, b, t, e)| format!(
                    "if {a} {c} {b} and not {a} > 0 then {t} else {e}"
                )),
            inner.clone().prop_map(|a| format!("sum({a})")),
        ]
    })
}

fn program() -> impl Strategy<Value = String> {
    let stmt = prop_oneof![
        expr().prop_map(|e| format!("param p = {e}")),
        expr().prop_map(|e| format!("let v = {e}")),
        expr().prop_map(|e| format!("minimize {e}")),
        (expr(), expr()).prop_map(|(a, b)| format!("print {a}, {b}")),
        expr().prop_map(|e| format!("condition c: {e} == 0")),
        expr().prop_map(|e| format!("subject to k: {e} <= 1")),
        Just("dim m, n = 3".to_string()),
        Just("var x: real[n] in [0, 1] = 0.5".to_string()),
        Just("fn f(a, b) = a*b".to_string()),
        Just("solve using newton(tol = 1e-10, gauge = rigid)".to_string()),
        Just("derive d(d(x)/d(t))/d(t)".to_string()),
        Just("tune a, b to minimize x^2 using lbfgs".to_string()),
        Just("pde q {\n  domain cube(2)\n  lagrangian L(x, u, p) = dot(p, p)\n  boundary dirichlet(0, penalty = 10)\n}".to_string()),
    ];
    prop::collection::vec(stmt, 1..6).prop_map(|v| v.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn printing_then_parsing_gives_the_same_ast(src in program()) {
        let p1 = parse(&src, FileId(0)).map_err(|e| TestCaseError::fail(format!("{src}\n{e}")))?;
        let printed = p1.to_string();
        let p2 = parse(&printed, FileId(0)).map_err(|e| TestCaseError::fail(format!("reparse of\n{printed}\n{e}")))?;
        prop_assert_eq!(shape_of(&p1), shape_of(&p2), "printed:\n{}", printed);
        prop_assert_eq!(printed.clone(), p2.to_string());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, FileId(0));
        let _ = Model::compile(&text, &CompileOptions::default());
    }

    #[test]
    fn near_miss_programs_never_panic(src in program(), cut in 0usize..200, junk in "[-+*/^()\\[\\],;=<>.':a-z0-9 \n]{0,6}") {
        // Damage a valid program: cut it and insert junk.
        let at = src.char_indices().map(|(i, _)| i).nth(cut % src.chars().count().max(1)).unwrap_or(0);
        let damaged = format!("{}{junk}{}", &src[..at], &src[at..]);
        let _ = Model::compile(&damaged, &CompileOptions::default());
    }
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_crash() {
    let n = 100_000;
    let cases = [
        format!("param a = {}1{}", "(".repeat(n), ")".repeat(n)),
        format!("param a = {}1", "-".repeat(n)),
        format!("param a = {}1", "not ".repeat(n)),
        format!("param a = {}1", "2^".repeat(n)),
        format!("param a = {}1", "sum(i in 1..2) ".repeat(n)),
        format!("param a = {}1{}", "[".repeat(n), "]".repeat(n)),
        format!("param a = {}1", "if 1 > 0 then 1 else ".repeat(n)),
    ];
    for src in &cases {
        let r = Model::compile(src, &CompileOptions::default());
        let e = r.expect_err("deeply nested input must be refused");
        assert!(
            e.exit_code() > 0 && e.exit_code() < 100,
            "{:?}",
            e.diagnostics
        );
    }
}

#[test]
fn long_sums_are_balanced_not_refused() {
    // 20 000 terms: long, but not deep.
    let terms: Vec<String> = (0..20_000).map(|k| format!("{}*x", k % 7)).collect();
    let total: f64 = (0..20_000).map(|k| (k % 7) as f64).sum();
    let src = format!("var x\nminimize (x - 1)^2 + {}\nsolve", terms.join(" + "));
    let mut m = Model::compile(&src, &CompileOptions::default())
        .map_err(|e| e.diagnostics[0].message.clone())
        .expect("a long sum compiles");
    let r = optc::run::execute(
        &mut m,
        &optc::run::RunOptions {
            quiet: true,
            ..Default::default()
        },
        &mut std::io::sink(),
    );
    assert_eq!(r.status, optc::run::Status::Solved);
    // d/dx [(x − 1)² + S x] = 0 at x = 1 − S/2.
    let x = m.var("x").unwrap()[0];
    assert!((x - (1.0 - total / 2.0)).abs() < 1e-9 * total, "x = {x}");
}

#[test]
fn moderate_nesting_still_parses() {
    let src = format!(
        "param a = {}1{}\nvar x\nminimize (x - a)^2",
        "(".repeat(50),
        ")".repeat(50)
    );
    Model::compile(&src, &CompileOptions::default()).expect("50 levels of brackets are fine");
}
