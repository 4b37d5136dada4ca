//! L-BFGS for smooth unconstrained minimization: two-loop recursion, backtracking Armijo line
//! search, curvature-safeguarded updates. The gradient is the system's residual F = ∇f.

use super::linalg::{axpy, dot, norm2, norm_inf};
use super::{IterRecord, Logger, Method, Problem, SolveOptions, SolveResult};
use crate::diag::Code;

pub fn solve(
    p: &Problem,
    z: &mut [f64],
    o: &SolveOptions,
    log: &mut Logger,
) -> Result<SolveResult, String> {
    let start = std::time::Instant::now();
    let n = p.n();
    let mut g = vec![0.0; n];
    let mut f = p.fns.objective(z, p.state, Some(&mut g))?;
    let mut history = Vec::new();
    let mut ss: Vec<Vec<f64>> = Vec::new();
    let mut ys: Vec<Vec<f64>> = Vec::new();
    let mut res = norm_inf(&g);
    let mut rec = IterRecord {
        iter: 0,
        objective: Some(f),
        residual: res,
        ..Default::default()
    };
    log.row(&rec);
    history.push(rec);
    let done = |it, res, history, failure| {
        SolveResult::end(Method::Lbfgs, None, it, res, history, failure)
    };
    for it in 1..=o.max_iter {
        if !res.is_finite() || !f.is_finite() {
            return Ok(done(
                it - 1,
                res,
                history,
                Some((
                    "the objective or its gradient is not finite".into(),
                    Code::NumericalFault,
                )),
            ));
        }
        if res <= o.tol {
            return Ok(done(it - 1, res, history, None));
        }
        if super::time_up(&start, o) {
            return Ok(done(
                it - 1,
                res,
                history,
                Some((
                    format!("time limit of {} s reached", o.max_time),
                    Code::NotConverged,
                )),
            ));
        }
        // Two-loop recursion: d = −H g.
        let mut q = g.clone();
        let k = ss.len();
        let mut alphas = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / dot(&ys[i], &ss[i]);
            alphas[i] = rho * dot(&ss[i], &q);
            axpy(-alphas[i], &ys[i], &mut q);
        }
        let gamma = if k > 0 {
            dot(&ss[k - 1], &ys[k - 1]) / dot(&ys[k - 1], &ys[k - 1])
        } else {
            1.0 / norm2(&g).max(1.0)
        };
        for x in q.iter_mut() {
            *x *= gamma;
        }
        for i in 0..k {
            let rho = 1.0 / dot(&ys[i], &ss[i]);
            let beta = rho * dot(&ys[i], &q);
            axpy(alphas[i] - beta, &ss[i], &mut q);
        }
        let mut d: Vec<f64> = q.iter().map(|x| -x).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart with steepest descent.
            ss.clear();
            ys.clear();
            d = g.iter().map(|x| -x / norm2(&g).max(1.0)).collect();
            slope = dot(&g, &d);
        }
        let mut alpha = 1.0;
        let mut trial = vec![0.0; n];
        let mut gt = vec![0.0; n];
        let mut ft = f;
        let mut accepted = false;
        for _ in 0..50 {
            for i in 0..n {
                trial[i] = z[i] + alpha * d[i];
            }
            ft = p.fns.objective(&trial, p.state, Some(&mut gt))?;
            if ft.is_finite() && ft <= f + 1e-4 * alpha * slope {
                accepted = true;
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            // At the limit of precision f no longer decreases; report honestly.
            return Ok(done(
                it - 1,
                res,
                history,
                Some((
                    "the line search found no decrease".into(),
                    Code::NotConverged,
                )),
            ));
        }
        let s: Vec<f64> = trial.iter().zip(z.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        if dot(&s, &y) > 1e-12 * norm2(&s) * norm2(&y) {
            ss.push(s.clone());
            ys.push(y);
            if ss.len() > o.lbfgs_memory {
                ss.remove(0);
                ys.remove(0);
            }
        }
        z.copy_from_slice(&trial);
        g.copy_from_slice(&gt);
        f = ft;
        res = norm_inf(&g);
        rec = IterRecord {
            iter: it,
            objective: Some(f),
            residual: res,
            step: norm2(&s),
            alpha,
            ..Default::default()
        };
        log.row(&rec);
        history.push(rec);
    }
    if res <= o.tol {
        return Ok(done(o.max_iter, res, history, None));
    }
    Ok(done(
        o.max_iter,
        res,
        history,
        Some((
            format!("{} iterations reached", o.max_iter),
            Code::NotConverged,
        )),
    ))
}
