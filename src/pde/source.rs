//! A `pde` block turned into `.opt` programs: the network energy (for training), its H¹
//! metric (for the natural gradient), and the Euler–Lagrange forms (for `emit --euler`).
//! Writing them in the language means the checker, symbolic differentiation and the JIT do
//! all the calculus.

use crate::api::Model;
use crate::check::{Pde, PdeBoundary, PdeDomain};
use crate::diag::{Code, Diagnostic};
use crate::syntax::ast::{self, PdeFnKind, PdeItem, StmtKind};
use std::fmt::Write as _;

/// Activation functions of the network, with their derivatives written in the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    Cos,
    Softplus,
    Sigmoid,
}

impl Activation {
    pub fn parse(s: &str) -> Option<Activation> {
        Some(match s {
            "tanh" => Activation::Tanh,
            "cos" => Activation::Cos,
            "softplus" => Activation::Softplus,
            "sigmoid" => Activation::Sigmoid,
            _ => return None,
        })
    }
    /// The name a file writes.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Cos => "cos",
            Activation::Softplus => "softplus",
            Activation::Sigmoid => "sigmoid",
        }
    }
    /// σ(z) and σ'(z) as expressions of the text `z`.
    fn forms(self, z: &str) -> (String, String) {
        match self {
            Activation::Tanh => (format!("tanh({z})"), format!("(1 - tanh({z})^2)")),
            Activation::Cos => (format!("cos({z})"), format!("(-sin({z}))")),
            Activation::Softplus => (format!("softplus({z})"), format!("sigmoid({z})")),
            Activation::Sigmoid => (
                format!("sigmoid({z})"),
                format!("(sigmoid({z})*(1 - sigmoid({z})))"),
            ),
        }
    }
}

/// The pieces of a pde block that the generated programs use.
pub struct PdeSource {
    /// Declarations of the file the pde functions may use (dims, params, fns, lets, `use`),
    /// and the pde block's own functions, lets and params, as top-level statements.
    pub prefix: String,
    pub dim: usize,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub lagrangian: String,
    pub source: Option<String>,
    pub exact: Option<String>,
    /// A hard Dirichlet condition u = g: the network is u = g + φ·N with φ vanishing on
    /// the boundary (`nn_g`, `nn_phi` are among the prefix's fns).
    pub dirichlet: bool,
    /// A periodic boundary: the network sees Fourier features cos ω(x − lo), sin ω(x − lo)
    /// (ω = 2π / period per axis) instead of x, so u is periodic by construction.
    pub periodic: bool,
    /// A penalized Dirichlet condition: its weight w, the energy gaining
    /// w ∫_∂Ω (u − g)² dS on boundary points `nn_XB` with weights `nn_qB` (`nn_g` is among
    /// the prefix's fns).
    pub penalty: Option<f64>,
    /// Boundary points of the penalty's rule (set by the trainer, which picks the rule).
    pub boundary_points: usize,
}

impl PdeSource {
    /// Inputs of the hidden layer: d coordinates, or 2d Fourier features.
    pub fn inputs(&self) -> usize {
        if self.periodic {
            2 * self.dim
        } else {
            self.dim
        }
    }

    /// The hidden pre-activation of unit `i` at the point whose coordinate k is `x(k)`.
    fn preactivation(&self, x: &dyn Fn(&str) -> String) -> String {
        let d = self.dim;
        if self.periodic {
            let (c, s) = self.fourier(&x("k"));
            format!("sum(k in 1..{d}) (nn_W[i, k]*{c} + nn_W[i, k + {d}]*{s}) + nn_b[i]")
        } else {
            format!("sum(k in 1..{d}) nn_W[i, k]*{} + nn_b[i]", x("k"))
        }
    }

    /// cos and sin of ω_k (x_k − lo_k) for the coordinate text `xk` (axis index `k`).
    fn fourier(&self, xk: &str) -> (String, String) {
        let arg = format!("nn_OM[k]*({xk} - nn_LO[k])");
        (format!("cos({arg})"), format!("sin({arg})"))
    }
}

/// Collects the declarations a pde block's functions can see, and names its functions.
pub fn pde_source(model: &Model, pde: &Pde) -> Result<PdeSource, Diagnostic> {
    let file = pde.span.file;
    let text = model.sources().text(file);
    let program = crate::syntax::parse(text, file).map_err(|d| {
        d.0.into_iter().next().unwrap_or_else(|| {
            Diagnostic::error(Code::Syntax, "the file no longer parses").at(pde.span, "here")
        })
    })?;
    let mut prefix = String::from("use nn\n");
    let (mut lagrangian, mut source, mut exact) = (None, None, None);
    let mut boundary_g: Option<String> = None;
    for stmt in &program.stmts {
        match &stmt.kind {
            StmtKind::Dim(_)
            | StmtKind::Param(_)
            | StmtKind::Fn(_)
            | StmtKind::Use(_)
            | StmtKind::Let(..) => {
                let _ = writeln!(prefix, "{stmt}");
            }
            StmtKind::Pde { name, items } if name.name == pde.name => {
                for item in items {
                    match item {
                        PdeItem::Fn(kind, def) => {
                            let _ = writeln!(prefix, "fn {def}");
                            let slot = match kind {
                                PdeFnKind::Lagrangian => &mut lagrangian,
                                PdeFnKind::Source => &mut source,
                                PdeFnKind::Exact => &mut exact,
                            };
                            *slot = Some(def.name.name.clone());
                        }
                        PdeItem::Let(n, _, e) => {
                            let _ = writeln!(prefix, "let {} = {e}", n.name);
                        }
                        PdeItem::Param(d) => {
                            let _ = writeln!(prefix, "param {d}");
                        }
                        PdeItem::Boundary(m) if m.name.name == "dirichlet" => {
                            let fn_names: Vec<&str> = items
                                .iter()
                                .filter_map(|i| match i {
                                    PdeItem::Fn(_, f) => Some(f.name.name.as_str()),
                                    _ => None,
                                })
                                .collect();
                            boundary_g = m.args.iter().find(|a| a.name.is_none()).map(|a| match &a
                                .value
                                .kind
                            {
                                ast::ExprKind::Name(n) if fn_names.contains(&n.as_str()) => {
                                    format!("{n}(x)")
                                }
                                _ => format!("{}", a.value),
                            });
                        }
                        PdeItem::Domain(_) | PdeItem::Boundary(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
    let d = pde.dim;
    let (lo, hi) = match &pde.domain {
        PdeDomain::Cube => (vec![0.0; d], vec![1.0; d]),
        PdeDomain::Box { lo, hi } => (lo.clone(), hi.clone()),
    };
    let periodic = matches!(pde.boundary, PdeBoundary::Periodic);
    let penalty = match (&pde.boundary, &boundary_g) {
        (
            PdeBoundary::Dirichlet {
                penalty: Some(w), ..
            },
            Some(g),
        ) => {
            let _ = writeln!(prefix, "fn nn_g(x) = {g}");
            Some(*w)
        }
        _ => None,
    };
    let dirichlet = match (&pde.boundary, boundary_g) {
        (PdeBoundary::Dirichlet { penalty: None, .. }, Some(g)) => {
            // g̃ = g extended inside by the same formula; φ = Π (x − lo)(hi − x).
            let phi: Vec<String> = (0..d)
                .map(|k| format!("(x[{}] - {:?})*({:?} - x[{}])", k + 1, lo[k], hi[k], k + 1))
                .collect();
            let _ = writeln!(prefix, "fn nn_g(x) = {g}");
            let _ = writeln!(prefix, "fn nn_phi(x) = {}", phi.join("*"));
            true
        }
        _ => false,
    };
    let lagrangian = lagrangian.ok_or_else(|| {
        Diagnostic::error(Code::Syntax, "the pde block has no lagrangian").at(pde.span, "here")
    })?;
    Ok(PdeSource {
        prefix,
        dim: d,
        lo,
        hi,
        lagrangian,
        source,
        exact,
        dirichlet,
        periodic,
        penalty,
        boundary_points: 0,
    })
}

/// `x_s` as a vector literal of the language.
fn row(d: usize) -> String {
    format!("[nn_X[s, k] for k in 1..{d}]")
}

/// The network and its input gradient at the samples `nn_X`.
fn network(
    src: &PdeSource,
    samples: usize,
    width: usize,
    act: Activation,
    fixed_inner: bool,
) -> String {
    let d = src.dim;
    let inner = if fixed_inner { "param" } else { "var" };
    let (sig, dsig) = act.forms("nn_Z[s, i]");
    let (u, g) = if src.dirichlet {
        ("nn_N", "nn_GN")
    } else {
        ("nn_U", "nn_G")
    };
    let din = src.inputs();
    let mut s = format!(
        "dim nn_S = {samples}, nn_H = {width}\n\
         param nn_X: real[nn_S, {d}] = 0\n\
         param nn_q: real[nn_S] = 0\n\
         {inner} nn_W: real[nn_H, {din}] = 0\n\
         {inner} nn_b: real[nn_H] = 0\n\
         var nn_a: real[nn_H]\n\
         var nn_c\n"
    );
    if src.periodic {
        let list = |v: Vec<f64>| {
            let t: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", t.join(", "))
        };
        let om = (0..d)
            .map(|k| 2.0 * std::f64::consts::PI / (src.hi[k] - src.lo[k]))
            .collect();
        let _ = writeln!(s, "param nn_OM: real[{d}] = {}", list(om));
        let _ = writeln!(s, "param nn_LO: real[{d}] = {}", list(src.lo.clone()));
    }
    let z = src.preactivation(&|k| format!("nn_X[s, {k}]"));
    let _ = writeln!(s, "let nn_Z = [{z} for s in 1..nn_S, i in 1..nn_H]");
    let _ = writeln!(
        s,
        "let {u} = [sum(i in 1..nn_H) nn_a[i]*{sig} + nn_c for s in 1..nn_S]"
    );
    // ∂z/∂x_k: W[i, k], or for Fourier features ω_k (W[i, k + d] cos − W[i, k] sin).
    let dz = if src.periodic {
        let (c, sn) = src.fourier("nn_X[s, k]");
        format!("nn_OM[k]*(nn_W[i, k + {d}]*{c} - nn_W[i, k]*{sn})")
    } else {
        "nn_W[i, k]".to_string()
    };
    let _ = writeln!(
        s,
        "let {g} = [sum(i in 1..nn_H) nn_a[i]*{dsig}*{dz} for s in 1..nn_S, k in 1..{d}]"
    );
    if src.penalty.is_some() {
        // The network at the boundary points.
        let zb = src.preactivation(&|k| format!("nn_XB[r, {k}]"));
        let (sb, _) = act.forms(&zb);
        let _ = writeln!(
            s,
            "dim nn_SB = {}\nparam nn_XB: real[nn_SB, {d}] = 0\nparam nn_qB: real[nn_SB] = 0\n\
             let nn_UB = [sum(i in 1..nn_H) nn_a[i]*{sb} + nn_c for r in 1..nn_SB]",
            src.boundary_points.max(1)
        );
    }
    if src.dirichlet {
        // u = g + φ N, ∇u = ∇g + ∇φ N + φ ∇N; ∇g and ∇φ are symbolic gradients in x.
        let x = row(d);
        let _ = writeln!(s, "let nn_PH = [nn_phi({x}) for s in 1..nn_S]");
        let _ = writeln!(s, "let nn_GPH = grad(sum(s in 1..nn_S) nn_phi({x}), nn_X)");
        let _ = writeln!(s, "let nn_GV = [nn_g({x}) for s in 1..nn_S]");
        let _ = writeln!(s, "let nn_GG = grad(sum(s in 1..nn_S) nn_g({x}), nn_X)");
        let _ = writeln!(
            s,
            "let nn_U = [nn_GV[s] + nn_PH[s]*nn_N[s] for s in 1..nn_S]"
        );
        let _ = writeln!(
            s,
            "let nn_G = [nn_GG[s, k] + nn_GPH[s, k]*nn_N[s] + nn_PH[s]*nn_GN[s, k] \
             for s in 1..nn_S, k in 1..{d}]"
        );
    }
    s
}

/// The integrand L(x, u, p) − f(x) u at sample s, with u, p given as texts.
fn integrand(src: &PdeSource, u: &str, p: &str) -> String {
    let x = row(src.dim);
    let l = format!("{}({x}, {u}, {p})", src.lagrangian);
    match &src.source {
        Some(f) => format!("{l} - {f}({x})*{u}"),
        None => l,
    }
}

/// The energy program: `minimize nn_E`, with the exact solution's values and gradients and
/// its energy as lets when `exact` is given.
/// What the generated energy program carries besides the energy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extras {
    /// Nothing (Adam).
    None,
    /// Jacobians and ∂²L for the natural gradients.
    SecondOrder,
    /// Inner weights as params: the energy is a function of (a, c) alone (random features).
    FixedInner,
}

pub fn energy_program(
    src: &PdeSource,
    samples: usize,
    width: usize,
    act: Activation,
    extras: Extras,
) -> String {
    let second_order = extras == Extras::SecondOrder;
    let d = src.dim;
    let mut s = src.prefix.clone();
    s += &network(src, samples, width, act, extras == Extras::FixedInner);
    if let Some(e) = &src.exact {
        let x = row(d);
        let _ = writeln!(s, "let nn_EX = [{e}({x}) for s in 1..nn_S]");
        let _ = writeln!(s, "let nn_EG = grad(sum(s in 1..nn_S) {e}({x}), nn_X)");
        let i = integrand(src, "nn_EX[s]", &format!("[nn_EG[s, k] for k in 1..{d}]"));
        let _ = writeln!(s, "let nn_Estar = sum(s in 1..nn_S) nn_q[s]*({i})");
    }
    let i = integrand(src, "nn_U[s]", &format!("[nn_G[s, k] for k in 1..{d}]"));
    // Random features are nearly collinear: a small ridge term keeps the outer problem
    // well-posed (its weight is reported with the result).
    let ridge = if extras == Extras::FixedInner {
        "param nn_ridge = 1e-6\n"
    } else {
        ""
    };
    let penalty = if extras == Extras::FixedInner {
        " + 0.5*nn_ridge*dot(nn_a, nn_a)"
    } else {
        ""
    };
    let boundary = match src.penalty {
        Some(w) => format!(
            " + {w:?}*sum(r in 1..nn_SB) nn_qB[r]*(nn_UB[r] - nn_g([nn_XB[r, k] for k in 1..{d}]))^2"
        ),
        None => String::new(),
    };
    let objective =
        format!("{ridge}minimize nn_E = sum(s in 1..nn_S) nn_q[s]*({i}){boundary}{penalty}\n");
    if extras == Extras::FixedInner {
        // u at probe points (the slice), for its implicit derivatives in the params.
        let z = src.preactivation(&|k| format!("nn_XP[t, {k}]"));
        let (sig, _) = act.forms(&z);
        let n = format!("(sum(i in 1..nn_H) nn_a[i]*{sig} + nn_c)");
        let xp = format!("[nn_XP[t, k] for k in 1..{d}]");
        let u = if src.dirichlet {
            format!("nn_g({xp}) + nn_phi({xp})*{n}")
        } else {
            n
        };
        let _ = writeln!(
            s,
            "dim nn_P = {}\nparam nn_XP: real[nn_P, {d}] = 0\nlet nn_UP = [{u} for t in 1..nn_P]",
            super::train::SLICE_POINTS
        );
    }
    if !second_order {
        return s + &objective;
    }
    // The Jacobians of the network's values and input gradients in its weights, for the H¹
    // metric of the natural gradient.
    let mut outs = vec![("U", "nn_U"), ("G", "nn_G")];
    if src.penalty.is_some() {
        outs.push(("UB", "nn_UB"));
    }
    for (out, of) in outs {
        for v in ["W", "b", "a", "c"] {
            let _ = writeln!(s, "let nn_J{out}{v} = jac({of}, nn_{v})");
        }
    }
    s += &lagrangian_derivatives(src);
    s + &objective
}

/// L's derivatives in (u, p) at each point, at given values `nn_PU`, `nn_PG` (set to the
/// network's u and ∇u): `nn_Lu`, `nn_Lp`, and the second derivatives `nn_Cuu`, `nn_Cup`,
/// `nn_Cpp`. Each term of Σ_t L(x_t, PU_t, PG_t) depends on its own point only, so gradients
/// of the sum are the per-point derivatives.
fn lagrangian_derivatives(src: &PdeSource) -> String {
    let d = src.dim;
    let x = format!("[nn_X[t, k] for k in 1..{d}]");
    let mut s = format!("param nn_PU: real[nn_S] = 0\nparam nn_PG: real[nn_S, {d}] = 0\n");
    let _ = writeln!(
        s,
        "let nn_Lsum = sum(t in 1..nn_S) {}({x}, nn_PU[t], [nn_PG[t, k] for k in 1..{d}])",
        src.lagrangian
    );
    let _ = writeln!(s, "let nn_Lu = grad(nn_Lsum, nn_PU)");
    let _ = writeln!(s, "let nn_Lp = grad(nn_Lsum, nn_PG)");
    let _ = writeln!(s, "let nn_Cuu = grad(sum(s in 1..nn_S) nn_Lu[s], nn_PU)");
    let _ = writeln!(s, "let nn_Cup = grad(sum(s in 1..nn_S) nn_Lu[s], nn_PG)");
    let _ = writeln!(
        s,
        "let nn_Cpp = [grad(sum(s in 1..nn_S) nn_Lp[s, j], nn_PG) for j in 1..{d}]"
    );
    s
}

/// The energy program with the Euler–Lagrange residual of the network at its points:
/// `nn_R[s]` = −div ∂L/∂p + ∂L/∂u − f at x_s, with
/// div ∂L/∂p = Σ_k ∂_{x_k}L_{p_k} + L_{p_k u} ∂_k u + Σ_j L_{p_k p_j} ∂_j∂_k u.
/// Each point's u and ∇u depend on its own coordinates only, so the Hessian of u is the
/// gradient of Σ_s (∇u)_{s,j} in `nn_X`; L's derivatives are taken at params `nn_PU`,
/// `nn_PG`, which the caller sets to the network's u and ∇u. `nn_F` is f at the points.
pub fn residual_program(src: &PdeSource, samples: usize, width: usize, act: Activation) -> String {
    let d = src.dim;
    let mut s = energy_program(src, samples, width, act, Extras::None);
    s += &lagrangian_derivatives(src);
    for (name, of, wrt) in [("nn_Lpx", "nn_Lp", "nn_X"), ("nn_Hu", "nn_G", "nn_X")] {
        let _ = writeln!(
            s,
            "let {name} = [grad(sum(s in 1..nn_S) {of}[s, j], {wrt}) for j in 1..{d}]"
        );
    }
    let x = row(d);
    let f = match &src.source {
        Some(f) => {
            let _ = writeln!(s, "let nn_F = [{f}({x}) for s in 1..nn_S]");
            " - nn_F[s]"
        }
        None => "",
    };
    let _ = writeln!(
        s,
        "let nn_R = [-(sum(k in 1..{d}) (nn_Lpx[k, s, k] + nn_Cup[s, k]*nn_G[s, k]) \
         + sum(j in 1..{d}, k in 1..{d}) nn_Cpp[k, s, j]*nn_Hu[j, s, k]) + nn_Lu[s]{f} \
         for s in 1..nn_S]"
    );
    s
}

/// Checks ∂²L/∂p² for positive semidefiniteness at sampled points of the domain (u and p
/// drawn from normal distributions); `None` when no sample shows a negative eigenvalue.
pub fn convexity_warning(
    model: &Model,
    pde: &Pde,
    span: crate::diag::Span,
) -> Result<Option<Diagnostic>, Diagnostic> {
    let src = pde_source(model, pde)?;
    let d = src.dim;
    let call = format!("{}(el_x, el_u, el_p)", src.lagrangian);
    let mut text = src.prefix.clone();
    let _ = writeln!(
        text,
        "param el_x: real[{d}] = 0.5\nparam el_u = 0\nparam el_p: real[{d}] = 0\n\
         let el_Lpp = hess({call}, el_p)"
    );
    let mut m = compile(model, &text, pde.span)?;
    let lpp = m
        .checked()
        .lets
        .iter()
        .find(|l| l.name == "el_Lpp")
        .map(|l| l.expr.clone())
        .ok_or_else(|| internal_msg("no Hessian", pde.span))?;
    let e = m.lower(&lpp)?;
    let mut rng = super::quadrature::Rng(0x0e11_1971);
    for _ in 0..32 {
        let x: Vec<f64> = (0..d)
            .map(|k| src.lo[k] + (src.hi[k] - src.lo[k]) * rng.unit())
            .collect();
        let u = 2.0 * rng.normal();
        let p: Vec<f64> = (0..d).map(|_| 3.0 * rng.normal()).collect();
        let set = |m: &mut Model, n: &str, v: &[f64]| {
            m.set_param(n, v).map_err(|e| internal_msg(&e, pde.span))
        };
        set(&mut m, "el_x", &x)?;
        set(&mut m, "el_u", &[u])?;
        set(&mut m, "el_p", &p)?;
        let h = m
            .evaluate(std::slice::from_ref(&e))
            .map_err(|e| internal_msg(&e, pde.span))?
            .remove(0);
        if h.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let mut dense = crate::solve::linalg::Dense::zeros(d, d);
        let scale = h.iter().fold(0.0_f64, |a, v| a.max(v.abs())).max(1e-300);
        for i in 0..d {
            for j in 0..d {
                // A small shift: semidefinite Hessians (zero eigenvalues) pass.
                let shift = if i == j { 1e-10 * scale } else { 0.0 };
                dense.set(i, j, h[i * d + j] + shift);
            }
        }
        let psd =
            crate::solve::linalg::Factor::new(&dense, crate::solve::linalg::DenseKind::Cholesky)
                .is_some();
        if !psd {
            let fmt = |v: &[f64]| {
                let s: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
                format!("[{}]", s.join(", "))
            };
            return Ok(Some(
                Diagnostic::warning(
                    Code::NotElliptic,
                    format!(
                        "∂²L/∂p² of `{}` is not positive semidefinite at x = {}, u = {u:.3}, p = {}",
                        pde.name,
                        fmt(&x),
                        fmt(&p)
                    ),
                )
                .at(span, "training may diverge")
                .help("the energy needs L convex in p (an elliptic Euler–Lagrange equation) to have a minimum"),
            ));
        }
    }
    Ok(None)
}

fn internal_msg(m: &str, span: crate::diag::Span) -> Diagnostic {
    Diagnostic::error(Code::Unsupported, format!("checking the pde block: {m}"))
        .at(span, "this pde block")
}

/// The Euler–Lagrange equation of the block, −div(∂L/∂p) + ∂L/∂u = f, with the first and
/// second partial derivatives of L derived symbolically.
pub fn euler_lagrange(model: &Model, name: &str) -> Result<String, Diagnostic> {
    let pde = model
        .checked()
        .pdes
        .iter()
        .find(|p| p.name == name)
        .or_else(|| model.checked().pdes.first())
        .cloned()
        .ok_or_else(|| {
            Diagnostic::error(Code::NothingToSolve, "the file has no pde block")
                .help("declare one: `pde NAME { domain cube(d) ... }`")
        })?;
    let src = pde_source(model, &pde)?;
    let d = src.dim;
    let call = format!("{}(el_x, el_u, el_p)", src.lagrangian);
    let mut text = src.prefix.clone();
    let _ = writeln!(
        text,
        "param el_x: real[{d}] = 0.5\nparam el_u = 0.5\nparam el_p: real[{d}] = 0.5\n\
         let el_L = {call}\n\
         let el_Lu = grad({call}, el_u)\n\
         let el_Lp = grad({call}, el_p)\n\
         let el_Luu = grad(grad({call}, el_u), el_u)\n\
         let el_Lup = grad(grad({call}, el_u), el_p)\n\
         let el_Lpp = hess({call}, el_p)"
    );
    let mut m = compile(model, &text, pde.span)?;
    let lets = m.checked().lets.clone();
    let mut forms = Vec::new();
    for l in lets.iter().filter(|l| l.name.starts_with("el_")) {
        let e = m.lower(&l.expr)?;
        let g = &m.program().graph;
        let mut p = crate::ir::Printer::new(g);
        p.share(&[e.body], &e.vars);
        let body = p.tensor(&e);
        let mut s = body;
        for (n, def) in &p.defs {
            s += &format!("  where {n} = {def}");
        }
        let s = s
            .replace("el_x", "x")
            .replace("el_u", "u")
            .replace("el_p", "p");
        forms.push((l.name.clone(), s));
    }
    let get = |n: &str| {
        forms
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let f = match &src.source {
        Some(f) => format!("{f}(x)"),
        None => "0".into(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pde {}: Euler–Lagrange equation of E(u) = ∫ L(x, u, ∇u) − f u over {}",
        pde.name,
        match &pde.domain {
            PdeDomain::Cube => format!("[0, 1]^{d}"),
            PdeDomain::Box { lo, hi } => format!("the box {lo:?} – {hi:?}"),
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  −div(∂L/∂p) + ∂L/∂u = {f},   with p = ∇u");
    let _ = writeln!(out);
    let _ = writeln!(out, "  L       = {}", get("el_L"));
    let _ = writeln!(out, "  ∂L/∂u   = {}", get("el_Lu"));
    let _ = writeln!(out, "  ∂L/∂p   = {}", get("el_Lp"));
    let _ = writeln!(out, "  ∂²L/∂u² = {}", get("el_Luu"));
    let _ = writeln!(out, "  ∂²L/∂u∂p = {}", get("el_Lup"));
    let _ = writeln!(out, "  ∂²L/∂p² = {}", get("el_Lpp"));
    let _ = writeln!(out);
    let bc = match &pde.boundary {
        PdeBoundary::Neumann => "∂L/∂p · n = 0 on the boundary (natural)".to_string(),
        PdeBoundary::Dirichlet { penalty: None, .. } => "u = g on the boundary".to_string(),
        PdeBoundary::Dirichlet {
            penalty: Some(w), ..
        } => format!(
            "∂L/∂p · n + 2·{w}·(u − g) = 0 on the boundary (the penalty {w}·∫(u − g)² dS; \
             u → g as the weight grows)"
        ),
        PdeBoundary::Periodic => "periodic (u and ∂L/∂p · n match on opposite faces)".to_string(),
    };
    let _ = writeln!(out, "  boundary: {bc}");
    Ok(out)
}

fn internal(e: &crate::CompileError, span: crate::diag::Span) -> Diagnostic {
    let first = e.diagnostics.iter().find(|d| d.is_error());
    if let Some(d) = first.filter(|d| d.code == Code::LimitExceeded) {
        return Diagnostic::error(
            Code::LimitExceeded,
            format!("the network for this pde block is too large: {}", d.message),
        )
        .at(span, "this pde block")
        .help("use fewer samples or a smaller width (the natural gradients also store Jacobians of S·d²·H entries; adam does not)");
    }
    let first = first.map(|d| d.message.clone()).unwrap_or_default();
    Diagnostic::error(
        Code::Unsupported,
        format!("the pde block could not be compiled for the network: {first}"),
    )
    .at(span, "this pde block")
    .help("the pde functions may use dims, params, fns and lets of the file, but not its vars")
}

/// Compiles a generated program with the file's options (its folder for `load`, its
/// `--dim`/`--set` overrides, limits and back end).
pub(crate) fn compile(
    model: &Model,
    text: &str,
    span: crate::diag::Span,
) -> Result<Model, Diagnostic> {
    let opts = crate::CompileOptions {
        file_name: Some("<pde network>".into()),
        ..model.options().clone()
    };
    Model::compile(text, &opts).map_err(|e| internal(&e, span))
}
