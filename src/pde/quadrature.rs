//! Integration points on a box: tensor Gauss–Legendre rules (d ≤ 3) and Monte Carlo samples.

/// Gauss–Legendre nodes and weights on [0, 1] with `n` points (Newton on Pₙ).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        // Initial guess: Chebyshev-like approximation of the i-th root.
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * z * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { z } else { p1 };
            let pm = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (z * pn - pm) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        let wi = 2.0 / ((1.0 - z * z) * dp * dp);
        // Map [−1, 1] to [0, 1].
        x[i] = 0.5 * (1.0 - z);
        x[n - 1 - i] = 0.5 * (1.0 + z);
        w[i] = 0.5 * wi;
        w[n - 1 - i] = 0.5 * wi;
    }
    (x, w)
}

/// A tensor Gauss rule with `per_dim` points per axis on the box [lo, hi]: points (row-major,
/// `n × d`) and weights.
pub fn tensor_gauss(per_dim: usize, lo: &[f64], hi: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let d = lo.len();
    let (x1, w1) = gauss_legendre(per_dim);
    let total = per_dim.pow(d as u32);
    let mut pts = Vec::with_capacity(total * d);
    let mut wts = Vec::with_capacity(total);
    for k in 0..total {
        let mut rest = k;
        let mut w = 1.0;
        for j in 0..d {
            let i = rest % per_dim;
            rest /= per_dim;
            pts.push(lo[j] + (hi[j] - lo[j]) * x1[i]);
            w *= w1[i] * (hi[j] - lo[j]);
        }
        wts.push(w);
    }
    (pts, wts)
}

/// SplitMix64: a small deterministic generator for samples and initial weights.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` uniform samples on the box with equal weights volume / n.
pub fn monte_carlo(n: usize, lo: &[f64], hi: &[f64], rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let d = lo.len();
    let vol: f64 = lo.iter().zip(hi).map(|(a, b)| b - a).product();
    let mut pts = Vec::with_capacity(n * d);
    for _ in 0..n {
        for j in 0..d {
            pts.push(lo[j] + (hi[j] - lo[j]) * rng.unit());
        }
    }
    (pts, vec![vol / n as f64; n])
}

/// A rule on the boundary of the box [lo, hi]: on each of its 2d faces, `face_rule` over the
/// face's own (d − 1)-box, with weights that sum to the face's area; for d = 1 the two end
/// points with weight 1.
pub fn faces(
    lo: &[f64],
    hi: &[f64],
    mut face_rule: impl FnMut(&[f64], &[f64]) -> (Vec<f64>, Vec<f64>),
) -> (Vec<f64>, Vec<f64>) {
    let d = lo.len();
    let (mut pts, mut wts) = (Vec::new(), Vec::new());
    for k in 0..d {
        let (sub_lo, sub_hi): (Vec<f64>, Vec<f64>) =
            (0..d).filter(|&j| j != k).map(|j| (lo[j], hi[j])).unzip();
        for side in [lo[k], hi[k]] {
            let (p, w) = if d == 1 {
                (Vec::new(), vec![1.0])
            } else {
                face_rule(&sub_lo, &sub_hi)
            };
            for (n, wn) in w.iter().enumerate() {
                let mut rest = p[n * (d - 1)..(n + 1) * (d - 1)].iter();
                for j in 0..d {
                    pts.push(if j == k {
                        side
                    } else {
                        rest.next().copied().unwrap_or(side)
                    });
                }
                wts.push(*wn);
            }
        }
    }
    (pts, wts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_rules_integrate_polynomials_exactly() {
        // n points integrate degree 2n − 1 exactly: ∫₀¹ x^k = 1/(k + 1).
        for n in [1, 2, 5, 12] {
            let (x, w) = gauss_legendre(n);
            for k in 0..2 * n {
                let q: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
                assert!((q - 1.0 / (k + 1) as f64).abs() < 1e-13, "n {n} k {k}: {q}");
            }
        }
        // A tensor rule on a box: ∫ over [0,2]×[1,3] of x·y = 2 · 4 = 8.
        let (p, w) = tensor_gauss(3, &[0.0, 1.0], &[2.0, 3.0]);
        let q: f64 = w
            .iter()
            .enumerate()
            .map(|(k, w)| w * p[2 * k] * p[2 * k + 1])
            .sum();
        assert!((q - 8.0).abs() < 1e-12, "{q}");
    }

    #[test]
    fn face_rules_integrate_over_the_boundary() {
        // ∫ over the boundary of [0,2]×[1,3] of x·y: faces x = 0 (0), x = 2 (∫₁³ 2y = 8),
        // y = 1 (∫₀² x = 2), y = 3 (∫₀² 3x = 6): 16; the perimeter is 8.
        let (p, w) = faces(&[0.0, 1.0], &[2.0, 3.0], |lo, hi| tensor_gauss(3, lo, hi));
        let q: f64 = w
            .iter()
            .enumerate()
            .map(|(k, w)| w * p[2 * k] * p[2 * k + 1])
            .sum();
        assert!((q - 16.0).abs() < 1e-12, "{q}");
        assert!((w.iter().sum::<f64>() - 8.0).abs() < 1e-12);
        // In one dimension: the two end points.
        let (p, w) = faces(&[0.5], &[2.0], |_, _| unreachable!());
        assert_eq!((p, w), (vec![0.5, 2.0], vec![1.0, 1.0]));
    }
}
