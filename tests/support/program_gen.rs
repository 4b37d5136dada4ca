//! A generator of random well-typed `.opt` programs (scalars, vectors, matrices, sums with
//! dependent ranges, index offsets, comprehensions, selects, nested fns, every builtin), shared
//! by the generated-program test and the structure-aware fuzz target.
#![allow(dead_code)]

/// A small deterministic generator (xorshift).
/// Choices come from `bytes` while they last (a fuzzer steers the program that way), then
/// from the xorshift state.
pub struct Rng {
    state: u64,
    bytes: Vec<u8>,
    pos: usize,
}

impl Rng {
    /// A generator seeded by a number.
    pub fn seeded(seed: u64) -> Rng {
        Rng {
            state: seed | 1,
            bytes: Vec::new(),
            pos: 0,
        }
    }
    /// A generator whose first choices are the given bytes.
    #[allow(dead_code)]
    pub fn from_bytes(bytes: &[u8]) -> Rng {
        let seed = bytes.iter().fold(0x9E37_79B9_7F4A_7C15_u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Rng {
            state: seed | 1,
            bytes: bytes.to_vec(),
            pos: 0,
        }
    }
    pub fn next(&mut self) -> u64 {
        if self.pos + 2 <= self.bytes.len() {
            let v = u16::from_le_bytes([self.bytes[self.pos], self.bytes[self.pos + 1]]);
            self.pos += 2;
            return v as u64;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn num(&mut self) -> f64 {
        ((self.unit() * 2.0 - 1.0) * 100.0).round() / 100.0
    }
}

/// Index variables in scope: (name, over n or over m).
#[derive(Clone)]
struct Scope {
    idx: Vec<(String, bool)>,
}

pub struct Gen {
    pub rng: Rng,
    pub smooth: bool,
    pub counter: usize,
    pub n: usize,
    pub m: usize,
}

impl Gen {
    /// A generator of programs over vars of 1–4 entries and 1–3 constraint rows, both drawn
    /// from `rng`.
    pub fn new(mut rng: Rng, smooth: bool) -> Gen {
        let n = 1 + rng.below(4);
        let m = 1 + rng.below(3);
        Gen {
            rng,
            smooth,
            counter: 0,
            n,
            m,
        }
    }

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
    pub fn program(&mut self) -> String {
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

fn paren(s: &str) -> String {
    format!("({s})")
}
