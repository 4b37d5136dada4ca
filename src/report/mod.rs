//! Phase 8 — report. In: numbers and shapes. Out: text for people and JSON for tools
//! (the stable schema of DESIGN §7). Nothing here computes.
#![warn(missing_docs)]

pub mod plot;

use serde_json::Value;

/// Nested JSON arrays (row-major) for a tensor; a number for a scalar.
pub fn tensor_json(values: &[f64], shape: &[usize]) -> Value {
    fn rec(values: &[f64], shape: &[usize]) -> Value {
        match shape {
            [] => num(values.first().copied().unwrap_or(f64::NAN)),
            [n, rest @ ..] => {
                let step: usize = rest.iter().product();
                Value::Array(
                    (0..*n)
                        .map(|k| rec(&values[k * step..(k + 1) * step], rest))
                        .collect(),
                )
            }
        }
    }
    rec(values, shape)
}

/// A JSON number (non-finite values become null: JSON has no NaN).
pub fn num(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A number for people: up to 10 significant digits, no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e10).contains(&a) {
        let s = format!("{v:.9e}");
        // Trim mantissa zeros: 1.500000000e-5 → 1.5e-5
        if let Some((m, e)) = s.split_once('e') {
            let m = if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.')
            } else {
                m
            };
            return format!("{m}e{e}");
        }
        return s;
    }
    let digits = 10 - (a.log10().floor() as i32 + 1);
    let s = format!("{:.*}", digits.max(0) as usize, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A tensor for people: `1.5`, `[1, 2]`, `[[1, 2], [3, 4]]`.
pub fn fmt_tensor(values: &[f64], shape: &[usize]) -> String {
    fn rec(values: &[f64], shape: &[usize], out: &mut String) {
        match shape {
            [] => out.push_str(&fmt_num(values.first().copied().unwrap_or(f64::NAN))),
            [n, rest @ ..] => {
                let step: usize = rest.iter().product();
                out.push('[');
                for k in 0..*n {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    rec(&values[k * step..(k + 1) * step], rest, out);
                }
                out.push(']');
            }
        }
    }
    let mut s = String::new();
    rec(values, shape, &mut s);
    s
}

/// The iteration history as CSV (`--trace`).
pub fn trace_csv(history: &[crate::solve::IterRecord]) -> String {
    let mut s =
        String::from("iteration,objective,residual,dual_infeasibility,barrier,step,alpha\n");
    let opt = |v: Option<f64>| v.map(|x| format!("{x:e}")).unwrap_or_default();
    for r in history {
        s.push_str(&format!(
            "{},{},{:e},{},{},{:e},{:e}\n",
            r.iter,
            opt(r.objective),
            r.residual,
            opt(r.dual_inf),
            opt(r.barrier),
            r.step,
            r.alpha
        ));
    }
    s
}

/// The convergence history as an SVG plot (`--plot`).
pub fn convergence_svg(
    path: &std::path::Path,
    method: &str,
    history: &[crate::solve::IterRecord],
) -> Result<(), String> {
    let mut series = vec![plot::Series {
        name: "residual ||F||",
        points: history
            .iter()
            .map(|r| (r.iter as f64, r.residual))
            .collect(),
    }];
    if history.iter().any(|r| r.dual_inf.is_some()) {
        series[0].name = "primal infeasibility";
        series.push(plot::Series {
            name: "dual infeasibility",
            points: history
                .iter()
                .filter_map(|r| Some((r.iter as f64, r.dual_inf?)))
                .collect(),
        });
        series.push(plot::Series {
            name: "barrier parameter",
            points: history
                .iter()
                .filter_map(|r| Some((r.iter as f64, r.barrier?)))
                .collect(),
        });
    }
    series.push(plot::Series {
        name: "step length",
        points: history
            .iter()
            .skip(1)
            .map(|r| (r.iter as f64, r.step))
            .collect(),
    });
    plot::line_plot_svg(
        path,
        &format!("{method}: convergence"),
        "iteration",
        "value",
        &series,
        true,
    )
}

/// A pde training run as an SVG plot (`--plot`): the energy gap E − E(u*) and the relative
/// L² error against the step when `exact` is given, else the energy.
pub fn pde_svg(path: &std::path::Path, p: &crate::pde::PdeReport) -> Result<(), String> {
    let mut series = Vec::new();
    let log = match p.exact_energy {
        Some(e) => {
            series.push(plot::Series {
                name: "energy gap E - E(u*)",
                points: p
                    .history
                    .iter()
                    .map(|(k, en, _)| (*k as f64, (en - e).abs().max(1e-300)))
                    .collect(),
            });
            series.push(plot::Series {
                name: "relative L2 error",
                points: p
                    .history
                    .iter()
                    .filter_map(|(k, _, r)| Some((*k as f64, (*r)?)))
                    .collect(),
            });
            true
        }
        None => {
            series.push(plot::Series {
                name: "energy",
                points: p.history.iter().map(|(k, e, _)| (*k as f64, *e)).collect(),
            });
            false
        }
    };
    plot::line_plot_svg(
        path,
        &format!("pde {}: {} (d = {})", p.name, p.method, p.dim),
        "step",
        "value",
        &series,
        log,
    )
}

/// u along the slice x = (x₁, centre…) against the exact solution, as an SVG plot.
pub fn pde_slice_svg(path: &std::path::Path, p: &crate::pde::PdeReport) -> Result<(), String> {
    let mut series = vec![plot::Series {
        name: "trained u",
        points: p.slice.iter().map(|s| (s.x, s.u)).collect(),
    }];
    if p.slice.iter().all(|s| s.exact.is_some()) {
        series.push(plot::Series {
            name: "exact u",
            points: p
                .slice
                .iter()
                .filter_map(|s| Some((s.x, s.exact?)))
                .collect(),
        });
    }
    let rest = if p.dim > 1 {
        ", the other coordinates at the centre"
    } else {
        ""
    };
    plot::line_plot_svg(
        path,
        &format!("pde {}: u along x1{rest}", p.name),
        "x1",
        "u",
        &series,
        false,
    )
}

/// Where `--plot FILE.svg` puts the slice of a pde solution: `FILE_slice.svg`.
pub fn slice_path(plot: &std::path::Path) -> std::path::PathBuf {
    let stem = plot
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot".into());
    plot.with_file_name(format!("{stem}_slice.svg"))
}

/// The outer objective of a `tune` against its iteration, as an SVG plot (`--plot`).
pub fn tune_svg(path: &std::path::Path, t: &crate::run::TuneReport) -> Result<(), String> {
    let series = vec![plot::Series {
        name: "outer objective",
        points: t.history.iter().map(|(k, f, _)| (*k as f64, *f)).collect(),
    }];
    let positive = t.history.iter().all(|(_, f, _)| *f > 0.0);
    plot::line_plot_svg(
        path,
        &format!("tune by {}: outer objective", t.method),
        "outer iteration",
        "objective",
        &series,
        positive,
    )
}

/// The one-line outcome of a solve: method, linear solver, verdict, iterations, ‖F‖.
pub fn solve_line(r: &crate::solve::SolveResult) -> String {
    let verdict = if r.converged {
        "converged"
    } else {
        "did not converge"
    };
    let linear = r.linear.map(|l| format!(" ({l})")).unwrap_or_default();
    format!(
        "{}{linear} {verdict}: {} iterations, ||F|| = {:.3e}",
        r.method.name(),
        r.iterations,
        r.residual
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(fmt_num(0.3706896552), "0.3706896552");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(-0.25), "-0.25");
        assert_eq!(fmt_num(1.5e-7), "1.5e-7");
        assert_eq!(
            fmt_tensor(&[1.0, 2.0, 3.0, 4.0], &[2, 2]),
            "[[1, 2], [3, 4]]"
        );
    }

    #[test]
    fn json_tensors_nest_row_major() {
        assert_eq!(
            tensor_json(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).to_string(),
            "[[1.0,2.0,3.0],[4.0,5.0,6.0]]"
        );
        assert_eq!(tensor_json(&[f64::NAN], &[]), Value::Null);
    }
}
