//! Newton's method with a backtracking line search.
//!
//! Dense steps factor ∂ₓF (built from JVP columns): Cholesky when the compiler proved the
//! Jacobian is a Hessian, falling back to Levenberg–Marquardt damping when it is not positive
//! definite (so minimization steps stay descent directions); LU otherwise. Above
//! `dense_limit` unknowns the step is solved matrix-free (CG / MINRES / GMRES on JVPs).
//! A null space is handled by bordering with its basis (`gauge = rigid`) or by
//! minimum-norm steps (`gauge = minnorm`).

use super::linalg::{self, Dense, DenseKind, Factor};
use super::{Gauge, IterRecord, LinearSolver, Logger, Problem, SolveOptions, SolveResult};
use crate::diag::Code;
use crate::system::{SystemKind, UnknownKind};

pub fn solve(
    p: &Problem,
    z: &mut [f64],
    o: &SolveOptions,
    log: &mut Logger,
) -> Result<SolveResult, String> {
    let start = std::time::Instant::now();
    let n = p.n();
    let minimizing = p.sys.kind == SystemKind::Stationarity && p.sys.objective.is_some();
    let mut history = Vec::new();
    let mut f = p.residual(z)?;
    let mut res = linalg::norm_inf(&f);
    let mut linear_used: Option<&'static str> = None;
    let objective = |z: &[f64]| -> Result<Option<f64>, String> {
        if minimizing {
            Ok(Some(p.fns.objective(z, p.state, None)?))
        } else {
            Ok(None)
        }
    };
    let mut fval = objective(z)?;
    let mut rec = IterRecord {
        iter: 0,
        objective: fval,
        residual: res,
        ..Default::default()
    };
    log.row(&rec);
    history.push(rec);
    let fail = |iterations, res, history, why: String, code, linear| {
        Ok(SolveResult::end(
            super::Method::Newton,
            linear,
            iterations,
            res,
            history,
            Some((why, code)),
        ))
    };
    for it in 1..=o.max_iter {
        if !res.is_finite() {
            return fail(
                it - 1,
                res,
                history,
                "the residual is not finite".into(),
                Code::NumericalFault,
                linear_used,
            );
        }
        if res <= o.tol {
            return Ok(SolveResult::end(
                super::Method::Newton,
                linear_used,
                it - 1,
                res,
                history,
                None,
            ));
        }
        if super::time_up(&start, o) {
            return fail(
                it - 1,
                res,
                history,
                format!("time limit of {} s reached", o.max_time),
                Code::NotConverged,
                linear_used,
            );
        }
        // The Newton direction.
        let (d, name) = direction(p, z, &f, o, minimizing)?;
        linear_used = Some(name);
        if d.iter().any(|x| !x.is_finite()) {
            return fail(
                it - 1,
                res,
                history,
                "the Newton step is not finite (singular Jacobian?)".into(),
                Code::SingularJacobian,
                linear_used,
            );
        }
        // Backtracking: on f when minimizing with a descent direction, else on ½‖F‖².
        let slope = if minimizing { linalg::dot(&f, &d) } else { 0.0 };
        let use_f = minimizing && slope < 0.0;
        let phi0 = 0.5 * linalg::dot(&f, &f);
        let mut alpha = 1.0;
        let mut trial = vec![0.0; n];
        let mut accepted = false;
        let mut new_f = f.clone();
        let mut new_fval = fval;
        for _ in 0..40 {
            for i in 0..n {
                trial[i] = z[i] + alpha * d[i];
            }
            let ft = p.residual(&trial)?;
            let ok = if ft.iter().any(|x| !x.is_finite()) {
                false
            } else if use_f {
                let fv = objective(&trial)?.unwrap_or(f64::INFINITY);
                let base = fval.unwrap_or(f64::INFINITY);
                let armijo = fv <= base + 1e-4 * alpha * slope;
                // Near the solution rounding hides the decrease of f: accept a step that
                // shrinks the gradient instead.
                let grad_ok = linalg::norm_inf(&ft) < 0.5 * res
                    && (fv - base).abs() <= 1e-12 * base.abs().max(1.0);
                if armijo || grad_ok {
                    new_fval = Some(fv);
                    true
                } else {
                    false
                }
            } else {
                let phi = 0.5 * linalg::dot(&ft, &ft);
                phi <= (1.0 - 1e-4 * alpha) * phi0 || (phi0 < 1e-20 && phi <= phi0)
            };
            if ok {
                new_f = ft;
                accepted = true;
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            return fail(
                it - 1,
                res,
                history,
                "the line search found no decrease".into(),
                Code::NotConverged,
                linear_used,
            );
        }
        if !use_f && minimizing {
            new_fval = objective(&trial)?;
        }
        z.copy_from_slice(&trial);
        f = new_f;
        fval = new_fval;
        res = linalg::norm_inf(&f);
        rec = IterRecord {
            iter: it,
            objective: fval,
            residual: res,
            step: alpha * linalg::norm2(&d),
            alpha,
            ..Default::default()
        };
        log.row(&rec);
        history.push(rec);
    }
    if res <= o.tol {
        return Ok(SolveResult::end(
            super::Method::Newton,
            linear_used,
            o.max_iter,
            res,
            history,
            None,
        ));
    }
    fail(
        o.max_iter,
        res,
        history,
        format!("{} iterations reached", o.max_iter),
        Code::NotConverged,
        linear_used,
    )
}

/// Solves ∂ₓF d = −F (with the gauge and fallbacks); returns d and the linear solver used.
fn direction(
    p: &Problem,
    z: &[f64],
    f: &[f64],
    o: &SolveOptions,
    minimizing: bool,
) -> Result<(Vec<f64>, &'static str), String> {
    let n = p.n();
    let rhs: Vec<f64> = f.iter().map(|x| -x).collect();
    let matrix_free = n > o.dense_limit
        || matches!(
            o.linear,
            LinearSolver::Cg | LinearSolver::Minres | LinearSolver::Gmres | LinearSolver::Bicgstab
        );
    if matrix_free && o.gauge == Gauge::None {
        let solver = match o.linear {
            LinearSolver::Auto | LinearSolver::Dense(_) | LinearSolver::Lstsq => match p.sys.kind {
                SystemKind::Stationarity => LinearSolver::Cg,
                SystemKind::Saddle | SystemKind::Kkt => LinearSolver::Minres,
                _ => LinearSolver::Gmres,
            },
            other => other,
        };
        return krylov(p, z, &rhs, solver).map(|d| (d, solver.name()));
    }
    let mut j = p.jacobian(z)?;
    let symmetric = matches!(p.sys.kind, SystemKind::Stationarity | SystemKind::Saddle)
        || (p.sys.kind == SystemKind::Kkt && !p.sys.has_inequalities());
    if symmetric {
        j.symmetrize();
    }
    match o.gauge {
        Gauge::Rigid => {
            let basis = rigid_basis(p, z)
                .ok_or("gauge = rigid needs a single var of shape [N, 2] or [N, 3]")?;
            return Ok((
                bordered_solve(&j, &basis, &rhs).ok_or("the bordered Newton system is singular")?,
                "lu+gauge",
            ));
        }
        Gauge::MinNorm => {
            return Ok((
                linalg::pinv_solve(&j, &rhs, 1e-12).ok_or("the SVD did not converge")?,
                "lstsq",
            ));
        }
        Gauge::None => {}
    }
    if o.linear == LinearSolver::Lstsq {
        return Ok((
            linalg::pinv_solve(&j, &rhs, 1e-12).ok_or("the SVD did not converge")?,
            "lstsq",
        ));
    }
    let kind = match o.linear {
        LinearSolver::Dense(k) => k,
        _ if minimizing => DenseKind::Cholesky,
        _ if symmetric => DenseKind::Ldlt,
        _ => DenseKind::Lu,
    };
    if let Some(fac) = Factor::new(&j, kind) {
        let mut d = rhs.clone();
        fac.solve(&mut d);
        if d.iter().all(|x| x.is_finite()) {
            return Ok((d, kind.name()));
        }
    }
    if minimizing {
        // Not positive definite: Levenberg–Marquardt damping. The first μ that makes the
        // factorization succeed can sit right at −λ_min (a nearly singular factor and a huge
        // step), so the step uses 10μ, safely inside the positive definite region.
        let scale = (0..n)
            .map(|i| j.get(i, i).abs())
            .fold(0.0f64, f64::max)
            .max(1e-8);
        let mut mu = 1e-6 * scale;
        let damped = |mu: f64| {
            let mut jm = j.clone();
            for i in 0..n {
                jm.set(i, i, j.get(i, i) + mu);
            }
            Factor::new(&jm, DenseKind::Cholesky)
        };
        for _ in 0..60 {
            if damped(mu).is_some() {
                if let Some(fac) = damped(10.0 * mu) {
                    let mut d = rhs.clone();
                    fac.solve(&mut d);
                    return Ok((d, "cholesky+damping"));
                }
            }
            mu *= 10.0;
        }
    }
    // Last resort: LU, then the minimum-norm step.
    if let Some(fac) = Factor::new(&j, DenseKind::Lu) {
        let mut d = rhs.clone();
        fac.solve(&mut d);
        if d.iter().all(|x| x.is_finite()) {
            return Ok((d, "lu"));
        }
    }
    Ok((
        linalg::pinv_solve(&j, &rhs, 1e-12).ok_or("the SVD did not converge")?,
        "lstsq",
    ))
}

fn krylov(p: &Problem, z: &[f64], rhs: &[f64], solver: LinearSolver) -> Result<Vec<f64>, String> {
    let n = p.n();
    let mut d = vec![0.0; n];
    let mut op = |v: &[f64], out: &mut [f64]| p.jvp(z, v, out);
    let tol = 1e-12;
    let iters = 10 * n.max(10);
    let info = match solver {
        LinearSolver::Cg => linalg::cg(&mut op, rhs, &mut d, tol, iters)?,
        LinearSolver::Minres => linalg::minres(&mut op, rhs, &mut d, tol, iters)?,
        LinearSolver::Bicgstab => linalg::bicgstab(&mut op, rhs, &mut d, tol, iters)?,
        _ => linalg::gmres(&mut op, rhs, &mut d, tol, iters, 50)?,
    };
    if !info.converged && info.residual > 1e-6 {
        return Err(format!(
            "{} did not solve the Newton system (relative residual {:.1e})",
            solver.name(),
            info.residual
        ));
    }
    Ok(d)
}

/// An orthonormal basis of the rigid motions of the unknown point cloud at z.
pub(crate) fn rigid_basis(p: &Problem, z: &[f64]) -> Option<Vec<Vec<f64>>> {
    let vars: Vec<usize> = p
        .sys
        .unknowns
        .iter()
        .enumerate()
        .filter(|(_, u)| matches!(u.kind, UnknownKind::Var(_)))
        .map(|(k, _)| k)
        .collect();
    if vars.len() != 1 {
        return None;
    }
    let u = &p.sys.unknowns[vars[0]];
    let (npts, dim) = match u.shape.as_slice() {
        [n, d] if *d == 2 || *d == 3 => (*n, *d),
        _ => return None,
    };
    let (_, off, _) = p.fns.layout.unknowns[vars[0]];
    let n = p.n();
    let pos = |i: usize, k: usize| z[off + i * dim + k];
    let mut raw: Vec<Vec<f64>> = Vec::new();
    for k in 0..dim {
        let mut v = vec![0.0; n];
        for i in 0..npts {
            v[off + i * dim + k] = 1.0;
        }
        raw.push(v);
    }
    let pairs: &[(usize, usize)] = if dim == 2 {
        &[(0, 1)]
    } else {
        &[(0, 1), (0, 2), (1, 2)]
    };
    for &(a, b) in pairs {
        let mut v = vec![0.0; n];
        for i in 0..npts {
            v[off + i * dim + a] = -pos(i, b);
            v[off + i * dim + b] = pos(i, a);
        }
        raw.push(v);
    }
    // Gram–Schmidt (drop dependent directions, e.g. rotations of collinear points).
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for mut v in raw {
        for b in &basis {
            let c = linalg::dot(&v, b);
            linalg::axpy(-c, b, &mut v);
        }
        let nv = linalg::norm2(&v);
        if nv > 1e-10 {
            basis.push(v.iter().map(|x| x / nv).collect());
        }
    }
    Some(basis)
}

/// Solves [J Z; Zᵀ 0][d; λ] = [r; 0]: the step orthogonal to the null space basis Z.
pub(crate) fn bordered_solve(j: &Dense, basis: &[Vec<f64>], rhs: &[f64]) -> Option<Vec<f64>> {
    let n = j.rows;
    let k = basis.len();
    let mut a = Dense::zeros(n + k, n + k);
    for r in 0..n {
        for c in 0..n {
            a.set(r, c, j.get(r, c));
        }
    }
    for (q, b) in basis.iter().enumerate() {
        for r in 0..n {
            a.set(r, n + q, b[r]);
            a.set(n + q, r, b[r]);
        }
    }
    let fac = Factor::new(&a, DenseKind::Lu)?;
    let mut x: Vec<f64> = rhs
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0.0, k))
        .collect();
    fac.solve(&mut x);
    x.truncate(n);
    x.iter().all(|v| v.is_finite()).then_some(x)
}
