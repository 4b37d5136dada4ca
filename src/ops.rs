//! The scalar operations shared by every phase: their names and their f64 semantics.
//!
//! This is the vocabulary of the typed model, the IR and the kernels. Each phase keeps one
//! table keyed by these enums (the checker's builtin names, the differentiation rules, the
//! JIT's instruction selection), so a new scalar function touches one row per phase.

/// Elementwise functions of one scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnOp {
    Neg,
    /// Logical not: 1 if the operand is 0, else 0.
    Not,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Abs,
    Sign,
    Floor,
    Ceil,
}

/// Elementwise functions of two scalars. Comparisons and logic return 1.0 or 0.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Atan2,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl UnOp {
    pub const ALL: &'static [UnOp] = &[
        UnOp::Neg,
        UnOp::Not,
        UnOp::Exp,
        UnOp::Log,
        UnOp::Log1p,
        UnOp::Expm1,
        UnOp::Sqrt,
        UnOp::Sin,
        UnOp::Cos,
        UnOp::Tan,
        UnOp::Asin,
        UnOp::Acos,
        UnOp::Atan,
        UnOp::Sinh,
        UnOp::Cosh,
        UnOp::Tanh,
        UnOp::Abs,
        UnOp::Sign,
        UnOp::Floor,
        UnOp::Ceil,
    ];

    /// The name a user writes (`neg` and `not` are operators, not functions).
    pub fn name(self) -> &'static str {
        match self {
            UnOp::Neg => "neg",
            UnOp::Not => "not",
            UnOp::Exp => "exp",
            UnOp::Log => "log",
            UnOp::Log1p => "log1p",
            UnOp::Expm1 => "expm1",
            UnOp::Sqrt => "sqrt",
            UnOp::Sin => "sin",
            UnOp::Cos => "cos",
            UnOp::Tan => "tan",
            UnOp::Asin => "asin",
            UnOp::Acos => "acos",
            UnOp::Atan => "atan",
            UnOp::Sinh => "sinh",
            UnOp::Cosh => "cosh",
            UnOp::Tanh => "tanh",
            UnOp::Abs => "abs",
            UnOp::Sign => "sign",
            UnOp::Floor => "floor",
            UnOp::Ceil => "ceil",
        }
    }

    /// A builtin function of one scalar, by name.
    pub fn from_name(name: &str) -> Option<UnOp> {
        UnOp::ALL
            .iter()
            .copied()
            .find(|op| op.name() == name && !matches!(op, UnOp::Neg | UnOp::Not))
    }

    pub fn eval(self, a: f64) -> f64 {
        match self {
            UnOp::Neg => -a,
            UnOp::Not => bool_f64(a == 0.0),
            UnOp::Exp => a.exp(),
            UnOp::Log => a.ln(),
            UnOp::Log1p => a.ln_1p(),
            UnOp::Expm1 => a.exp_m1(),
            UnOp::Sqrt => a.sqrt(),
            UnOp::Sin => a.sin(),
            UnOp::Cos => a.cos(),
            UnOp::Tan => a.tan(),
            UnOp::Asin => a.asin(),
            UnOp::Acos => a.acos(),
            UnOp::Atan => a.atan(),
            UnOp::Sinh => a.sinh(),
            UnOp::Cosh => a.cosh(),
            UnOp::Tanh => a.tanh(),
            UnOp::Abs => a.abs(),
            UnOp::Sign => sign(a),
            UnOp::Floor => a.floor(),
            UnOp::Ceil => a.ceil(),
        }
    }

    /// Is the result always 0 or 1?
    pub fn is_boolean(self) -> bool {
        matches!(self, UnOp::Not)
    }

    /// Does the operation need a call into libm (no machine instruction)?
    pub fn is_transcendental(self) -> bool {
        !matches!(
            self,
            UnOp::Neg | UnOp::Not | UnOp::Sqrt | UnOp::Abs | UnOp::Sign | UnOp::Floor | UnOp::Ceil
        )
    }
}

impl BinOp {
    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::Max => "max",
            BinOp::Min => "min",
            BinOp::Atan2 => "atan2",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }

    /// Written between operands (`a + b`) rather than as a call (`max(a, b)`).
    pub fn is_infix(self) -> bool {
        !matches!(self, BinOp::Max | BinOp::Min | BinOp::Atan2)
    }

    pub fn is_commutative(self) -> bool {
        matches!(
            self,
            BinOp::Add
                | BinOp::Mul
                | BinOp::Max
                | BinOp::Min
                | BinOp::Eq
                | BinOp::Ne
                | BinOp::And
                | BinOp::Or
        )
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }

    /// Is the result always 0 or 1?
    pub fn is_boolean(self) -> bool {
        self.is_comparison() || matches!(self, BinOp::And | BinOp::Or)
    }

    pub fn eval(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Pow => pow(a, b),
            BinOp::Max => max(a, b),
            BinOp::Min => min(a, b),
            BinOp::Atan2 => a.atan2(b),
            BinOp::Lt => bool_f64(a < b),
            BinOp::Le => bool_f64(a <= b),
            BinOp::Gt => bool_f64(a > b),
            BinOp::Ge => bool_f64(a >= b),
            BinOp::Eq => bool_f64(a == b),
            BinOp::Ne => bool_f64(a != b),
            BinOp::And => bool_f64(a != 0.0 && b != 0.0),
            BinOp::Or => bool_f64(a != 0.0 || b != 0.0),
        }
    }
}

pub fn bool_f64(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// sign(0) = 0 (and sign(NaN) = NaN), unlike `f64::signum`.
pub fn sign(a: f64) -> f64 {
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else {
        a
    }
}

/// max that returns the first operand on ties and propagates NaN from either side, so the
/// interpreter and the JIT agree (`f64::max` ignores NaN).
pub fn max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if b > a {
        b
    } else {
        a
    }
}

/// min, with the same conventions as [`max`].
pub fn min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if b < a {
        b
    } else {
        a
    }
}

/// a^b with small integer exponents as repeated products (exact, and what the JIT emits).
pub fn pow(a: f64, b: f64) -> f64 {
    match small_int_exponent(b) {
        Some(k) => powi(a, k),
        None => a.powf(b),
    }
}

/// Exponents handled by multiplication rather than `pow`.
pub fn small_int_exponent(b: f64) -> Option<i32> {
    if b == b.trunc() && b.abs() <= 16.0 {
        Some(b as i32)
    } else {
        None
    }
}

/// a^k by a fixed multiplication sequence (the same one the JIT emits).
pub fn powi(a: f64, k: i32) -> f64 {
    let mut n = k.unsigned_abs();
    let mut base = a;
    let mut acc: Option<f64> = None;
    while n > 0 {
        if n & 1 == 1 {
            acc = Some(match acc {
                Some(x) => x * base,
                None => base,
            });
        }
        n >>= 1;
        if n > 0 {
            base *= base;
        }
    }
    let r = acc.unwrap_or(1.0);
    if k < 0 {
        1.0 / r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powi_matches_powf_on_small_exponents() {
        for k in -6..=12 {
            let a = 1.37_f64;
            let rel = (powi(a, k) - a.powf(k as f64)).abs() / a.powf(k as f64);
            assert!(rel < 1e-14, "k = {k}");
        }
        assert_eq!(powi(3.0, 0), 1.0);
    }

    #[test]
    fn max_and_min_propagate_nan() {
        assert!(max(f64::NAN, 1.0).is_nan());
        assert!(min(1.0, f64::NAN).is_nan());
        assert_eq!(max(-0.0, 0.0), -0.0);
    }

    #[test]
    fn sign_of_zero_is_zero() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-3.0), -1.0);
    }
}
