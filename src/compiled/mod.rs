//! Compiled functions of a system on flat f64 buffers, independent of the back end.
//!
//! An [`Engine`] turns a verified kernel into a callable [`KernelFn`] (the interpreter or the
//! JIT); [`SystemFns`] holds the kernels of F(z, θ) and its derivative products and exposes
//! them on flat vectors, which is all the solvers see.

use crate::api::State;
use crate::diag::{Code, Diagnostic};
use crate::ir::{Graph, NodeId, Program, TensorExpr, TensorId, TensorInfo, TensorKind};
use crate::kernel::{self, GradOutput, Kernel, Output};
use crate::system::System;
use std::collections::HashMap;
use std::sync::Arc;

/// A compiled kernel. Implementations must be callable from many threads at once.
pub trait KernelFn: Send + Sync {
    /// Runs the kernel: `input` gives each input tensor, `outputs[k]` receives output k.
    fn run<'a>(
        &self,
        input: &dyn Fn(TensorId) -> Option<&'a [f64]>,
        outputs: &mut [&mut [f64]],
    ) -> Result<(), String>;
}

/// Turns kernels into callable functions: implemented by the interpreter and the JIT.
pub trait Engine: Send + Sync {
    fn compile(&self, k: Kernel) -> Result<Arc<dyn KernelFn>, String>;
    fn name(&self) -> &'static str;
}

/// The reference engine: runs kernels in the interpreter.
pub struct InterpEngine;

struct InterpKernel(Kernel);

impl KernelFn for InterpKernel {
    fn run<'a>(
        &self,
        input: &dyn Fn(TensorId) -> Option<&'a [f64]>,
        outputs: &mut [&mut [f64]],
    ) -> Result<(), String> {
        crate::interp::run(&self.0, input, outputs).map(|_| ())
    }
}

impl Engine for InterpEngine {
    fn compile(&self, k: Kernel) -> Result<Arc<dyn KernelFn>, String> {
        Ok(Arc::new(InterpKernel(k)))
    }

    fn name(&self) -> &'static str {
        "interp"
    }
}

/// What one compiled function computes: tensor outputs, then scatter-form gradients
/// (numbered after them).
#[derive(Clone, Debug, Default)]
pub struct FnSpec {
    pub outputs: Vec<Output>,
    pub grads: Vec<GradOutput>,
}

impl FnSpec {
    pub fn tensors(outputs: Vec<(String, TensorExpr)>) -> FnSpec {
        FnSpec {
            outputs: outputs
                .into_iter()
                .map(|(name, expr)| Output { name, expr })
                .collect(),
            grads: Vec::new(),
        }
    }

    /// Every IR node the function reads.
    pub fn roots(&self) -> Vec<NodeId> {
        let mut r: Vec<NodeId> = self.outputs.iter().map(|o| o.expr.body).collect();
        r.extend(
            self.grads
                .iter()
                .flat_map(|g| g.terms.iter().map(|t| t.value)),
        );
        r
    }

    /// The entries of each output, in order.
    pub fn lens(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .outputs
            .iter()
            .map(|o| o.expr.shape.iter().product())
            .collect();
        v.extend(self.grads.iter().map(|g| g.shape.iter().product::<usize>()));
        v
    }
}

/// ∂f/∂w for each named tensor, in scatter form; falls back to gather form (a tensor output
/// per gradient) when `f` has free index variables.
fn gradients(g: &mut Graph, f: NodeId, wrts: &[(String, TensorId)]) -> FnSpec {
    let tensors: Vec<TensorId> = wrts.iter().map(|w| w.1).collect();
    match crate::diff::scatter_grads(g, f, &tensors) {
        Some(terms) => FnSpec {
            outputs: Vec::new(),
            grads: wrts
                .iter()
                .map(|(name, t)| GradOutput {
                    name: name.clone(),
                    shape: g.tensor(*t).shape.clone(),
                    terms: terms.iter().filter(|x| x.tensor == *t).cloned().collect(),
                })
                .collect(),
        },
        None => FnSpec::tensors(
            wrts.iter()
                .map(|(name, t)| (name.clone(), crate::diff::grad(g, f, *t)))
                .collect(),
        ),
    }
}

/// Schedules, verifies and compiles a function.
pub fn build(
    engine: &dyn Engine,
    g: &Graph,
    spec: &FnSpec,
    name: &str,
) -> Result<Arc<dyn KernelFn>, Diagnostic> {
    let internal = |m: String| {
        Diagnostic::error(
            Code::Unsupported,
            format!("internal compiler error in `{name}`: {m}"),
        )
        .help("this is a bug in optc; please report the file")
    };
    let k = kernel::schedule_with(g, &spec.outputs, &spec.grads, name).map_err(internal)?;
    kernel::verify(&k).map_err(internal)?;
    engine.compile(k).map_err(internal)
}

/// A compiled kernel computing the values of some tensor expressions
/// ([`SystemFns::compile_values`]).
pub struct ValueFns {
    kernel: Arc<dyn KernelFn>,
    /// Entries of each expression.
    pub lens: Vec<usize>,
}

/// Where each block sits in the flat vectors.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// (tensor, offset, length) of each unknown block in z.
    pub unknowns: Vec<(TensorId, usize, usize)>,
    /// (offset, length) of each residual block in F.
    pub blocks: Vec<(usize, usize)>,
    pub n: usize,
    pub m: usize,
}

/// A flat scalar of tensors: scalars have shape [].
fn scalar(body: NodeId) -> TensorExpr {
    TensorExpr {
        shape: vec![],
        vars: vec![],
        body,
    }
}

fn input_tensor(g: &mut Graph, name: String, shape: &[usize]) -> TensorId {
    g.add_tensor(TensorInfo {
        name: name.clone(),
        shape: shape.to_vec(),
        kind: TensorKind::Input(name),
    })
}

/// Per-param derivative products, compiled on demand.
struct ParamFns {
    dir: TensorId,
    jvp: Arc<dyn KernelFn>,
    vjp: Arc<dyn KernelFn>,
    len: usize,
}

/// The compiled functions of a system.
pub struct SystemFns {
    pub layout: Layout,
    /// What each compiled function computes, by name (for `optc emit --stats`).
    pub sources: Vec<(String, FnSpec)>,
    residual: Arc<dyn KernelFn>,
    jvp: Arc<dyn KernelFn>,
    vjp: Arc<dyn KernelFn>,
    /// f and ∇f in one kernel, when there is an objective.
    objective: Option<Arc<dyn KernelFn>>,
    /// The constraint functions g (all system constraints) and their JVP.
    cons: Option<(Arc<dyn KernelFn>, Arc<dyn KernelFn>)>,
    /// (offset, length) of each constraint in the flat g.
    pub cons_layout: Vec<(usize, usize)>,
    dirs: Vec<TensorId>,
    cots: Vec<TensorId>,
    params: HashMap<TensorId, ParamFns>,
    /// Whether the objective kernel also outputs F = ∇f (pure stationarity systems).
    objective_grad: bool,
    /// L when F = ∇L (then parameter derivatives are gradients of directional derivatives).
    potential: Option<NodeId>,
    /// Tensors that stand for parameters (by index in `State::params`).
    param_tensors: Vec<TensorId>,
    /// Multiplier tensors of the system's constraints (by index in `State::duals`).
    dual_tensors: Vec<TensorId>,
    engine: Arc<dyn Engine>,
}

impl SystemFns {
    /// Compiles F, ∂ₓF·v, uᵀ∂ₓF and (with an objective) f, ∇f.
    ///
    /// When F is the gradient of a Lagrangian L (stationarity without constraints), F, the
    /// HVP and the VJP are all compiled as *scatter-form gradients*: F = ∇L, J·v = ∇(∂L·v),
    /// uᵀJ = ∇(∂L·u) by symmetry — each costs a small multiple of L. Otherwise F is compiled
    /// as written, J·v in forward mode, and uᵀJ as the scatter gradient of Σ u·F.
    pub fn new(
        engine: Arc<dyn Engine>,
        prog: &mut Program,
        sys: &System,
    ) -> Result<SystemFns, Diagnostic> {
        let mut layout = Layout::default();
        for u in &sys.unknowns {
            let len: usize = u.shape.iter().product();
            layout.unknowns.push((u.tensor, layout.n, len));
            layout.n += len;
        }
        for b in &sys.blocks {
            let len: usize = b.expr.shape.iter().product();
            layout.blocks.push((layout.m, len));
            layout.m += len;
        }
        let g = &mut prog.graph;
        let dirs: Vec<TensorId> = sys
            .unknowns
            .iter()
            .map(|u| input_tensor(g, format!("d_{}", u.name), &u.shape))
            .collect();
        let cots: Vec<TensorId> = sys
            .blocks
            .iter()
            .enumerate()
            .map(|(k, b)| input_tensor(g, format!("u{}", k + 1), &b.expr.shape))
            .collect();
        let named: Vec<(String, TensorId)> = sys
            .unknowns
            .iter()
            .map(|u| (u.name.clone(), u.tensor))
            .collect();
        let seeds: Vec<(TensorId, TensorId)> = sys
            .unknowns
            .iter()
            .map(|u| u.tensor)
            .zip(dirs.iter().copied())
            .collect();
        let symmetric = sys.kind == crate::system::SystemKind::Stationarity
            && sys.lagrangian.is_some_and(|l| g.free_vars(l).is_empty())
            && sys.blocks.len() == sys.unknowns.len()
            && sys
                .blocks
                .iter()
                .zip(&sys.unknowns)
                .all(|(b, u)| b.expr.shape == u.shape);
        let (residual_spec, jvp_spec, vjp_spec) = match (symmetric, sys.lagrangian) {
            (true, Some(l)) => {
                let r = gradients(g, l, &named);
                let tl = crate::diff::jvp_nodes(g, &[l], &seeds)[0];
                let j = gradients(g, tl, &named);
                let cot_seeds: Vec<(TensorId, TensorId)> = sys
                    .unknowns
                    .iter()
                    .map(|u| u.tensor)
                    .zip(cots.iter().copied())
                    .collect();
                let ul = crate::diff::jvp_nodes(g, &[l], &cot_seeds)[0];
                let v = gradients(g, ul, &named);
                (r, j, v)
            }
            _ => {
                let r = FnSpec::tensors(
                    sys.blocks
                        .iter()
                        .enumerate()
                        .map(|(k, b)| (format!("F{}", k + 1), b.expr.clone()))
                        .collect(),
                );
                let j = FnSpec::tensors(
                    sys.blocks
                        .iter()
                        .enumerate()
                        .map(|(k, b)| {
                            (format!("JF{}", k + 1), crate::diff::jvp(g, &b.expr, &seeds))
                        })
                        .collect(),
                );
                let phi = contraction(g, sys, &cots);
                let v = gradients(g, phi, &named);
                (r, j, v)
            }
        };
        let residual = build(&*engine, g, &residual_spec, "residual")?;
        let jvp = build(&*engine, g, &jvp_spec, "jvp")?;
        let vjp = build(&*engine, g, &vjp_spec, "vjp")?;
        let mut sources = vec![
            ("F".to_string(), residual_spec.clone()),
            ("∂F·v".to_string(), jvp_spec),
            ("uᵀ∂F".to_string(), vjp_spec),
        ];
        let objective_grad = symmetric;
        let objective = match sys.objective {
            Some(f) => {
                sources.insert(
                    0,
                    (
                        "f".to_string(),
                        FnSpec::tensors(vec![("f".to_string(), scalar(f))]),
                    ),
                );
                let spec = if objective_grad
                    && g.free_vars(f).is_empty()
                    && residual_spec.outputs.is_empty()
                {
                    // f accumulated in the same loop nests as its gradient.
                    let mut grads = vec![GradOutput {
                        name: "f".to_string(),
                        shape: vec![],
                        terms: kernel::reduction_terms(g, f),
                    }];
                    grads.extend(residual_spec.grads.iter().cloned());
                    FnSpec {
                        outputs: Vec::new(),
                        grads,
                    }
                } else {
                    let mut spec = FnSpec::tensors(vec![("f".to_string(), scalar(f))]);
                    if objective_grad {
                        spec.outputs.extend(residual_spec.outputs.iter().cloned());
                        spec.grads.extend(residual_spec.grads.iter().cloned());
                    }
                    spec
                };
                if objective_grad {
                    sources.insert(1, ("f, ∇f".to_string(), spec.clone()));
                }
                Some(build(&*engine, g, &spec, "objective")?)
            }
            None => None,
        };
        let mut cons_layout = Vec::new();
        let mut total = 0;
        for c in &sys.constraints {
            let len: usize = c.g.shape.iter().product();
            cons_layout.push((total, len));
            total += len;
        }
        let cons = if sys.constraints.is_empty() {
            None
        } else {
            let outs = FnSpec::tensors(
                sys.constraints
                    .iter()
                    .map(|c| (format!("g_{}", c.name), c.g.clone()))
                    .collect(),
            );
            let jouts = FnSpec::tensors(
                sys.constraints
                    .iter()
                    .map(|c| (format!("dg_{}", c.name), crate::diff::jvp(g, &c.g, &seeds)))
                    .collect(),
            );
            Some((
                build(&*engine, g, &outs, "constraints")?,
                build(&*engine, g, &jouts, "constraints_jvp")?,
            ))
        };
        Ok(SystemFns {
            layout,
            sources,
            cons,
            cons_layout,
            residual,
            jvp,
            vjp,
            objective,
            dirs,
            cots,
            params: HashMap::new(),
            objective_grad,
            potential: if symmetric { sys.lagrangian } else { None },
            param_tensors: prog.params.clone(),
            dual_tensors: sys.constraints.iter().map(|c| c.dual).collect(),
            engine,
        })
    }

    /// Compiles ∂_θF·t and uᵀ∂_θF for one param (once).
    pub fn ensure_param(
        &mut self,
        prog: &mut Program,
        sys: &System,
        param: TensorId,
    ) -> Result<(), Diagnostic> {
        if self.params.contains_key(&param) {
            return Ok(());
        }
        let g = &mut prog.graph;
        let shape = g.tensor(param).shape.clone();
        let name = g.tensor(param).name.clone();
        let dir = input_tensor(g, format!("d_{name}"), &shape);
        let (jvp_spec, vjp_spec) = match self.potential {
            // F = ∇L: ∂θF·t = ∇(∂θL·t) and uᵀ∂θF = ∂θ(∂L·u), both scatter gradients.
            Some(l) => {
                let named: Vec<(String, TensorId)> = sys
                    .unknowns
                    .iter()
                    .map(|u| (format!("dF_{}", u.name), u.tensor))
                    .collect();
                let tl = crate::diff::jvp_nodes(g, &[l], &[(param, dir)])[0];
                let j = gradients(g, tl, &named);
                let cot_seeds: Vec<(TensorId, TensorId)> = sys
                    .unknowns
                    .iter()
                    .map(|u| u.tensor)
                    .zip(self.cots.iter().copied())
                    .collect();
                let ul = crate::diff::jvp_nodes(g, &[l], &cot_seeds)[0];
                let v = gradients(g, ul, &[(format!("uF_{name}"), param)]);
                (j, v)
            }
            None => {
                let j = FnSpec::tensors(
                    sys.blocks
                        .iter()
                        .enumerate()
                        .map(|(k, b)| {
                            (
                                format!("dF{}", k + 1),
                                crate::diff::jvp(g, &b.expr, &[(param, dir)]),
                            )
                        })
                        .collect(),
                );
                let phi = contraction(g, sys, &self.cots);
                (j, gradients(g, phi, &[(format!("uF_{name}"), param)]))
            }
        };
        let jvp = build(&*self.engine, g, &jvp_spec, &format!("dF_d{name}"))?;
        let vjp = build(&*self.engine, g, &vjp_spec, &format!("uF_d{name}"))?;
        self.sources.push((format!("∂F/∂{name}·t"), jvp_spec));
        self.sources.push((format!("uᵀ∂F/∂{name}"), vjp_spec));
        self.params.insert(
            param,
            ParamFns {
                dir,
                jvp,
                vjp,
                len: shape.iter().product(),
            },
        );
        Ok(())
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Compiles the values of tensor expressions of the unknowns and params into one kernel
    /// (for drivers that need more than F and its products: the PDE trainer's network values
    /// and Jacobians).
    pub fn compile_values(
        &self,
        prog: &Program,
        exprs: &[TensorExpr],
    ) -> Result<ValueFns, Diagnostic> {
        let named: Vec<(String, TensorExpr)> = exprs
            .iter()
            .enumerate()
            .map(|(k, e)| (format!("v{k}"), e.clone()))
            .collect();
        let lens = exprs.iter().map(|e| e.shape.iter().product()).collect();
        let kernel = build(
            &*self.engine,
            &prog.graph,
            &FnSpec::tensors(named),
            "values",
        )?;
        Ok(ValueFns { kernel, lens })
    }

    /// Runs compiled values at (z, params of `st`); `out[k]` receives expression k.
    pub fn run_values(
        &self,
        f: &ValueFns,
        z: &[f64],
        st: &State,
        out: &mut [Vec<f64>],
    ) -> Result<(), String> {
        for (o, &n) in out.iter_mut().zip(&f.lens) {
            o.resize(n, 0.0);
        }
        let input = self.lookup(z, st, &[]);
        let mut slices: Vec<&mut [f64]> = out.iter_mut().map(|v| &mut v[..]).collect();
        f.kernel.run(&input, &mut slices)
    }

    /// The input closure: unknowns from z, extra tensors from `extra`, the rest from the state.
    fn lookup<'a>(
        &'a self,
        z: &'a [f64],
        st: &'a State,
        extra: &'a [(TensorId, &'a [f64])],
    ) -> impl Fn(TensorId) -> Option<&'a [f64]> + 'a {
        move |t: TensorId| {
            if let Some(&(_, off, len)) = self.layout.unknowns.iter().find(|u| u.0 == t) {
                return z.get(off..off + len);
            }
            if let Some(&(_, v)) = extra.iter().find(|e| e.0 == t) {
                return Some(v);
            }
            if let Some(k) = self.param_tensors.iter().position(|&p| p == t) {
                return st.params.get(k).map(|v| &v[..]);
            }
            if let Some(k) = self.dual_tensors.iter().position(|&p| p == t) {
                return st.duals.get(k).map(|v| &v[..]);
            }
            None
        }
    }

    fn split<'a>(parts: &[(usize, usize)], out: &'a mut [f64]) -> Vec<&'a mut [f64]> {
        let mut rest = out;
        let mut slices = Vec::with_capacity(parts.len());
        for &(_, len) in parts {
            let (head, tail) = rest.split_at_mut(len);
            slices.push(head);
            rest = tail;
        }
        slices
    }

    fn unknown_parts(&self) -> Vec<(usize, usize)> {
        self.layout
            .unknowns
            .iter()
            .map(|&(_, o, l)| (o, l))
            .collect()
    }

    /// F(z, θ) into `out` (length m).
    pub fn residual(&self, z: &[f64], st: &State, out: &mut [f64]) -> Result<(), String> {
        let input = self.lookup(z, st, &[]);
        let mut slices = Self::split(&self.layout.blocks, out);
        self.residual.run(&input, &mut slices)
    }

    /// ∂ₓF(z, θ)·v into `out` (length m).
    pub fn jvp(&self, z: &[f64], st: &State, v: &[f64], out: &mut [f64]) -> Result<(), String> {
        let extra: Vec<(TensorId, &[f64])> = self
            .dirs
            .iter()
            .zip(&self.layout.unknowns)
            .map(|(&d, &(_, off, len))| (d, &v[off..off + len]))
            .collect();
        let input = self.lookup(z, st, &extra);
        let mut slices = Self::split(&self.layout.blocks, out);
        self.jvp.run(&input, &mut slices)
    }

    /// uᵀ∂ₓF(z, θ) into `out` (length n).
    pub fn vjp(&self, z: &[f64], st: &State, u: &[f64], out: &mut [f64]) -> Result<(), String> {
        let extra: Vec<(TensorId, &[f64])> = self
            .cots
            .iter()
            .zip(&self.layout.blocks)
            .map(|(&c, &(off, len))| (c, &u[off..off + len]))
            .collect();
        let input = self.lookup(z, st, &extra);
        let parts = self.unknown_parts();
        let mut slices = Self::split(&parts, out);
        self.vjp.run(&input, &mut slices)
    }

    /// The objective f(z, θ) (as minimized); with `grad`, also F = ∇f (unconstrained only).
    pub fn objective(
        &self,
        z: &[f64],
        st: &State,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, String> {
        let k = self
            .objective
            .as_ref()
            .ok_or("the system has no objective")?;
        let input = self.lookup(z, st, &[]);
        let mut f = [0.0];
        let mut scratch;
        let g: &mut [f64] = match grad {
            Some(g) => g,
            None => {
                scratch = vec![0.0; self.layout.m];
                &mut scratch
            }
        };
        let mut slices: Vec<&mut [f64]> = vec![&mut f];
        if self.layout.m > 0 && self.has_objective_gradient() {
            slices.extend(Self::split(&self.layout.blocks, g));
        }
        k.run(&input, &mut slices)?;
        Ok(f[0])
    }

    fn has_objective_gradient(&self) -> bool {
        self.objective_grad
    }

    /// Total length of the constraint functions.
    pub fn n_cons(&self) -> usize {
        self.cons_layout.iter().map(|c| c.1).sum()
    }

    /// The constraint functions g(z) of every system constraint, concatenated.
    pub fn constraints(&self, z: &[f64], st: &State, out: &mut [f64]) -> Result<(), String> {
        let (k, _) = self.cons.as_ref().ok_or("the system has no constraints")?;
        let input = self.lookup(z, st, &[]);
        let mut slices = Self::split(&self.cons_layout, out);
        k.run(&input, &mut slices)
    }

    /// ∂g/∂z · v of every constraint, concatenated.
    pub fn constraints_jvp(
        &self,
        z: &[f64],
        st: &State,
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let (_, k) = self.cons.as_ref().ok_or("the system has no constraints")?;
        let extra: Vec<(TensorId, &[f64])> = self
            .dirs
            .iter()
            .zip(&self.layout.unknowns)
            .map(|(&d, &(_, off, len))| (d, &v[off..off + len]))
            .collect();
        let input = self.lookup(z, st, &extra);
        let mut slices = Self::split(&self.cons_layout, out);
        k.run(&input, &mut slices)
    }

    /// ∂_θF(z, θ)·t for one param into `out` (length m).
    pub fn param_jvp(
        &self,
        param: TensorId,
        z: &[f64],
        st: &State,
        t: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let p = self
            .params
            .get(&param)
            .ok_or("param derivatives not compiled")?;
        if t.len() != p.len {
            return Err("direction of the wrong length".into());
        }
        let extra = [(p.dir, t)];
        let input = self.lookup(z, st, &extra);
        let mut slices = Self::split(&self.layout.blocks, out);
        p.jvp.run(&input, &mut slices)
    }

    /// uᵀ∂_θF(z, θ) for one param into `out` (length of the param).
    pub fn param_vjp(
        &self,
        param: TensorId,
        z: &[f64],
        st: &State,
        u: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let p = self
            .params
            .get(&param)
            .ok_or("param derivatives not compiled")?;
        let extra: Vec<(TensorId, &[f64])> = self
            .cots
            .iter()
            .zip(&self.layout.blocks)
            .map(|(&c, &(off, len))| (c, &u[off..off + len]))
            .collect();
        let input = self.lookup(z, st, &extra);
        let mut slices: Vec<&mut [f64]> = vec![out];
        p.vjp.run(&input, &mut slices)
    }

    /// Gathers the unknowns of a state into a flat z.
    pub fn pack(&self, sys: &System, st: &State) -> Vec<f64> {
        let mut z = vec![0.0; self.layout.n];
        for (u, &(_, off, len)) in sys.unknowns.iter().zip(&self.layout.unknowns) {
            let src = match u.kind {
                crate::system::UnknownKind::Var(v) => &st.vars[v.index()],
                crate::system::UnknownKind::Multiplier(c) => &st.duals[c],
            };
            z[off..off + len].copy_from_slice(&src[..len]);
        }
        z
    }

    /// Scatters a flat z into a state.
    pub fn unpack(&self, sys: &System, z: &[f64], st: &mut State) {
        for (u, &(_, off, len)) in sys.unknowns.iter().zip(&self.layout.unknowns) {
            let dst = match u.kind {
                crate::system::UnknownKind::Var(v) => &mut st.vars[v.index()],
                crate::system::UnknownKind::Multiplier(c) => &mut st.duals[c],
            };
            dst.copy_from_slice(&z[off..off + len]);
        }
    }
}

/// φ = Σ_blocks Σ_k u_b[k]·F_b[k], the scalar whose gradient is uᵀJ.
fn contraction(g: &mut Graph, sys: &System, cots: &[TensorId]) -> NodeId {
    let mut phi = g.zero();
    for (b, &u) in sys.blocks.iter().zip(cots) {
        let t = crate::diff::contract(g, &b.expr, u);
        phi = g.add(phi, t);
    }
    phi
}

/// Compiled functions of an expression e(z, θ) of the solution, for `derive d(e)/d(p)`:
/// its value, E_z·v, uᵀE_z, E_θ·t, uᵀE_θ, and (for second derivatives) the second
/// directional derivatives of F and e along (v, t).
pub struct ExprFns {
    pub shape: Vec<usize>,
    pub len: usize,
    pub param: TensorId,
    pub param_len: usize,
    pub param_shape: Vec<usize>,
    value: Arc<dyn KernelFn>,
    jvp_z: Arc<dyn KernelFn>,
    vjp_z: Arc<dyn KernelFn>,
    jvp_p: Arc<dyn KernelFn>,
    vjp_p: Arc<dyn KernelFn>,
    second: Option<(Arc<dyn KernelFn>, Arc<dyn KernelFn>)>,
    cot: TensorId,
    dir_p: TensorId,
}

impl ExprFns {
    pub fn new(
        fns: &SystemFns,
        prog: &mut Program,
        sys: &System,
        e: &TensorExpr,
        param: TensorId,
        second: bool,
    ) -> Result<ExprFns, Diagnostic> {
        let engine = fns.engine.clone();
        let g = &mut prog.graph;
        let shape = e.shape.clone();
        let len: usize = shape.iter().product();
        let pshape = g.tensor(param).shape.clone();
        let pname = g.tensor(param).name.clone();
        let cot = input_tensor(g, "u_e".into(), &shape);
        let dir_p = input_tensor(g, format!("t_{pname}"), &pshape);
        let seeds: Vec<(TensorId, TensorId)> = sys
            .unknowns
            .iter()
            .map(|u| u.tensor)
            .zip(fns.dirs.iter().copied())
            .collect();
        let value = build(
            &*engine,
            g,
            &FnSpec::tensors(vec![("e".into(), e.clone())]),
            "e",
        )?;
        let je = crate::diff::jvp(g, e, &seeds);
        let jvp_z = build(
            &*engine,
            g,
            &FnSpec::tensors(vec![("Ez_v".into(), je)]),
            "e_jvp",
        )?;
        let phi = crate::diff::contract(g, e, cot);
        let named: Vec<(String, TensorId)> = sys
            .unknowns
            .iter()
            .map(|u| (format!("uEz_{}", u.name), u.tensor))
            .collect();
        let vjp_spec = gradients(g, phi, &named);
        let vjp_z = build(&*engine, g, &vjp_spec, "e_vjp")?;
        let jp = crate::diff::jvp(g, e, &[(param, dir_p)]);
        let jvp_p = build(
            &*engine,
            g,
            &FnSpec::tensors(vec![("Ep_t".into(), jp)]),
            "e_param_jvp",
        )?;
        let gp_spec = gradients(g, phi, &[("uEp".into(), param)]);
        let vjp_p = build(&*engine, g, &gp_spec, "e_param_vjp")?;
        let second = if second {
            let mut all = seeds.clone();
            all.push((param, dir_p));
            let f2: Vec<(String, TensorExpr)> = sys
                .blocks
                .iter()
                .enumerate()
                .map(|(k, b)| {
                    let t1 = crate::diff::jvp(g, &b.expr, &all);
                    (format!("F2_{}", k + 1), crate::diff::jvp(g, &t1, &all))
                })
                .collect();
            let t1 = crate::diff::jvp(g, e, &all);
            let e2 = crate::diff::jvp(g, &t1, &all);
            Some((
                build(&*engine, g, &FnSpec::tensors(f2), "F_second")?,
                build(
                    &*engine,
                    g,
                    &FnSpec::tensors(vec![("e2".into(), e2)]),
                    "e_second",
                )?,
            ))
        } else {
            None
        };
        Ok(ExprFns {
            shape,
            len,
            param,
            param_len: pshape.iter().product(),
            param_shape: pshape,
            value,
            jvp_z,
            vjp_z,
            jvp_p,
            vjp_p,
            second,
            cot,
            dir_p,
        })
    }

    pub fn value(
        &self,
        fns: &SystemFns,
        z: &[f64],
        st: &State,
        out: &mut [f64],
    ) -> Result<(), String> {
        let input = fns.lookup(z, st, &[]);
        self.value.run(&input, &mut [out])
    }

    /// E_z·v
    pub fn jvp_z(
        &self,
        fns: &SystemFns,
        z: &[f64],
        st: &State,
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let extra: Vec<(TensorId, &[f64])> = fns
            .dirs
            .iter()
            .zip(&fns.layout.unknowns)
            .map(|(&d, &(_, off, len))| (d, &v[off..off + len]))
            .collect();
        let input = fns.lookup(z, st, &extra);
        self.jvp_z.run(&input, &mut [out])
    }

    /// uᵀE_z (length n)
    pub fn vjp_z(
        &self,
        fns: &SystemFns,
        z: &[f64],
        st: &State,
        u: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let extra = [(self.cot, u)];
        let input = fns.lookup(z, st, &extra);
        let parts = fns.unknown_parts();
        let mut slices = SystemFns::split(&parts, out);
        self.vjp_z.run(&input, &mut slices)
    }

    /// E_θ·t
    pub fn jvp_p(
        &self,
        fns: &SystemFns,
        z: &[f64],
        st: &State,
        t: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let extra = [(self.dir_p, t)];
        let input = fns.lookup(z, st, &extra);
        self.jvp_p.run(&input, &mut [out])
    }

    /// uᵀE_θ (length of the param)
    pub fn vjp_p(
        &self,
        fns: &SystemFns,
        z: &[f64],
        st: &State,
        u: &[f64],
        out: &mut [f64],
    ) -> Result<(), String> {
        let extra = [(self.cot, u)];
        let input = fns.lookup(z, st, &extra);
        self.vjp_p.run(&input, &mut [out])
    }

    /// (D²F[w, w], D²e[w, w]) along w = (v, t) in (z, θ).
    pub fn second(
        &self,
        fns: &SystemFns,
        z: &[f64],
        st: &State,
        v: &[f64],
        t: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>), String> {
        let (kf, ke) = self
            .second
            .as_ref()
            .ok_or("second derivatives not compiled")?;
        let mut extra: Vec<(TensorId, &[f64])> = fns
            .dirs
            .iter()
            .zip(&fns.layout.unknowns)
            .map(|(&d, &(_, off, len))| (d, &v[off..off + len]))
            .collect();
        extra.push((self.dir_p, t));
        let input = fns.lookup(z, st, &extra);
        let mut f2 = vec![0.0; fns.layout.m];
        let mut e2 = vec![0.0; self.len];
        let mut slices = SystemFns::split(&fns.layout.blocks, &mut f2);
        kf.run(&input, &mut slices)?;
        ke.run(&input, &mut [&mut e2])?;
        Ok((f2, e2))
    }
}
