//! Randomly mutated versions of the examples and test cases: compiling and running them must
//! end in a report or a diagnostic — never a panic, a crash or a hang. The mutations work on
//! tokens (delete, duplicate, replace with an edge-case token, swap), so most mutants get past
//! the parser and exercise the checker, the compiler and the solvers.
//! `OPTC_MUTANTS=N` sets the number of mutants (400 by default), `OPTC_MUTANT_SEED` the seed.

use optc::{CompileOptions, Model};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// SplitMix64: a small deterministic generator, so a failure names a reproducible mutant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Tokens that probe edge cases: extreme numbers, empty and reversed ranges, operators,
/// keywords in the wrong place.
const EDGE: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "1e-308",
    "1000000000",
    "nan",
    "inf",
    "0.0",
    "2",
    "(",
    ")",
    "[",
    "]",
    ",",
    "..",
    "+",
    "-",
    "*",
    "/",
    "^",
    "'",
    ".*",
    "==",
    "<=",
    ">=",
    "sum",
    "for",
    "in",
    "if",
    "then",
    "else",
    "var",
    "param",
    "dim",
    "solve",
    "derive",
    "d(",
    "log",
    "sqrt",
    "exp",
    "1..0",
    "n",
    "i",
    "x",
    ";",
    "\n",
    ":",
    "=",
];

fn tokens(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in src.chars() {
        if c.is_alphanumeric() || c == '_' || c == '.' {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut t = tokens(src);
    let words: Vec<String> = t
        .iter()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .cloned()
        .collect();
    for _ in 0..1 + rng.below(3) {
        if t.is_empty() {
            break;
        }
        let k = rng.below(t.len());
        match rng.below(5) {
            0 => {
                t.remove(k);
            }
            1 => {
                let w = t[k].clone();
                t.insert(k, w);
            }
            2 => t[k] = EDGE[rng.below(EDGE.len())].to_string(),
            3 if !words.is_empty() => t[k] = words[rng.below(words.len())].clone(),
            _ => {
                let j = rng.below(t.len());
                t.swap(k, j);
            }
        }
    }
    t.concat()
}

fn seeds() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["examples", "tests/cases"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "opt"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable");
            out.push((f, text));
        }
    }
    out
}

/// Compiles and runs one mutant on its own thread; `Err` describes a panic or a hang.
fn run_one(src: String, base: PathBuf) -> Result<bool, String> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut opts = CompileOptions {
                base_dir: Some(base),
                ..CompileOptions::default()
            };
            // A mutant may legitimately ask for a billion steps: the solve-time cap (what a
            // service would set) turns that into a report instead of a hang.
            opts.limits.max_solve_seconds = 10.0;
            let compiled = Model::compile(&src, &opts);
            let ok = compiled.is_ok();
            if let Ok(mut model) = compiled {
                let ro = optc::run::RunOptions {
                    quiet: true,
                    ..Default::default()
                };
                let report = optc::run::execute(&mut model, &ro, &mut std::io::sink());
                // Whatever the outcome, a report never carries a silent non-finite value.
                for v in report.values.iter().chain(&report.prints) {
                    assert!(
                        v.values.iter().all(|x| x.is_finite())
                            || report.status != optc::run::Status::Solved,
                        "non-finite `{}` in a solved report",
                        v.name
                    );
                }
            }
            let _ = tx.send(ok);
        })
        .expect("spawn");
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(ok) => handle
            .join()
            .map(|_| ok)
            .map_err(|_| "panicked".to_string()),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let msg = match handle.join() {
                Err(e) => e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Ok(()) => String::new(),
            };
            Err(format!("panicked: {msg}"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err("did not finish in 60 s".into()),
    }
}

#[test]
fn mutated_programs_never_panic_or_hang() {
    let n: usize = std::env::var("OPTC_MUTANTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let seeds = seeds();
    let seed = std::env::var("OPTC_MUTANT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0f_0a7c);
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut compiled = 0;
    for case in 0..n {
        let (path, text) = &seeds[case % seeds.len()];
        let src = mutate(text, &mut rng);
        let base = path.parent().expect("parent").to_path_buf();
        let r = run_one(src.clone(), base);
        compiled += usize::from(r == Ok(true));
        if let Err(why) = r {
            failures.push(format!(
                "mutant {case} of {}: {why}\n----\n{src}\n----",
                path.display()
            ));
            if failures.len() >= 5 {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{compiled} of {n} mutants compiled and ran");
    // Mutations are small: a good share of mutants must reach the back end, or this test
    // would only be exercising the parser's error paths.
    assert!(compiled * 5 >= n, "only {compiled} of {n} mutants compiled");
}
