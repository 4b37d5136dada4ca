//! Fixed points `x = T(x)`: Anderson acceleration (type II) and plain (damped) iteration.
//! With F = x − T(x) from the condition, T(x) = x − F(x) needs no extra kernel.

use super::linalg;
use super::{IterRecord, Logger, Method, Problem, SolveOptions, SolveResult};
use crate::diag::Code;
use crate::system::UnknownKind;

/// For each residual entry, the unknown entry it updates and the sign s with T(x) = x − s·F.
fn plan(p: &Problem) -> Result<Vec<(usize, usize, usize, f64)>, String> {
    let mut out = Vec::new();
    for fp in &p.sys.fixed_points {
        let u = p
            .sys
            .unknowns
            .iter()
            .position(|u| u.kind == UnknownKind::Var(fp.var))
            .ok_or("a fixed-point var is not an unknown")?;
        let (_, zoff, len) = p.fns.layout.unknowns[u];
        let (foff, flen) = p.fns.layout.blocks[fp.block];
        if flen != len {
            return Err("a fixed-point condition and its var have different sizes".into());
        }
        out.push((zoff, foff, len, if fp.var_on_left { 1.0 } else { -1.0 }));
    }
    Ok(out)
}

pub fn solve(
    p: &Problem,
    z: &mut [f64],
    o: &SolveOptions,
    log: &mut Logger,
) -> Result<SolveResult, String> {
    let start = std::time::Instant::now();
    let n = p.n();
    let plan = plan(p)?;
    // g(x) = T(x) − x = −s·F(x)
    let step_of = |f: &[f64]| -> Vec<f64> {
        let mut g = vec![0.0; n];
        for &(zoff, foff, len, s) in &plan {
            for k in 0..len {
                g[zoff + k] = -s * f[foff + k];
            }
        }
        g
    };
    let method = if o.method == Method::Anderson && o.memory > 0 {
        Method::Anderson
    } else {
        Method::FixedPoint
    };
    let beta = o.damping;
    let mut history = Vec::new();
    let mut f = p.residual(z)?;
    let mut res = linalg::norm_inf(&f);
    let res0 = res.max(f64::MIN_POSITIVE);
    let mut best = res;
    let mut since_best = 0usize;
    let mut rec = IterRecord {
        iter: 0,
        residual: res,
        ..Default::default()
    };
    log.row(&rec);
    history.push(rec);
    // Histories of x and g = T(x) − x.
    let mut xs: Vec<Vec<f64>> = Vec::new();
    let mut gs: Vec<Vec<f64>> = Vec::new();
    let result =
        |it, res, history, failure| SolveResult::end(method, None, it, res, history, failure);
    for it in 1..=o.max_iter {
        if !res.is_finite() {
            return Ok(result(
                it - 1,
                res,
                history,
                Some(("the residual is not finite".into(), Code::NumericalFault)),
            ));
        }
        if res <= o.tol {
            return Ok(result(it - 1, res, history, None));
        }
        if res > 1e6 * res0 {
            return Ok(result(
                it - 1,
                res,
                history,
                Some((
                    format!("the residual grew from {res0:.2e} to {res:.2e}"),
                    Code::NonContractive,
                )),
            ));
        }
        if super::time_up(&start, o) {
            return Ok(result(
                it - 1,
                res,
                history,
                Some((
                    format!("time limit of {} s reached", o.max_time),
                    Code::NotConverged,
                )),
            ));
        }
        let g = step_of(&f);
        xs.push(z.to_vec());
        gs.push(g.clone());
        if xs.len() > o.memory + 1 {
            xs.remove(0);
            gs.remove(0);
        }
        let mk = if method == Method::Anderson {
            xs.len() - 1
        } else {
            0
        };
        let mut new_z = vec![0.0; n];
        if mk == 0 {
            for i in 0..n {
                new_z[i] = z[i] + beta * g[i];
            }
        } else {
            // γ = argmin ‖g_k − ΔG γ‖, with a little Tikhonov regularization.
            let dg: Vec<Vec<f64>> = (0..mk)
                .map(|j| gs[j + 1].iter().zip(&gs[j]).map(|(a, b)| a - b).collect())
                .collect();
            let dx: Vec<Vec<f64>> = (0..mk)
                .map(|j| xs[j + 1].iter().zip(&xs[j]).map(|(a, b)| a - b).collect())
                .collect();
            let mut a = linalg::Dense::zeros(mk, mk);
            let mut rhs = vec![0.0; mk];
            for r in 0..mk {
                for c in 0..mk {
                    a.set(r, c, linalg::dot(&dg[r], &dg[c]));
                }
                rhs[r] = linalg::dot(&dg[r], &g);
            }
            let trace: f64 = (0..mk)
                .map(|i| a.get(i, i))
                .sum::<f64>()
                .max(f64::MIN_POSITIVE);
            for i in 0..mk {
                a.set(i, i, a.get(i, i) + 1e-12 * trace);
            }
            let gamma = linalg::Factor::new(&a, linalg::DenseKind::Lu).map(|fac| {
                let mut x = rhs.clone();
                fac.solve(&mut x);
                x
            });
            match gamma {
                Some(gamma) if gamma.iter().all(|v| v.is_finite()) => {
                    for i in 0..n {
                        let mut xi = z[i];
                        let mut gi = g[i];
                        for j in 0..mk {
                            xi -= gamma[j] * dx[j][i];
                            gi -= gamma[j] * dg[j][i];
                        }
                        new_z[i] = xi + beta * gi;
                    }
                }
                _ => {
                    // A degenerate history: restart from a plain step.
                    xs.clear();
                    gs.clear();
                    for i in 0..n {
                        new_z[i] = z[i] + beta * g[i];
                    }
                }
            }
        }
        let step = new_z
            .iter()
            .zip(z.iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        z.copy_from_slice(&new_z);
        f = p.residual(z)?;
        res = linalg::norm_inf(&f);
        if res < best {
            best = res;
            since_best = 0;
        } else {
            since_best += 1;
            // Anderson can stall on a bad history: restart it.
            if since_best > 50 && method == Method::Anderson {
                xs.clear();
                gs.clear();
                since_best = 0;
            }
        }
        rec = IterRecord {
            iter: it,
            residual: res,
            step,
            alpha: beta,
            ..Default::default()
        };
        if it <= 20 || it % 100 == 0 || res <= o.tol {
            log.row(&rec);
        }
        history.push(rec);
    }
    if res <= o.tol {
        return Ok(result(o.max_iter, res, history, None));
    }
    let code = if res > res0 {
        Code::NonContractive
    } else {
        Code::NotConverged
    };
    let why = if code == Code::NonContractive {
        format!(
            "the residual grew from {res0:.2e} to {res:.2e} in {} iterations",
            o.max_iter
        )
    } else {
        format!("{} iterations reached", o.max_iter)
    };
    Ok(result(o.max_iter, res, history, Some((why, code))))
}
