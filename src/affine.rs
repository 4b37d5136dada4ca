//! Integer affine forms over index variables, and the range analysis that proves indices in
//! bounds. Shared by the checker (index symbols of the source) and the IR (index variables),
//! so the proof the checker gives the user is the proof the JIT relies on.

use std::fmt;

/// `c + Σ aᵢ·sᵢ` with integer coefficients; terms sorted by symbol, no zero coefficient.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Affine<S> {
    pub c: i64,
    pub terms: Vec<(S, i64)>,
}

impl<S: Copy + Ord> Default for Affine<S> {
    fn default() -> Self {
        Affine::constant(0)
    }
}

impl<S: Copy + Ord> Affine<S> {
    pub fn constant(c: i64) -> Self {
        Affine {
            c,
            terms: Vec::new(),
        }
    }

    pub fn sym(s: S) -> Self {
        Affine {
            c: 0,
            terms: vec![(s, 1)],
        }
    }

    pub fn as_const(&self) -> Option<i64> {
        self.terms.is_empty().then_some(self.c)
    }

    pub fn coef(&self, s: S) -> i64 {
        self.terms
            .iter()
            .find(|(t, _)| *t == s)
            .map(|x| x.1)
            .unwrap_or(0)
    }

    pub fn mentions(&self, s: S) -> bool {
        self.coef(s) != 0
    }

    /// `self + sign·other`.
    pub fn add(&self, other: &Self, sign: i64) -> Self {
        let mut terms = self.terms.clone();
        for &(s, a) in &other.terms {
            match terms.iter_mut().find(|(t, _)| *t == s) {
                Some(slot) => slot.1 += sign * a,
                None => terms.push((s, sign * a)),
            }
        }
        terms.retain(|(_, a)| *a != 0);
        terms.sort();
        Affine {
            c: self.c + sign * other.c,
            terms,
        }
    }

    pub fn scale(&self, k: i64) -> Self {
        if k == 0 {
            return Affine::constant(0);
        }
        Affine {
            c: self.c * k,
            terms: self.terms.iter().map(|&(s, a)| (s, a * k)).collect(),
        }
    }

    pub fn offset(&self, k: i64) -> Self {
        Affine {
            c: self.c + k,
            terms: self.terms.clone(),
        }
    }

    /// Replaces `s` by `by`.
    pub fn subst(&self, s: S, by: &Self) -> Self {
        let k = self.coef(s);
        if k == 0 {
            return self.clone();
        }
        let mut without = self.clone();
        without.terms.retain(|(t, _)| *t != s);
        without.add(&by.scale(k), 1)
    }

    /// Replaces every symbol through `f` (which returns an affine form).
    pub fn map_syms<T: Copy + Ord>(&self, mut f: impl FnMut(S) -> Affine<T>) -> Affine<T> {
        let mut out = Affine::constant(self.c);
        for &(s, a) in &self.terms {
            out = out.add(&f(s).scale(a), 1);
        }
        out
    }

    pub fn syms(&self) -> impl Iterator<Item = S> + '_ {
        self.terms.iter().map(|t| t.0)
    }
}

impl<S: fmt::Display> fmt::Display for Affine<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (s, a) in &self.terms {
            let (sign, mag) = if *a < 0 { ("-", -a) } else { ("+", *a) };
            if first {
                if sign == "-" {
                    f.write_str("-")?;
                }
            } else {
                write!(f, " {sign} ")?;
            }
            if mag == 1 {
                write!(f, "{s}")?;
            } else {
                write!(f, "{mag}*{s}")?;
            }
            first = false;
        }
        if first {
            write!(f, "{}", self.c)
        } else if self.c > 0 {
            write!(f, " + {}", self.c)
        } else if self.c < 0 {
            write!(f, " - {}", -self.c)
        } else {
            Ok(())
        }
    }
}

/// The iteration domain of nested index variables: each has lower bounds (the range starts at
/// their maximum) and upper bounds (it ends at their minimum), affine in variables bound
/// further out. Variables are listed outermost first.
#[derive(Clone, Debug)]
pub struct Domain<S> {
    vars: Vec<DomainVar<S>>,
}

/// A variable with its lower-bound and upper-bound alternatives.
type DomainVar<S> = (S, Vec<Affine<S>>, Vec<Affine<S>>);

impl<S: Copy + Ord> Default for Domain<S> {
    fn default() -> Self {
        Domain { vars: Vec::new() }
    }
}

impl<S: Copy + Ord> Domain<S> {
    pub fn new() -> Self {
        Domain::default()
    }

    /// Adds a variable bound inside all previous ones.
    pub fn push(&mut self, s: S, lo: Vec<Affine<S>>, hi: Vec<Affine<S>>) {
        self.vars.push((s, lo, hi));
    }

    pub fn contains(&self, s: S) -> bool {
        self.vars.iter().any(|v| v.0 == s)
    }

    fn position(&self, s: S) -> Option<usize> {
        self.vars.iter().position(|v| v.0 == s)
    }

    /// Code that runs inside the domain runs only when every range is non-empty, so each
    /// `lo ≤ hi` constrains the outer variables. Adds the single-variable consequences as
    /// constant bounds (e.g. `j in i+1..n` gives `i ≤ n-1`). Constants only: cheap and sound.
    pub fn tighten(&mut self) {
        for _ in 0..2 {
            let mut derived: Vec<(S, bool, i64)> = Vec::new();
            for (_, los, his) in &self.vars {
                for l in los {
                    for h in his {
                        // h - l >= 0
                        let d = h.add(l, -1);
                        if d.terms.len() == 1 {
                            let (t, a) = d.terms[0];
                            // a*t + c >= 0
                            if a == 1 {
                                derived.push((t, false, -d.c)); // t >= -c
                            } else if a == -1 {
                                derived.push((t, true, d.c)); // t <= c
                            }
                        }
                    }
                }
            }
            for (t, upper, c) in derived {
                if let Some(p) = self.position(t) {
                    let list = if upper {
                        &mut self.vars[p].2
                    } else {
                        &mut self.vars[p].1
                    };
                    let alt = Affine::constant(c);
                    if !list.contains(&alt) {
                        list.push(alt);
                    }
                }
            }
        }
    }

    /// The largest value of `a` over the domain (an upper bound when bounds have several
    /// alternatives); `None` if `a` mentions a variable outside the domain.
    pub fn max(&self, a: &Affine<S>) -> Option<i64> {
        self.extreme(a, true, 0)
    }

    /// The smallest value of `a` over the domain (a lower bound in general).
    pub fn min(&self, a: &Affine<S>) -> Option<i64> {
        self.extreme(a, false, 0)
    }

    fn extreme(&self, a: &Affine<S>, want_max: bool, depth: usize) -> Option<i64> {
        if a.terms.is_empty() {
            return Some(a.c);
        }
        if depth > 64 {
            return None;
        }
        // Eliminate the innermost variable first: its bounds only use outer ones.
        let mut inner: Option<(usize, S, i64)> = None;
        for &(s, k) in &a.terms {
            let p = self.position(s)?;
            if inner.map(|(q, _, _)| p > q).unwrap_or(true) {
                inner = Some((p, s, k));
            }
        }
        let (p, s, k) = inner?;
        let (_, los, his) = &self.vars[p];
        let alts = if (k > 0) == want_max { his } else { los };
        let mut best: Option<i64> = None;
        for alt in alts {
            if let Some(v) = self.extreme(&a.subst(s, alt), want_max, depth + 1) {
                // Every alternative gives a valid bound; keep the tightest.
                best = Some(match best {
                    None => v,
                    Some(b) if want_max => b.min(v),
                    Some(b) => b.max(v),
                });
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type A = Affine<u32>;

    #[test]
    fn pairwise_domain_bounds() {
        // i in 1..n, j in i+1..n with n = 7
        let mut d = Domain::new();
        d.push(0u32, vec![A::constant(1)], vec![A::constant(7)]);
        d.push(1u32, vec![A::sym(0).offset(1)], vec![A::constant(7)]);
        assert_eq!(d.max(&A::sym(1)), Some(7));
        assert_eq!(d.min(&A::sym(1)), Some(2));
        // j - i ranges over 1..6
        let diff = A::sym(1).add(&A::sym(0), -1);
        assert_eq!(d.min(&diff), Some(1));
        assert_eq!(d.max(&diff), Some(6));
        // Without tightening, i+1 could reach 8; inside j's body i <= 6.
        assert_eq!(d.max(&A::sym(0).offset(1)), Some(8));
        d.tighten();
        assert_eq!(d.max(&A::sym(0).offset(1)), Some(7));
    }

    #[test]
    fn substitution_and_display() {
        let a = A::sym(1).scale(2).add(&A::sym(0), 1).offset(-3);
        assert_eq!(a.subst(1, &A::constant(4)), A::sym(0).offset(5));
        struct N(u32);
        impl fmt::Display for N {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "i{}", self.0)
            }
        }
        let b: Affine<u32> = A::sym(1).scale(-2).offset(3);
        let shown = Affine {
            c: b.c,
            terms: b.terms.iter().map(|&(s, k)| (N(s), k)).collect(),
        };
        assert_eq!(shown.to_string(), "-2*i1 + 3");
    }
}
