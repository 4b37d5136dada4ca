//! Phase 2 — check. In: the AST (and data files, `use` modules, `--dim`/`--set`). Out: a
//! [`Model`] where every name is resolved, every dim bound, every shape known and every `fn`
//! inlined; or coded diagnostics with spans.
//!
//! **Everything the user can get wrong about names and shapes is reported here**, before any
//! IR exists. Statements are checked in order; declarations are visible after their statement.

pub mod builtins;
mod data;
mod expr;
pub mod model;
mod system;

pub use builtins::{is_builtin_name, names as builtin_names, TABLE as BUILTINS};
pub use data::{load as load_data, DataLimits, Table};
pub use model::*;
pub use system::{count_system, vars_in, SystemCount};

use crate::diag::{did_you_mean, Code, Diagnostic, Diagnostics, FileId, Sources, Span};
use crate::syntax::ast;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Sizes the checker refuses to exceed, so hostile or mistaken input fails with a diagnostic.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest number of entries of one tensor.
    pub max_tensor_entries: usize,
    /// Largest number of typed-expression nodes (after inlining `fn`s).
    pub max_typed_nodes: usize,
    pub data: DataLimits,
    /// Wall-clock cap on each solve, in seconds (0: none). It bounds a file's own
    /// `max_time` option, so a service can run untrusted models.
    pub max_solve_seconds: f64,
}

impl Limits {
    /// A time limit (seconds, 0 for none) bounded by `max_solve_seconds`.
    pub fn cap_seconds(&self, max_time: f64) -> f64 {
        let cap = self.max_solve_seconds;
        if cap > 0.0 && (max_time == 0.0 || max_time > cap) {
            cap
        } else {
            max_time
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_entries: 50_000_000,
            max_typed_nodes: 2_000_000,
            data: DataLimits {
                max_bytes: 1 << 30,
                max_values: 100_000_000,
            },
            max_solve_seconds: 0.0,
        }
    }
}

/// A `--set NAME=VALUE` override: an expression text or `@file`.
#[derive(Clone, Debug)]
pub struct ParamOverride {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Folder that `load("...")` paths are relative to; `None` forbids file access.
    pub base_dir: Option<PathBuf>,
    pub dims: Vec<(String, usize)>,
    pub params: Vec<ParamOverride>,
    pub limits: Limits,
}

/// Checks a parsed program. `file` is the program's source in `sources`; `use` modules and
/// `--set` texts are added to `sources`.
pub fn check(
    program: &ast::Program,
    file: FileId,
    sources: &mut Sources,
    options: &CheckOptions,
) -> Result<(Model, Vec<Diagnostic>), Diagnostics> {
    let mut c = Checker::new(sources, options);
    c.main_file = file;
    c.apply_dim_overrides();
    for stmt in &program.stmts {
        c.stmt(stmt);
    }
    c.finish()
}

/// What a global name denotes.
#[derive(Clone, Copy, Debug)]
enum Global {
    Dim(DimId),
    Param(ParamId),
    Var(VarId),
    Let(LetId),
    Fn(usize),
    Constraint(ConstraintId),
    Pde,
}

impl Global {
    fn describe(self) -> &'static str {
        match self {
            Global::Dim(_) => "dim",
            Global::Param(_) => "param",
            Global::Var(_) => "var",
            Global::Let(_) => "let",
            Global::Fn(_) => "fn",
            Global::Constraint(_) => "constraint",
            Global::Pde => "pde",
        }
    }
}

#[derive(Clone, Debug)]
struct GlobalEntry {
    what: Global,
    span: Span,
    /// Declaration order, for `fn` bodies that see only earlier names.
    order: usize,
}

#[derive(Clone, Debug)]
struct FnInfo {
    def: ast::FnDef,
    order: usize,
}

/// A dim while checking: declared, maybe not yet sized.
#[derive(Clone, Debug)]
struct DimState {
    name: String,
    span: Span,
    value: Option<(usize, Span)>,
}

pub(crate) struct Checker<'s> {
    sources: &'s mut Sources,
    options: &'s CheckOptions,
    model: Model,
    dims: Vec<DimState>,
    globals: HashMap<String, GlobalEntry>,
    fns: Vec<FnInfo>,
    order: usize,
    diags: Vec<Diagnostic>,
    /// Names whose declaration failed (their later uses are not reported again).
    failed_names: std::collections::HashSet<String>,
    warnings: Vec<Diagnostic>,
    typed_nodes: usize,
    param_overrides: HashMap<String, ParamOverride>,
    used_modules: Vec<String>,
    /// Folder for `load` paths (`None`: file access is off).
    load_base: Option<PathBuf>,
    /// Global names referenced so far (for W0902).
    used: std::collections::HashSet<String>,
    /// The user's file (unused declarations in stdlib modules are not reported).
    main_file: FileId,
}

type R<T> = Result<T, Diagnostic>;

impl<'s> Checker<'s> {
    fn new(sources: &'s mut Sources, options: &'s CheckOptions) -> Self {
        let param_overrides = options
            .params
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect();
        Checker {
            sources,
            options,
            model: Model::default(),
            dims: Vec::new(),
            globals: HashMap::new(),
            fns: Vec::new(),
            order: 0,
            diags: Vec::new(),
            failed_names: Default::default(),
            warnings: Vec::new(),
            typed_nodes: 0,
            param_overrides,
            used_modules: Vec::new(),
            load_base: options.base_dir.clone(),
            used: std::collections::HashSet::new(),
            main_file: FileId(0),
        }
    }

    fn apply_dim_overrides(&mut self) {
        // --dim values bind when the dim is declared; unknown names are reported at the end.
    }

    fn finish(mut self) -> Result<(Model, Vec<Diagnostic>), Diagnostics> {
        for (name, _) in &self.options.dims {
            if !self.dims.iter().any(|d| &d.name == name) {
                let known: Vec<&str> = self.dims.iter().map(|d| d.name.as_str()).collect();
                let mut d = Diagnostic::error(
                    Code::BadSetValue,
                    format!("--dim {name}: the file has no dim `{name}`"),
                );
                d = match did_you_mean(name, known.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("the file's dims are: {}", known.join(", "))),
                };
                self.diags.push(d);
            }
        }
        for name in self.param_overrides.keys() {
            if !self.model.params.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = self.model.params.iter().map(|p| p.name.as_str()).collect();
                let mut d = Diagnostic::error(
                    Code::BadSetValue,
                    format!("--set {name}: the file has no param `{name}`"),
                );
                d = match did_you_mean(name, known.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("the file's params are: {}", known.join(", "))),
                };
                self.diags.push(d);
            }
        }
        if self.diags.is_empty() {
            if let Err(d) = system::check_system(&self.model) {
                self.diags.push(d);
            }
        }
        if self.diags.is_empty() {
            self.unused_warnings();
        }
        // Dims that got a size are part of the model.
        self.model.dims = self
            .dims
            .iter()
            .filter_map(|d| {
                d.value.map(|(v, origin)| Dim {
                    name: d.name.clone(),
                    value: v,
                    span: d.span,
                    origin,
                })
            })
            .collect();
        if self.diags.is_empty() {
            Ok((self.model, self.warnings))
        } else {
            let mut all = self.diags;
            all.extend(self.warnings);
            Err(Diagnostics(all))
        }
    }

    /// W0902 for params, lets and fns of the user's file that nothing uses.
    fn unused_warnings(&mut self) {
        let mut unused: Vec<(&String, &GlobalEntry)> = self
            .globals
            .iter()
            .filter(|(name, g)| {
                g.span.file == self.main_file
                    && !self.used.contains(*name)
                    && match g.what {
                        Global::Param(_) | Global::Fn(_) => true,
                        Global::Let(id) => self.model.lets[id.index()].kind == LetKind::Let,
                        _ => false,
                    }
            })
            .collect();
        unused.sort_by_key(|(_, g)| g.order);
        for (name, g) in unused {
            self.warnings.push(
                Diagnostic::warning(
                    Code::UnusedName,
                    format!("{} `{name}` is never used", g.what.describe()),
                )
                .at(g.span, "declared here")
                .help("remove it, or check the spelling where you meant to use it"),
            );
        }
    }

    // ---- names ------------------------------------------------------------------------

    fn declare(&mut self, name: &ast::Ident, what: Global) -> R<()> {
        if builtins::is_builtin_name(&name.name) {
            return Err(Diagnostic::error(
                Code::ShadowsBuiltin,
                format!("`{}` is a builtin", name.name),
            )
            .at(name.span, "this name is taken by a builtin")
            .help(format!("pick another name, e.g. `{}_`", name.name)));
        }
        if let Some(prev) = self.globals.get(&name.name) {
            return Err(Diagnostic::error(
                Code::Duplicate,
                format!("`{}` is declared twice", name.name),
            )
            .at(name.span, "declared again here")
            .also(
                prev.span,
                format!("first declared here as a {}", prev.what.describe()),
            )
            .help("rename one of them"));
        }
        self.order += 1;
        self.globals.insert(
            name.name.clone(),
            GlobalEntry {
                what,
                span: name.span,
                order: self.order,
            },
        );
        Ok(())
    }

    fn unknown_name(&self, name: &str, span: Span, extra: &[&str]) -> Diagnostic {
        let mut candidates: Vec<&str> = self.globals.keys().map(String::as_str).collect();
        candidates.extend_from_slice(extra);
        candidates.extend(builtins::CONSTANTS.iter().map(|c| c.0));
        let mut d = Diagnostic::error(Code::UnknownName, format!("unknown name `{name}`"))
            .at(span, "not declared");
        d = match did_you_mean(name, candidates) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!(
                "declare it before this line, e.g. `param {name} = 1` or `var {name}`"
            )),
        };
        d
    }

    // ---- statements -------------------------------------------------------------------

    fn stmt(&mut self, stmt: &ast::Stmt) {
        if let Err(d) = self.stmt_inner(stmt) {
            // A use of a name whose declaration already failed is a consequence of that
            // error, not a new one.
            let follows = d.code == Code::UnknownName
                && d.primary
                    .as_ref()
                    .is_some_and(|l| self.failed_names.contains(self.sources.slice(l.span)));
            if !follows {
                self.diags.push(d);
            }
            use ast::StmtKind as K;
            match &stmt.kind {
                K::Param(decl) | K::Var(decl) => {
                    self.failed_names.insert(decl.name.name.clone());
                }
                K::Let(name, ..) => {
                    self.failed_names.insert(name.name.clone());
                }
                K::Pde { name, .. } => {
                    self.failed_names.insert(name.name.clone());
                }
                K::Dim(items) => {
                    for (name, _) in items {
                        self.failed_names.insert(name.name.clone());
                    }
                }
                _ => {}
            }
        }
    }

    fn stmt_inner(&mut self, stmt: &ast::Stmt) -> R<()> {
        use ast::StmtKind as K;
        match &stmt.kind {
            K::Dim(items) => {
                for (name, value) in items {
                    self.dim_decl(name, value.as_ref())?;
                }
                Ok(())
            }
            K::Param(decl) => self.param_decl(decl),
            K::Var(decl) => self.var_decl(decl),
            K::Let(name, ty, e) => {
                let t = self.expr(e, &mut expr::Env::global())?;
                self.real(&t)?;
                if let Some(ty) = ty {
                    let shape = self.type_shape(ty)?;
                    if shape != t.shape {
                        return Err(Diagnostic::error(
                            Code::ShapeMismatch,
                            format!(
                                "`{}` is declared {} but its value is {}",
                                name.name,
                                shape_str(&shape),
                                shape_str(&t.shape)
                            ),
                        )
                        .at(e.span, format!("this is {}", shape_str(&t.shape)))
                        .also(ty.span, "declared here")
                        .help("fix the declared type or the expression"));
                    }
                }
                self.add_let(name, t, LetKind::Let)
            }
            K::Fn(def) => self.fn_decl(def),
            K::Use(names) => {
                for n in names {
                    self.use_module(n)?;
                }
                Ok(())
            }
            K::Objective { sense, name, expr } => {
                if let Some(prev) = &self.model.objective {
                    return Err(Diagnostic::error(Code::TooManyObjectives, "a second objective")
                        .at(stmt.span, "second objective")
                        .also(prev.span, "first objective")
                        .help("combine them into one expression, or use `tune` for an outer objective"));
                }
                let t = self.expr(expr, &mut expr::Env::global())?;
                self.scalar_real(&t, "an objective")?;
                let sense = match sense {
                    ast::Sense::Minimize => Sense::Minimize,
                    ast::Sense::Maximize => Sense::Maximize,
                };
                if let Some(n) = name {
                    self.add_let(n, t.clone(), LetKind::Objective)?;
                }
                self.model.objective = Some(Objective {
                    sense,
                    name: name.as_ref().map(|n| n.name.clone()),
                    expr: t,
                    span: stmt.span,
                });
                Ok(())
            }
            K::Constraint { name, rel } => self.constraint(name, rel, stmt.span),
            K::Lagrangian { name, expr } => {
                let t = self.expr(expr, &mut expr::Env::global())?;
                self.scalar_real(&t, "a lagrangian")?;
                if let Some(n) = name {
                    self.add_let(n, t.clone(), LetKind::Lagrangian)?;
                }
                self.model.lagrangians.push(Lagrangian {
                    name: name.as_ref().map(|n| n.name.clone()),
                    expr: t,
                    span: stmt.span,
                });
                Ok(())
            }
            K::Condition { name, rel } => {
                let (lhs, rhs) = self.equality(rel, "condition")?;
                self.model.conditions.push(Condition {
                    name: name.as_ref().map(|n| n.name.clone()),
                    lhs,
                    rhs,
                    span: stmt.span,
                });
                Ok(())
            }
            K::Solve { target, using } => {
                if let Some(t) = target {
                    if !self.model.pdes.iter().any(|p| p.name == t.name) {
                        let names: Vec<&str> =
                            self.model.pdes.iter().map(|p| p.name.as_str()).collect();
                        let mut d = Diagnostic::error(
                            Code::UnknownName,
                            format!("no pde named `{}`", t.name),
                        )
                        .at(t.span, "not a pde block");
                        d = match did_you_mean(&t.name, names.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("`solve NAME` solves the pde block NAME; plain `solve` solves the file's conditions"),
                        };
                        return Err(d);
                    }
                }
                let method = using.as_ref().map(|m| self.method(m)).transpose()?;
                if let (Some(t), Some(m)) = (target, &method) {
                    if let Some(p) = self.model.pdes.iter().find(|p| p.name == t.name) {
                        crate::pde::check_options(m, p.dim)?;
                    }
                }
                self.model.requests.push(Request::Solve {
                    target: target.as_ref().map(|t| t.name.clone()),
                    method,
                    span: stmt.span,
                });
                Ok(())
            }
            K::Derive { d, using } => self.derive(d, using.as_ref(), stmt.span),
            K::Tune {
                params,
                sense,
                expr,
                using,
            } => {
                let mut ids = Vec::new();
                for p in params {
                    let id = self.param_name(p, "tune")?;
                    if !self.model.param(id).shape.is_empty()
                        && self.model.param(id).shape.iter().product::<usize>() > 1_000_000
                    {
                        return Err(Diagnostic::error(
                            Code::LimitExceeded,
                            "tuned param too large",
                        )
                        .at(p.span, "here"));
                    }
                    ids.push(id);
                }
                let t = self.expr(expr, &mut expr::Env::global())?;
                self.scalar_real(&t, "a tune objective")?;
                let method = using.as_ref().map(|m| self.method(m)).transpose()?;
                crate::solve::outer::options(method.as_ref())?;
                self.model.requests.push(Request::Tune {
                    objective_text: self.sources.slice(expr.span).to_string(),
                    params: ids,
                    sense: match sense {
                        ast::Sense::Minimize => Sense::Minimize,
                        ast::Sense::Maximize => Sense::Maximize,
                    },
                    objective: t,
                    method,
                    span: stmt.span,
                });
                Ok(())
            }
            K::Print(items) => {
                let mut out = Vec::new();
                for e in items {
                    let t = self.expr(e, &mut expr::Env::global())?;
                    self.real(&t)?;
                    out.push((self.sources.slice(e.span).to_string(), t));
                }
                self.model.requests.push(Request::Print {
                    items: out,
                    span: stmt.span,
                });
                Ok(())
            }
            K::Pde { name, items } => self.pde(name, items, stmt.span),
        }
    }

    fn dim_decl(&mut self, name: &ast::Ident, value: Option<&ast::Expr>) -> R<()> {
        let id = DimId(self.dims.len() as u32);
        self.declare(name, Global::Dim(id))?;
        // Declared before its size is known, so a bad size leaves an unbound dim, not a hole.
        self.dims.push(DimState {
            name: name.name.clone(),
            span: name.span,
            value: None,
        });
        if let Some((_, v)) = self.options.dims.iter().find(|(n, _)| n == &name.name) {
            if *v == 0 {
                return Err(Diagnostic::error(
                    Code::BadSetValue,
                    format!("--dim {}=0 is not a positive size", name.name),
                )
                .at(name.span, "this dim")
                .help("sizes are positive integers"));
            }
            // The command line wins over a literal in the file.
            self.dims[id.index()].value = Some((*v, name.span));
            return Ok(());
        }
        if let Some(e) = value {
            let v = self.const_int(e, &expr::Env::global())?;
            if v <= 0 {
                return Err(Diagnostic::error(
                    Code::BadDim,
                    format!("dim `{}` = {v} is not a positive size", name.name),
                )
                .at(e.span, format!("this is {v}"))
                .help("sizes are positive integers"));
            }
            self.dims[id.index()].value = Some((v as usize, e.span));
        }
        Ok(())
    }

    /// Binds a dim from a data file or reports the conflict.
    fn bind_dim(&mut self, id: DimId, value: usize, origin: Span, what: &str) -> R<()> {
        let d = &mut self.dims[id.index()];
        match d.value {
            None => {
                d.value = Some((value, origin));
                Ok(())
            }
            Some((v, _)) if v == value => Ok(()),
            Some((v, prev)) => Err(Diagnostic::error(
                Code::DimConflict,
                format!("dim `{}` is {v}, but {what} gives {value}", d.name),
            )
            .at(origin, format!("this gives {value}"))
            .also(prev, format!("`{}` = {v} from here", d.name))
            .help("make the data and the declarations agree (or pass --dim)")),
        }
    }

    pub(crate) fn dim_value(&self, id: DimId, use_span: Span) -> R<usize> {
        let d = &self.dims[id.index()];
        d.value.map(|(v, _)| v).ok_or_else(|| {
            Diagnostic::error(Code::UnboundDim, format!("dim `{}` has no size yet", d.name))
                .at(use_span, "used here")
                .also(d.span, "declared here without a size")
                .help(format!(
                    "give it one: `dim {} = 10`, load data of a declared type that uses it first, or pass --dim {}=10",
                    d.name, d.name
                ))
        })
    }

    /// The shape of a declared type; dims named in it may still be unbound (data binds them).
    fn type_shape(&mut self, ty: &ast::Type) -> R<Shape> {
        let mut shape = Vec::new();
        for e in &ty.dims {
            let v = self.const_int(e, &expr::Env::global())?;
            if v <= 0 {
                return Err(
                    Diagnostic::error(Code::BadDim, format!("size {v} is not positive"))
                        .at(e.span, format!("this is {v}"))
                        .help("sizes are positive integers"),
                );
            }
            shape.push(v as usize);
        }
        self.check_entries(&shape, ty.span)?;
        Ok(shape)
    }

    fn check_entries(&self, shape: &[usize], span: Span) -> R<()> {
        let mut n: usize = 1;
        for &d in shape {
            n = n.saturating_mul(d);
        }
        if n > self.options.limits.max_tensor_entries {
            return Err(Diagnostic::error(
                Code::LimitExceeded,
                format!(
                    "a tensor of {n} entries exceeds the limit of {}",
                    self.options.limits.max_tensor_entries
                ),
            )
            .at(span, "this shape")
            .help("use smaller sizes, or raise the tensor size limit in the compile options"));
        }
        Ok(())
    }

    /// Dims of a type that are still unbound, with their positions: data can bind them.
    fn unbound_type_dims(&self, ty: &ast::Type) -> Vec<(usize, DimId)> {
        let mut out = Vec::new();
        for (k, e) in ty.dims.iter().enumerate() {
            if let ast::ExprKind::Name(n) = &e.kind {
                if let Some(GlobalEntry {
                    what: Global::Dim(id),
                    ..
                }) = self.globals.get(n)
                {
                    if self.dims[id.index()].value.is_none() {
                        out.push((k, *id));
                    }
                }
            }
        }
        out
    }

    /// Loads `load("file")` and fits it to an optional declared type, binding dims.
    fn load_value(
        &mut self,
        ty: Option<&ast::Type>,
        call: &ast::Expr,
        path_expr: &ast::Expr,
    ) -> R<(Shape, Arc<[f64]>)> {
        let ast::ExprKind::Str(path) = &path_expr.kind else {
            return Err(Diagnostic::error(
                Code::BadArgument,
                "load(...) takes a file name in quotes",
            )
            .at(path_expr.span, "not a string")
            .help("write load(\"data/X.csv\")"));
        };
        let Some(base) = &self.load_base else {
            return Err(Diagnostic::error(Code::DataMissing, "file access is disabled")
                .at(call.span, "load(...) needs file access")
                .help("this compilation runs without file access; pass the data with --set or the library API"));
        };
        let full = base.join(path);
        let table = data::load(&full, path, call.span, self.options.limits.data)?;
        let shape = match ty {
            None => table.default_shape(),
            Some(ty) => {
                // Dims written in the type and not yet sized take their size from the data.
                let unbound = self.unbound_type_dims(ty);
                if !unbound.is_empty() {
                    let natural = if table.is_csv {
                        let (r, c) = (table.natural[0], table.natural[1]);
                        match ty.dims.len() {
                            1 => vec![if c == 1 { r } else { c }],
                            2 => vec![r, c],
                            _ => table.natural.clone(),
                        }
                    } else {
                        table.natural.clone()
                    };
                    if natural.len() == ty.dims.len() {
                        for (k, id) in unbound {
                            self.bind_dim(
                                id,
                                natural[k],
                                call.span,
                                &format!("`{path}` ({})", table.describe()),
                            )?;
                        }
                    }
                }
                self.type_shape(ty)?
            }
        };
        let values = table.fit(&shape).map_err(|got| {
            let mut d = Diagnostic::error(
                Code::DataShape,
                format!(
                    "`{path}` holds {got}, but the declaration needs {}",
                    shape_str(&shape)
                ),
            )
            .at(call.span, got.to_string());
            if let Some(ty) = ty {
                d = d.also(ty.span, format!("declared {}", shape_str(&shape)));
            }
            d.help("fix the data file or the declared type")
        })?;
        self.check_entries(&shape, call.span)?;
        Ok((shape, Arc::from(values)))
    }

    fn param_decl(&mut self, decl: &ast::Decl) -> R<()> {
        let id = ParamId(self.model.params.len() as u32);
        let mut init = None;
        let mut lo = None;
        let mut hi = None;
        for c in &decl.clauses {
            match c {
                ast::DeclClause::Init(e) => set_once(&mut init, e, "value")?,
                ast::DeclClause::Ge(e) => set_once(&mut lo, e, "lower bound")?,
                ast::DeclClause::Le(e) => set_once(&mut hi, e, "upper bound")?,
                ast::DeclClause::In(a, b) => {
                    set_once(&mut lo, a, "lower bound")?;
                    set_once(&mut hi, b, "upper bound")?;
                }
            }
        }
        let mut env = expr::Env::param_default();
        let (shape, value) = if let Some(ov) = self.param_overrides.get(&decl.name.name).cloned() {
            self.override_value(decl, &ov, &mut env)?
        } else {
            match init {
                Some(e) => self.initial_value(decl.ty.as_ref(), e, &mut env, &decl.name.name)?,
                None => match &decl.ty {
                    Some(ty) => (self.type_shape(ty)?, Value::None),
                    None => (Vec::new(), Value::None),
                },
            }
        };
        let lo = lo
            .map(|e| self.bound_expr(e, &shape, &mut env))
            .transpose()?;
        let hi = hi
            .map(|e| self.bound_expr(e, &shape, &mut env))
            .transpose()?;
        self.declare(&decl.name, Global::Param(id))?;
        self.model.params.push(Param {
            name: decl.name.name.clone(),
            shape,
            value,
            lo,
            hi,
            span: decl.name.span,
        });
        Ok(())
    }

    /// A `--set` value: `@file` or an expression text.
    fn override_value(
        &mut self,
        decl: &ast::Decl,
        ov: &ParamOverride,
        env: &mut expr::Env,
    ) -> R<(Shape, Value)> {
        let file = self
            .sources
            .add(format!("--set {}", ov.name), None, &ov.value);
        let text = ov.value.trim();
        let e = if let Some(path) = text.strip_prefix('@') {
            let span = Span::new(file, 0, ov.value.len());
            ast::Expr {
                kind: ast::ExprKind::Call(
                    ast::Ident {
                        name: "load".into(),
                        span,
                    },
                    vec![ast::Expr {
                        kind: ast::ExprKind::Str(path.to_string()),
                        span,
                    }],
                ),
                span,
            }
        } else {
            crate::syntax::parse_expr(&ov.value, file).map_err(|mut ds| {
                let mut d = ds.0.remove(0);
                d.code = Code::BadSetValue;
                d.help = Some(
                    "--set NAME=VALUE takes a number, a literal like [1, 2], or @file.csv".into(),
                );
                d
            })?
        };
        // `@file` paths are relative to the working directory, like any command-line path.
        let saved = self.load_base.clone();
        if text.starts_with('@') && saved.is_some() {
            self.load_base = Some(PathBuf::from("."));
        }
        let r = self.initial_value(decl.ty.as_ref(), &e, env, &decl.name.name);
        self.load_base = saved;
        r.map_err(|mut d| {
            if d.code == Code::ShapeMismatch {
                d.code = Code::BadSetValue;
            }
            d
        })
    }

    /// `= load(...)` or `= expr`, fitted to the declared type if any (scalars broadcast).
    fn initial_value(
        &mut self,
        ty: Option<&ast::Type>,
        e: &ast::Expr,
        env: &mut expr::Env,
        name: &str,
    ) -> R<(Shape, Value)> {
        if let ast::ExprKind::Call(f, args) = &e.kind {
            if f.name == "load" {
                if args.len() != 1 {
                    return Err(Diagnostic::error(Code::Arity, "load takes one file name")
                        .at(e.span, "here")
                        .help("write load(\"file.csv\")"));
                }
                let (shape, data) = self.load_value(ty, e, &args[0])?;
                return Ok((shape, Value::Data(data)));
            }
        }
        let t = self.expr(e, env)?;
        self.real(&t)?;
        let shape = match ty {
            Some(ty) => self.type_shape(ty)?,
            None => t.shape.clone(),
        };
        if t.shape != shape {
            if t.shape.is_empty() {
                // A scalar fills the declared shape.
                let t = self.broadcast(t, &shape);
                return Ok((shape, Value::Expr(t)));
            }
            return Err(Diagnostic::error(
                Code::ShapeMismatch,
                format!(
                    "`{name}` is declared {} but its value is {}",
                    shape_str(&shape),
                    shape_str(&t.shape)
                ),
            )
            .at(e.span, format!("this is {}", shape_str(&t.shape)))
            .help("give a value of the declared shape, or a scalar to fill it"));
        }
        Ok((shape, Value::Expr(t)))
    }

    fn bound_expr(&mut self, e: &ast::Expr, shape: &Shape, env: &mut expr::Env) -> R<T> {
        let t = self.expr(e, env)?;
        self.real(&t)?;
        if t.shape.is_empty() {
            return Ok(t);
        }
        if &t.shape != shape {
            return Err(Diagnostic::error(
                Code::ShapeMismatch,
                format!(
                    "a bound of shape {} for a value of shape {}",
                    shape_str(&t.shape),
                    shape_str(shape)
                ),
            )
            .at(e.span, "this bound")
            .help("bounds are scalars or have the declared shape"));
        }
        Ok(t)
    }

    fn var_decl(&mut self, decl: &ast::Decl) -> R<()> {
        let id = VarId(self.model.vars.len() as u32);
        let mut init = None;
        let mut lo = None;
        let mut hi = None;
        for c in &decl.clauses {
            match c {
                ast::DeclClause::Init(e) => set_once(&mut init, e, "initial value")?,
                ast::DeclClause::Ge(e) => set_once(&mut lo, e, "lower bound")?,
                ast::DeclClause::Le(e) => set_once(&mut hi, e, "upper bound")?,
                ast::DeclClause::In(a, b) => {
                    set_once(&mut lo, a, "lower bound")?;
                    set_once(&mut hi, b, "upper bound")?;
                }
            }
        }
        let mut env = expr::Env::param_default();
        let (shape, value) = match init {
            Some(e) => self.initial_value(decl.ty.as_ref(), e, &mut env, &decl.name.name)?,
            None => match &decl.ty {
                Some(ty) => (self.type_shape(ty)?, Value::None),
                None => (Vec::new(), Value::None),
            },
        };
        let lo = lo
            .map(|e| self.bound_expr(e, &shape, &mut env))
            .transpose()?;
        let hi = hi
            .map(|e| self.bound_expr(e, &shape, &mut env))
            .transpose()?;
        self.declare(&decl.name, Global::Var(id))?;
        self.model.vars.push(Var {
            name: decl.name.name.clone(),
            shape,
            init: value,
            lo,
            hi,
            span: decl.name.span,
        });
        Ok(())
    }

    fn add_let(&mut self, name: &ast::Ident, t: T, kind: LetKind) -> R<()> {
        let id = LetId(self.model.lets.len() as u32);
        self.declare(name, Global::Let(id))?;
        self.model.lets.push(Let {
            name: name.name.clone(),
            expr: t,
            span: name.span,
            kind,
        });
        Ok(())
    }

    fn fn_decl(&mut self, def: &ast::FnDef) -> R<()> {
        let mut seen: Vec<&str> = Vec::new();
        for p in &def.params {
            if seen.contains(&p.name.as_str()) {
                return Err(Diagnostic::error(
                    Code::Duplicate,
                    format!("parameter `{}` appears twice", p.name),
                )
                .at(p.span, "again here")
                .help("give each parameter its own name"));
            }
            seen.push(&p.name);
        }
        // Names in the body must exist now (fns see only what is declared before them).
        let params: Vec<String> = def.params.iter().map(|p| p.name.clone()).collect();
        self.resolve_names_only(&def.body, &params, &def.name.name)?;
        let idx = self.fns.len();
        self.declare(&def.name, Global::Fn(idx))?;
        self.fns.push(FnInfo {
            def: def.clone(),
            order: self.order,
        });
        Ok(())
    }

    fn use_module(&mut self, name: &ast::Ident) -> R<()> {
        if self.used_modules.contains(&name.name) {
            return Ok(());
        }
        let Some(text) = crate::stdlib::module(&name.name) else {
            let names: Vec<&str> = crate::stdlib::MODULES.iter().map(|m| m.0).collect();
            let mut d = Diagnostic::error(
                Code::UnknownModule,
                format!("no module named `{}`", name.name),
            )
            .at(name.span, "unknown module");
            d = match did_you_mean(&name.name, names.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("the modules are: {}", names.join(", "))),
            };
            return Err(d);
        };
        self.used_modules.push(name.name.clone());
        let file = self
            .sources
            .add(format!("stdlib/{}.opt", name.name), None, text);
        let program = crate::syntax::parse(text, file).map_err(|mut ds| ds.0.remove(0))?;
        for stmt in &program.stmts {
            match &stmt.kind {
                ast::StmtKind::Fn(_) | ast::StmtKind::Use(_) => self.stmt_inner(stmt)?,
                _ => {
                    return Err(
                        Diagnostic::error(Code::Unsupported, "modules may only define fns")
                            .at(stmt.span, "not a fn")
                            .help("this is a bug in the standard library"),
                    )
                }
            }
        }
        Ok(())
    }

    fn constraint(&mut self, name: &ast::Ident, rel: &ast::Relation, span: Span) -> R<()> {
        if let Some((eq, _)) = &rel.single_eq {
            return Err(single_eq_error(*eq));
        }
        let (op, lhs, rhs) = self.relation_parts(&rel.expr, "constraint")?;
        let l = self.expr(lhs, &mut expr::Env::global())?;
        let r = self.expr(rhs, &mut expr::Env::global())?;
        self.real(&l)?;
        self.real(&r)?;
        let (kind, g) = match op {
            ast::BinaryOp::Eq => (
                ConstraintKind::Eq,
                self.elementwise(crate::ops::BinOp::Sub, l, r, rel.expr.span)?,
            ),
            ast::BinaryOp::Le => (
                ConstraintKind::Le,
                self.elementwise(crate::ops::BinOp::Sub, l, r, rel.expr.span)?,
            ),
            ast::BinaryOp::Ge => (
                ConstraintKind::Le,
                self.elementwise(crate::ops::BinOp::Sub, r, l, rel.expr.span)?,
            ),
            _ => {
                return Err(Diagnostic::error(
                    Code::NotBoolean,
                    format!("a constraint cannot use `{}`", op.symbol()),
                )
                .at(rel.expr.span, "this comparison")
                .help("constraints use ==, <= or >="))
            }
        };
        let id = ConstraintId(self.model.constraints.len() as u32);
        self.declare(name, Global::Constraint(id))?;
        self.model.constraints.push(Constraint {
            name: name.name.clone(),
            kind,
            g,
            span,
        });
        Ok(())
    }

    /// Splits `a op b` at the top of a relation.
    fn relation_parts<'e>(
        &self,
        e: &'e ast::Expr,
        what: &str,
    ) -> R<(ast::BinaryOp, &'e ast::Expr, &'e ast::Expr)> {
        match &e.kind {
            ast::ExprKind::Binary(op, a, b) if op.is_comparison() => {
                if let ast::ExprKind::Binary(op2, _, _) = &a.kind {
                    if op2.is_comparison() {
                        return Err(Diagnostic::error(
                            Code::Unsupported,
                            "chained comparisons are not supported here",
                        )
                        .at(e.span, "two comparisons")
                        .help(format!("write two statements, one {what} for each side")));
                    }
                }
                Ok((*op, a, b))
            }
            _ => Err(
                Diagnostic::error(Code::NotBoolean, format!("a {what} needs a comparison"))
                    .at(e.span, "this is a value, not a comparison")
                    .help(format!(
                        "write the {what} as `a == b` (or `<=`, `>=` for constraints)"
                    )),
            ),
        }
    }

    fn equality(&mut self, rel: &ast::Relation, what: &str) -> R<(T, T)> {
        if let Some((eq, _)) = &rel.single_eq {
            return Err(single_eq_error(*eq));
        }
        let (op, a, b) = self.relation_parts(&rel.expr, what)?;
        if op != ast::BinaryOp::Eq {
            return Err(Diagnostic::error(
                Code::NotBoolean,
                format!("a {what} is an equation and needs `==`"),
            )
            .at(rel.expr.span, format!("`{}` here", op.symbol()))
            .help("inequalities belong in `subject to NAME: a <= b` with an objective"));
        }
        let l = self.expr(a, &mut expr::Env::global())?;
        let r = self.expr(b, &mut expr::Env::global())?;
        self.real(&l)?;
        self.real(&r)?;
        if l.shape != r.shape && !l.shape.is_empty() && !r.shape.is_empty() {
            return Err(Diagnostic::error(
                Code::ShapeMismatch,
                format!(
                    "the sides have shapes {} and {}",
                    shape_str(&l.shape),
                    shape_str(&r.shape)
                ),
            )
            .at(a.span, shape_str(&l.shape))
            .also(b.span, shape_str(&r.shape))
            .help("both sides must have the same shape (or one side be a scalar)"));
        }
        let (l, r) = if l.shape.is_empty() && !r.shape.is_empty() {
            (self.broadcast(l, &r.shape.clone()), r)
        } else if r.shape.is_empty() && !l.shape.is_empty() {
            let s = l.shape.clone();
            (l, self.broadcast(r, &s))
        } else {
            (l, r)
        };
        Ok((l, r))
    }

    fn method(&mut self, m: &ast::Method) -> R<MethodSpec> {
        let mut options = Vec::new();
        for a in &m.args {
            let Some(name) = &a.name else {
                return Err(Diagnostic::error(
                    Code::UnknownMethod,
                    "options are written `name = value`",
                )
                .at(a.value.span, "unnamed option")
                .help(format!("e.g. `{}(tol = 1e-10)`", m.name.name)));
            };
            let v = self.option_value(&a.value)?;
            options.push((name.name.clone(), v, a.value.span));
        }
        Ok(MethodSpec {
            name: m.name.name.clone(),
            options,
            span: m.span,
        })
    }

    fn option_value(&mut self, e: &ast::Expr) -> R<OptValue> {
        if let ast::ExprKind::Name(n) = &e.kind {
            let is_number = builtins::CONSTANTS.iter().any(|c| c.0 == n.as_str())
                || matches!(self.globals.get(n).map(|g| g.what), Some(Global::Dim(_)));
            if !is_number {
                return Ok(OptValue::Name(n.clone()));
            }
        }
        let v = self.const_f64(e, &expr::Env::global())?;
        Ok(OptValue::Number(v))
    }

    fn param_name(&self, p: &ast::Ident, what: &str) -> R<ParamId> {
        match self.globals.get(&p.name) {
            Some(GlobalEntry {
                what: Global::Param(id),
                ..
            }) => Ok(*id),
            Some(other) => Err(Diagnostic::error(
                Code::NotAParam,
                format!("`{}` is a {}, not a param", p.name, other.what.describe()),
            )
            .at(p.span, format!("{what} needs a param here"))
            .also(other.span, "declared here")
            .help("derivatives of the solution are taken with respect to params")),
            None => Err(self.unknown_name(&p.name, p.span, &[])),
        }
    }

    fn derive(&mut self, d: &ast::Derivative, using: Option<&ast::Method>, span: Span) -> R<()> {
        let wrt = self.param_name(&d.wrt, "derive")?;
        let (of_expr, order) = match &d.of {
            ast::DerivOf::Expr(e) => (e, 1u8),
            ast::DerivOf::Derivative(inner) => {
                let ast::DerivOf::Expr(e) = &inner.of else {
                    return Err(Diagnostic::error(
                        Code::Unsupported,
                        "derivatives beyond the second order are not supported",
                    )
                    .at(d.span, "third derivative")
                    .help("ask for d(d(x)/d(p))/d(p) at most"));
                };
                let inner_wrt = self.param_name(&inner.wrt, "derive")?;
                if inner_wrt != wrt || !self.model.param(wrt).shape.is_empty() {
                    return Err(Diagnostic::error(
                        Code::Unsupported,
                        "second derivatives are supported for one scalar param",
                    )
                    .at(d.span, "mixed or non-scalar second derivative")
                    .help("write d(d(x)/d(theta))/d(theta) with a scalar param theta"));
                }
                (e, 2u8)
            }
        };
        let t = self.expr(of_expr, &mut expr::Env::global())?;
        self.real(&t)?;
        let method = using.map(|m| self.method(m)).transpose()?;
        self.model.requests.push(Request::Derive {
            of: t,
            of_text: self.sources.slice(of_expr.span).to_string(),
            wrt,
            order,
            method,
            span,
        });
        Ok(())
    }

    fn pde(&mut self, name: &ast::Ident, items: &[ast::PdeItem], span: Span) -> R<()> {
        let mut domain: Option<(PdeDomain, usize)> = None;
        let mut lagrangian = None;
        let mut source = None;
        let mut exact = None;
        let mut boundary = PdeBoundary::Neumann;
        // Pde functions defined so far, callable by later ones.
        let mut pde_fns: Vec<ast::FnDef> = Vec::new();
        for item in items {
            match item {
                ast::PdeItem::Domain(m) => domain = Some(self.pde_domain(m)?),
                ast::PdeItem::Boundary(m) => {
                    let d = domain.as_ref().map(|d| d.1).ok_or_else(|| {
                        Diagnostic::error(Code::Syntax, "`boundary` before `domain`")
                            .at(m.span, "the boundary needs the domain's dimension")
                            .help("put `domain ...` first in the pde block")
                    })?;
                    boundary = self.pde_boundary(m, d, &pde_fns)?;
                }
                ast::PdeItem::Fn(kind, def) => {
                    let d = domain.as_ref().map(|d| d.1).ok_or_else(|| {
                        Diagnostic::error(Code::Syntax, "pde functions before `domain`")
                            .at(def.name.span, "x ∈ ℝᵈ needs the domain's dimension")
                            .help("put `domain ...` first in the pde block")
                    })?;
                    let (arity, shapes): (usize, Vec<Shape>) = match kind {
                        ast::PdeFnKind::Lagrangian => (3, vec![vec![d], vec![], vec![d]]),
                        _ => (1, vec![vec![d]]),
                    };
                    if def.params.len() != arity {
                        let form = if arity == 3 { "L(x, u, p)" } else { "f(x)" };
                        return Err(Diagnostic::error(
                            Code::Arity,
                            format!("this pde function takes {arity} argument(s)"),
                        )
                        .at(def.name.span, format!("written with {}", def.params.len()))
                        .help(format!("write it as {form}")));
                    }
                    let mut env = expr::Env::pde(&def.params, &shapes, &pde_fns);
                    let t = self.expr(&def.body, &mut env)?;
                    self.scalar_real(&t, "a pde function")?;
                    pde_fns.push(def.clone());
                    match kind {
                        ast::PdeFnKind::Lagrangian => lagrangian = Some(t),
                        ast::PdeFnKind::Source => source = Some(t),
                        ast::PdeFnKind::Exact => exact = Some(t),
                    }
                }
                ast::PdeItem::Let(n, _, e) => {
                    let t = self.expr(e, &mut expr::Env::global())?;
                    self.add_let(n, t, LetKind::Let)?;
                }
                ast::PdeItem::Param(decl) => self.param_decl(decl)?,
            }
        }
        let (domain, dim) = domain.ok_or_else(|| {
            Diagnostic::error(Code::Syntax, format!("pde `{}` has no domain", name.name))
                .at(name.span, "no `domain` item")
                .help("add `domain cube(d)` or `domain box(lo, hi)`")
        })?;
        let lagrangian = lagrangian.ok_or_else(|| {
            Diagnostic::error(
                Code::Syntax,
                format!("pde `{}` has no lagrangian", name.name),
            )
            .at(name.span, "no `lagrangian L(x, u, p) = ...` item")
            .help("add the Lagrangian, e.g. `lagrangian L(x, u, p) = 0.5*dot(p, p) + 0.5*u^2`")
        })?;
        self.declare(name, Global::Pde)?;
        self.model.pdes.push(Pde {
            name: name.name.clone(),
            dim,
            domain,
            lagrangian,
            source,
            exact,
            boundary,
            span,
        });
        Ok(())
    }

    fn pde_domain(&mut self, m: &ast::Method) -> R<(PdeDomain, usize)> {
        let positional: Vec<&ast::Expr> = m.args.iter().map(|a| &a.value).collect();
        match m.name.name.as_str() {
            "cube" if positional.len() == 1 => {
                let d = self.const_int(positional[0], &expr::Env::global())?;
                if d <= 0 {
                    return Err(
                        Diagnostic::error(Code::BadDim, "the dimension must be positive")
                            .at(positional[0].span, "here")
                            .help("write cube(d) with d ≥ 1"),
                    );
                }
                Ok((PdeDomain::Cube, d as usize))
            }
            "box" if positional.len() == 2 => {
                let lo = self.const_vector(positional[0])?;
                let hi = self.const_vector(positional[1])?;
                if lo.len() != hi.len() || lo.is_empty() || lo.iter().zip(&hi).any(|(a, b)| a >= b)
                {
                    return Err(Diagnostic::error(
                        Code::ShapeMismatch,
                        "box(lo, hi) needs vectors of one length with lo < hi",
                    )
                    .at(m.span, "this box")
                    .help("e.g. box([0, 0], [1, 2])"));
                }
                let d = lo.len();
                Ok((PdeDomain::Box { lo, hi }, d))
            }
            _ => Err(Diagnostic::error(
                Code::UnknownMethod,
                format!("unknown domain `{}`", m.name.name),
            )
            .at(m.span, "here")
            .help("use cube(d) for [0,1]^d or box(lo, hi)")),
        }
    }

    fn pde_boundary(&mut self, m: &ast::Method, d: usize, fns: &[ast::FnDef]) -> R<PdeBoundary> {
        match m.name.name.as_str() {
            "neumann" if m.args.is_empty() => Ok(PdeBoundary::Neumann),
            "periodic" if m.args.is_empty() => Ok(PdeBoundary::Periodic),
            "dirichlet" => {
                let mut g = None;
                let mut penalty = None;
                for a in &m.args {
                    match a.name.as_ref().map(|n| n.name.as_str()) {
                        None => {
                            // g is an expression of x, or the name of a pde function of x.
                            let x = vec![ast::Ident {
                                name: "x".into(),
                                span: a.value.span,
                            }];
                            let mut env = expr::Env::pde(&x, &[vec![d]], fns);
                            let t = match &a.value.kind {
                                ast::ExprKind::Name(n) if fns.iter().any(|f| &f.name.name == n) => {
                                    let call = ast::Expr {
                                        kind: ast::ExprKind::Call(
                                            ast::Ident {
                                                name: n.clone(),
                                                span: a.value.span,
                                            },
                                            vec![ast::Expr {
                                                kind: ast::ExprKind::Name("x".into()),
                                                span: a.value.span,
                                            }],
                                        ),
                                        span: a.value.span,
                                    };
                                    self.expr(&call, &mut env)?
                                }
                                _ => self.expr(&a.value, &mut env)?,
                            };
                            self.scalar_real(&t, "boundary data")?;
                            g = Some(t);
                        }
                        Some("penalty") => {
                            penalty = Some(self.const_f64(&a.value, &expr::Env::global())?)
                        }
                        Some(other) => {
                            return Err(Diagnostic::error(
                                Code::UnknownMethod,
                                format!("dirichlet has no option `{other}`"),
                            )
                            .at(a.value.span, "here")
                            .help("write dirichlet(g) or dirichlet(g, penalty = 100)"))
                        }
                    }
                }
                let g = g.ok_or_else(|| {
                    Diagnostic::error(Code::Arity, "dirichlet needs the boundary values")
                        .at(m.span, "here")
                        .help("write dirichlet(0) or dirichlet(g) with g a function of x")
                })?;
                Ok(PdeBoundary::Dirichlet { g, penalty })
            }
            _ => Err(Diagnostic::error(
                Code::UnknownMethod,
                format!("unknown boundary condition `{}`", m.name.name),
            )
            .at(m.span, "here")
            .help("use neumann, dirichlet(g) or periodic")),
        }
    }

    fn const_vector(&mut self, e: &ast::Expr) -> R<Vec<f64>> {
        match &e.kind {
            ast::ExprKind::Array(items) => items
                .iter()
                .map(|x| self.const_f64(x, &expr::Env::global()))
                .collect(),
            _ => Ok(vec![self.const_f64(e, &expr::Env::global())?]),
        }
    }
}

fn set_once<'e>(slot: &mut Option<&'e ast::Expr>, e: &'e ast::Expr, what: &str) -> R<()> {
    if let Some(prev) = slot {
        return Err(Diagnostic::error(Code::Duplicate, format!("two {what}s"))
            .at(e.span, "second one")
            .also(prev.span, "first one")
            .help(format!("give one {what}")));
    }
    *slot = Some(e);
    Ok(())
}

fn single_eq_error(eq: Span) -> Diagnostic {
    Diagnostic::error(Code::AssignInsteadOfEq, "`=` where `==` belongs")
        .at(eq, "a single `=` defines a name")
        .help("compare with `==`: `condition a == b`")
}
