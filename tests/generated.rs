#![allow(clippy::needless_range_loop)]
//! Generated programs: random well-typed models (scalars, vectors, matrices, sums with
//! dependent ranges, index offsets, comprehensions, selects, nested fns, every builtin),
//! checked for what must hold whatever the program:
//!
//! - the JIT and the interpreter agree (1e-13 relative);
//! - JVPs agree with central finite differences (smooth programs);
//! - the adjoint identity ⟨u, J v⟩ = ⟨Jᵀu, v⟩ holds to rounding, for ∂ₓF and ∂_θF;
//! - the Jacobian of a gradient is symmetric (HVP symmetry);
//! - the gradient agrees with finite differences of the objective.
//!
//! A fixed number of programs runs by default; `OPTC_GEN_CASES=N` runs N.

use optc::{Backend, CompileOptions, Model};

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn num(&mut self) -> f64 {
        ((self.unit() * 2.0 - 1.0) * 100.0).round() / 100.0
    }
}

/// Index variables in scope: (name, over n or over m).
#[derive(Clone)]
struct Scope {
    idx: Vec<(String, bool)>,
}

struct Gen {
    rng: Rng,
    smooth: bool,
    counter: usize,
    n: usize,
    m: usize,
}

impl Gen {
    fn fresh(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("{base}{}", self.counter)
    }

    /// An index expression over n (or m) valid in the scope.
    fn index(&mut self, sc: &Scope, over_n: bool) -> String {
        let size = if over_n { self.n } else { self.m };
        let cands: Vec<&String> = sc
            .idx
            .iter()
            .filter(|(_, on)| *on == over_n)
            .map(|(s, _)| s)
            .collect();
        if !cands.is_empty() && self.rng.below(4) > 0 {
            return cands[self.rng.below(cands.len())].clone();
        }
        (1 + self.rng.below(size)).to_string()
    }

    fn atom(&mut self, sc: &Scope) -> String {
        match self.rng.below(9) {
            0 => "y".into(),
            1 => "s".into(),
            2 => format!("{}", self.rng.num()),
            3 | 4 => format!("x[{}]", self.index(sc, true)),
            5 => format!("p[{}]", self.index(sc, true)),
            6 => format!("q[{}]", self.index(sc, false)),
            7 => format!("A[{}, {}]", self.index(sc, false), self.index(sc, true)),
            _ => format!("Z[{}, {}]", self.index(sc, false), self.index(sc, true)),
        }
    }

    fn expr(&mut self, sc: &Scope, depth: usize) -> String {
        if depth == 0 {
            return self.atom(sc);
        }
        let d = depth - 1;
        let k = self.rng.below(if self.smooth { 36 } else { 44 });
        match k {
            0 | 1 => self.atom(sc),
            2 => format!("{} + {}", self.expr(sc, d), self.expr(sc, d)),
            3 => format!("({}) - ({})", self.expr(sc, d), self.expr(sc, d)),
            4 => format!("({})*({})", self.expr(sc, d), self.expr(sc, d)),
            5 => format!("({})/(1.5 + ({})^2)", self.expr(sc, d), self.expr(sc, d)),
            6 => format!("({})^2", self.expr(sc, d)),
            7 => format!("({})^3", self.expr(sc, d)),
            8 => format!("(1.2 + ({})^2)^0.7", self.expr(sc, d)),
            9 => format!("exp(0.3*({}))", self.expr(sc, d)),
            10 => format!("sin({})", self.expr(sc, d)),
            11 => format!("cos({})", self.expr(sc, d)),
            12 => format!("tanh({})", self.expr(sc, d)),
            13 => format!("log(1 + ({})^2)", self.expr(sc, d)),
            14 => format!("sqrt(1 + ({})^2)", self.expr(sc, d)),
            15 => format!("atan({})", self.expr(sc, d)),
            16 => format!("g({})", self.expr(sc, d)),
            17 => format!("h({}, {})", self.expr(sc, d), self.expr(sc, d)),
            18 => {
                let i = self.fresh("i");
                let mut inner = sc.clone();
                inner.idx.push((i.clone(), true));
                format!("sum({i} in 1..n) {}", paren(&self.expr(&inner, d)))
            }
            19 => {
                // A dependent range.
                let i = self.fresh("i");
                let j = self.fresh("j");
                let mut inner = sc.clone();
                inner.idx.push((i.clone(), true));
                inner.idx.push((j.clone(), true));
                format!(
                    "sum({i} in 1..n, {j} in {i}..n) {}",
                    paren(&self.expr(&inner, d))
                )
            }
            20 if self.n >= 2 => {
                // An index offset.
                let i = self.fresh("i");
                let mut inner = sc.clone();
                inner.idx.push((i.clone(), true));
                format!(
                    "sum({i} in 1..n-1) (x[{i}+1] - x[{i}])*({})",
                    self.expr(&inner, d)
                )
            }
            21 => {
                // A comprehension, then reduced.
                let i = self.fresh("i");
                let mut inner = sc.clone();
                inner.idx.push((i.clone(), true));
                format!("dot([{} for {i} in 1..n], x)", self.expr(&inner, d))
            }
            22 => {
                let j = self.fresh("j");
                let mut inner = sc.clone();
                inner.idx.push((j.clone(), false));
                format!(
                    "sum({j} in 1..m) q[{j}]*(A*x)[{j}]*({})",
                    self.expr(&inner, d)
                )
            }
            23 => format!("(dot(x, p) + x'*x)*({})", self.expr(sc, d)),
            // More smooth builtins and library functions.
            24 => format!("log1p(({})^2)", self.expr(sc, d)),
            25 => format!("expm1(0.2*({}))", self.expr(sc, d)),
            26 => format!(
                "asin(0.5*tanh({})) + acos(0.5*tanh({}))",
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            27 => format!(
                "sinh(0.3*({})) + cosh(0.3*({}))",
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            28 => format!("tan(0.4*tanh({}))", self.expr(sc, d)),
            29 => format!("atan2({}, 2 + ({})^2)", self.expr(sc, d), self.expr(sc, d)),
            30 => format!(
                "softplus({}) + sigmoid({})",
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            31 => format!("logsumexp([{} for k in 1..n])", self.expr(sc, d)),
            32 => format!(
                "mean(x .* p) + sum(outer(x, p)) + trace(diagm(x))*({})",
                self.expr(sc, d)
            ),
            33 => format!(
                "sum(diag(outer(p, x))) + dot(A'*q, x)*({})",
                self.expr(sc, d)
            ),
            34 => format!(
                "squared({}, {}) + huber(0.2*tanh({}), 1)",
                self.expr(sc, d),
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            35 => format!(
                "norm2(x)^2 + sum(i in 1..n, j in 1..m) Z[j, i]*A[j, i]*({})",
                self.expr(sc, d)
            ),
            // Non-smooth builtins (not finite-differenced).
            36 => format!("abs({})", self.expr(sc, d)),
            37 => format!("max({}, {})", self.expr(sc, d), self.expr(sc, d)),
            38 => format!("relu({})", self.expr(sc, d)),
            39 => format!(
                "(if {} > {} then {} else {})",
                self.expr(sc, d),
                self.expr(sc, d),
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            40 => format!(
                "min({}, {}) + floor({}) + ceil({})",
                self.expr(sc, d),
                self.expr(sc, d),
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            41 => format!(
                "minimum([{} for k in 1..n]) + norm1(x) + norminf(x - p)",
                self.expr(sc, d)
            ),
            42 => format!(
                "soft_threshold({}, 0.1) + project_box({}, -0.5, 0.5)",
                self.expr(sc, d),
                self.expr(sc, d)
            ),
            _ => format!("maximum([{} for k in 1..n]) + sign(y)*y", self.expr(sc, d)),
        }
    }

    fn literal(&mut self, shape: &[usize]) -> String {
        match shape {
            [] => format!("{}", self.rng.num()),
            [n, rest @ ..] => {
                let parts: Vec<String> = (0..*n).map(|_| self.literal(rest)).collect();
                format!("[{}]", parts.join(", "))
            }
        }
    }

    /// A whole program: minimization (symmetric Jacobian) or a root system.
    fn program(&mut self) -> String {
        let (n, m) = (self.n, self.m);
        let mut src = format!("dim n = {n}\ndim m = {m}\n");
        src += &format!("param s = {}\n", self.rng.num());
        src += &format!("param p: real[n] = {}\n", self.literal(&[n]));
        src += &format!("param q: real[m] = {}\n", self.literal(&[m]));
        src += &format!("param A: real[m, n] = {}\n", self.literal(&[m, n]));
        src += "var x: real[n]\nvar y\nvar Z: real[m, n]\n";
        src += "use nn, losses, prox\nfn g(t) = t^2 + sin(t)\nfn h(a, b) = a*b + g(a)\n";
        let sc = Scope { idx: vec![] };
        let depth = 2 + self.rng.below(3);
        if self.rng.below(2) == 0 {
            let e = self.expr(&sc, depth);
            src += &format!("minimize f = {e} + s*dot(x, x) + y^2 + sum(Z .* Z)\n");
        } else {
            let i = self.fresh("i");
            let sci = Scope {
                idx: vec![(i.clone(), true)],
            };
            let ex = self.expr(&sci, depth - 1);
            let ey = self.expr(&sc, depth - 1);
            let (j, k) = (self.fresh("j"), self.fresh("k"));
            let scz = Scope {
                idx: vec![(j.clone(), false), (k.clone(), true)],
            };
            let ez = self.expr(&scz, depth - 1);
            src += &format!("condition 2*x + s*[{ex} for {i} in 1..n] == p\n");
            src += &format!("condition 3*y + {ey} == s\n");
            src += &format!("condition 2*Z + [{ez} for {j} in 1..m, {k} in 1..n] == A\n");
        }
        src
    }
}

/// The finite-difference step; with Richardson extrapolation the error is O(h⁴).
const H: f64 = 1e-5;

/// (4·D(h/2) − D(h)) / 3 for central differences D.
fn richardson(d_h: f64, d_half: f64) -> f64 {
    (4.0 * d_half - d_h) / 3.0
}

fn paren(s: &str) -> String {
    format!("({s})")
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn rel(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(1e-300)
}

#[derive(Default, Debug)]
struct Stats {
    programs: usize,
    max_jit_interp: f64,
    max_fd: f64,
    max_adjoint: f64,
    max_symmetry: f64,
}

/// Checks one program; returns an error describing the first violated property.
fn check_program(seed: u64, stats: &mut Stats) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let smooth = rng.below(3) > 0;
    let n = 1 + rng.below(4);
    let m = 1 + rng.below(3);
    let mut g = Gen {
        rng,
        smooth,
        counter: 0,
        n,
        m,
    };
    let src = g.program();
    let compile = |backend| {
        Model::compile(
            &src,
            &CompileOptions {
                backend,
                ..CompileOptions::default()
            },
        )
        .map_err(|e| format!("does not compile:\n{src}\n{}", e))
    };
    let mut jit = compile(Backend::Jit)?;
    let mut interp = compile(Backend::Interp)?;
    let pj = jit.param_fns("p").map_err(|d| format!("{d}\n{src}"))?;
    let pi = interp.param_fns("p").map_err(|d| format!("{d}\n{src}"))?;
    assert_eq!(pj, pi);
    let fj = jit.fns().ok_or("no fns")?;
    let fi = interp.fns().ok_or("no fns")?;
    let (nz, mz) = (fj.layout.n, fj.layout.m);
    let st = jit.state().clone();
    let mut rng = Rng(seed ^ 0xABCD_EF01_2345_6789);
    let z: Vec<f64> = (0..nz).map(|_| rng.unit() * 1.6 - 0.8).collect();
    let v: Vec<f64> = (0..nz).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let u: Vec<f64> = (0..mz).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let t: Vec<f64> = (0..n).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let run =
        |f: &dyn Fn(&mut [f64]) -> Result<(), String>, len: usize| -> Result<Vec<f64>, String> {
            let mut out = vec![0.0; len];
            f(&mut out)?;
            Ok(out)
        };
    let ctx = |what: &str, e: String| format!("{what}: {e}\n{src}");
    // JIT == interpreter, for every function.
    let pairs: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        (
            "F",
            run(&|o| fj.residual(&z, &st, o), mz)?,
            run(&|o| fi.residual(&z, &st, o), mz)?,
        ),
        (
            "JVP",
            run(&|o| fj.jvp(&z, &st, &v, o), mz)?,
            run(&|o| fi.jvp(&z, &st, &v, o), mz)?,
        ),
        (
            "VJP",
            run(&|o| fj.vjp(&z, &st, &u, o), nz)?,
            run(&|o| fi.vjp(&z, &st, &u, o), nz)?,
        ),
        (
            "param JVP",
            run(&|o| fj.param_jvp(pj, &z, &st, &t, o), mz)?,
            run(&|o| fi.param_jvp(pi, &z, &st, &t, o), mz)?,
        ),
        (
            "param VJP",
            run(&|o| fj.param_vjp(pj, &z, &st, &u, o), n)?,
            run(&|o| fi.param_vjp(pi, &z, &st, &u, o), n)?,
        ),
    ];
    for (what, a, b) in &pairs {
        for (x, y) in a.iter().zip(b) {
            if !x.is_finite() || !y.is_finite() {
                return Err(ctx(what, format!("non-finite value {x} / {y}")));
            }
            let e = rel(*x, *y, y.abs().max(1.0));
            stats.max_jit_interp = stats.max_jit_interp.max(e);
            if e > 1e-13 {
                return Err(ctx(what, format!("JIT {x} vs interpreter {y}")));
            }
        }
    }
    let (f0, jv, uj) = (&pairs[0].1, &pairs[1].1, &pairs[2].1);
    let scale = |a: &[f64]| a.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    // Adjoint identity ⟨u, Jv⟩ = ⟨Jᵀu, v⟩.
    let (l, r) = (dot(&u, jv), dot(uj, &v));
    let e = rel(l, r, scale(jv) * scale(&u) * (mz as f64));
    stats.max_adjoint = stats.max_adjoint.max(e);
    if e > 1e-12 {
        return Err(ctx(
            "adjoint identity",
            format!("⟨u, Jv⟩ = {l}, ⟨Jᵀu, v⟩ = {r}"),
        ));
    }
    let (pjv, pvj) = (&pairs[3].1, &pairs[4].1);
    let (l, r) = (dot(&u, pjv), dot(pvj, &t));
    let e = rel(l, r, scale(pjv) * scale(&u) * (mz as f64));
    stats.max_adjoint = stats.max_adjoint.max(e);
    if e > 1e-12 {
        return Err(ctx(
            "parameter adjoint identity",
            format!("⟨u, ∂θF t⟩ = {l}, ⟨uᵀ∂θF, t⟩ = {r}"),
        ));
    }
    // Symmetry of the Jacobian of a gradient: ⟨w, Jv⟩ = ⟨v, Jw⟩.
    let sys = jit.system().ok_or("no system")?;
    if sys.kind == optc::system::SystemKind::Stationarity {
        let w: Vec<f64> = (0..nz).map(|_| rng.unit() * 2.0 - 1.0).collect();
        let jw = run(&|o| fj.jvp(&z, &st, &w, o), mz)?;
        let (l, r) = (dot(&w, jv), dot(&v, &jw));
        let e = rel(l, r, scale(jv).max(scale(&jw)) * nz as f64);
        stats.max_symmetry = stats.max_symmetry.max(e);
        if e > 1e-12 {
            return Err(ctx("HVP symmetry", format!("⟨w, Hv⟩ = {l}, ⟨v, Hw⟩ = {r}")));
        }
        // The gradient against finite differences of the objective.
        if smooth {
            let along = |h: f64| -> Result<f64, String> {
                let zp: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a + h * b).collect();
                let zm: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a - h * b).collect();
                Ok((fj.objective(&zp, &st, None)? - fj.objective(&zm, &st, None)?) / (2.0 * h))
            };
            let fd = richardson(along(H)?, along(H / 2.0)?);
            let an = dot(f0, &v);
            let e = (fd - an).abs() / (1.0 + an.abs());
            stats.max_fd = stats.max_fd.max(e);
            if e > 1e-5 {
                return Err(ctx(
                    "gradient vs finite differences",
                    format!("∇f·v = {an}, FD = {fd}"),
                ));
            }
        }
    }
    // JVPs against central differences of F.
    if smooth {
        let diff = |h: f64| -> Result<Vec<f64>, String> {
            let zp: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a + h * b).collect();
            let zm: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a - h * b).collect();
            let fp = run(&|o| fj.residual(&zp, &st, o), mz)?;
            let fm = run(&|o| fj.residual(&zm, &st, o), mz)?;
            Ok(fp
                .iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect())
        };
        let (d1, d2) = (diff(H)?, diff(H / 2.0)?);
        let sc = scale(jv);
        for k in 0..mz {
            let fd = richardson(d1[k], d2[k]);
            let e = (fd - jv[k]).abs() / sc;
            stats.max_fd = stats.max_fd.max(e);
            if e > 1e-5 {
                return Err(ctx(
                    "JVP vs finite differences",
                    format!("entry {k}: J v = {}, FD = {fd}", jv[k]),
                ));
            }
        }
        // ∂θF·t against differences in the param.
        let pk = jit.checked().param_by_name("p").ok_or("no p")?.index();
        let pdiff = |h: f64| -> Result<Vec<f64>, String> {
            let mut stp = st.clone();
            let mut stm = st.clone();
            for k in 0..n {
                stp.params[pk][k] += h * t[k];
                stm.params[pk][k] -= h * t[k];
            }
            let fp = run(&|o| fj.residual(&z, &stp, o), mz)?;
            let fm = run(&|o| fj.residual(&z, &stm, o), mz)?;
            Ok(fp
                .iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect())
        };
        let (d1, d2) = (pdiff(H)?, pdiff(H / 2.0)?);
        let sc = scale(pjv);
        for k in 0..mz {
            let fd = richardson(d1[k], d2[k]);
            let e = (fd - pjv[k]).abs() / sc;
            stats.max_fd = stats.max_fd.max(e);
            if e > 1e-5 {
                return Err(ctx(
                    "∂θF·t vs finite differences",
                    format!("entry {k}: {} vs FD {fd}", pjv[k]),
                ));
            }
        }
    }
    let _ = &mut interp;
    stats.programs += 1;
    Ok(())
}

#[test]
fn generated_programs_satisfy_the_derivative_identities() {
    let cases: u64 = std::env::var("OPTC_GEN_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for seed in 1..=cases {
        if let Err(e) = check_program(seed, &mut stats) {
            failures.push(format!("seed {seed}: {e}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    eprintln!(
        "generated programs: {} checked; max JIT/interp difference {:.1e}, max FD error {:.1e}, max adjoint error {:.1e}, max symmetry error {:.1e}",
        stats.programs, stats.max_jit_interp, stats.max_fd, stats.max_adjoint, stats.max_symmetry
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
