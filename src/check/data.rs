//! Data files: `load("file.csv")` and `load("file.json")`.
//!
//! A CSV holds numbers separated by commas or whitespace, with an optional header row of names;
//! blank lines and `#` lines are skipped. A JSON file holds a number or regular nested arrays.
//! Every problem names the file, and the row and column where it is.

use crate::diag::{Code, Diagnostic, Span};
use std::path::Path;

/// Numbers read from a file, with the shape the file itself suggests.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub values: Vec<f64>,
    /// `[rows, cols]` for CSV; the nesting shape for JSON.
    pub natural: Vec<usize>,
    pub is_csv: bool,
}

impl Table {
    /// Reshapes the table to a declared shape, or says why it does not fit.
    pub fn fit(&self, declared: &[usize]) -> Result<Vec<f64>, String> {
        let n: usize = declared.iter().product();
        let ok = if self.is_csv {
            let (r, c) = (self.natural[0], self.natural[1]);
            match declared.len() {
                0 => r * c == 1,
                1 => (r == 1 || c == 1) && r * c == declared[0],
                2 => r == declared[0] && c == declared[1],
                _ => false,
            }
        } else {
            self.natural == declared
        };
        if ok && n == self.values.len() {
            Ok(self.values.clone())
        } else {
            Err(self.describe())
        }
    }

    /// The shape a declaration without a type gets: vector for one row or column.
    pub fn default_shape(&self) -> Vec<usize> {
        if self.is_csv {
            let (r, c) = (self.natural[0], self.natural[1]);
            if r == 1 && c == 1 {
                vec![]
            } else if c == 1 {
                vec![r]
            } else if r == 1 {
                vec![c]
            } else {
                vec![r, c]
            }
        } else {
            self.natural.clone()
        }
    }

    pub fn describe(&self) -> String {
        if self.is_csv {
            format!("{} rows × {} columns", self.natural[0], self.natural[1])
        } else if self.natural.is_empty() {
            "a single number".to_string()
        } else {
            let parts: Vec<String> = self.natural.iter().map(|d| d.to_string()).collect();
            format!("an array of shape [{}]", parts.join(", "))
        }
    }
}

/// Limits applied while reading (configurable through the library API).
#[derive(Clone, Copy, Debug)]
pub struct DataLimits {
    pub max_bytes: u64,
    pub max_values: usize,
}

/// Reads a data file. `span` is the `load(...)` expression, for the diagnostics.
pub fn load(path: &Path, shown: &str, span: Span, limits: DataLimits) -> Result<Table, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| missing(shown, span, &e.to_string()))?;
    if meta.is_dir() {
        return Err(missing(shown, span, "it is a directory"));
    }
    if meta.len() > limits.max_bytes {
        return Err(Diagnostic::error(
            Code::LimitExceeded,
            format!(
                "data file `{shown}` has {} bytes, more than the limit of {}",
                meta.len(),
                limits.max_bytes
            ),
        )
        .at(span, "loaded here")
        .help("raise the data size limit in the compile options, or use a smaller file"));
    }
    let bytes = std::fs::read(path).map_err(|e| missing(shown, span, &e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::error(Code::DataCell, format!("`{shown}` is not a text file"))
            .at(span, "loaded here")
            .note(format!(
                "invalid UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ))
            .help("data files must be CSV or JSON text")
    })?;
    let is_json = path
        .extension()
        .map(|e| e.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    let table = if is_json {
        parse_json(&text, shown, span)?
    } else {
        parse_csv(&text, shown, span)?
    };
    if table.values.len() > limits.max_values {
        return Err(Diagnostic::error(
            Code::LimitExceeded,
            format!(
                "`{shown}` holds {} numbers, more than the limit of {}",
                table.values.len(),
                limits.max_values
            ),
        )
        .at(span, "loaded here")
        .help("raise the data size limit in the compile options"));
    }
    Ok(table)
}

fn missing(shown: &str, span: Span, why: &str) -> Diagnostic {
    Diagnostic::error(
        Code::DataMissing,
        format!("cannot read data file `{shown}`"),
    )
    .at(span, "loaded here")
    .note(why.to_string())
    .help("paths are relative to the folder of the .opt file")
}

/// Parses CSV text (comma or whitespace separated, optional header).
pub fn parse_csv(text: &str, shown: &str, span: Span) -> Result<Table, Diagnostic> {
    let mut values = Vec::new();
    let mut rows = 0usize;
    let mut cols: Option<(usize, usize)> = None; // (count, line number of the first row)
    let mut first_content_line = true;
    for (lineno, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = if trimmed.contains(',') {
            trimmed.split(',').map(str::trim).collect()
        } else if trimmed.contains(';') {
            trimmed.split(';').map(str::trim).collect()
        } else {
            trimmed.split_whitespace().collect()
        };
        if first_content_line {
            first_content_line = false;
            // A header: the first row with no numeric cell at all.
            if cells.iter().all(|c| parse_cell(c).is_none()) {
                continue;
            }
        }
        for (j, cell) in cells.iter().enumerate() {
            match parse_cell(cell) {
                Some(v) if v.is_finite() => values.push(v),
                Some(_) => {
                    return Err(Diagnostic::error(
                        Code::DataNonFinite,
                        format!(
                            "`{shown}` has a non-finite value `{cell}` at row {}, column {}",
                            lineno + 1,
                            j + 1
                        ),
                    )
                    .at(span, "loaded here")
                    .help("replace NaN and infinite values by numbers"))
                }
                None => {
                    return Err(Diagnostic::error(
                        Code::DataCell,
                        format!(
                            "`{shown}` has `{cell}` at row {}, column {}, which is not a number",
                            lineno + 1,
                            j + 1
                        ),
                    )
                    .at(span, "loaded here")
                    .help("every cell must be a number; only the first row may hold column names"))
                }
            }
        }
        match cols {
            None => cols = Some((cells.len(), lineno + 1)),
            Some((c, first)) if c != cells.len() => {
                return Err(Diagnostic::error(
                    Code::DataRagged,
                    format!(
                        "`{shown}` row {} has {} cells but row {first} has {c}",
                        lineno + 1,
                        cells.len()
                    ),
                )
                .at(span, "loaded here")
                .help("every row must have the same number of cells"))
            }
            _ => {}
        }
        rows += 1;
    }
    let Some((c, _)) = cols else {
        return Err(
            Diagnostic::error(Code::DataEmpty, format!("`{shown}` holds no numbers"))
                .at(span, "loaded here")
                .help("put the data in the file, one row per line"),
        );
    };
    Ok(Table {
        values,
        natural: vec![rows, c],
        is_csv: true,
    })
}

fn parse_cell(cell: &str) -> Option<f64> {
    let c = cell.trim().trim_matches('"');
    if c.is_empty() {
        return None;
    }
    c.parse::<f64>().ok()
}

/// Parses JSON: a number or regular nested arrays of numbers.
pub fn parse_json(text: &str, shown: &str, span: Span) -> Result<Table, Diagnostic> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Diagnostic::error(Code::DataJson, format!("`{shown}` is not valid JSON: {e}"))
            .at(span, "loaded here")
            .help("the file must hold a number or nested arrays of numbers")
    })?;
    let mut shape = Vec::new();
    // The shape is read along the first elements, then every element is checked against it.
    {
        let mut cur = &v;
        while let serde_json::Value::Array(items) = cur {
            shape.push(items.len());
            match items.first() {
                Some(x) => cur = x,
                None => break,
            }
        }
    }
    let mut values = Vec::new();
    collect_json(&v, &shape, 0, &mut Vec::new(), &mut values, shown, span)?;
    if values.is_empty() {
        return Err(
            Diagnostic::error(Code::DataEmpty, format!("`{shown}` holds no numbers"))
                .at(span, "loaded here")
                .help("put the data in the file"),
        );
    }
    Ok(Table {
        values,
        natural: shape,
        is_csv: false,
    })
}

fn collect_json(
    v: &serde_json::Value,
    shape: &[usize],
    depth: usize,
    path: &mut Vec<usize>,
    out: &mut Vec<f64>,
    shown: &str,
    span: Span,
) -> Result<(), Diagnostic> {
    let at = || {
        if path.is_empty() {
            "the top level".to_string()
        } else {
            let p: Vec<String> = path.iter().map(|i| (i + 1).to_string()).collect();
            format!("position [{}]", p.join(", "))
        }
    };
    match v {
        serde_json::Value::Number(n) if depth == shape.len() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if !x.is_finite() {
                return Err(Diagnostic::error(
                    Code::DataNonFinite,
                    format!("`{shown}` has a non-finite value at {}", at()),
                )
                .at(span, "loaded here")
                .help("replace it by a finite number"));
            }
            out.push(x);
            Ok(())
        }
        serde_json::Value::Array(items) if depth < shape.len() && items.len() == shape[depth] => {
            for (i, x) in items.iter().enumerate() {
                path.push(i);
                collect_json(x, shape, depth + 1, path, out, shown, span)?;
                path.pop();
            }
            Ok(())
        }
        serde_json::Value::Array(_) => Err(Diagnostic::error(
            Code::DataJson,
            format!(
                "`{shown}` is not a regular array: the array at {} has the wrong length or depth",
                at()
            ),
        )
        .at(span, "loaded here")
        .help("all rows must have the same length")),
        _ => Err(Diagnostic::error(
            Code::DataJson,
            format!("`{shown}` has a value that is not a number at {}", at()),
        )
        .at(span, "loaded here")
        .help("the file must hold a number or nested arrays of numbers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(t: &str) -> Result<Table, Diagnostic> {
        parse_csv(t, "t.csv", Span::default())
    }

    #[test]
    fn csv_with_header_and_whitespace() {
        let t = csv("a,b\n1,2\n3,4\n").unwrap();
        assert_eq!(t.natural, vec![2, 2]);
        assert_eq!(t.values, vec![1.0, 2.0, 3.0, 4.0]);
        let t = csv("1 2 3\n").unwrap();
        assert_eq!(t.default_shape(), vec![3]);
    }

    #[test]
    fn csv_errors_name_row_and_column() {
        let e = csv("1,2\n3,x\n").unwrap_err();
        assert_eq!(e.code, Code::DataCell);
        assert!(e.message.contains("row 2, column 2"), "{}", e.message);
        assert_eq!(csv("1,2\n3\n").unwrap_err().code, Code::DataRagged);
        assert_eq!(csv("1,nan\n").unwrap_err().code, Code::DataNonFinite);
        assert_eq!(csv("\n\n").unwrap_err().code, Code::DataEmpty);
    }

    #[test]
    fn csv_fits_declarations() {
        let col = csv("1\n2\n3\n").unwrap();
        assert!(col.fit(&[3]).is_ok());
        assert!(col.fit(&[3, 1]).is_ok());
        assert!(col.fit(&[1, 3]).is_err());
        assert!(col.fit(&[4]).is_err());
    }

    #[test]
    fn json_nested_arrays() {
        let t = parse_json("[[1, 2], [3, 4], [5, 6]]", "t.json", Span::default()).unwrap();
        assert_eq!(t.natural, vec![3, 2]);
        let e = parse_json("[[1, 2], [3]]", "t.json", Span::default()).unwrap_err();
        assert_eq!(e.code, Code::DataJson);
    }
}
