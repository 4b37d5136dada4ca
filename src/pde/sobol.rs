//! Scrambled Sobol points: a randomized quasi-Monte Carlo rule.
//!
//! Each coordinate j is a digital sequence with direction numbers v_{j,1..32} built from a
//! primitive polynomial over GF(2) of degree s and s odd initial numbers m_{j,i} < 2^i
//! (Bratley & Fox, ACM TOMS 14 (1988), the recurrence of Joe & Kuo, SIAM J. Sci. Comput. 30
//! (2008)). Coordinates 2–32 take Joe and Kuo's initial numbers (file new-joe-kuo-6.21201,
//! chosen for good two-dimensional projections); above 32 the next primitive polynomials
//! (enumerated here, in Joe and Kuo's order) get fixed pseudo-random odd initial numbers,
//! which still gives a valid Sobol sequence.
//!
//! Points are randomized by Matoušek's affine scrambling: a random lower-triangular binary
//! matrix applied to every direction number and a random digital shift, then a uniform
//! jitter below the last digit. Every point is then uniform on the box, so the rule is
//! unbiased, and for smooth integrands its error falls much faster than Monte Carlo's.

use super::quadrature::Rng;

/// Binary digits of the sequence.
const BITS: u32 = 32;

/// Joe and Kuo's degree s, polynomial a and initial numbers m for coordinates 2–32.
const JOE_KUO: [(u32, u32, &[u32]); 31] = [
    (1, 0, &[1]),
    (2, 1, &[1, 3]),
    (3, 1, &[1, 3, 1]),
    (3, 2, &[1, 1, 1]),
    (4, 1, &[1, 1, 3, 3]),
    (4, 4, &[1, 3, 5, 13]),
    (5, 2, &[1, 1, 5, 5, 17]),
    (5, 4, &[1, 1, 5, 5, 5]),
    (5, 7, &[1, 1, 7, 11, 19]),
    (5, 11, &[1, 1, 5, 1, 1]),
    (5, 13, &[1, 1, 1, 3, 11]),
    (5, 14, &[1, 3, 5, 5, 31]),
    (6, 1, &[1, 3, 3, 9, 7, 49]),
    (6, 13, &[1, 1, 1, 15, 21, 21]),
    (6, 16, &[1, 3, 1, 13, 27, 49]),
    (6, 19, &[1, 1, 1, 15, 7, 5]),
    (6, 22, &[1, 3, 1, 15, 13, 25]),
    (6, 25, &[1, 1, 5, 5, 19, 61]),
    (7, 1, &[1, 3, 7, 11, 23, 15, 103]),
    (7, 4, &[1, 3, 7, 13, 13, 15, 69]),
    (7, 7, &[1, 1, 3, 13, 7, 35, 63]),
    (7, 8, &[1, 3, 5, 9, 1, 25, 53]),
    (7, 14, &[1, 3, 1, 13, 9, 35, 107]),
    (7, 19, &[1, 3, 1, 5, 27, 61, 31]),
    (7, 21, &[1, 1, 5, 11, 19, 41, 61]),
    (7, 28, &[1, 3, 5, 3, 3, 13, 69]),
    (7, 31, &[1, 1, 7, 13, 1, 19, 1]),
    (7, 32, &[1, 3, 7, 5, 13, 19, 59]),
    (7, 37, &[1, 1, 3, 9, 25, 29, 41]),
    (7, 41, &[1, 3, 5, 13, 23, 1, 55]),
    (7, 42, &[1, 3, 7, 3, 13, 59, 17]),
];

/// (x · y) mod p over GF(2), polynomials as bit masks, `p` of degree `s`.
fn mulmod(mut x: u64, mut y: u64, p: u64, s: u32) -> u64 {
    let mut r = 0;
    while y != 0 {
        if y & 1 == 1 {
            r ^= x;
        }
        y >>= 1;
        x <<= 1;
        if x >> s & 1 == 1 {
            x ^= p;
        }
    }
    r
}

/// x^e mod p.
fn powmod(e: u64, p: u64, s: u32) -> u64 {
    // x itself, reduced: x ≡ 1 modulo x + 1.
    let mut base = if s == 1 { 1 } else { 2 };
    let (mut result, mut e) = (1u64, e);
    while e > 0 {
        if e & 1 == 1 {
            result = mulmod(result, base, p, s);
        }
        base = mulmod(base, base, p, s);
        e >>= 1;
    }
    result
}

/// Is x^s + a_1 x^{s−1} + … + a_{s−1} x + 1 (the a_i the bits of `a`, most significant
/// first) primitive: does x have order exactly 2^s − 1 modulo it?
pub fn is_primitive(s: u32, a: u32) -> bool {
    let p = (1u64 << s) | ((a as u64) << 1) | 1;
    let order = (1u64 << s) - 1;
    if powmod(order, p, s) != 1 {
        return false;
    }
    let mut n = order;
    let mut q = 2;
    while q * q <= n {
        if n % q == 0 {
            if powmod(order / q, p, s) == 1 {
                return false;
            }
            while n % q == 0 {
                n /= q;
            }
        }
        q += 1;
    }
    n == 1 || powmod(order / n, p, s) != 1
}

/// The (s, a) of coordinates 2, 3, …: primitive polynomials by degree, then by a.
fn polynomials(count: usize) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(count);
    let mut s = 1;
    while out.len() < count && s < 31 {
        for a in 0..1u32 << (s - 1) {
            if out.len() < count && is_primitive(s, a) {
                out.push((s, a));
            }
        }
        s += 1;
    }
    out
}

/// Direction numbers of `d` coordinates, scaled by 2^32 (digit 1 the top bit).
pub fn direction_numbers(d: usize) -> Vec<[u32; BITS as usize]> {
    let mut out = Vec::with_capacity(d);
    let mut first = [0u32; BITS as usize];
    for (i, v) in first.iter_mut().enumerate() {
        *v = 1 << (BITS - 1 - i as u32);
    }
    out.push(first);
    let polys = polynomials(d.saturating_sub(1));
    // Fixed initial numbers above Joe and Kuo's table.
    let mut rng = Rng(0x5eed_50b0_1000_0001);
    for (j, &(s, a)) in polys.iter().enumerate() {
        let m: Vec<u32> = match JOE_KUO.get(j) {
            Some(&(_, _, m)) => m.to_vec(),
            None => (1..=s)
                .map(|i| (rng.next_u64() as u32 % (1 << i)) | 1)
                .collect(),
        };
        let s = s as usize;
        let mut v = [0u32; BITS as usize];
        for i in 0..BITS as usize {
            v[i] = if i < s {
                m[i] << (BITS as usize - 1 - i)
            } else {
                let mut x = v[i - s] ^ (v[i - s] >> s);
                for k in 1..s {
                    if (a >> (s - 1 - k)) & 1 == 1 {
                        x ^= v[i - k];
                    }
                }
                x
            };
        }
        out.push(v);
    }
    out
}

/// The first `n` points of the (unscrambled) Sobol sequence in [0, 1)^d, row-major.
#[cfg(test)]
fn sobol_points(n: usize, d: usize) -> Vec<f64> {
    let v = direction_numbers(d);
    digital_net(n, &v, &vec![0; d], |_| 0.0)
}

/// Points X_k = X_{k−1} ⊕ v_{c(k−1)} in Gray-code order, shifted by `shift`, plus `jitter`
/// below the last digit.
fn digital_net(
    n: usize,
    v: &[[u32; BITS as usize]],
    shift: &[u32],
    mut jitter: impl FnMut(usize) -> f64,
) -> Vec<f64> {
    let d = v.len();
    let scale = 1.0 / (1u64 << BITS) as f64;
    let mut x = vec![0u32; d];
    let mut out = Vec::with_capacity(n * d);
    for k in 0..n {
        if k > 0 {
            let c = (k - 1).trailing_ones() as usize;
            for j in 0..d {
                x[j] ^= v[j][c.min(BITS as usize - 1)];
            }
        }
        for j in 0..d {
            out.push(((x[j] ^ shift[j]) as f64 + jitter(j)) * scale);
        }
    }
    out
}

/// `n` scrambled Sobol points on the box [lo, hi] with equal weights volume / n.
pub fn scrambled_sobol(n: usize, lo: &[f64], hi: &[f64], rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let d = lo.len();
    let mut v = direction_numbers(d);
    let mut shift = vec![0u32; d];
    for j in 0..d {
        // Rows of a random lower-triangular matrix with unit diagonal: digit r of a
        // scrambled number is the parity of (row r & the number's digits 1..=r).
        let rows: Vec<u32> = (0..BITS)
            .map(|r| {
                let top = 1u32 << (BITS - 1 - r); // digit r
                let above = !((top - 1) | top); // digits before r
                (rng.next_u64() as u32 & above) | top
            })
            .collect();
        for num in v[j].iter_mut() {
            let mut y = 0;
            for (r, row) in rows.iter().enumerate() {
                y |= ((row & *num).count_ones() & 1) << (BITS - 1 - r as u32);
            }
            *num = y;
        }
        shift[j] = rng.next_u64() as u32;
    }
    let unit = digital_net(n, &v, &shift, |_| rng.unit());
    let mut pts = unit;
    for (k, x) in pts.iter_mut().enumerate() {
        let j = k % d;
        *x = lo[j] + (hi[j] - lo[j]) * *x;
    }
    let vol: f64 = lo.iter().zip(hi).map(|(a, b)| b - a).product();
    (pts, vec![vol / n as f64; n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_points_are_the_published_ones() {
        // Bratley–Fox / Joe–Kuo: the first points of the 3-D sequence.
        let want = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.75, 0.25, 0.25],
            [0.25, 0.75, 0.75],
            [0.375, 0.375, 0.625],
            [0.875, 0.875, 0.125],
            [0.625, 0.125, 0.875],
            [0.125, 0.625, 0.375],
            [0.1875, 0.3125, 0.9375],
            [0.6875, 0.8125, 0.4375],
        ];
        let p = sobol_points(10, 3);
        for (k, w) in want.iter().enumerate() {
            assert_eq!(&p[3 * k..3 * k + 3], w, "point {k}");
        }
    }

    #[test]
    fn the_polynomial_order_is_joe_and_kuos() {
        // The enumeration of primitive polynomials reproduces the table's (s, a) column,
        // and the number of primitive polynomials of degree s is φ(2^s − 1)/s.
        let p = polynomials(31 + 48 + 16);
        for (j, &(s, a, _)) in JOE_KUO.iter().enumerate() {
            assert_eq!(p[j], (s, a), "coordinate {}", j + 2);
        }
        let count = |s: u32| p.iter().filter(|q| q.0 == s).count();
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 7, 8].map(count),
            [1, 1, 2, 2, 6, 6, 18, 16]
        );
    }

    #[test]
    fn every_power_of_two_block_is_stratified() {
        // The first 2^m points of each coordinate hit each interval [i/2^m, (i+1)/2^m)
        // once, for every coordinate (unscrambled, and scrambled).
        let d = 40;
        let n = 256;
        let plain = sobol_points(n, d);
        let (scr, _) = scrambled_sobol(n, &vec![0.0; d], &vec![1.0; d], &mut Rng(9));
        for pts in [plain, scr] {
            for j in 0..d {
                let mut seen = vec![false; n];
                for k in 0..n {
                    let cell = (pts[k * d + j] * n as f64) as usize;
                    assert!(!seen[cell], "coordinate {j}: cell {cell} twice");
                    seen[cell] = true;
                }
            }
        }
    }

    #[test]
    fn scrambled_sobol_integrates_far_better_than_monte_carlo() {
        // ∫_{[0,1]^10} Σ cos(π xᵢ) + Π (1 + (xᵢ − ½)/4) = 0 + 1; root-mean-square error
        // over 20 randomizations with 1024 points.
        let d = 10;
        let f = |x: &[f64]| -> f64 {
            x.iter()
                .map(|t| (std::f64::consts::PI * t).cos())
                .sum::<f64>()
                + x.iter().map(|t| 1.0 + (t - 0.5) / 4.0).product::<f64>()
        };
        let rms = |qmc: bool| {
            let mut rng = Rng(3);
            let mut s = 0.0;
            for _ in 0..20 {
                let (p, w) = if qmc {
                    scrambled_sobol(1024, &[0.0; 10], &[1.0; 10], &mut rng)
                } else {
                    super::super::quadrature::monte_carlo(1024, &[0.0; 10], &[1.0; 10], &mut rng)
                };
                let q: f64 = w
                    .iter()
                    .enumerate()
                    .map(|(k, w)| w * f(&p[k * d..(k + 1) * d]))
                    .sum();
                s += (q - 1.0).powi(2);
            }
            (s / 20.0).sqrt()
        };
        let (q, m) = (rms(true), rms(false));
        assert!(q < 0.05 * m, "scrambled Sobol {q:.2e}, Monte Carlo {m:.2e}");
    }
}
