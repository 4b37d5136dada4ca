//! The lexical pre-pass: decides which newlines end statements.
//!
//! The language ends a statement at a newline, except inside ( ) or [ ] and after an operator
//! or a comma. PEG grammars cannot switch whitespace rules by bracket depth, so this pass
//! rewrites the text — **byte for byte the same length, so every span stays valid** — blanking
//! comments and turning continuation newlines into spaces. It also checks bracket balance and
//! depth, which keeps every later recursive phase within a fixed stack.

use crate::diag::{Code, Diagnostic, FileId, Span};

/// Deepest bracket nesting accepted.
pub const MAX_BRACKET_DEPTH: usize = 64;

/// Words after which a line continues.
const CONTINUING_WORDS: &[&str] = &["and", "or", "not", "then", "else", "in", "to", "using"];

/// Returns the normalized text (same length as `src`).
pub fn join_lines(src: &str, file: FileId) -> Result<String, Diagnostic> {
    let bytes = src.as_bytes();
    let mut out: Vec<u8> = bytes.to_vec();
    // Open brackets: (byte, offset).
    let mut stack: Vec<(u8, usize)> = Vec::new();
    // The last significant byte outside comments, with its offset, for continuation.
    let mut last_sig: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                // Blank the comment up to the end of the line.
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'\n' {
                    return Err(
                        Diagnostic::error(Code::UnterminatedString, "unterminated string")
                            .at(Span::new(file, start, i), "this string has no closing `\"`")
                            .help("close the string with `\"` on the same line"),
                    );
                }
                last_sig = Some(i);
                i += 1;
                continue;
            }
            b'(' | b'[' => {
                stack.push((b, i));
                if stack.len() > MAX_BRACKET_DEPTH {
                    return Err(Diagnostic::error(
                        Code::TooDeep,
                        format!("brackets nested more than {MAX_BRACKET_DEPTH} deep"),
                    )
                    .at(Span::new(file, i, i + 1), "too deep here")
                    .help("split the expression into several `let` definitions"));
                }
            }
            b')' | b']' => {
                let want = if b == b')' { b'(' } else { b'[' };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    Some((open, at)) => {
                        return Err(Diagnostic::error(
                            Code::UnclosedBracket,
                            format!("`{}` closed by `{}`", open as char, b as char),
                        )
                        .at(Span::new(file, i, i + 1), "this bracket does not match")
                        .also(Span::new(file, at, at + 1), "opened here")
                        .help(format!(
                            "close `{}` with `{}`",
                            open as char,
                            closing(open)
                        )));
                    }
                    None => {
                        return Err(Diagnostic::error(
                            Code::UnclosedBracket,
                            format!("`{}` without an opening bracket", b as char),
                        )
                        .at(Span::new(file, i, i + 1), "nothing to close here")
                        .help("remove it, or add the opening bracket"));
                    }
                }
            }
            b'\n' => {
                if !stack.is_empty() || continues(bytes, last_sig) {
                    out[i] = b' ';
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            last_sig = Some(i);
        }
        i += 1;
    }
    if let Some(&(open, at)) = stack.last() {
        return Err(Diagnostic::error(
            Code::UnclosedBracket,
            format!("unclosed `{}`", open as char),
        )
        .at(Span::new(file, at, at + 1), "opened here, never closed")
        .help(format!("add `{}` where the expression ends", closing(open))));
    }
    // Only ASCII bytes were rewritten into ASCII spaces, so the text is still UTF-8.
    String::from_utf8(out).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Diagnostic::error(Code::BadCharacter, "the text is not valid UTF-8")
            .at(Span::new(file, at, at + 1), "invalid byte")
    })
}

fn closing(open: u8) -> char {
    if open == b'(' {
        ')'
    } else {
        ']'
    }
}

/// Does the line whose last significant byte is at `last` continue on the next line?
fn continues(bytes: &[u8], last: Option<usize>) -> bool {
    let Some(end) = last else { return false };
    let b = bytes[end];
    if b"+-*/^,=<>:".contains(&b) {
        // `'` (transpose) ends an expression; every other operator expects more.
        return true;
    }
    if b.is_ascii_alphabetic() {
        let mut start = end;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            start -= 1;
        }
        if let Ok(word) = std::str::from_utf8(&bytes[start..=end]) {
            return CONTINUING_WORDS.contains(&word);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(s: &str) -> String {
        join_lines(s, FileId(0)).unwrap()
    }

    #[test]
    fn newlines_inside_brackets_and_after_operators_continue() {
        assert_eq!(join("a = f(1,\n2)\nb"), "a = f(1, 2)\nb");
        assert_eq!(join("a = 1 +\n2\nb"), "a = 1 + 2\nb");
        assert_eq!(join("a = x'\nb"), "a = x'\nb");
    }

    #[test]
    fn comments_are_blanked_but_strings_kept() {
        assert_eq!(join("a = \"x#y\" # note\nb"), "a = \"x#y\"       \nb");
        // A comment after an operator still continues the line.
        assert_eq!(
            join("a = 1 + # more\n2"),
            "a = 1 +       \n2".replace('\n', " ")
        );
    }

    #[test]
    fn unbalanced_brackets_are_reported() {
        assert_eq!(
            join_lines("f(x]", FileId(0)).unwrap_err().code,
            Code::UnclosedBracket
        );
        assert_eq!(
            join_lines("f(x", FileId(0)).unwrap_err().code,
            Code::UnclosedBracket
        );
        assert_eq!(
            join_lines("x)", FileId(0)).unwrap_err().code,
            Code::UnclosedBracket
        );
        let deep = "(".repeat(1000);
        assert_eq!(
            join_lines(&deep, FileId(0)).unwrap_err().code,
            Code::TooDeep
        );
    }
}
