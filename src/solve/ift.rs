//! Implicit differentiation of the solution: F(z*(θ), θ) = 0 gives
//!
//! ```text
//! dz*/dθ = −(∂_zF)⁻¹ ∂_θF,      de/dθ = ∂_θe + ∂_ze · dz*/dθ
//! ```
//!
//! computed with Jacobian products and linear solves, never by unrolling the solver. Forward
//! mode solves once per parameter entry, reverse mode once per output entry (with ∂_zFᵀ);
//! the cheaper is chosen by counting. Before anything is differentiated the solution and the
//! Jacobian are checked: a singular or ill-conditioned ∂_zF, a null space, and a weakly active
//! constraint are reported instead of returning a number that means nothing.

use super::linalg::{self, Dense, DenseKind, Factor};
use super::structure::unknown_name;
use super::{newton, Gauge, LinearSolver, Problem};
use crate::check::ConstraintKind;
use crate::compiled::ExprFns;
use crate::diag::{Code, Diagnostic, Span};
use crate::system::{SystemKind, UnknownKind};

/// What to differentiate.
pub struct DeriveRequest<'a> {
    pub fns: &'a ExprFns,
    pub order: u8,
    pub linear: LinearSolver,
    pub gauge: Gauge,
    pub dense_limit: usize,
    pub span: Span,
    /// Text of the expression and the param name, for messages.
    pub of_text: String,
    pub wrt_name: String,
}

#[derive(Clone, Debug)]
pub struct DeriveOptions {
    /// Residual above which the point is not a solution.
    pub residual_tol: f64,
}

/// A derivative of the solution.
#[derive(Clone, Debug)]
pub struct Derivative {
    /// shape(e) ++ shape(p), row-major.
    pub value: Vec<f64>,
    pub shape: Vec<usize>,
    pub mode: &'static str,
    pub linear: &'static str,
    /// 2-norm condition number of ∂_zF, when it was computed.
    pub condition: Option<f64>,
}

/// Largest system whose singular values are computed for the conditioning check.
const SVD_LIMIT: usize = 600;

fn fail(code: Code, msg: String, span: Span, label: &str, help: &str) -> Diagnostic {
    Diagnostic::error(code, msg)
        .at(span, label.to_string())
        .help(help.to_string())
}

/// Checks the point and differentiates. `z` is the converged solution.
pub fn derive(p: &Problem, z: &[f64], req: &DeriveRequest) -> Result<Derivative, Diagnostic> {
    let n = p.n();
    let e = req.fns;
    let (ne, np) = (e.len, e.param_len);
    let io = |m: String| {
        fail(
            Code::NumericalFault,
            format!("while differentiating: {m}"),
            req.span,
            "here",
            "check the expression's domain at the solution",
        )
    };
    // 1. A solution?
    let f = p.residual(z).map_err(io)?;
    let res = linalg::norm_inf(&f);
    let scale = 1e-6_f64.max(1e-6 * linalg::norm_inf(z));
    if res.is_nan() || res > scale {
        return Err(fail(
            Code::NotConverged,
            format!(
                "the point is not a solution (‖F‖∞ = {res:.3e}), so it cannot be differentiated"
            ),
            req.span,
            "derivative of an unsolved system",
            "solve first, to a tolerance well below 1e-6",
        ));
    }
    // 2. Weakly active constraints: no strict complementarity, no derivative.
    check_complementarity(p, z, req.span)?;
    // 3. The Jacobian and its conditioning.
    let dense = n <= req.dense_limit
        && !matches!(
            req.linear,
            LinearSolver::Cg | LinearSolver::Minres | LinearSolver::Gmres | LinearSolver::Bicgstab
        );
    let mut condition = None;
    let mut solver: Option<Solver> = None;
    if dense {
        let mut j = p.jacobian(z).map_err(io)?;
        if matches!(p.sys.kind, SystemKind::Stationarity | SystemKind::Saddle) {
            j.symmetrize();
        }
        let gauge_basis = match req.gauge {
            Gauge::Rigid => newton::rigid_basis(p, z),
            _ => None,
        };
        if n <= SVD_LIMIT {
            if let Some(sv) = linalg::singular_values(&j) {
                let smax = sv.first().copied().unwrap_or(0.0);
                let tiny = sv
                    .iter()
                    .filter(|&&s| s <= 1e-10 * smax.max(f64::MIN_POSITIVE))
                    .count();
                let k = gauge_basis.as_ref().map(|b| b.len()).unwrap_or(0);
                // With a gauge, the k smallest singular values are the gauge's null space.
                let effective: Vec<f64> = sv[..sv.len().saturating_sub(k)].to_vec();
                condition = Some(linalg::condition(&effective));
                if tiny > k && req.gauge != Gauge::MinNorm {
                    return Err(singular(p, &j, tiny, req, gauge_basis.is_some()));
                }
                if condition.unwrap_or(0.0) > 1e14 {
                    return Err(fail(
                        Code::SingularJacobian,
                        format!("∂F/∂z is ill-conditioned (condition number {:.1e}): the derivative would be meaningless", condition.unwrap_or(0.0)),
                        req.span,
                        "ill-conditioned at the solution",
                        "rescale the unknowns, or check for nearly redundant conditions",
                    ));
                }
            }
        }
        solver = Some(if req.gauge == Gauge::Rigid {
            match gauge_basis {
                Some(basis) => Solver::Bordered(j, basis),
                None => {
                    return Err(fail(
                        Code::Unsupported,
                        "gauge = rigid needs a single var of shape [N, 2] or [N, 3]".into(),
                        req.span,
                        "here",
                        "drop the gauge, or use gauge = minnorm",
                    ))
                }
            }
        } else if req.gauge == Gauge::MinNorm || req.linear == LinearSolver::Lstsq {
            Solver::MinNorm(j)
        } else {
            {
                let kind = match req.linear {
                    LinearSolver::Dense(k) => k,
                    _ => match p.sys.kind {
                        SystemKind::Stationarity => DenseKind::Cholesky,
                        SystemKind::Saddle => DenseKind::Ldlt,
                        _ => DenseKind::Lu,
                    },
                };
                let fac = Factor::new(&j, kind)
                    .or_else(|| Factor::new(&j, DenseKind::Lu))
                    .ok_or_else(|| {
                        fail(
                            Code::SingularJacobian,
                            "∂F/∂z could not be factored".into(),
                            req.span,
                            "singular at the solution",
                            "see `optc explain E0602`",
                        )
                    })?;
                Solver::Factored(fac)
            }
        });
    } else if req.gauge != Gauge::None {
        return Err(fail(
            Code::Unsupported,
            format!("a gauge needs the dense path (n = {n} is above dense_limit)"),
            req.span,
            "here",
            "raise dense_limit",
        ));
    }
    let linear_name = match &solver {
        Some(Solver::Factored(f)) => f.kind().name(),
        Some(Solver::Bordered(..)) => "lu+gauge",
        Some(Solver::MinNorm(_)) => "lstsq",
        None => krylov_choice(p, req.linear).name(),
    };
    let solve = |rhs: &mut Vec<f64>, transpose: bool| -> Result<(), Diagnostic> {
        match &solver {
            Some(Solver::Factored(fac)) => {
                if transpose {
                    fac.solve_transpose(rhs)
                } else {
                    fac.solve(rhs)
                }
            }
            Some(Solver::Bordered(j, basis)) => {
                let jt = if transpose {
                    transpose_dense(j)
                } else {
                    j.clone()
                };
                *rhs = newton::bordered_solve(&jt, basis, rhs).ok_or_else(|| {
                    fail(
                        Code::SingularJacobian,
                        "the gauge-fixed system is singular".into(),
                        req.span,
                        "singular",
                        "the null space is larger than the rigid motions",
                    )
                })?;
            }
            Some(Solver::MinNorm(j)) => {
                let jt = if transpose {
                    transpose_dense(j)
                } else {
                    j.clone()
                };
                *rhs = linalg::pinv_solve(&jt, rhs, 1e-10).ok_or_else(|| {
                    fail(
                        Code::SingularJacobian,
                        "the SVD did not converge".into(),
                        req.span,
                        "here",
                        "",
                    )
                })?;
            }
            None => {
                let b = rhs.clone();
                let mut x = vec![0.0; n];
                let kind = krylov_choice(p, req.linear);
                let info = if transpose {
                    let mut op = |v: &[f64], out: &mut [f64]| p.vjp(z, v, out);
                    run_krylov(kind, &mut op, &b, &mut x)
                } else {
                    let mut op = |v: &[f64], out: &mut [f64]| p.jvp(z, v, out);
                    run_krylov(kind, &mut op, &b, &mut x)
                }
                .map_err(io)?;
                if !info.converged {
                    return Err(fail(
                        Code::SingularJacobian,
                        format!("{} did not converge on ∂F/∂z (relative residual {:.1e})", kind.name(), info.residual),
                        req.span,
                        "the linear solve failed",
                        "∂F/∂z may be singular or badly conditioned; try linear = gmres or a dense solver",
                    ));
                }
                *rhs = x;
            }
        }
        if rhs.iter().any(|v| !v.is_finite()) {
            return Err(fail(
                Code::SingularJacobian,
                "the linear solve gave a non-finite result".into(),
                req.span,
                "singular at the solution",
                "see `optc explain E0602`",
            ));
        }
        Ok(())
    };
    let mut out = vec![0.0; ne * np];
    let forward = np <= ne || req.order == 2;
    if forward {
        // Column j: dz = −J⁻¹ (∂_θF e_j); de = E_θ e_j + E_z dz.
        let mut t = vec![0.0; np];
        let mut b = vec![0.0; p.m()];
        let mut col = vec![0.0; ne];
        let mut tmp = vec![0.0; ne];
        for jcol in 0..np {
            t.iter_mut().for_each(|x| *x = 0.0);
            t[jcol] = 1.0;
            p.fns
                .param_jvp(e.param, z, p.state, &t, &mut b)
                .map_err(io)?;
            let mut dz: Vec<f64> = b.iter().map(|x| -x).collect();
            solve(&mut dz, false)?;
            e.jvp_p(p.fns, z, p.state, &t, &mut col).map_err(io)?;
            e.jvp_z(p.fns, z, p.state, &dz, &mut tmp).map_err(io)?;
            for i in 0..ne {
                col[i] += tmp[i];
            }
            if req.order == 2 {
                // x'' = −J⁻¹ D²F[w, w], w = (dz, 1); e'' = E_z x'' + D²e[w, w].
                let (f2, e2) = e.second(p.fns, z, p.state, &dz, &t).map_err(io)?;
                let mut dz2: Vec<f64> = f2.iter().map(|x| -x).collect();
                solve(&mut dz2, false)?;
                e.jvp_z(p.fns, z, p.state, &dz2, &mut tmp).map_err(io)?;
                for i in 0..ne {
                    col[i] = tmp[i] + e2[i];
                }
            }
            for i in 0..ne {
                out[i * np + jcol] = col[i];
            }
        }
    } else {
        // Row i: λ = J⁻ᵀ E_zᵀ e_i; de_i = E_θᵀ e_i − λᵀ ∂_θF.
        let mut u = vec![0.0; ne];
        let mut row = vec![0.0; np];
        let mut tmp = vec![0.0; np];
        let mut lam = vec![0.0; n];
        for irow in 0..ne {
            u.iter_mut().for_each(|x| *x = 0.0);
            u[irow] = 1.0;
            e.vjp_z(p.fns, z, p.state, &u, &mut lam).map_err(io)?;
            let mut l = lam.clone();
            solve(&mut l, true)?;
            e.vjp_p(p.fns, z, p.state, &u, &mut row).map_err(io)?;
            p.fns
                .param_vjp(e.param, z, p.state, &l, &mut tmp)
                .map_err(io)?;
            for jcol in 0..np {
                out[irow * np + jcol] = row[jcol] - tmp[jcol];
            }
        }
    }
    if let Some(k) = out.iter().position(|v| !v.is_finite()) {
        return Err(fail(
            Code::NumericalFault,
            format!("the derivative has a non-finite entry ({})", k + 1),
            req.span,
            "not finite",
            "the expression or the conditions are not differentiable at the solution",
        ));
    }
    let shape: Vec<usize> = e.shape.iter().chain(&e.param_shape).copied().collect();
    Ok(Derivative {
        value: out,
        shape,
        mode: if forward { "forward" } else { "reverse" },
        linear: linear_name,
        condition,
    })
}

enum Solver {
    Factored(Factor),
    Bordered(Dense, Vec<Vec<f64>>),
    MinNorm(Dense),
}

fn transpose_dense(j: &Dense) -> Dense {
    let mut t = Dense::zeros(j.cols, j.rows);
    for r in 0..j.rows {
        for c in 0..j.cols {
            t.set(c, r, j.get(r, c));
        }
    }
    t
}

fn krylov_choice(p: &Problem, l: LinearSolver) -> LinearSolver {
    match l {
        LinearSolver::Cg | LinearSolver::Minres | LinearSolver::Gmres | LinearSolver::Bicgstab => l,
        _ => match p.sys.kind {
            SystemKind::Stationarity => LinearSolver::Cg,
            SystemKind::Saddle => LinearSolver::Minres,
            _ => LinearSolver::Gmres,
        },
    }
}

fn run_krylov(
    kind: LinearSolver,
    op: &mut linalg::Op,
    b: &[f64],
    x: &mut [f64],
) -> Result<linalg::KrylovInfo, String> {
    let n = b.len();
    let iters = 20 * n.max(10);
    match kind {
        LinearSolver::Cg => linalg::cg(op, b, x, 1e-12, iters),
        LinearSolver::Minres => linalg::minres(op, b, x, 1e-12, iters),
        LinearSolver::Bicgstab => linalg::bicgstab(op, b, x, 1e-12, iters),
        _ => linalg::gmres(op, b, x, 1e-12, iters, 60),
    }
}

/// E0603 for an inequality that is active with a zero multiplier.
fn check_complementarity(p: &Problem, z: &[f64], span: Span) -> Result<(), Diagnostic> {
    if !p.sys.has_inequalities() {
        return Ok(());
    }
    let mut g = vec![0.0; p.fns.n_cons()];
    p.fns
        .constraints(z, p.state, &mut g)
        .map_err(|m| fail(Code::NumericalFault, m, span, "here", ""))?;
    let mu_scale = p
        .sys
        .constraints
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ConstraintKind::Le)
        .flat_map(|(k, _)| {
            let (off, len) = p.multiplier_slot(k);
            z[off..off + len].to_vec()
        })
        .fold(0.0f64, |a, x| a.max(x.abs()))
        .max(1.0);
    for (k, c) in p.sys.constraints.iter().enumerate() {
        if c.kind != ConstraintKind::Le {
            continue;
        }
        let (off, len) = p.multiplier_slot(k);
        let (goff, _) = p.fns.cons_layout[k];
        for i in 0..len {
            let mu = z[off + i];
            let gi = g[goff + i];
            if mu.abs() <= 1e-5 * mu_scale && gi.abs() <= 1e-5 {
                let entry = if len > 1 {
                    format!(" (entry {})", i + 1)
                } else {
                    String::new()
                };
                return Err(Diagnostic::error(
                    Code::WeaklyActive,
                    format!("constraint `{}`{entry} is weakly active: g = {gi:.1e} and its multiplier is {mu:.1e}", c.name),
                    )
                .at(span, "the derivative does not exist here")
                .also(c.span, "this constraint")
                .note("without strict complementarity the solution map has a kink at these parameter values")
                .help("move the parameters off the kink, or differentiate one side (treat the constraint as always active or always inactive)"));
            }
        }
    }
    Ok(())
}

/// E0602 with the unknowns the null space involves, and the gauge fix when it fits.
fn singular(
    p: &Problem,
    j: &Dense,
    tiny: usize,
    req: &DeriveRequest,
    has_gauge: bool,
) -> Diagnostic {
    let mut involved: Vec<String> = Vec::new();
    if let Some(ns) = linalg::null_space(j, 1e-10) {
        let mut weight = vec![0.0; p.n()];
        for v in &ns {
            for (w, x) in weight.iter_mut().zip(v) {
                *w += x * x;
            }
        }
        let mut idx: Vec<usize> = (0..p.n()).collect();
        idx.sort_by(|a, b| {
            weight[*b]
                .partial_cmp(&weight[*a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        involved = idx
            .into_iter()
            .take(6)
            .filter(|&i| weight[i] > 1e-6)
            .map(|i| unknown_name(p, i))
            .collect();
    }
    let looks_rigid = !has_gauge && looks_like_point_cloud(p);
    let help = if looks_rigid {
        "the unknowns look like a point cloud: translations and rotations leave the energy unchanged; solve with `newton(gauge = rigid)` and observe rigid-invariant quantities (pair distances)"
    } else {
        "a null space comes from a symmetry, an unused var or a redundant condition; fix the gauge, or use `derive ... using newton(gauge = minnorm)` for the minimum-norm derivative"
    };
    let mut d = Diagnostic::error(
        Code::SingularJacobian,
        format!("∂F/∂z is singular at the solution: a null space of dimension {tiny}"),
    )
    .at(
        req.span,
        format!("d({})/d({}) is not unique", req.of_text, req.wrt_name),
    )
    .help(help);
    if !involved.is_empty() {
        d = d.note(format!("the null space involves {}", involved.join(", ")));
    }
    d
}

fn looks_like_point_cloud(p: &Problem) -> bool {
    let vars: Vec<&crate::system::Unknown> = p
        .sys
        .unknowns
        .iter()
        .filter(|u| matches!(u.kind, UnknownKind::Var(_)))
        .collect();
    vars.len() == 1 && matches!(vars[0].shape.as_slice(), [_, 2] | [_, 3])
}
