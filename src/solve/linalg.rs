//! Linear algebra for the solvers: dense factorizations (faer) and matrix-free Krylov
//! methods on Jacobian products.

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Side};

/// A dense row-major square or rectangular matrix, built from Jacobian products.
#[derive(Clone, Debug)]
pub struct Dense {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Dense {
    pub fn zeros(rows: usize, cols: usize) -> Dense {
        Dense {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.cols + j] = v;
    }

    pub fn to_faer(&self) -> Mat<f64> {
        Mat::from_fn(self.rows, self.cols, |i, j| self.get(i, j))
    }

    /// Columns from a JVP: column j is J·eⱼ.
    pub fn from_columns(
        rows: usize,
        cols: usize,
        mut col: impl FnMut(usize, &mut [f64]) -> Result<(), String>,
    ) -> Result<Dense, String> {
        let mut d = Dense::zeros(rows, cols);
        let mut buf = vec![0.0; rows];
        for j in 0..cols {
            col(j, &mut buf)?;
            for i in 0..rows {
                d.set(i, j, buf[i]);
            }
        }
        Ok(d)
    }

    /// Rows from a VJP: row i is eᵢᵀ·J.
    pub fn from_rows(
        rows: usize,
        cols: usize,
        mut row: impl FnMut(usize, &mut [f64]) -> Result<(), String>,
    ) -> Result<Dense, String> {
        let mut d = Dense::zeros(rows, cols);
        for i in 0..rows {
            row(i, &mut d.data[i * cols..(i + 1) * cols])?;
        }
        Ok(d)
    }

    pub fn mul_vec(&self, x: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate().take(self.rows) {
            *o = (0..self.cols).map(|j| self.get(i, j) * x[j]).sum();
        }
    }

    /// max |aᵢⱼ − aⱼᵢ| / max |aᵢⱼ|: how far from symmetric.
    pub fn asymmetry(&self) -> f64 {
        let scale = self
            .data
            .iter()
            .fold(0.0f64, |a, x| a.max(x.abs()))
            .max(f64::MIN_POSITIVE);
        let mut worst = 0.0f64;
        for i in 0..self.rows {
            for j in 0..i {
                worst = worst.max((self.get(i, j) - self.get(j, i)).abs());
            }
        }
        worst / scale
    }

    /// (A + Aᵀ)/2, to remove rounding asymmetry before a symmetric factorization.
    pub fn symmetrize(&mut self) {
        for i in 0..self.rows {
            for j in 0..i {
                let m = 0.5 * (self.get(i, j) + self.get(j, i));
                self.set(i, j, m);
                self.set(j, i, m);
            }
        }
    }
}

/// A factorization that solves A x = b (and Aᵀ x = b).
pub enum Factor {
    Cholesky(faer::linalg::solvers::Llt<f64>),
    Lu(faer::linalg::solvers::PartialPivLu<f64>),
    /// Bunch–Kaufman LDLᵀ for symmetric indefinite (saddle) systems.
    Ldlt(faer::linalg::solvers::Lblt<f64>),
}

/// Which dense factorization to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseKind {
    Cholesky,
    Lu,
    Ldlt,
}

impl DenseKind {
    pub fn name(self) -> &'static str {
        match self {
            DenseKind::Cholesky => "cholesky",
            DenseKind::Lu => "lu",
            DenseKind::Ldlt => "ldlt",
        }
    }
}

impl Factor {
    /// Factors `a`; Cholesky fails (returns None) when `a` is not positive definite.
    pub fn new(a: &Dense, kind: DenseKind) -> Option<Factor> {
        let m = a.to_faer();
        match kind {
            DenseKind::Cholesky => m.llt(Side::Lower).ok().map(Factor::Cholesky),
            DenseKind::Lu => Some(Factor::Lu(m.partial_piv_lu())),
            DenseKind::Ldlt => Some(Factor::Ldlt(m.lblt(Side::Lower))),
        }
    }

    pub fn kind(&self) -> DenseKind {
        match self {
            Factor::Cholesky(_) => DenseKind::Cholesky,
            Factor::Lu(_) => DenseKind::Lu,
            Factor::Ldlt(_) => DenseKind::Ldlt,
        }
    }

    /// Solves A x = b in place.
    pub fn solve(&self, b: &mut [f64]) {
        let mut rhs = Mat::from_fn(b.len(), 1, |i, _| b[i]);
        match self {
            Factor::Cholesky(f) => f.solve_in_place(rhs.as_mut()),
            Factor::Lu(f) => f.solve_in_place(rhs.as_mut()),
            Factor::Ldlt(f) => f.solve_in_place(rhs.as_mut()),
        }
        for (i, x) in b.iter_mut().enumerate() {
            *x = rhs[(i, 0)];
        }
    }

    /// Solves Aᵀ x = b in place.
    pub fn solve_transpose(&self, b: &mut [f64]) {
        let mut rhs = Mat::from_fn(b.len(), 1, |i, _| b[i]);
        match self {
            Factor::Cholesky(f) => f.solve_transpose_in_place(rhs.as_mut()),
            Factor::Lu(f) => f.solve_transpose_in_place(rhs.as_mut()),
            Factor::Ldlt(f) => f.solve_transpose_in_place(rhs.as_mut()),
        }
        for (i, x) in b.iter_mut().enumerate() {
            *x = rhs[(i, 0)];
        }
    }

    pub fn inverse(&self) -> Mat<f64> {
        match self {
            Factor::Cholesky(f) => f.inverse(),
            Factor::Lu(f) => f.inverse(),
            Factor::Ldlt(f) => f.inverse(),
        }
    }
}

/// Singular values, largest first (None when the SVD does not converge).
pub fn singular_values(a: &Dense) -> Option<Vec<f64>> {
    let mut s = a.to_faer().singular_values().ok()?;
    s.sort_by(|x, y| y.partial_cmp(x).unwrap_or(std::cmp::Ordering::Equal));
    Some(s)
}

/// Right singular vectors of the smallest singular values below `tol·σ_max` (a null space
/// basis), as columns.
pub fn null_space(a: &Dense, rel_tol: f64) -> Option<Vec<Vec<f64>>> {
    let svd = a.to_faer().svd().ok()?;
    let s = svd.S();
    let v = svd.V();
    let n = a.cols;
    let k = s.dim();
    let smax = (0..k).map(|i| s[i]).fold(0.0f64, f64::max);
    let mut out = Vec::new();
    for j in 0..n {
        let sj = if j < k { s[j] } else { 0.0 };
        if sj <= rel_tol * smax {
            out.push((0..n).map(|i| v[(i, j)]).collect());
        }
    }
    Some(out)
}

/// 2-norm condition number from singular values (∞ when singular).
pub fn condition(sv: &[f64]) -> f64 {
    match (sv.first(), sv.last()) {
        (Some(&a), Some(&b)) if b > 0.0 => a / b,
        _ => f64::INFINITY,
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm2(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

pub fn norm_inf(a: &[f64]) -> f64 {
    // `f64::max` drops NaN; a norm must not, or a NaN residual would look like zero.
    a.iter().fold(0.0f64, |m, x| {
        if m.is_nan() || x.is_nan() {
            f64::NAN
        } else {
            m.max(x.abs())
        }
    })
}

/// y ← y + a·x
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// A matrix-free linear operator.
pub type Op<'a> = dyn FnMut(&[f64], &mut [f64]) -> Result<(), String> + 'a;

/// Result of a Krylov solve.
#[derive(Clone, Copy, Debug)]
pub struct KrylovInfo {
    pub iterations: usize,
    pub residual: f64,
    pub converged: bool,
}

/// r = b − A x.
fn residual(a: &mut Op, b: &[f64], x: &[f64], r: &mut [f64]) -> Result<(), String> {
    a(x, r)?;
    for (ri, bi) in r.iter_mut().zip(b) {
        *ri = bi - *ri;
    }
    Ok(())
}

/// Conjugate gradients for symmetric positive definite A.
pub fn cg(
    a: &mut Op,
    b: &[f64],
    x: &mut [f64],
    tol: f64,
    max_iter: usize,
) -> Result<KrylovInfo, String> {
    let n = b.len();
    let mut r = vec![0.0; n];
    residual(a, b, x, &mut r)?;
    let bnorm = norm2(b).max(f64::MIN_POSITIVE);
    let mut p = r.clone();
    let mut ap = vec![0.0; n];
    let mut rr = dot(&r, &r);
    for it in 0..max_iter {
        if rr.sqrt() <= tol * bnorm {
            return Ok(KrylovInfo {
                iterations: it,
                residual: rr.sqrt() / bnorm,
                converged: true,
            });
        }
        a(&p, &mut ap)?;
        let pap = dot(&p, &ap);
        if pap <= 0.0 {
            // Not positive definite along p.
            return Ok(KrylovInfo {
                iterations: it,
                residual: rr.sqrt() / bnorm,
                converged: false,
            });
        }
        let alpha = rr / pap;
        axpy(alpha, &p, x);
        axpy(-alpha, &ap, &mut r);
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        for i in 0..n {
            p[i] = r[i] + beta * p[i];
        }
        rr = rr_new;
    }
    Ok(KrylovInfo {
        iterations: max_iter,
        residual: rr.sqrt() / bnorm,
        converged: rr.sqrt() <= tol * bnorm,
    })
}

/// MINRES for symmetric (possibly indefinite) A (Paige–Saunders).
pub fn minres(
    a: &mut Op,
    b: &[f64],
    x: &mut [f64],
    tol: f64,
    max_iter: usize,
) -> Result<KrylovInfo, String> {
    let n = b.len();
    let mut r1 = vec![0.0; n];
    residual(a, b, x, &mut r1)?;
    let bnorm = norm2(b).max(f64::MIN_POSITIVE);
    let mut beta1 = norm2(&r1);
    if beta1 <= tol * bnorm {
        return Ok(KrylovInfo {
            iterations: 0,
            residual: beta1 / bnorm,
            converged: true,
        });
    }
    let mut v_old = vec![0.0; n];
    let mut v: Vec<f64> = r1.iter().map(|x| x / beta1).collect();
    let mut w_old = vec![0.0; n];
    let mut w = vec![0.0; n];
    let (mut c_old, mut s_old, mut c, mut s) = (1.0, 0.0, 1.0, 0.0);
    let mut eta = beta1;
    let mut beta = beta1;
    let mut av = vec![0.0; n];
    let mut resid = beta1;
    for it in 0..max_iter {
        a(&v, &mut av)?;
        let alpha = dot(&v, &av);
        for i in 0..n {
            av[i] -= alpha * v[i] + beta * v_old[i];
        }
        let beta_new = norm2(&av);
        // QR of the tridiagonal via Givens rotations.
        let delta = c * alpha - c_old * s * beta;
        let rho2 = s * alpha + c_old * c * beta;
        let rho3 = s_old * beta;
        let rho1 = (delta * delta + beta_new * beta_new).sqrt();
        if rho1 == 0.0 {
            return Ok(KrylovInfo {
                iterations: it,
                residual: resid / bnorm,
                converged: false,
            });
        }
        let c_new = delta / rho1;
        let s_new = beta_new / rho1;
        let w_new: Vec<f64> = (0..n)
            .map(|i| (v[i] - rho3 * w_old[i] - rho2 * w[i]) / rho1)
            .collect();
        axpy(c_new * eta, &w_new, x);
        eta *= -s_new;
        resid = eta.abs();
        w_old = std::mem::replace(&mut w, w_new);
        c_old = c;
        s_old = s;
        c = c_new;
        s = s_new;
        if resid <= tol * bnorm || beta_new == 0.0 {
            return Ok(KrylovInfo {
                iterations: it + 1,
                residual: resid / bnorm,
                converged: true,
            });
        }
        v_old = std::mem::replace(&mut v, av.iter().map(|x| x / beta_new).collect());
        beta = beta_new;
        beta1 = beta1.max(beta);
    }
    Ok(KrylovInfo {
        iterations: max_iter,
        residual: resid / bnorm,
        converged: false,
    })
}

/// Restarted GMRES(m) for general A.
pub fn gmres(
    a: &mut Op,
    b: &[f64],
    x: &mut [f64],
    tol: f64,
    max_iter: usize,
    restart: usize,
) -> Result<KrylovInfo, String> {
    let n = b.len();
    let bnorm = norm2(b).max(f64::MIN_POSITIVE);
    let m = restart.max(1).min(n.max(1));
    let mut total = 0;
    let mut r = vec![0.0; n];
    loop {
        residual(a, b, x, &mut r)?;
        let beta = norm2(&r);
        if beta <= tol * bnorm || total >= max_iter {
            return Ok(KrylovInfo {
                iterations: total,
                residual: beta / bnorm,
                converged: beta <= tol * bnorm,
            });
        }
        let mut vs: Vec<Vec<f64>> = vec![r.iter().map(|v| v / beta).collect()];
        let mut h = vec![vec![0.0; m]; m + 1];
        let mut cs = vec![0.0; m];
        let mut sn = vec![0.0; m];
        let mut g = vec![0.0; m + 1];
        g[0] = beta;
        let mut k_used = 0;
        let mut w = vec![0.0; n];
        for k in 0..m {
            a(&vs[k], &mut w)?;
            total += 1;
            for (j, vj) in vs.iter().enumerate() {
                h[j][k] = dot(&w, vj);
                axpy(-h[j][k], vj, &mut w);
            }
            h[k + 1][k] = norm2(&w);
            for j in 0..k {
                let t = cs[j] * h[j][k] + sn[j] * h[j + 1][k];
                h[j + 1][k] = -sn[j] * h[j][k] + cs[j] * h[j + 1][k];
                h[j][k] = t;
            }
            let d = (h[k][k] * h[k][k] + h[k + 1][k] * h[k + 1][k]).sqrt();
            if d == 0.0 {
                k_used = k;
                break;
            }
            cs[k] = h[k][k] / d;
            sn[k] = h[k + 1][k] / d;
            h[k][k] = d;
            h[k + 1][k] = 0.0;
            g[k + 1] = -sn[k] * g[k];
            g[k] *= cs[k];
            k_used = k + 1;
            let hk1 = norm2(&w);
            if g[k + 1].abs() <= tol * bnorm || total >= max_iter || hk1 == 0.0 {
                break;
            }
            vs.push(w.iter().map(|v| v / hk1).collect());
        }
        // Back substitution for y, then x += V y.
        let mut y = vec![0.0; k_used];
        for i in (0..k_used).rev() {
            let s: f64 = (i + 1..k_used).map(|j| h[i][j] * y[j]).sum();
            y[i] = if h[i][i] != 0.0 {
                (g[i] - s) / h[i][i]
            } else {
                0.0
            };
        }
        for (i, yi) in y.iter().enumerate() {
            axpy(*yi, &vs[i], x);
        }
        if k_used == 0 {
            return Ok(KrylovInfo {
                iterations: total,
                residual: beta / bnorm,
                converged: false,
            });
        }
    }
}

/// BiCGSTAB for general A.
pub fn bicgstab(
    a: &mut Op,
    b: &[f64],
    x: &mut [f64],
    tol: f64,
    max_iter: usize,
) -> Result<KrylovInfo, String> {
    let n = b.len();
    let bnorm = norm2(b).max(f64::MIN_POSITIVE);
    let mut r = vec![0.0; n];
    residual(a, b, x, &mut r)?;
    let r0 = r.clone();
    let (mut rho, mut alpha, mut omega) = (1.0, 1.0, 1.0);
    let mut v = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut s = vec![0.0; n];
    let mut t = vec![0.0; n];
    for it in 0..max_iter {
        let res = norm2(&r);
        if res <= tol * bnorm {
            return Ok(KrylovInfo {
                iterations: it,
                residual: res / bnorm,
                converged: true,
            });
        }
        let rho_new = dot(&r0, &r);
        if rho_new == 0.0 {
            return Ok(KrylovInfo {
                iterations: it,
                residual: res / bnorm,
                converged: false,
            });
        }
        let beta = (rho_new / rho) * (alpha / omega);
        rho = rho_new;
        for i in 0..n {
            p[i] = r[i] + beta * (p[i] - omega * v[i]);
        }
        a(&p, &mut v)?;
        let r0v = dot(&r0, &v);
        if r0v == 0.0 {
            return Ok(KrylovInfo {
                iterations: it,
                residual: res / bnorm,
                converged: false,
            });
        }
        alpha = rho / r0v;
        for i in 0..n {
            s[i] = r[i] - alpha * v[i];
        }
        if norm2(&s) <= tol * bnorm {
            axpy(alpha, &p, x);
            return Ok(KrylovInfo {
                iterations: it + 1,
                residual: norm2(&s) / bnorm,
                converged: true,
            });
        }
        a(&s, &mut t)?;
        let tt = dot(&t, &t);
        omega = if tt > 0.0 { dot(&t, &s) / tt } else { 0.0 };
        axpy(alpha, &p, x);
        axpy(omega, &s, x);
        for i in 0..n {
            r[i] = s[i] - omega * t[i];
        }
        if omega == 0.0 {
            return Ok(KrylovInfo {
                iterations: it + 1,
                residual: norm2(&r) / bnorm,
                converged: false,
            });
        }
    }
    let res = norm2(&r);
    Ok(KrylovInfo {
        iterations: max_iter,
        residual: res / bnorm,
        converged: res <= tol * bnorm,
    })
}

/// Least squares / minimum-norm solve through the SVD: x = A⁺ b.
pub fn pinv_solve(a: &Dense, b: &[f64], rel_tol: f64) -> Option<Vec<f64>> {
    let svd = a.to_faer().svd().ok()?;
    let (u, s, v) = (svd.U(), svd.S(), svd.V());
    let k = s.dim();
    let smax = (0..k).map(|i| s[i]).fold(0.0f64, f64::max);
    let mut x = vec![0.0; a.cols];
    for j in 0..k {
        if s[j] > rel_tol * smax {
            let coef: f64 = (0..a.rows).map(|i| u[(i, j)] * b[i]).sum::<f64>() / s[j];
            for (i, xi) in x.iter_mut().enumerate() {
                *xi += coef * v[(i, j)];
            }
        }
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Dense {
        let mut a = Dense::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                let v = 1.0 / (1.0 + (i as f64 - j as f64).abs());
                a.set(i, j, v + if i == j { n as f64 } else { 0.0 });
            }
        }
        a
    }

    fn check_solver(
        name: &str,
        a: &Dense,
        solve: impl Fn(&mut Op, &[f64], &mut [f64]) -> KrylovInfo,
    ) {
        let n = a.rows;
        let x_true: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
        let mut b = vec![0.0; n];
        a.mul_vec(&x_true, &mut b);
        let mut x = vec![0.0; n];
        let mut op = |v: &[f64], out: &mut [f64]| {
            a.mul_vec(v, out);
            Ok(())
        };
        let info = solve(&mut op, &b, &mut x);
        assert!(info.converged, "{name}: {info:?}");
        for i in 0..n {
            assert!(
                (x[i] - x_true[i]).abs() < 1e-8,
                "{name}: x[{i}] = {} vs {}",
                x[i],
                x_true[i]
            );
        }
    }

    #[test]
    fn krylov_solvers_recover_a_known_solution() {
        let a = spd(30);
        check_solver("cg", &a, |op, b, x| cg(op, b, x, 1e-12, 200).unwrap());
        check_solver("minres", &a, |op, b, x| {
            minres(op, b, x, 1e-12, 200).unwrap()
        });
        check_solver("gmres", &a, |op, b, x| {
            gmres(op, b, x, 1e-12, 200, 30).unwrap()
        });
        check_solver("bicgstab", &a, |op, b, x| {
            bicgstab(op, b, x, 1e-12, 200).unwrap()
        });
        // An indefinite symmetric matrix: MINRES and GMRES still apply.
        let mut ind = spd(20);
        for i in 0..10 {
            let v = ind.get(i, i);
            ind.set(i, i, -v);
        }
        check_solver("minres-indefinite", &ind, |op, b, x| {
            minres(op, b, x, 1e-12, 400).unwrap()
        });
        check_solver("gmres-indefinite", &ind, |op, b, x| {
            gmres(op, b, x, 1e-12, 400, 20).unwrap()
        });
    }

    #[test]
    fn dense_factorizations_solve_and_transpose_solve() {
        let mut a = spd(6);
        a.set(0, 5, 0.3); // break symmetry for LU
        let x_true = vec![1.0, -2.0, 0.5, 3.0, 0.0, -1.0];
        let mut b = vec![0.0; 6];
        a.mul_vec(&x_true, &mut b);
        let f = Factor::new(&a, DenseKind::Lu).unwrap();
        let mut x = b.clone();
        f.solve(&mut x);
        for i in 0..6 {
            assert!((x[i] - x_true[i]).abs() < 1e-12);
        }
        // Aᵀ y = c with c = Aᵀ x_true
        let mut c = vec![0.0; 6];
        for j in 0..6 {
            c[j] = (0..6).map(|i| a.get(i, j) * x_true[i]).sum();
        }
        f.solve_transpose(&mut c);
        for i in 0..6 {
            assert!((c[i] - x_true[i]).abs() < 1e-12);
        }
        let s = spd(6);
        assert!(Factor::new(&s, DenseKind::Cholesky).is_some());
        let mut neg = s.clone();
        neg.set(0, 0, -10.0);
        assert!(Factor::new(&neg, DenseKind::Cholesky).is_none());
    }

    #[test]
    fn null_space_and_min_norm() {
        // Rank-1 2×2 matrix [[1, 1], [1, 1]]: null space span (1, -1)/√2.
        let mut a = Dense::zeros(2, 2);
        for i in 0..2 {
            for j in 0..2 {
                a.set(i, j, 1.0);
            }
        }
        let ns = null_space(&a, 1e-10).unwrap();
        assert_eq!(ns.len(), 1);
        assert!((ns[0][0] + ns[0][1]).abs() < 1e-12);
        let x = pinv_solve(&a, &[2.0, 2.0], 1e-10).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12);
    }
}
