//! A trained network as a file: `optc run --save net.json` writes it, `--load net.json`
//! starts training (or, with `steps = 0`, only the report) from it.

use super::PdeReport;
use serde_json::{json, Value};

/// The network of a pde block: u(x) = Σᵢ aᵢ σ(wᵢ·x + bᵢ) + c, or, with a Dirichlet boundary,
/// u = g + φ·N with N that network.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// The pde block it was trained for.
    pub pde: String,
    /// Its dimension.
    pub dim: usize,
    /// Hidden units.
    pub width: usize,
    /// `tanh`, `cos`, `softplus` or `sigmoid`.
    pub activation: String,
    /// Periodic boundary: the inputs are the Fourier features cos ω(x − lo), sin ω(x − lo)
    /// (ω = 2π / (hi − lo)), and W has 2·dim columns (the cosines', then the sines').
    pub fourier: bool,
    /// The domain's corners (used by the Fourier features).
    pub lo: Vec<f64>,
    /// See `lo`.
    pub hi: Vec<f64>,
    /// W (width × dim, row-major), b, a, c.
    pub weights: Vec<f64>,
}

impl Network {
    /// The network a training run produced.
    pub fn from_report(r: &PdeReport) -> Network {
        Network {
            pde: r.name.clone(),
            dim: r.dim,
            width: r.width,
            activation: r.activation.to_string(),
            fourier: r.periodic,
            lo: r.lo.clone(),
            hi: r.hi.clone(),
            weights: r.weights.clone(),
        }
    }

    /// Inputs of the hidden layer.
    fn inputs(&self) -> usize {
        if self.fourier {
            2 * self.dim
        } else {
            self.dim
        }
    }

    /// The hidden layer's inputs at x.
    fn features(&self, x: &[f64]) -> Vec<f64> {
        if !self.fourier {
            return x.to_vec();
        }
        let arg =
            |k: usize| 2.0 * std::f64::consts::PI * (x[k] - self.lo[k]) / (self.hi[k] - self.lo[k]);
        let mut f: Vec<f64> = (0..self.dim).map(|k| arg(k).cos()).collect();
        f.extend((0..self.dim).map(|k| arg(k).sin()));
        f
    }

    /// Are the fields consistent (weights for the width and inputs, a corner per axis)?
    pub fn check(&self) -> Result<(), String> {
        let want = self.width * (self.inputs() + 2) + 1;
        if self.weights.len() != want {
            return Err(format!(
                "{} weights for width {} and {} inputs; {want} expected",
                self.weights.len(),
                self.width,
                self.inputs()
            ));
        }
        if self.lo.len() != self.dim || self.hi.len() != self.dim {
            return Err(format!(
                "the domain's corners do not have {} entries",
                self.dim
            ));
        }
        Ok(())
    }

    /// The file form: `{"pde", "dim", "width", "activation", "features", "lo", "hi", "W",
    /// "b", "a", "c"}`.
    pub fn to_json(&self) -> Result<String, String> {
        self.check()?;
        let (h, d) = (self.width, self.inputs());
        let w = &self.weights;
        let rows: Vec<Value> = (0..h).map(|i| json!(w[i * d..(i + 1) * d])).collect();
        let v = json!({
            "pde": self.pde,
            "dim": self.dim,
            "width": h,
            "activation": self.activation,
            "features": if self.fourier { "fourier" } else { "x" },
            "lo": self.lo,
            "hi": self.hi,
            "formula": if self.fourier {
                "u(x) = sum_i a[i]*activation(W[i]·[cos(t), sin(t)] + b[i]) + c, t = 2*pi*(x - lo)/(hi - lo)"
            } else {
                "u(x) = sum_i a[i]*activation(W[i]·x + b[i]) + c"
            },
            "W": rows,
            "b": w[h * d..h * d + h],
            "a": w[h * d + h..h * d + 2 * h],
            "c": w[h * d + 2 * h],
        });
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
    }

    /// Reads the file form; the message says what is wrong.
    pub fn from_json(text: &str) -> Result<Network, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let field = |k: &str| v.get(k).ok_or_else(|| format!("no field `{k}`"));
        let count = |k: &str| -> Result<usize, String> {
            field(k)?
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| format!("`{k}` is not a positive whole number"))
        };
        let numbers = |x: &Value, what: &str| -> Result<Vec<f64>, String> {
            x.as_array()
                .ok_or_else(|| format!("`{what}` is not a list"))?
                .iter()
                .map(|e| {
                    e.as_f64()
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| format!("`{what}` has an entry that is not a finite number"))
                })
                .collect()
        };
        let (dim, width) = (count("dim")?, count("width")?);
        let fourier = match v.get("features").and_then(Value::as_str) {
            None | Some("x") => false,
            Some("fourier") => true,
            Some(f) => return Err(format!("features `{f}` is not `x` or `fourier`")),
        };
        let corner = |k: &str, default: f64| -> Result<Vec<f64>, String> {
            match v.get(k) {
                None => Ok(vec![default; dim]),
                Some(x) => {
                    let c = numbers(x, k)?;
                    if c.len() != dim {
                        return Err(format!("`{k}` has {} entries; dim is {dim}", c.len()));
                    }
                    Ok(c)
                }
            }
        };
        let (lo, hi) = (corner("lo", 0.0)?, corner("hi", 1.0)?);
        if lo.iter().zip(&hi).any(|(a, b)| a >= b) {
            return Err("every `lo` entry must be below its `hi` entry".into());
        }
        let din = if fourier { 2 * dim } else { dim };
        let mut weights = Vec::with_capacity(width * (din + 2) + 1);
        let rows = field("W")?.as_array().ok_or("`W` is not a list of rows")?;
        if rows.len() != width {
            return Err(format!("`W` has {} rows; width is {width}", rows.len()));
        }
        for r in rows {
            let r = numbers(r, "W")?;
            if r.len() != dim {
                return Err(format!(
                    "a row of `W` has {} entries; dim is {dim}",
                    r.len()
                ));
            }
            weights.extend(r);
        }
        for k in ["b", "a"] {
            let x = numbers(field(k)?, k)?;
            if x.len() != width {
                return Err(format!("`{k}` has {} entries; width is {width}", x.len()));
            }
            weights.extend(x);
        }
        let c = field("c")?
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or("`c` is not a finite number")?;
        weights.push(c);
        let name = |k: &str| -> Result<String, String> {
            Ok(field(k)?
                .as_str()
                .ok_or_else(|| format!("`{k}` is not a string"))?
                .to_string())
        };
        let activation = name("activation")?;
        if super::source::Activation::parse(&activation).is_none() {
            return Err(format!(
                "activation `{activation}` is not one of tanh, cos, softplus, sigmoid"
            ));
        }
        Ok(Network {
            pde: name("pde")?,
            dim,
            width,
            activation,
            fourier,
            lo,
            hi,
            weights,
        })
    }

    /// N(x) = Σᵢ aᵢ σ(wᵢ·x + bᵢ) + c (wᵢ·features(x) with Fourier features).
    pub fn eval(&self, x: &[f64]) -> Result<f64, String> {
        self.check()?;
        if x.len() != self.dim {
            return Err(format!("x has {} entries; dim is {}", x.len(), self.dim));
        }
        let (h, d) = (self.width, self.inputs());
        let x = self.features(x);
        let w = &self.weights;
        let sigma = |z: f64| match self.activation.as_str() {
            "cos" => z.cos(),
            "softplus" => z.max(0.0) + (-z.abs()).exp().ln_1p(),
            "sigmoid" => 1.0 / (1.0 + (-z).exp()),
            _ => z.tanh(),
        };
        let mut u = w[h * d + 2 * h];
        for i in 0..h {
            let z: f64 = (0..d).map(|k| w[i * d + k] * x[k]).sum::<f64>() + w[h * d + i];
            u += w[h * d + h + i] * sigma(z);
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_survives_its_file_form_and_bad_files_say_why() {
        let n = Network {
            pde: "p".into(),
            dim: 2,
            width: 3,
            activation: "tanh".into(),
            fourier: false,
            lo: vec![0.0, 0.0],
            hi: vec![1.0, 1.0],
            weights: (0..3 * 4 + 1).map(|k| k as f64 / 7.0 - 0.5).collect(),
        };
        let text = n.to_json().expect("consistent");
        let back = Network::from_json(&text).expect("reads");
        assert_eq!(back, n);
        // u at x = (1, 0): c + Σ a tanh(W[i,1] + b).
        let w = &n.weights;
        let want = w[12]
            + (0..3)
                .map(|i| w[9 + i] * (w[2 * i] + w[6 + i]).tanh())
                .sum::<f64>();
        assert!((n.eval(&[1.0, 0.0]).expect("evaluates") - want).abs() < 1e-15);
        assert!(n.eval(&[1.0]).is_err());
        let short = Network {
            weights: vec![0.0; 5],
            ..n.clone()
        };
        assert!(short.to_json().is_err() && short.eval(&[0.0, 0.0]).is_err());
        let bad = text.replace("\"width\": 3", "\"width\": 4");
        assert_eq!(
            Network::from_json(&bad).unwrap_err(),
            "`W` has 3 rows; width is 4"
        );
        assert!(Network::from_json("[1, 2")
            .unwrap_err()
            .starts_with("not JSON"));
    }
}
