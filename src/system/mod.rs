//! The system of optimality conditions F(z, θ) = 0 a model states, as IR.
//!
//! - `minimize f` → stationarity ∇ₓf = 0 in every var the objective mentions;
//! - `subject to` adds multipliers: the Lagrangian is **L = f + Σ λ·g** with every constraint
//!   normalized to `g = lhs − rhs` (`==`), `g = lhs − rhs ≤ 0` (`<=`) or `g = rhs − lhs ≤ 0`
//!   (`>=`); equality rows are `g = 0`, inequality rows the complementarity `μ ∘ g = 0` with
//!   `μ ≥ 0, g ≤ 0`; `maximize f` is `minimize −f`;
//! - var bounds `lo ≤ x ≤ hi` are inequality constraints `lo − x ≤ 0`, `x − hi ≤ 0` with
//!   multipliers named `lower(x)`, `upper(x)`;
//! - `lagrangian L` → ∇ₓL = 0 in every var L mentions (saddle points);
//! - `condition a == b` → a − b = 0, a fixed point `x = T(x)` when one side is a var.

use crate::check::{ConstraintKind, Model, Sense, TKind, VarId};
use crate::diag::{Code, Diagnostic, Span};
use crate::ir::{Affine, Lowerer, NodeId, Program, TensorExpr, TensorId, TensorInfo, TensorKind};
use std::collections::BTreeSet;

/// What an unknown block is.
#[derive(Clone, Debug, PartialEq)]
pub enum UnknownKind {
    Var(VarId),
    /// Multipliers of a constraint (index into `System::constraints`).
    Multiplier(usize),
}

#[derive(Clone, Debug)]
pub struct Unknown {
    pub name: String,
    pub tensor: TensorId,
    pub shape: Vec<usize>,
    pub kind: UnknownKind,
}

/// Where an equation block comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockKind {
    /// ∇ₓf (or ∇ₓL) = 0 for one var.
    Stationarity(VarId),
    /// g = 0 for an equality constraint.
    Equality(usize),
    /// μ ∘ g = 0 for an inequality constraint.
    Complementarity(usize),
    /// a − b = 0.
    Condition(usize),
}

#[derive(Clone, Debug)]
pub struct Block {
    pub name: String,
    pub kind: BlockKind,
    pub expr: TensorExpr,
    pub span: Span,
}

/// A constraint of the system (user constraints and var bounds), normalized to g (≤|=) 0.
#[derive(Clone, Debug)]
pub struct SysConstraint {
    pub name: String,
    pub kind: ConstraintKind,
    pub g: TensorExpr,
    pub dual: TensorId,
    /// The user's constraint index, or None for a var bound.
    pub source: Option<usize>,
    pub span: Span,
}

/// A fixed-point condition `x == T(x)`.
#[derive(Clone, Debug)]
pub struct FixedPoint {
    pub var: VarId,
    pub map: TensorExpr,
    /// The condition's block.
    pub block: usize,
    /// `x == T(x)` (the block is x − T(x)) rather than `T(x) == x`.
    pub var_on_left: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemKind {
    /// ∇f = 0 without constraints: the Jacobian is a symmetric Hessian.
    Stationarity,
    /// KKT conditions of a constrained problem.
    Kkt,
    /// Stationarity of a Lagrangian (saddle point): symmetric, indefinite.
    Saddle,
    /// Every condition is `x == T(x)`.
    FixedPoint,
    /// A general root F(z) = 0.
    Root,
}

/// F(z, θ) = 0 with its unknowns, in the model's graph.
#[derive(Clone, Debug)]
pub struct System {
    pub kind: SystemKind,
    pub unknowns: Vec<Unknown>,
    pub blocks: Vec<Block>,
    pub constraints: Vec<SysConstraint>,
    /// The objective as minimized (negated for `maximize`).
    pub objective: Option<NodeId>,
    /// f + Σ λ·g, when there is an objective.
    pub lagrangian: Option<NodeId>,
    pub fixed_points: Vec<FixedPoint>,
}

impl System {
    pub fn n_unknowns(&self) -> usize {
        self.unknowns
            .iter()
            .map(|u| u.shape.iter().product::<usize>())
            .sum()
    }

    pub fn n_equations(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.expr.shape.iter().product::<usize>())
            .sum()
    }

    pub fn has_inequalities(&self) -> bool {
        self.constraints
            .iter()
            .any(|c| c.kind == ConstraintKind::Le)
    }

    pub fn unknown_tensors(&self) -> Vec<TensorId> {
        self.unknowns.iter().map(|u| u.tensor).collect()
    }
}

/// Derives the system; `None` when the model states no conditions.
/// `bounds[v]` gives the evaluated (lo, hi) of each var, if any.
#[allow(clippy::type_complexity)]
pub fn derive(
    model: &Model,
    prog: &mut Program,
    bounds: &[(Option<Vec<f64>>, Option<Vec<f64>>)],
) -> Result<Option<System>, Diagnostic> {
    if model.objective.is_none() && model.lagrangians.is_empty() && model.conditions.is_empty() {
        return Ok(None);
    }
    let mut unknowns: Vec<Unknown> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut constraints: Vec<SysConstraint> = Vec::new();
    let mut objective = None;
    let mut lagrangian = None;
    let mut fixed_points = Vec::new();
    let mut var_set: BTreeSet<VarId> = BTreeSet::new();
    let mut kind = SystemKind::Root;

    if let Some(obj) = &model.objective {
        let mut lw = Lowerer::new(model, prog);
        let mut f = lw.scalar(&obj.expr)?;
        if obj.sense == Sense::Maximize {
            f = lw.prog.graph.neg(f);
        }
        for (k, c) in model.constraints.iter().enumerate() {
            let g = lw.tensor(&c.g)?;
            constraints.push(SysConstraint {
                name: c.name.clone(),
                kind: c.kind,
                g,
                dual: lw.prog.duals[k],
                source: Some(k),
                span: c.span,
            });
        }
        let mut vars: BTreeSet<VarId> = crate::check::vars_in(&obj.expr, model);
        for c in &model.constraints {
            vars.extend(crate::check::vars_in(&c.g, model));
        }
        // Var bounds become inequality constraints.
        for &v in &vars {
            let (lo, hi) = &bounds[v.index()];
            let var = model.var(v);
            let xt = prog.vars[v.index()];
            for (side, values) in [("lower", lo), ("upper", hi)] {
                let Some(values) = values else { continue };
                if values.iter().all(|x| x.is_infinite()) {
                    continue;
                }
                if values.iter().any(|x| x.is_infinite()) {
                    return Err(Diagnostic::error(
                        Code::Unsupported,
                        format!(
                            "var `{}` has a {side} bound that is infinite in some entries only",
                            var.name
                        ),
                    )
                    .at(var.span, "mixed finite and infinite bounds")
                    .help("give a finite bound to every entry, or none"));
                }
                let name = format!("{side}({})", var.name);
                let bt = prog.graph.add_tensor(TensorInfo {
                    name: format!("{}_{side}", var.name),
                    shape: var.shape.clone(),
                    kind: TensorKind::Constant(values.clone()),
                });
                let dual = prog.graph.add_tensor(TensorInfo {
                    name: format!("dual({name})"),
                    shape: var.shape.clone(),
                    kind: TensorKind::Input(name.clone()),
                });
                let g = &mut prog.graph;
                let vars_idx: Vec<_> = var
                    .shape
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| {
                        g.range_var(
                            format!("bound:{}:{side}:{k}", v.0),
                            ["i", "j", "k"][k.min(2)],
                            n,
                        )
                    })
                    .collect();
                let idx: Vec<Affine> = vars_idx.iter().map(|&x| Affine::sym(x)).collect();
                let x = g.load(xt, idx.clone());
                let b = g.load(bt, idx);
                let body = if side == "lower" {
                    g.sub(b, x)
                } else {
                    g.sub(x, b)
                };
                constraints.push(SysConstraint {
                    name,
                    kind: ConstraintKind::Le,
                    g: TensorExpr {
                        shape: var.shape.clone(),
                        vars: vars_idx,
                        body,
                    },
                    dual,
                    source: None,
                    span: var.span,
                });
            }
        }
        let g = &mut prog.graph;
        let mut l = f;
        for c in &constraints {
            let term = crate::diff::contract(g, &c.g, c.dual);
            l = g.add(l, term);
        }
        objective = Some(f);
        lagrangian = Some(l);
        for &v in &vars {
            let xt = prog.vars[v.index()];
            let grad = crate::diff::grad(&mut prog.graph, l, xt);
            blocks.push(Block {
                name: format!("∇{} L", model.var(v).name),
                kind: BlockKind::Stationarity(v),
                expr: grad,
                span: obj.span,
            });
        }
        var_set.extend(vars);
        for (k, c) in constraints.iter().enumerate() {
            let g = &mut prog.graph;
            let (name, kind, expr) = match c.kind {
                ConstraintKind::Eq => (
                    format!("{} (g = 0)", c.name),
                    BlockKind::Equality(k),
                    c.g.clone(),
                ),
                ConstraintKind::Le => {
                    let idx: Vec<Affine> = c.g.vars.iter().map(|&v| Affine::sym(v)).collect();
                    let mu = g.load(c.dual, idx);
                    let body = g.mul(mu, c.g.body);
                    (
                        format!("{} (μ∘g = 0)", c.name),
                        BlockKind::Complementarity(k),
                        TensorExpr {
                            shape: c.g.shape.clone(),
                            vars: c.g.vars.clone(),
                            body,
                        },
                    )
                }
            };
            blocks.push(Block {
                name,
                kind,
                expr,
                span: c.span,
            });
        }
        kind = if constraints.is_empty() {
            SystemKind::Stationarity
        } else {
            SystemKind::Kkt
        };
    }

    for lg in &model.lagrangians {
        let mut lw = Lowerer::new(model, prog);
        let l = lw.scalar(&lg.expr)?;
        let vars = crate::check::vars_in(&lg.expr, model);
        for &v in &vars {
            let xt = prog.vars[v.index()];
            let grad = crate::diff::grad(&mut prog.graph, l, xt);
            blocks.push(Block {
                name: format!("∇{} L", model.var(v).name),
                kind: BlockKind::Stationarity(v),
                expr: grad,
                span: lg.span,
            });
        }
        var_set.extend(vars);
        lagrangian = lagrangian.or(Some(l));
        if kind == SystemKind::Root && model.objective.is_none() {
            kind = SystemKind::Saddle;
        }
    }

    let mut all_fixed =
        !model.conditions.is_empty() && model.objective.is_none() && model.lagrangians.is_empty();
    for (k, c) in model.conditions.iter().enumerate() {
        let mut lw = Lowerer::new(model, prog);
        let lhs = lw.tensor(&c.lhs)?;
        let rhs = lw.tensor(&c.rhs)?;
        let g = &mut prog.graph;
        // Read both sides at the same indices.
        let idx: Vec<Affine> = lhs.vars.iter().map(|&v| Affine::sym(v)).collect();
        let r = g.at(&rhs, &idx);
        let body = g.sub(lhs.body, r);
        // `x == T(x)` (or `T(x) == x`): a fixed point of T.
        let fixed = match (&c.lhs.kind, &c.rhs.kind) {
            (TKind::Var(v), _) => Some((*v, rhs.clone(), true)),
            (_, TKind::Var(v)) => Some((*v, lhs.clone(), false)),
            _ => None,
        };
        match fixed {
            Some((v, map, var_on_left)) => fixed_points.push(FixedPoint {
                var: v,
                map,
                block: blocks.len(),
                var_on_left,
            }),
            None => all_fixed = false,
        }
        blocks.push(Block {
            name: c
                .name
                .clone()
                .unwrap_or_else(|| format!("condition {}", k + 1)),
            kind: BlockKind::Condition(k),
            expr: TensorExpr {
                shape: lhs.shape.clone(),
                vars: lhs.vars.clone(),
                body,
            },
            span: c.span,
        });
        var_set.extend(crate::check::vars_in(&c.lhs, model));
        var_set.extend(crate::check::vars_in(&c.rhs, model));
    }
    // Conditions next to an objective or a Lagrangian: a general root system (not symmetric).
    if !model.conditions.is_empty() && (model.objective.is_some() || !model.lagrangians.is_empty())
    {
        kind = SystemKind::Root;
    }
    if model.objective.is_some() && !model.lagrangians.is_empty() {
        kind = SystemKind::Root;
    }
    if all_fixed && fixed_points.len() == model.conditions.len() {
        let distinct: BTreeSet<VarId> = fixed_points.iter().map(|f| f.var).collect();
        if distinct.len() == fixed_points.len() {
            kind = SystemKind::FixedPoint;
        }
    }

    for (k, v) in model.vars.iter().enumerate() {
        let id = VarId(k as u32);
        if var_set.contains(&id) {
            unknowns.push(Unknown {
                name: v.name.clone(),
                tensor: prog.vars[k],
                shape: v.shape.clone(),
                kind: UnknownKind::Var(id),
            });
        }
    }
    for (k, c) in constraints.iter().enumerate() {
        unknowns.push(Unknown {
            name: format!("dual({})", c.name),
            tensor: c.dual,
            shape: c.g.shape.clone(),
            kind: UnknownKind::Multiplier(k),
        });
    }
    Ok(Some(System {
        kind,
        unknowns,
        blocks,
        constraints,
        objective,
        lagrangian,
        fixed_points,
    }))
}
