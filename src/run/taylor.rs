//! Taylor tests of the compiled derivatives, for users who want to see them verified on
//! their own model: for a derivative D of a function F, the first-order remainder
//! r(h) = ‖F(z + h·v) − F(z) − h·D·v‖ must fall like h² (halving h divides r by 4).

use crate::api::Model;
use crate::diag::{Code, Diagnostic};

/// One row of the table.
#[derive(Clone, Debug)]
pub struct TaylorCheck {
    /// The derivative tested, e.g. `F·v` or `uᵀ∂F`.
    pub name: String,
    /// The step sizes h (empty for an exact identity check).
    pub steps: Vec<f64>,
    /// The Taylor remainder at each step (or the relative gap of an identity).
    pub remainders: Vec<f64>,
    /// The observed convergence order (2 for a correct derivative).
    pub order: f64,
    /// Whether the check passed.
    pub ok: bool,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Deterministic directions in [−1, 1].
fn direction(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// Judges a sequence of remainders for halving steps.
fn verdict(name: String, steps: Vec<f64>, rs: Vec<f64>, scale: f64) -> TaylorCheck {
    // Remainders at rounding level carry no information.
    let floor = 1e-11 * scale.max(1.0);
    let mut orders = Vec::new();
    for k in 1..rs.len() {
        if rs[k - 1] > floor && rs[k] > floor {
            orders.push((rs[k - 1] / rs[k]).log2());
        }
    }
    let exact = rs.iter().all(|r| *r <= floor);
    // The median observed order: robust to one step spoiled by rounding.
    orders.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let order = if orders.is_empty() {
        2.0
    } else {
        orders[orders.len() / 2]
    };
    TaylorCheck {
        name,
        steps,
        remainders: rs,
        order,
        ok: exact || order >= 1.7,
    }
}

/// Runs the Taylor tests for the system's derivatives and the params the file differentiates.
pub fn check(model: &mut Model) -> Result<Vec<TaylorCheck>, Diagnostic> {
    let internal = |m: String| {
        Diagnostic::error(
            Code::NumericalFault,
            format!("during the derivative check: {m}"),
        )
    };
    let params: Vec<String> = model
        .checked()
        .requests
        .iter()
        .filter_map(|r| match r {
            crate::check::Request::Derive { wrt, .. } => {
                Some(model.checked().param(*wrt).name.clone())
            }
            crate::check::Request::Tune { params, .. } => params
                .first()
                .map(|p| model.checked().param(*p).name.clone()),
            _ => None,
        })
        .collect();
    model.system_fns()?;
    let mut ptensors = Vec::new();
    for p in &params {
        if !ptensors.iter().any(|(n, _)| n == p) {
            ptensors.push((p.clone(), model.param_fns(p)?));
        }
    }
    let Some(fns) = model.fns() else {
        return Ok(Vec::new());
    };
    let sys = model.system().ok_or_else(|| internal("no system".into()))?;
    let st = model.state().clone();
    let z = fns.pack(sys, &st);
    let (n, m) = (fns.layout.n, fns.layout.m);
    let v = direction(n, 1);
    let zscale = z.iter().fold(1.0f64, |a, x| a.max(x.abs()));
    let steps: Vec<f64> = (0..6).map(|k| 1e-2 * zscale / f64::powi(2.0, k)).collect();
    let mut out = Vec::new();
    let mut f0 = vec![0.0; m];
    fns.residual(&z, &st, &mut f0).map_err(internal)?;
    let mut jv = vec![0.0; m];
    fns.jvp(&z, &st, &v, &mut jv).map_err(internal)?;
    // The objective's gradient.
    if sys.kind == crate::system::SystemKind::Stationarity && sys.objective.is_some() {
        let e0 = fns.objective(&z, &st, None).map_err(internal)?;
        let slope: f64 = f0.iter().zip(&v).map(|(a, b)| a * b).sum();
        let mut rs = Vec::new();
        for &h in &steps {
            let zh: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a + h * b).collect();
            let eh = fns.objective(&zh, &st, None).map_err(internal)?;
            rs.push((eh - e0 - h * slope).abs());
        }
        out.push(verdict(
            "∇f (gradient of the objective)".into(),
            steps.clone(),
            rs,
            e0.abs(),
        ));
    }
    // ∂F/∂z by JVP.
    let mut rs = Vec::new();
    for &h in &steps {
        let zh: Vec<f64> = z.iter().zip(&v).map(|(a, b)| a + h * b).collect();
        let mut fh = vec![0.0; m];
        fns.residual(&zh, &st, &mut fh).map_err(internal)?;
        let r: Vec<f64> = (0..m).map(|i| fh[i] - f0[i] - h * jv[i]).collect();
        rs.push(norm(&r));
    }
    out.push(verdict(
        "∂F/∂z · v (JVP)".into(),
        steps.clone(),
        rs,
        norm(&f0),
    ));
    // uᵀ∂F/∂z by the adjoint identity.
    let u = direction(m, 2);
    let mut uj = vec![0.0; n];
    fns.vjp(&z, &st, &u, &mut uj).map_err(internal)?;
    let l: f64 = u.iter().zip(&jv).map(|(a, b)| a * b).sum();
    let r: f64 = uj.iter().zip(&v).map(|(a, b)| a * b).sum();
    let gap = (l - r).abs() / (1.0 + l.abs());
    out.push(TaylorCheck {
        name: "uᵀ∂F/∂z (VJP, adjoint identity)".into(),
        steps: vec![],
        remainders: vec![gap],
        order: f64::INFINITY,
        ok: gap <= 1e-10,
    });
    // ∂F/∂θ for the params the file differentiates.
    for (name, t) in ptensors {
        let pid = model
            .checked()
            .param_by_name(&name)
            .ok_or_else(|| internal("unknown param".into()))?;
        let len = st.params[pid.index()].len();
        let dir = direction(len, 3);
        let mut dt = vec![0.0; m];
        fns.param_jvp(t, &z, &st, &dir, &mut dt).map_err(internal)?;
        let pscale = st.params[pid.index()]
            .iter()
            .fold(1.0f64, |a, x| a.max(x.abs()));
        let psteps: Vec<f64> = (0..6).map(|k| 1e-2 * pscale / f64::powi(2.0, k)).collect();
        let mut rs = Vec::new();
        for &h in &psteps {
            let mut sh = st.clone();
            for (x, d) in sh.params[pid.index()].iter_mut().zip(&dir) {
                *x += h * d;
            }
            let mut fh = vec![0.0; m];
            fns.residual(&z, &sh, &mut fh).map_err(internal)?;
            let r: Vec<f64> = (0..m).map(|i| fh[i] - f0[i] - h * dt[i]).collect();
            rs.push(norm(&r));
        }
        out.push(verdict(format!("∂F/∂{name} · t"), psteps, rs, norm(&f0)));
    }
    Ok(out)
}
