use optc::diag::*;
use optc::ir::*;

fn compile(src: &str) -> (optc::check::Model, Program, Vec<Vec<f64>>) {
    let mut sources = Sources::new();
    let f = sources.add("t.opt", None, src);
    let p = optc::syntax::parse(src, f).unwrap();
    let (m, _) = optc::check::check(&p, f, &mut sources, &Default::default())
        .map_err(|e| render_all(&e.0, &sources, RenderStyle::Plain))
        .unwrap();
    let mut prog = Program::new(&m);
    let pv = param_values(&m, &mut prog).unwrap();
    (m, prog, pv)
}

#[test]
fn ridge_grad() {
    let src = "param X: real[3,2] = [[1,2],[3,4],[5,6]]\nparam y: real[3] = [1,2,4]\nparam lambda = 1\nvar w: real[2]\nlet r = X*w - y\nminimize loss = 0.5*dot(r, r) + 0.5*lambda*dot(w, w)\n";
    let (m, mut prog, pv) = compile(src);
    let obj = m.objective.as_ref().unwrap().expr.clone();
    let mut lw = Lowerer::new(&m, &mut prog);
    let f = lw.scalar(&obj).unwrap();
    let wt = prog.vars[0];
    let gr = optc::diff::grad(&mut prog.graph, f, wt);
    let mut pr = Printer::new(&prog.graph);
    println!("f = {}", pr.expr(f));
    println!("grad = {}", pr.tensor(&gr));
    let w = vec![0.3, -0.2];
    let mut tv = TensorValues::new(&prog.graph);
    for (k, v) in pv.iter().enumerate() {
        tv.set(prog.params[k], v);
    }
    tv.set(wt, &w);
    let mut ev = Evaluator::new(&prog.graph, &tv);
    let gv = ev.tensor(&gr).unwrap();
    // closed form
    let x = [[1., 2.], [3., 4.], [5., 6.]];
    let y = [1., 2., 4.];
    let r: Vec<f64> = (0..3)
        .map(|i| x[i][0] * w[0] + x[i][1] * w[1] - y[i])
        .collect();
    let g: Vec<f64> = (0..2)
        .map(|j| (0..3).map(|i| x[i][j] * r[i]).sum::<f64>() + w[j])
        .collect();
    println!("{gv:?} {g:?}");
    for j in 0..2 {
        assert!((gv[j] - g[j]).abs() < 1e-12);
    }
    // hessian
    let h = optc::diff::grad(&mut prog.graph, gr.body, wt);
    let mut pr = Printer::new(&prog.graph);
    println!("hess = {}", pr.tensor(&h));
}

#[test]
fn pairwise_grad() {
    let src = "dim N = 4\nparam sigma = 1.0\nvar q: real[N, 2] = [[0,0],[1.1,0],[0,1.2],[1.3,1.1]]\nfn lj(r2) = 4*((sigma^2/r2)^6 - (sigma^2/r2)^3)\nminimize energy = sum(i in 1..N, j in i+1..N) lj(sum(k in 1..2) (q[i,k] - q[j,k])^2)\n";
    let (m, mut prog, pv) = compile(src);
    let obj = m.objective.as_ref().unwrap().expr.clone();
    let starts = var_starts(&m, &mut prog, &pv).unwrap();
    let mut lw = Lowerer::new(&m, &mut prog);
    let f = lw.scalar(&obj).unwrap();
    let qt = prog.vars[0];
    let gr = optc::diff::grad(&mut prog.graph, f, qt);
    let mut pr = Printer::new(&prog.graph);
    println!("grad = {}", pr.tensor(&gr));
    let eval = |prog: &Program, q: &[f64]| {
        let mut tv = TensorValues::new(&prog.graph);
        for (k, v) in pv.iter().enumerate() {
            tv.set(prog.params[k], v);
        }
        tv.set(qt, q);
        let mut ev = Evaluator::new(&prog.graph, &tv);
        (ev.eval(f).unwrap(), ev.tensor(&gr).unwrap())
    };
    let q0 = starts[0].clone();
    let (_, g) = eval(&prog, &q0);
    for k in 0..8 {
        let h = 1e-6;
        let mut qp = q0.clone();
        qp[k] += h;
        let mut qm = q0.clone();
        qm[k] -= h;
        let fd = (eval(&prog, &qp).0 - eval(&prog, &qm).0) / (2.0 * h);
        println!("{k}: {} {}", g[k], fd);
        assert!((g[k] - fd).abs() < 1e-5 * (1.0 + fd.abs()));
    }
}

#[test]
fn kernels() {
    let src = "dim m = 5\ndim n = 3\nparam X: real[m,n] = [[1,2,3],[3,4,1],[5,6,0],[1,1,1],[2,0,1]]\nparam y: real[m] = [1,2,4,0,1]\nparam lambda = 1\nvar w: real[n] = [0.1, 0.2, -0.3]\nlet r = X*w - y\nminimize loss = 0.5*dot(r, r) + 0.5*lambda*dot(w, w)\n";
    let (m, mut prog, pv) = compile(src);
    let starts = var_starts(&m, &mut prog, &pv).unwrap();
    let obj = m.objective.as_ref().unwrap().expr.clone();
    let mut lw = Lowerer::new(&m, &mut prog);
    let f = lw.scalar(&obj).unwrap();
    let wt = prog.vars[0];
    let gr = optc::diff::grad(&mut prog.graph, f, wt);
    let outs = vec![
        optc::kernel::Output {
            name: "f".into(),
            expr: TensorExpr {
                shape: vec![],
                vars: vec![],
                body: f,
            },
        },
        optc::kernel::Output {
            name: "g".into(),
            expr: gr.clone(),
        },
    ];
    let k = optc::kernel::schedule(&prog.graph, &outs, "fg").unwrap();
    println!("{}", optc::kernel::print_kernel(&k, &prog.graph));
    optc::kernel::verify(&k).unwrap();
    let mut o0 = vec![0.0];
    let mut o1 = vec![0.0; 3];
    let pvr = &pv;
    let prr = &prog;
    let st = &starts;
    let input = move |t: TensorId| -> Option<&[f64]> {
        if let Some(p) = prr.params.iter().position(|&x| x == t) {
            return Some(&pvr[p]);
        }
        if t == prr.vars[0] {
            return Some(&st[0]);
        }
        None
    };
    let flops = optc::interp::run(&k, &input, &mut [&mut o0, &mut o1]).unwrap();
    let mut tv = TensorValues::new(&prog.graph);
    for (k, v) in pv.iter().enumerate() {
        tv.set(prog.params[k], v);
    }
    tv.set(wt, &starts[0]);
    let mut ev = Evaluator::new(&prog.graph, &tv);
    let g2 = ev.tensor(&gr).unwrap();
    println!("{o0:?} {o1:?} {g2:?} flops {flops}");
    assert!((ev.eval(f).unwrap() - o0[0]).abs() < 1e-12);
}

#[test]
fn offset_guard() {
    let src = "dim n = 5\nparam y: real[n] = [1,2,3,4,5]\nvar x: real[n] = [0.5,0.1,0.2,0.3,0.4]\nminimize sum(i in 1..n-1) y[i]*(x[i+1] - x[i])^2\n";
    let (m, mut prog, pv) = compile(src);
    let starts = var_starts(&m, &mut prog, &pv).unwrap();
    let obj = m.objective.as_ref().unwrap().expr.clone();
    let mut lw = Lowerer::new(&m, &mut prog);
    let f = lw.scalar(&obj).unwrap();
    let xt = prog.vars[0];
    let gr = optc::diff::grad(&mut prog.graph, f, xt);
    let mut pr = Printer::new(&prog.graph);
    println!("grad = {}", pr.tensor(&gr));
    let outs = vec![optc::kernel::Output {
        name: "g".into(),
        expr: gr.clone(),
    }];
    let k = optc::kernel::schedule(&prog.graph, &outs, "g").unwrap();
    println!("{}", optc::kernel::print_kernel(&k, &prog.graph));
    optc::kernel::verify(&k).unwrap();
    let mut o1 = vec![0.0; 5];
    let input = |t: TensorId| -> Option<&[f64]> {
        if t == prog.params[0] {
            Some(&pv[0])
        } else if t == xt {
            Some(&starts[0])
        } else {
            None
        }
    };
    optc::interp::run(&k, &input, &mut [&mut o1]).unwrap();
    let x = &starts[0];
    let y = &pv[0];
    let mut g = vec![0.0; 5];
    for i in 0..4 {
        let d = x[i + 1] - x[i];
        g[i + 1] += 2.0 * y[i] * d;
        g[i] -= 2.0 * y[i] * d;
    }
    println!("{o1:?} {g:?}");
    for i in 0..5 {
        assert!((o1[i] - g[i]).abs() < 1e-12);
    }
}
