//! The system the file declares: which vars each statement mentions, and the count of
//! equations against unknowns (E0501) before anything is solved.

use super::model::*;
use crate::diag::{Code, Diagnostic, Span};
use std::collections::{BTreeSet, HashSet};

/// The vars an expression mentions, following `let`s.
pub fn vars_in(t: &T, model: &Model) -> BTreeSet<VarId> {
    let mut out = BTreeSet::new();
    let mut seen: HashSet<*const TExpr> = HashSet::new();
    let mut stack: Vec<&TExpr> = vec![t];
    let mut lets_seen: HashSet<LetId> = HashSet::new();
    while let Some(e) = stack.pop() {
        if !seen.insert(e as *const TExpr) {
            continue;
        }
        match &e.kind {
            TKind::Var(v) => {
                out.insert(*v);
            }
            TKind::Let(l) => {
                if lets_seen.insert(*l) {
                    if let Some(le) = model.lets.get(l.index()) {
                        stack.push(&le.expr);
                    }
                }
            }
            _ => children(e, &mut stack),
        }
    }
    out
}

/// Pushes the direct children of a typed node.
pub fn children<'a>(e: &'a TExpr, out: &mut Vec<&'a TExpr>) {
    match &e.kind {
        TKind::Const(_)
        | TKind::Literal(_)
        | TKind::Var(_)
        | TKind::Param(_)
        | TKind::Let(_)
        | TKind::Dual(_)
        | TKind::Input(_)
        | TKind::IndexVal(_) => {}
        TKind::Unary(_, a)
        | TKind::Transpose(a)
        | TKind::Index(a, _)
        | TKind::Sum(_, _, _, a)
        | TKind::Reduce(_, a)
        | TKind::Comprehension(_, a)
        | TKind::Grad(a, _)
        | TKind::Jac(a, _)
        | TKind::Hess(a, _)
        | TKind::LoadTime(_, a) => out.push(a),
        TKind::Binary(_, a, b) | TKind::MatMul(a, b) => {
            out.push(a);
            out.push(b);
        }
        TKind::Select(a, b, c) => {
            out.push(a);
            out.push(b);
            out.push(c);
        }
        TKind::Stack(items) => out.extend(items.iter().map(|x| &**x)),
    }
}

/// One statement's share of the system.
#[derive(Clone, Debug)]
pub struct Contribution {
    pub what: String,
    pub equations: usize,
    pub unknowns: usize,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct SystemCount {
    pub equations: usize,
    pub unknowns: usize,
    pub parts: Vec<Contribution>,
    /// Vars the system determines (mentioned by some condition).
    pub vars: BTreeSet<VarId>,
}

/// Counts the equations and unknowns of the file's conditions.
pub fn count_system(model: &Model) -> SystemCount {
    let mut c = SystemCount::default();
    let entries = |v: VarId| numel(&model.var(v).shape);
    if let Some(obj) = &model.objective {
        let mut vars = vars_in(&obj.expr, model);
        for k in &model.constraints {
            vars.extend(vars_in(&k.g, model));
        }
        let n: usize = vars.iter().map(|&v| entries(v)).sum();
        let names: Vec<&str> = vars.iter().map(|&v| model.var(v).name.as_str()).collect();
        c.parts.push(Contribution {
            what: format!(
                "stationarity in {}",
                if names.is_empty() {
                    "no var".to_string()
                } else {
                    names.join(", ")
                }
            ),
            equations: n,
            unknowns: 0,
            span: obj.span,
        });
        c.equations += n;
        c.vars.extend(vars);
        for k in &model.constraints {
            let m = numel(&k.g.shape);
            c.parts.push(Contribution {
                what: format!("constraint `{}` and its multipliers", k.name),
                equations: m,
                unknowns: m,
                span: k.span,
            });
            c.equations += m;
            c.unknowns += m;
        }
    } else {
        // Constraints without an objective: their rows are equations, multipliers unknowns.
        for k in &model.constraints {
            let m = numel(&k.g.shape);
            c.parts.push(Contribution {
                what: format!("constraint `{}` (no objective)", k.name),
                equations: m,
                unknowns: m,
                span: k.span,
            });
            c.equations += m;
            c.unknowns += m;
        }
    }
    for l in &model.lagrangians {
        let vars = vars_in(&l.expr, model);
        let n: usize = vars.iter().map(|&v| entries(v)).sum();
        c.parts.push(Contribution {
            what: "lagrangian stationarity".into(),
            equations: n,
            unknowns: 0,
            span: l.span,
        });
        c.equations += n;
        c.vars.extend(vars);
    }
    for cond in &model.conditions {
        let n = numel(&cond.lhs.shape);
        c.parts.push(Contribution {
            what: "condition".into(),
            equations: n,
            unknowns: 0,
            span: cond.span,
        });
        c.equations += n;
        c.vars.extend(vars_in(&cond.lhs, model));
        c.vars.extend(vars_in(&cond.rhs, model));
    }
    let var_entries: usize = model.vars.iter().map(|v| numel(&v.shape)).sum();
    c.unknowns += var_entries;
    c
}

fn has_system(model: &Model) -> bool {
    model.objective.is_some() || !model.lagrangians.is_empty() || !model.conditions.is_empty()
}

fn solve_span(model: &Model) -> Option<Span> {
    model.requests.iter().find_map(|r| match r {
        Request::Solve {
            target: None, span, ..
        } => Some(*span),
        _ => None,
    })
}

/// E0502, E0504 and E0501, in that order.
pub fn check_system(model: &Model) -> Result<(), Diagnostic> {
    let solve = solve_span(model);
    if !has_system(model) {
        if let Some(span) = solve {
            let help = if model.vars.is_empty() {
                "declare the unknowns with `var` and what they satisfy with minimize, lagrangian or condition"
            } else {
                "add what the vars satisfy: `minimize ...`, `lagrangian ...` or `condition a == b`"
            };
            return Err(
                Diagnostic::error(Code::NothingToSolve, "`solve` but no conditions")
                    .at(span, "nothing to solve")
                    .help(help),
            );
        }
        return Ok(());
    }
    if model.vars.is_empty() {
        let span = solve
            .or(model.objective.as_ref().map(|o| o.span))
            .or(model.conditions.first().map(|c| c.span))
            .or(model.lagrangians.first().map(|l| l.span))
            .unwrap_or_default();
        return Err(
            Diagnostic::error(Code::NothingToSolve, "the conditions have no unknowns")
                .at(span, "no var to solve for")
                .help("declare the unknowns with `var NAME`"),
        );
    }
    let count = count_system(model);
    for (k, v) in model.vars.iter().enumerate() {
        if !count.vars.contains(&VarId(k as u32)) {
            return Err(Diagnostic::error(
                Code::UnusedVar,
                format!("var `{}` appears in no condition", v.name),
            )
            .at(v.span, "never constrained")
            .help("use it in the objective or a condition, or remove it"));
        }
    }
    if count.equations != count.unknowns {
        let span = solve.unwrap_or_else(|| count.parts.last().map(|p| p.span).unwrap_or_default());
        let mut d = Diagnostic::error(
            Code::NotSquare,
            format!(
                "{} for {}",
                plural(count.equations, "equation"),
                plural(count.unknowns, "unknown")
            ),
        )
        .at(span, "the system is not square");
        for p in &count.parts {
            let text = if p.unknowns > 0 {
                format!(
                    "{}: {}, {}",
                    p.what,
                    plural(p.equations, "equation"),
                    plural(p.unknowns, "multiplier")
                )
            } else {
                format!("{}: {}", p.what, plural(p.equations, "equation"))
            };
            d = d.also(p.span, text);
        }
        let var_list: Vec<String> = model
            .vars
            .iter()
            .map(|v| format!("{} ({})", v.name, numel(&v.shape)))
            .collect();
        d = d.note(format!("unknowns: {}", var_list.join(", ")));
        let help = if count.equations > count.unknowns {
            "there are more equations than unknowns: remove a condition, or add the missing var"
        } else {
            "there are fewer equations than unknowns: add a condition, or fix the shape of a var"
        };
        return Err(d.help(help));
    }
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
