//! The Barron-network PDE driver on problems with closed forms (REFERENCE P1, P2, and a
//! Dirichlet problem): the energy gradient against finite differences, the Euler–Lagrange
//! printout, and training to a given accuracy.

#[path = "support/quiet.rs"]
mod quiet;
use optc::{CompileOptions, Model};
use quiet::run_quiet;
use std::f64::consts::PI;

/// P1 (screened Poisson) or P2 (with the quartic term) on [0, 1]^d, Neumann boundary,
/// u* = d^{-1/2} Σ cos(π xᵢ).
fn problem(d: usize, quartic: bool, using: &str) -> String {
    let (l, f) = if quartic {
        (
            "0.5*dot(p, p) + 0.5*u^2 + 0.25*u^4",
            "(pi^2 + 1)*ustar(x) + ustar(x)^3",
        )
    } else {
        ("0.5*dot(p, p) + 0.5*u^2", "(pi^2 + 1)*ustar(x)")
    };
    format!(
        "dim d = {d}\n\
         pde p {{\n\
           domain cube(d)\n\
           lagrangian L(x, u, p) = {l}\n\
           exact ustar(x) = sum(i in 1..d) cos(pi*x[i]) / sqrt(d)\n\
           source f(x) = {f}\n\
         }}\n\
         solve p using barron({using})\n"
    )
}

fn train(src: &str) -> optc::pde::PdeReport {
    let mut model = Model::compile(src, &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.render(optc::diag::RenderStyle::Plain)));
    let report = run_quiet(&mut model);
    assert_eq!(report.exit_code(), 0, "{:?}", report.diagnostics);
    report.pde.into_iter().next().expect("a pde report")
}

#[test]
fn the_energy_gradient_matches_finite_differences() {
    let base = Model::compile(&problem(2, true, ""), &CompileOptions::default()).expect("P2");
    for act in ["tanh", "cos", "softplus", "sigmoid"] {
        let text = optc::pde::energy_program(&base, "p", 7, 3, act).expect("generates");
        let mut m = Model::compile(&text, &CompileOptions::default()).expect("compiles");
        // Points and weights that are not a rule: the gradient identity holds for any.
        let pts: Vec<f64> = (0..14)
            .map(|k| ((k * 37 % 23) as f64 + 0.5) / 23.0)
            .collect();
        let wts: Vec<f64> = (0..7).map(|k| 0.1 + 0.02 * k as f64).collect();
        m.set_param("nn_X", &pts).expect("X");
        m.set_param("nn_q", &wts).expect("q");
        m.system_fns().expect("fns");
        let fns = m.fns().expect("fns");
        let n = fns.layout.n;
        let theta: Vec<f64> = (0..n).map(|k| ((k * 53 % 17) as f64 - 8.0) / 9.0).collect();
        let mut g = vec![0.0; n];
        fns.objective(&theta, m.state(), Some(&mut g)).expect("E");
        let h = 1e-5;
        for k in 0..n {
            let e = |t: f64| {
                let mut z = theta.clone();
                z[k] += t;
                fns.objective(&z, m.state(), None).expect("E")
            };
            let fd = (e(h) - e(-h)) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() <= 1e-7 * (1.0 + g[k].abs()),
                "{act}: ∂E/∂θ[{k}] = {} but finite differences give {fd}",
                g[k]
            );
        }
    }
}

#[test]
fn euler_lagrange_forms_of_p1_and_p2() {
    for (name, quartic) in [("p1", false), ("p2", true)] {
        let mut m =
            Model::compile(&problem(2, quartic, ""), &CompileOptions::default()).expect("compiles");
        let text = optc::pde::euler_lagrange(&m, "p").expect("derives");
        insta::assert_snapshot!(format!("euler_{name}"), text);
        // The same through the CLI's form table.
        assert_eq!(optc::cli::emit_form(&mut m, "euler").expect("emits"), text);
    }
}

#[test]
fn p1_in_one_and_two_dimensions_by_natural_gradient() {
    let exact = -(PI * PI + 1.0) / 4.0;
    for (d, using) in [
        (
            1,
            "width = 16, samples = 64, steps = 100, method = natural_gradient",
        ),
        (
            2,
            "width = 16, samples = 256, steps = 60, method = natural_gradient",
        ),
    ] {
        let r = train(&problem(d, false, using));
        let l2 = r.rel_l2.expect("an exact solution was given");
        assert!(l2 <= 1e-3, "d = {d}: relative L² error {l2}");
        // E(u) − E(u*) = ½‖u − u*‖²_{H¹} ≥ 0, and E(u*) = −(π² + 1)/4 in every dimension.
        assert!(
            (r.energy - exact).abs() < 1e-4,
            "d = {d}: energy {}",
            r.energy
        );
        let estar = r.exact_energy.expect("exact energy");
        assert!(
            (estar - exact).abs() < 1e-8,
            "d = {d}: quadrature of E(u*) {estar}"
        );
        assert!(r.energy >= estar - 1e-12, "below the minimum: {}", r.energy);
    }
}

#[test]
fn dirichlet_and_neumann_in_one_dimension() {
    // −u'' = π² sin(πx) with u(0) = 0, u(1) = 1: u = sin(πx) + x.
    let dirichlet = "pde s {\n  domain cube(1)\n  lagrangian L(x, u, p) = 0.5*dot(p, p)\n\
                     source f(x) = pi^2*sin(pi*x[1])\n  exact u(x) = sin(pi*x[1]) + x[1]\n\
                     boundary dirichlet(x[1])\n}\n\
                     solve s using barron(width = 16, samples = 64, steps = 100)\n";
    let r = train(dirichlet);
    let l2 = r.rel_l2.expect("exact");
    assert!(l2 <= 1e-3, "Dirichlet: relative L² error {l2}");
    // −u'' + u = (π² + 1) cos(πx) with u'(0) = u'(1) = 0: u = cos(πx); the natural boundary
    // condition is not imposed on the network, it comes out of the energy.
    let neumann = "pde s {\n  domain cube(1)\n  lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2\n\
                   source f(x) = (pi^2 + 1)*cos(pi*x[1])\n  exact u(x) = cos(pi*x[1])\n}\n\
                   solve s using barron(width = 16, samples = 64, steps = 100)\n";
    let r = train(neumann);
    let l2 = r.rel_l2.expect("exact");
    assert!(l2 <= 1e-3, "Neumann: relative L² error {l2}");
}

#[test]
fn adam_lowers_the_energy() {
    let r = train(&problem(
        1,
        true,
        "width = 8, samples = 32, steps = 300, method = adam, lr = 0.02",
    ));
    let first = r.history.first().expect("history").1;
    assert!(r.energy < first, "{} is not below {first}", r.energy);
    assert!(r.energy >= r.exact_energy.expect("exact") - 1e-9);
}

#[test]
fn jit_and_interpreter_train_identically() {
    let src = problem(
        1,
        true,
        "width = 4, samples = 16, steps = 8, method = natural_gradient",
    );
    let run = |backend| {
        let opts = CompileOptions {
            backend,
            ..CompileOptions::default()
        };
        let mut model = Model::compile(&src, &opts).expect("compiles");
        let r = run_quiet(&mut model);
        r.pde.into_iter().next().expect("trained")
    };
    let (a, b) = (run(optc::Backend::Jit), run(optc::Backend::Interp));
    assert_eq!(a.energy.to_bits(), b.energy.to_bits());
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x.1.to_bits(), y.1.to_bits());
    }
}

#[test]
fn training_stops_at_the_time_cap() {
    let src = problem(2, true, "width = 32, samples = 1024, steps = 10000000");
    let mut opts = CompileOptions::default();
    opts.limits.max_solve_seconds = 0.5;
    let mut model = Model::compile(&src, &opts).expect("compiles");
    let r = run_quiet(&mut model);
    let p = r.pde.first().expect("a report at the cap");
    assert!(p.steps < 10_000_000);
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.message.contains("time limit")));
}

#[test]
fn the_energy_natural_gradient_solves_nonlinear_problems() {
    // P2 (u³) and a quasilinear Lagrangian, ½(1 + u²)|p|² + ½u², whose H¹ metric is not the
    // energy's Gauss–Newton matrix; u* = cos(πx).
    let r = train(&problem(
        1,
        true,
        "width = 16, samples = 64, steps = 200, method = energy_natural_gradient",
    ));
    let l2 = r.rel_l2.expect("exact");
    assert!(l2 <= 1e-5, "P2: relative L² error {l2}");
    let quasilinear = "pde q {\n  domain cube(1)\n\
        lagrangian L(x, u, p) = 0.5*(1 + u^2)*dot(p, p) + 0.5*u^2\n\
        exact us(x) = cos(pi*x[1])\n\
        source f(x) = (1 + us(x)^2)*pi^2*us(x) - us(x)*pi^2*sin(pi*x[1])^2 + us(x)\n}\n\
        solve q using barron(width = 16, samples = 64, steps = 200)\n";
    let r = train(quasilinear);
    assert_eq!(r.method, "adam+energy_natural_gradient");
    let l2 = r.rel_l2.expect("exact");
    assert!(l2 <= 1e-4, "quasilinear: relative L² error {l2}");
}

#[test]
fn random_features_and_the_implicit_derivatives_of_the_energy_and_of_u() {
    // P1 with the solution scaled by α: E*(α) = −α²(π² + 1)/4, so dE*/dα = −α(π² + 1)/2. The
    // outer weights solve a quadratic problem by Newton; dE/dα comes from the implicit
    // function theorem, and must match central differences of re-solved problems (the same
    // seed gives the same inner weights) to rounding, and the closed form to the network's
    // accuracy.
    let src = |alpha: f64| {
        format!(
            "param alpha = {alpha}\ndim d = 1\npde p {{\n  domain cube(d)\n\
             lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2\n\
             exact us(x) = alpha*cos(pi*x[1])\n  source f(x) = (pi^2 + 1)*us(x)\n}}\n\
             solve p using barron(width = 32, samples = 128, method = random_features)\n"
        )
    };
    let r = train(&src(1.0));
    assert_eq!(r.method, "random_features");
    assert!(r.rel_l2.expect("exact") < 1e-3);
    let (name, de) = r.sensitivities.first().cloned().expect("dE/dalpha");
    assert_eq!(name, "alpha");
    let h = 1e-4;
    let (up, down) = (train(&src(1.0 + h)), train(&src(1.0 - h)));
    let fd = (up.energy - down.energy) / (2.0 * h);
    assert!(
        (de - fd).abs() < 1e-6 * fd.abs(),
        "implicit {de}, finite differences {fd}"
    );
    // du/dα along the slice: central differences of the re-solved u, and the closed form
    // du*/dα = cos(πx).
    let (name, du) = r.slice_sensitivities.first().cloned().expect("du/dalpha");
    assert_eq!(name, "alpha");
    assert_eq!(du.len(), r.slice.len());
    for (k, dk) in du.iter().enumerate() {
        let x = r.slice[k].x;
        let fd = (up.slice[k].u - down.slice[k].u) / (2.0 * h);
        assert!((dk - fd).abs() < 1e-6, "x = {x}: {dk} vs {fd}");
        let closed = (PI * x).cos();
        assert!((dk - closed).abs() < 1e-2, "x = {x}: {dk} vs {closed}");
    }
    let closed = -(PI * PI + 1.0) / 2.0;
    assert!(
        (de - closed).abs() < 1e-3 * closed.abs(),
        "{de} vs {closed}"
    );
}

#[test]
fn scrambled_sobol_points_beat_monte_carlo_in_six_dimensions() {
    // The same network, steps and seed on fresh rules of 256 points: randomized quasi-Monte
    // Carlo estimates the energy with a far smaller spread, and trains further (measured:
    // 2.0e-2 against 1.2e-1). With 300 steps the optimizer, not the rule, limits both.
    let run = |q: &str| {
        train(&problem(
            6,
            false,
            &format!(
                "width = 16, samples = 256, steps = 1500, method = adam, lr = 0.03, quadrature = {q}"
            ),
        ))
    };
    let (s, m) = (run("sobol"), run("monte_carlo"));
    assert_eq!(s.quadrature, "sobol(256)");
    assert!(
        s.energy_stderr < 0.2 * m.energy_stderr,
        "standard error: sobol {:.2e}, monte carlo {:.2e}",
        s.energy_stderr,
        m.energy_stderr
    );
    let (es, em) = (s.rel_l2.expect("exact"), m.rel_l2.expect("exact"));
    assert!(
        es < 0.5 * em,
        "relative L2: sobol {es:.2e}, monte carlo {em:.2e}"
    );
}

#[test]
fn the_euler_lagrange_residual_matches_an_independent_computation() {
    // L = ½(1 + x + u²)u'² + ½u², f = 1 + x on [0, 1]: the residual
    // r = −((1 + 2uu')u' + (1 + x + u²)u'') + uu'² + u − f exercises every term (explicit x,
    // u and p dependence of ∂L/∂p). Its root-mean-square, from the reported weights with the
    // network's derivatives written out here and Simpson's rule on 4001 points, must equal
    // the reported one (a 64-point Gauss rule).
    let src = "pde q {\n  domain cube(1)\n  \
               lagrangian L(x, u, p) = 0.5*(1 + x[1] + u^2)*dot(p, p) + 0.5*u^2\n  \
               source f(x) = 1 + x[1]\n}\n\
               solve q using barron(width = 6, samples = 64, steps = 30, method = adam, lr = 0.05)\n";
    let r = train(src);
    let h = r.width;
    let (w, rest) = r.weights.split_at(h);
    let (b, rest) = rest.split_at(h);
    let (a, c) = rest.split_at(h);
    let residual = |x: f64| {
        let (mut u, mut du, mut d2u) = (c[0], 0.0, 0.0);
        for i in 0..h {
            let t = (w[i] * x + b[i]).tanh();
            u += a[i] * t;
            du += a[i] * w[i] * (1.0 - t * t);
            d2u += a[i] * w[i] * w[i] * (-2.0 * t * (1.0 - t * t));
        }
        -((1.0 + 2.0 * u * du) * du + (1.0 + x + u * u) * d2u) + u * du * du + u - (1.0 + x)
    };
    let n = 4000;
    let mut s = 0.0;
    for k in 0..=n {
        let wk = if k == 0 || k == n {
            1.0
        } else if k % 2 == 1 {
            4.0
        } else {
            2.0
        };
        s += wk * residual(k as f64 / n as f64).powi(2);
    }
    let rms = (s / (3.0 * n as f64)).sqrt();
    assert!(
        (rms - r.el_residual).abs() <= 1e-8 * rms,
        "independent {rms:.12e}, reported {:.12e}",
        r.el_residual
    );
    // Relative to ‖f‖ = (∫(1 + x)²)^½ = (7/3)^½.
    let rel = r.el_residual_rel.expect("a source");
    assert!((rel - r.el_residual / (7.0f64 / 3.0).sqrt()).abs() <= 1e-12 * rel);
}

#[test]
fn a_saved_network_reloads_to_the_same_energy() {
    // Train, write the network's file form, read it back, and evaluate it with 0 steps: the
    // energy on the same Gauss rule is the trained one. A network of another width is
    // refused with a diagnostic at the solve.
    let trained = train(&problem(1, true, "width = 8, samples = 48, steps = 40"));
    let text = optc::pde::Network::from_report(&trained)
        .to_json()
        .expect("consistent");
    let net = optc::pde::Network::from_json(&text).expect("reads back");
    let run_with = |using: &str| {
        let mut model =
            Model::compile(&problem(1, true, using), &CompileOptions::default()).expect("compiles");
        optc::run::execute(
            &mut model,
            &optc::run::RunOptions {
                quiet: true,
                networks: vec![net.clone()],
                ..Default::default()
            },
            &mut std::io::sink(),
        )
    };
    let r = run_with("width = 8, samples = 48, steps = 0");
    let e = r.pde[0].energy;
    assert!(
        (e - trained.energy).abs() <= 1e-12 * e.abs(),
        "{e} vs {}",
        trained.energy
    );
    assert_eq!(r.pde[0].weights, trained.weights);
    let r = run_with("width = 9, samples = 48, steps = 0");
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.diagnostics[0].code.as_str(), "E0313");
    assert!(
        r.diagnostics[0].message.contains("width 8"),
        "{}",
        r.diagnostics[0].message
    );
}

#[test]
fn a_periodic_boundary_trains_fourier_features() {
    // −u'' + u = f on [0, 1] with u* = sin 2πx + ½ cos 2πx: periodic, but u*'(0) = 2π ≠ 0,
    // so only the periodic problem has u* as its solution. Fourier features reach it; the
    // same block with a Neumann boundary converges to another function.
    let src = |boundary: &str| {
        format!(
            "pde ring {{\n  domain cube(1)\n  lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2\n  \
             exact us(x) = sin(2*pi*x[1]) + 0.5*cos(2*pi*x[1])\n  \
             source f(x) = (4*pi^2 + 1)*us(x)\n  boundary {boundary}\n}}\n\
             solve ring using barron(width = 8, samples = 64)\n"
        )
    };
    let p = train(&src("periodic"));
    assert!(p.periodic);
    assert_eq!(p.weights.len(), 8 * 2 + 8 + 8 + 1);
    assert!(p.rel_l2.expect("exact") < 1e-4, "{:?}", p.rel_l2);
    // The network is periodic: u(0) = u(1) on the slice.
    let (first, last) = (p.slice[0].u, p.slice[p.slice.len() - 1].u);
    assert!((first - last).abs() < 1e-12, "{first} vs {last}");
    let n = train(&src("neumann"));
    assert!(n.rel_l2.expect("exact") > 0.5, "{:?}", n.rel_l2);
}

#[test]
fn a_penalized_dirichlet_boundary_solves_the_robin_problem() {
    // E(u) = ∫ ½u'² + ½u² − f u + w[(u(0) − g(0))² + (u(1) − g(1))²] with g = u* = cos πx + x
    // and f = −u*'' + u*. Its minimizer is u* + A eˣ + B e⁻ˣ with the natural conditions
    // u'(0) = 2w(u(0) − g(0)), u'(1) = −2w(u(1) − g(1)); u*'(0) = u*'(1) = 1 give
    // A(1 − 2w) − B(1 + 2w) = −1 and A e(1 + 2w) + B(2w − 1)/e = −1.
    let w = 100.0;
    let src = format!(
        "pde rod {{\n  domain cube(1)\n  lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2\n  \
         exact us(x) = cos(pi*x[1]) + x[1]\n  source f(x) = (pi^2 + 1)*cos(pi*x[1]) + x[1]\n  \
         boundary dirichlet(us, penalty = {w})\n}}\n\
         solve rod using barron(width = 12, samples = 64)\n"
    );
    let r = train(&src);
    let e = 1f64.exp();
    let (a11, a12, a21, a22) = (
        1.0 - 2.0 * w,
        -(1.0 + 2.0 * w),
        e * (1.0 + 2.0 * w),
        (2.0 * w - 1.0) / e,
    );
    let det = a11 * a22 - a12 * a21;
    let (ca, cb) = ((-a22 + a12) / det, (-a11 + a21) / det);
    let robin = |x: f64| (PI * x).cos() + x + ca * x.exp() + cb * (-x).exp();
    let mut to_robin: f64 = 0.0;
    let mut robin_to_exact: f64 = 0.0;
    for s in &r.slice {
        to_robin = to_robin.max((s.u - robin(s.x)).abs());
        robin_to_exact = robin_to_exact.max((robin(s.x) - s.exact.expect("exact")).abs());
    }
    assert!(
        robin_to_exact > 1e-3,
        "the penalty changes the solution: {robin_to_exact:.2e}"
    );
    assert!(
        to_robin < 1e-4,
        "trained against the penalized solution: {to_robin:.2e}"
    );
}
