//! `optc emit`: the derived forms of a file, for reading.

use super::{compile, Common};
use crate::api::{Backend, Model};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Printer, TensorExpr};
use crate::system::{BlockKind, SystemKind};
use clap::Args;
use std::fmt::Write;

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(super) struct EmitWhat {
    /// The pointful IR of every let, objective, constraint, condition and print.
    #[arg(long)]
    ir: bool,
    /// The gradient of the objective.
    #[arg(long)]
    grad: bool,
    /// The KKT system of a constrained problem.
    #[arg(long)]
    kkt: bool,
    /// The system F(z) = 0 the file states, block by block.
    #[arg(long)]
    conditions: bool,
    /// The Euler–Lagrange equation of each pde block.
    #[arg(long)]
    euler: bool,
    /// The residual kernel as loop pseudo-code.
    #[arg(long)]
    kernel: bool,
    /// The Cranelift IR of the residual.
    #[arg(long)]
    clif: bool,
    /// Node and operation counts of the function and its derivatives.
    #[arg(long)]
    stats: bool,
}

pub(super) fn emit(file: &std::path::Path, what: &EmitWhat, common: &Common) -> i32 {
    let mut model = match compile(file, common, Backend::Interp) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let form = if what.ir {
        "ir"
    } else if what.grad {
        "grad"
    } else if what.kkt {
        "kkt"
    } else if what.conditions {
        "conditions"
    } else if what.kernel {
        "kernel"
    } else if what.clif {
        "clif"
    } else if what.stats {
        "stats"
    } else {
        "euler"
    };
    let r = render(&mut model, form);
    match r {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(d) => {
            super::print_diagnostics(std::slice::from_ref(&d), model.sources(), false);
            d.exit_code()
        }
    }
}

/// The forms `emit` (and the REPL's `:emit`) can show.
pub(crate) const FORMS: &[&str] = &[
    "ir",
    "grad",
    "kkt",
    "conditions",
    "euler",
    "kernel",
    "clif",
    "stats",
];

/// One derived form of a compiled model, as text.
pub(crate) fn render(model: &mut Model, form: &str) -> Result<String, Diagnostic> {
    match form {
        "ir" => Ok(emit_ir(model)),
        "grad" => emit_grad(model),
        "kkt" => emit_kkt(model),
        "conditions" => emit_conditions(model),
        "kernel" => emit_kernel(model),
        "clif" => emit_clif(model),
        "stats" => emit_stats(model),
        "euler" => crate::pde::euler_lagrange(model, ""),
        other => Err(Diagnostic::error(
            Code::Usage,
            format!("`{other}` is not a form optc can emit"),
        )
        .help(format!("one of: {}", FORMS.join(", ")))),
    }
}

fn tensor_line(p: &mut Printer, name: &str, t: &TensorExpr) -> String {
    format!("{name} = {}\n", p.tensor(t))
}

fn emit_ir(model: &mut Model) -> String {
    let checked = model.checked().clone();
    let mut items: Vec<(String, TensorExpr)> = Vec::new();
    for l in &checked.lets {
        if let Ok(t) = model.lower(&l.expr) {
            items.push((format!("let {}", l.name), t));
        }
    }
    if let Some(sys) = model.system() {
        if let Some(f) = sys.objective {
            items.push((
                "objective".into(),
                TensorExpr {
                    shape: vec![],
                    vars: vec![],
                    body: f,
                },
            ));
        }
        for c in &sys.constraints {
            items.push((format!("constraint {} (g)", c.name), c.g.clone()));
        }
        for b in &sys.blocks {
            if let BlockKind::Condition(_) = b.kind {
                items.push((b.name.clone(), b.expr.clone()));
            }
        }
    }
    for r in &checked.requests {
        if let crate::check::Request::Print { items: ps, .. } = r {
            for (text, t) in ps {
                if let Ok(e) = model.lower(t) {
                    items.push((format!("print {text}"), e));
                }
            }
        }
    }
    let g = &model.program().graph;
    let mut out = String::new();
    for (name, t) in &items {
        let mut p = Printer::new(g);
        out.push_str(&tensor_line(&mut p, name, t));
    }
    out
}

fn no_system(what: &str) -> Diagnostic {
    Diagnostic::error(Code::NothingToSolve, format!("the file states no {what}"))
        .help("add `minimize ...` (with `subject to` for a KKT system) or `condition a == b`")
}

fn emit_grad(model: &Model) -> Result<String, Diagnostic> {
    let sys = model.system().ok_or_else(|| no_system("objective"))?;
    if sys.objective.is_none() {
        return Err(no_system("objective"));
    }
    let g = &model.program().graph;
    let mut out = String::new();
    let obj = model
        .checked()
        .objective
        .as_ref()
        .and_then(|o| o.name.clone())
        .unwrap_or_else(|| "f".into());
    for b in &sys.blocks {
        if let BlockKind::Stationarity(v) = b.kind {
            let mut p = Printer::new(g);
            p.share(&[b.expr.body], &b.expr.vars);
            let body = p.tensor(&b.expr);
            for (n, d) in &p.defs {
                let _ = writeln!(out, "  where {n} = {d}");
            }
            let name = &model.checked().var(v).name;
            let what = if sys.constraints.is_empty() {
                obj.clone()
            } else {
                "L".into()
            };
            let _ = writeln!(out, "∇{name} {what} = {body}");
        }
    }
    Ok(out)
}

fn emit_kkt(model: &Model) -> Result<String, Diagnostic> {
    let sys = model
        .system()
        .ok_or_else(|| no_system("optimization problem"))?;
    if sys.kind != SystemKind::Kkt && sys.kind != SystemKind::Stationarity {
        return Err(Diagnostic::error(
            Code::NothingToSolve,
            "the file states no objective, so no KKT system",
        )
        .help("--kkt needs `minimize`/`maximize`; use --conditions for other systems"));
    }
    let g = &model.program().graph;
    let mut out = String::new();
    let sense = model.checked().objective.as_ref().map(|o| o.sense);
    let _ = writeln!(
        out,
        "# KKT conditions: L = f + Σ λ·g, every constraint written g (= | ≤) 0"
    );
    if sense == Some(crate::check::Sense::Maximize) {
        let _ = writeln!(out, "# maximize f is minimize −f");
    }
    if let Some(l) = sys.lagrangian {
        let mut p = Printer::new(g);
        let _ = writeln!(out, "L = {}", p.expr(l));
    }
    let _ = writeln!(out, "\nstationarity:");
    for b in &sys.blocks {
        if let BlockKind::Stationarity(_) = b.kind {
            let mut p = Printer::new(g);
            let _ = writeln!(out, "  {} = {} = 0", b.name, p.tensor(&b.expr));
        }
    }
    if !sys.constraints.is_empty() {
        let _ = writeln!(out, "\nconstraints:");
        for c in &sys.constraints {
            let mut p = Printer::new(g);
            let gtext = p.tensor(&c.g);
            match c.kind {
                crate::check::ConstraintKind::Eq => {
                    let _ = writeln!(
                        out,
                        "  primal feasibility  {}: g = {gtext} = 0   (multiplier {} free)",
                        c.name,
                        g.tensor(c.dual).name
                    );
                }
                crate::check::ConstraintKind::Le => {
                    let mu = &g.tensor(c.dual).name;
                    let _ = writeln!(out, "  primal feasibility  {}: g = {gtext} ≤ 0", c.name);
                    let _ = writeln!(out, "  dual feasibility    {mu} ≥ 0");
                    let _ = writeln!(out, "  complementarity     {mu} ∘ g = 0");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\nunknowns: {}",
        sys.unknowns
            .iter()
            .map(|u| u.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(out)
}

fn emit_conditions(model: &Model) -> Result<String, Diagnostic> {
    let sys = model.system().ok_or_else(|| no_system("conditions"))?;
    let g = &model.program().graph;
    let mut out = String::new();
    let kind = match sys.kind {
        SystemKind::Stationarity => "stationarity of an objective (symmetric Jacobian)",
        SystemKind::Kkt => "KKT conditions",
        SystemKind::Saddle => "stationarity of a Lagrangian (saddle point)",
        SystemKind::FixedPoint => "fixed point x = T(x)",
        SystemKind::Root => "root F(z) = 0",
    };
    let _ = writeln!(
        out,
        "# {kind}: {} equations in {} unknowns",
        sys.n_equations(),
        sys.n_unknowns()
    );
    for b in &sys.blocks {
        let mut p = Printer::new(g);
        let _ = writeln!(out, "{}: {} = 0", b.name, p.tensor(&b.expr));
    }
    let _ = writeln!(
        out,
        "unknowns: {}",
        sys.unknowns
            .iter()
            .map(|u| format!("{} {:?}", u.name, u.shape))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(out)
}

/// The residual kernel, and with an objective the kernel that accumulates f and ∇f.
fn emit_kernel(model: &mut Model) -> Result<String, Diagnostic> {
    let mut out = crate::kernel::print_kernel(&residual_kernel(model)?, &model.program().graph);
    let objective = model
        .system_fns()?
        .sources
        .iter()
        .find(|(name, _)| name == "f, ∇f")
        .cloned();
    let g = &model.program().graph;
    if let Some((_, spec)) = objective {
        let k = crate::kernel::schedule_with(g, &spec.outputs, &spec.grads, "objective")
            .map_err(|m| Diagnostic::error(Code::Unsupported, format!("internal error: {m}")))?;
        out.push('\n');
        out.push_str(&crate::kernel::print_kernel(&k, g));
    }
    Ok(out)
}

fn residual_kernel(model: &Model) -> Result<crate::kernel::Kernel, Diagnostic> {
    let sys = model.system().ok_or_else(|| no_system("conditions"))?;
    let outputs: Vec<crate::kernel::Output> = sys
        .blocks
        .iter()
        .enumerate()
        .map(|(k, b)| crate::kernel::Output {
            name: format!("F{}", k + 1),
            expr: b.expr.clone(),
        })
        .collect();
    crate::kernel::schedule(&model.program().graph, &outputs, "residual")
        .map_err(|m| Diagnostic::error(Code::Unsupported, format!("internal error: {m}")))
}

fn emit_clif(model: &Model) -> Result<String, Diagnostic> {
    let k = residual_kernel(model)?;
    let engine =
        crate::jit::JitEngine::new().map_err(|m| Diagnostic::error(Code::Unsupported, m))?;
    engine
        .clif(&k)
        .map_err(|m| Diagnostic::error(Code::Unsupported, format!("internal error: {m}")))
}

/// Node counts of the IR, statement counts of the kernel, and floating-point operations per
/// evaluation (counted by the interpreter at the starting point) for every compiled function.
fn emit_stats(model: &mut Model) -> Result<String, Diagnostic> {
    let stats = model.function_stats()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:>7} {:>7} {:>7} {:>7} {:>12} {:>8}",
        "function", "ir nodes", "loops", "loads", "arith", "temps", "flops/eval", "vs F"
    );
    let base = stats.iter().find(|s| s.name == "F").map(|s| s.flops.max(1));
    for s in &stats {
        let ratio = match base {
            Some(b) if s.name != "f" && s.name != "f, ∇f" => {
                format!("{:.2}", s.flops as f64 / b as f64)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>7} {:>7} {:>7} {:>7} {:>12} {:>8}",
            s.name,
            s.ir_nodes,
            s.kernel.loops,
            s.kernel.loads,
            s.kernel.arith,
            s.kernel.temps,
            s.flops,
            ratio
        );
    }
    Ok(out)
}
