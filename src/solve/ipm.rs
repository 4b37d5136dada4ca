//! A primal-dual interior-point method for `minimize f subject to h = 0, g ≤ 0` (and var
//! bounds). Slacks s > 0 turn the inequalities into g + s = 0 with the perturbed
//! complementarity μ∘s = t, t → 0; each iteration takes a Newton step on
//!
//! ```text
//! ∇f + Aᵀλ + Gᵀμ = 0,   h = 0,   g + s = 0,   μ∘s − t = 0
//! ```
//!
//! with a fraction-to-the-boundary rule keeping s, μ > 0, and a backtracking search on the
//! residual norm. The multipliers follow the system's convention L = f + λ·h + μ·g, μ ≥ 0.

use super::linalg::{self, Dense, DenseKind, Factor};
use super::{IterRecord, Logger, Method, Problem, SolveOptions, SolveResult};
use crate::check::ConstraintKind;
use crate::diag::Code;
use crate::system::{BlockKind, UnknownKind};

struct Layout {
    /// z offsets of the var entries.
    x: Vec<usize>,
    /// Rows of F that are stationarity or equality (kept as they are).
    kept_rows: Vec<usize>,
    /// For each inequality entry: (z offset of μ, offset in the flat g).
    ineq: Vec<(usize, usize)>,
}

fn layout(p: &Problem) -> Layout {
    let mut x = Vec::new();
    for (u, &(_, off, len)) in p.sys.unknowns.iter().zip(&p.fns.layout.unknowns) {
        if matches!(u.kind, UnknownKind::Var(_)) {
            x.extend(off..off + len);
        }
    }
    let mut kept_rows = Vec::new();
    for (b, &(off, len)) in p.sys.blocks.iter().zip(&p.fns.layout.blocks) {
        if matches!(b.kind, BlockKind::Stationarity(_) | BlockKind::Equality(_)) {
            kept_rows.extend(off..off + len);
        }
    }
    let mut ineq = Vec::new();
    for (k, c) in p.sys.constraints.iter().enumerate() {
        if c.kind != ConstraintKind::Le {
            continue;
        }
        let (zoff, len) = p.multiplier_slot(k);
        let (goff, _) = p.fns.cons_layout[k];
        for e in 0..len {
            ineq.push((zoff + e, goff + e));
        }
    }
    Layout { x, kept_rows, ineq }
}

/// Residual parts at (z, s): (stationarity+equality rows, g + s, μ∘s − t).
type Residuals = (Vec<f64>, Vec<f64>, Vec<f64>);

fn residuals(p: &Problem, l: &Layout, z: &[f64], s: &[f64], t: f64) -> Result<Residuals, String> {
    let f = p.residual(z)?;
    let mut g = vec![0.0; p.fns.n_cons()];
    p.fns.constraints(z, p.state, &mut g)?;
    let kept: Vec<f64> = l.kept_rows.iter().map(|&r| f[r]).collect();
    let rin: Vec<f64> = l
        .ineq
        .iter()
        .zip(s)
        .map(|(&(_, goff), si)| g[goff] + si)
        .collect();
    let rc: Vec<f64> = l
        .ineq
        .iter()
        .zip(s)
        .map(|(&(zoff, _), si)| z[zoff] * si - t)
        .collect();
    Ok((kept, rin, rc))
}

fn merit(r: &Residuals) -> f64 {
    linalg::dot(&r.0, &r.0) + linalg::dot(&r.1, &r.1) + linalg::dot(&r.2, &r.2)
}

pub fn solve(
    p: &Problem,
    z: &mut [f64],
    o: &SolveOptions,
    log: &mut Logger,
) -> Result<SolveResult, String> {
    let start = std::time::Instant::now();
    let n = p.n();
    let l = layout(p);
    let mi = l.ineq.len();
    let nk = l.kept_rows.len();
    // Start: slacks from the constraint values, multipliers 1 (μ∘s away from 0).
    let mut g = vec![0.0; p.fns.n_cons()];
    p.fns.constraints(z, p.state, &mut g)?;
    let mut s: Vec<f64> = l
        .ineq
        .iter()
        .map(|&(_, goff)| (-g[goff]).max(1.0))
        .collect();
    for &(zoff, _) in &l.ineq {
        z[zoff] = 1.0;
    }
    let mut t = if mi > 0 { 1.0 } else { 0.0 };
    let mut history = Vec::new();
    let obj = |z: &[f64]| p.fns.objective(z, p.state, None).ok();
    let result = |it, res, history, failure| {
        SolveResult::end(Method::InteriorPoint, Some("lu"), it, res, history, failure)
    };
    let mut r = residuals(p, &l, z, &s, t)?;
    let (mut last_step, mut last_alpha) = (0.0, 0.0);
    for it in 0..=o.max_iter {
        let inf_du = {
            // Stationarity rows are the first of the kept rows; report them together.
            linalg::norm_inf(&r.0)
        };
        let inf_pr = linalg::norm_inf(&r.1);
        let gap = if mi > 0 {
            l.ineq
                .iter()
                .zip(&s)
                .map(|(&(zoff, _), si)| z[zoff] * si)
                .sum::<f64>()
                / mi as f64
        } else {
            0.0
        };
        let res = inf_du.max(inf_pr).max(gap);
        let rec = IterRecord {
            iter: it,
            objective: obj(z),
            residual: inf_pr,
            dual_inf: Some(inf_du),
            barrier: Some(t),
            step: last_step,
            alpha: last_alpha,
        };
        log.row(&rec);
        history.push(rec);
        if !res.is_finite() {
            return Ok(result(
                it,
                res,
                history,
                Some(("the residual is not finite".into(), Code::NumericalFault)),
            ));
        }
        if res <= o.tol {
            // Leave the multipliers consistent with exact complementarity at the solution.
            return Ok(result(it, res, history, None));
        }
        if it == o.max_iter {
            let code = if inf_pr > 1e-6 {
                Code::Infeasible
            } else {
                Code::NotConverged
            };
            return Ok(result(
                it,
                res,
                history,
                Some((format!("{} iterations reached", o.max_iter), code)),
            ));
        }
        if super::time_up(&start, o) {
            return Ok(result(
                it,
                res,
                history,
                Some((
                    format!("time limit of {} s reached", o.max_time),
                    Code::NotConverged,
                )),
            ));
        }
        // Newton matrix in (z, s).
        let jf = p.jacobian(z)?;
        let mut jg = Dense::zeros(p.fns.n_cons(), n);
        {
            let mut e = vec![0.0; n];
            let mut col = vec![0.0; p.fns.n_cons()];
            for j in 0..n {
                e[j] = 1.0;
                p.fns.constraints_jvp(z, p.state, &e, &mut col)?;
                e[j] = 0.0;
                for (i, v) in col.iter().enumerate() {
                    jg.set(i, j, *v);
                }
            }
        }
        let size = n + mi;
        let mut k = Dense::zeros(size, size);
        let mut rhs = vec![0.0; size];
        for (row, &fr) in l.kept_rows.iter().enumerate() {
            for j in 0..n {
                k.set(row, j, jf.get(fr, j));
            }
            rhs[row] = -r.0[row];
        }
        for (q, &(zoff, goff)) in l.ineq.iter().enumerate() {
            // g + s = 0 rows: ∂g/∂x dx + ds
            let row = nk + q;
            for &xj in &l.x {
                k.set(row, xj, jg.get(goff, xj));
            }
            k.set(row, n + q, 1.0);
            rhs[row] = -r.1[q];
            // μ∘s − t rows: s dμ + μ ds
            let row = nk + mi + q;
            k.set(row, zoff, s[q]);
            k.set(row, n + q, z[zoff]);
            rhs[row] = -r.2[q];
        }
        if nk + 2 * mi != size {
            return Err(format!(
                "interior point: {} equations for {size} unknowns",
                nk + 2 * mi
            ));
        }
        let d = match Factor::new(&k, DenseKind::Lu) {
            Some(f) => {
                let mut d = rhs.clone();
                f.solve(&mut d);
                d
            }
            None => return Err("interior point: singular Newton system".into()),
        };
        if d.iter().any(|v| !v.is_finite()) {
            return Ok(result(
                it,
                res,
                history,
                Some((
                    "the Newton system is singular".into(),
                    Code::SingularJacobian,
                )),
            ));
        }
        // Fraction to the boundary.
        let tau = (1.0 - t).max(0.99);
        let mut alpha: f64 = 1.0;
        for (q, &(zoff, _)) in l.ineq.iter().enumerate() {
            let ds = d[n + q];
            if ds < 0.0 {
                alpha = alpha.min(-tau * s[q] / ds);
            }
            let dm = d[zoff];
            if dm < 0.0 {
                alpha = alpha.min(-tau * z[zoff] / dm);
            }
        }
        // Backtracking on the residual norm (needed for nonlinear constraints).
        let m0 = merit(&r);
        let mut zt = z.to_vec();
        let mut st = s.clone();
        let mut accepted = false;
        for _ in 0..30 {
            for i in 0..n {
                zt[i] = z[i] + alpha * d[i];
            }
            for q in 0..mi {
                st[q] = s[q] + alpha * d[n + q];
            }
            let rt = residuals(p, &l, &zt, &st, t)?;
            let mt = merit(&rt);
            if mt.is_finite() && (mt <= (1.0 - 1e-4 * alpha) * m0 || m0 < 1e-24) {
                accepted = true;
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            // Take the short step anyway: the barrier update below changes the target.
            for i in 0..n {
                zt[i] = z[i] + alpha * d[i];
            }
            for q in 0..mi {
                st[q] = s[q] + alpha * d[n + q];
            }
        }
        let step = linalg::norm2(&d) * alpha;
        z.copy_from_slice(&zt);
        s = st;
        // Barrier update: superlinear decrease once the residuals are small.
        if mi > 0 {
            let avg = l
                .ineq
                .iter()
                .zip(&s)
                .map(|(&(zoff, _), si)| z[zoff] * si)
                .sum::<f64>()
                / mi as f64;
            t = (0.2 * avg).min(avg.powf(1.5)).max(o.tol * 1e-2);
        }
        r = residuals(p, &l, z, &s, t)?;
        last_step = step;
        last_alpha = alpha;
    }
    Err("interior point: the iteration ended without a verdict".into())
}
