//! Reading REPL input: multiline continuation, `\name` → Greek letters, and the two line
//! sources (a terminal with rustyline, or piped stdin).

use super::{Flow, Session, COMMANDS, DECLARATIONS};
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;

/// `\name` spellings of the Greek letters (lower then upper case).
const GREEK: &[(&str, &str)] = &[
    ("alpha", "α"),
    ("beta", "β"),
    ("gamma", "γ"),
    ("delta", "δ"),
    ("epsilon", "ε"),
    ("zeta", "ζ"),
    ("eta", "η"),
    ("theta", "θ"),
    ("iota", "ι"),
    ("kappa", "κ"),
    ("lambda", "λ"),
    ("mu", "μ"),
    ("nu", "ν"),
    ("xi", "ξ"),
    ("rho", "ρ"),
    ("sigma", "σ"),
    ("tau", "τ"),
    ("phi", "φ"),
    ("chi", "χ"),
    ("psi", "ψ"),
    ("omega", "ω"),
    ("Gamma", "Γ"),
    ("Delta", "Δ"),
    ("Theta", "Θ"),
    ("Lambda", "Λ"),
    ("Sigma", "Σ"),
    ("Phi", "Φ"),
    ("Psi", "Ψ"),
    ("Omega", "Ω"),
];

/// Replaces every `\name` of a Greek letter by the letter (`\lambda` → `λ`).
pub fn greek(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(k) = rest.find('\\') {
        out.push_str(&rest[..k]);
        let after = &rest[k + 1..];
        let word_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        match GREEK.iter().find(|(n, _)| *n == &after[..word_len]) {
            Some((_, g)) => {
                out.push_str(g);
                rest = &after[word_len..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether the input so far needs another line: a bracket is open, or the last line ends
/// with a binary operator, a comma or `and`/`or`.
pub fn continues(text: &str) -> bool {
    let mut depth = 0i64;
    let mut in_str = false;
    let mut last_code = "";
    for line in text.lines() {
        let mut code_end = line.len();
        for (k, c) in line.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '#' if !in_str => {
                    code_end = k;
                    break;
                }
                '(' | '[' | '{' if !in_str => depth += 1,
                ')' | ']' | '}' if !in_str => depth -= 1,
                _ => {}
            }
        }
        let code = line[..code_end].trim_end();
        if !code.is_empty() {
            last_code = code;
        }
    }
    if depth > 0 {
        return true;
    }
    if last_code.starts_with(':') {
        return false;
    }
    let ends_with_op =
        last_code.ends_with(|c: char| "+-*/^=<>,.".contains(c)) && !last_code.ends_with("..");
    let word = last_code
        .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    ends_with_op || matches!(word, "and" | "or" | "not")
}

/// Reads inputs until `:quit` or end of input; returns the exit code.
pub(super) fn run(session: &mut Session, out: &mut dyn Write) -> i32 {
    if std::io::stdin().is_terminal() {
        terminal(session, out)
    } else {
        piped(session, out)
    }
}

fn piped(session: &mut Session, out: &mut dyn Write) -> i32 {
    let stdin = std::io::stdin();
    let mut buf = String::new();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        buf.push_str(&line);
        buf.push('\n');
        if continues(&buf) {
            continue;
        }
        let flow = session.line(&buf, out);
        let _ = out.flush();
        buf.clear();
        if flow == Flow::Quit {
            return 0;
        }
    }
    if !buf.trim().is_empty() {
        session.line(&buf, out);
    }
    0
}

/// Completion of names, keywords, builtins and commands; `\name` completes to a Greek letter.
struct Helper {
    names: Rc<RefCell<Vec<String>>>,
}

impl rustyline::completion::Completer for Helper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        let start = head
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '\\'))
            .map(|(k, c)| k + c.len_utf8())
            .unwrap_or(0);
        let word = &head[start..];
        if let Some(g) = word.strip_prefix('\\') {
            let hits = GREEK
                .iter()
                .filter(|(n, _)| n.starts_with(g))
                .map(|(_, l)| l.to_string())
                .collect();
            return Ok((start, hits));
        }
        let mut hits: Vec<String> = Vec::new();
        if word.starts_with(':') {
            for (c, _) in COMMANDS {
                let c = c.split_whitespace().next().unwrap_or(c);
                if c.starts_with(word) {
                    hits.push(c.to_string());
                }
            }
        } else if !word.is_empty() {
            let names = self.names.borrow().clone();
            let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
            all.extend(DECLARATIONS.iter().copied());
            all.extend(["solve", "derive", "print", "using", "subject to"]);
            for b in crate::check::builtins::names() {
                all.push(b);
            }
            for n in all {
                if n.starts_with(word) && !hits.iter().any(|h| h == n) {
                    hits.push(n.to_string());
                }
            }
        }
        hits.sort();
        Ok((start, hits))
    }
}

impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".optc_history"))
}

fn terminal(session: &mut Session, out: &mut dyn Write) -> i32 {
    let names = Rc::new(RefCell::new(session.names()));
    let mut rl = match rustyline::Editor::<Helper, rustyline::history::FileHistory>::new() {
        Ok(rl) => rl,
        Err(_) => return piped(session, out),
    };
    rl.set_helper(Some(Helper {
        names: names.clone(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let _ = writeln!(
        out,
        "optc {} — :help for commands, :quit to leave",
        env!("CARGO_PKG_VERSION")
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() { "optc> " } else { "  ... " };
        match rl.readline(prompt) {
            Ok(line) => {
                buf.push_str(&line);
                buf.push('\n');
                if continues(&buf) {
                    continue;
                }
                let _ = rl.add_history_entry(buf.trim_end());
                let flow = session.line(&buf, out);
                buf.clear();
                *names.borrow_mut() = session.names();
                if flow == Flow::Quit {
                    break;
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => buf.clear(),
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    0
}
