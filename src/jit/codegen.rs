//! Kernel → Cranelift IR → machine code.

use crate::ir::{IndexVar, RedOp};
use crate::kernel::{IExpr, Inst, Kernel, Local, Operand, Stmt};
use crate::ops::{self, BinOp, UnOp};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, FuncRef, InstBuilder, MemFlagsData, UserFuncName, Value,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::{HashMap, HashSet};

/// Instructions per generated function before the body is split into chunks.
const CHUNK: usize = 2500;

/// Loops of at most this many iterations with constant bounds are unrolled...
const UNROLL_TRIPS: i64 = 4;
/// ...when the unrolled body stays this small.
const UNROLL_BODY: usize = 200;

macro_rules! wrappers {
    ($($name:ident: $f:expr;)*) => {
        mod wrap {
            $(pub extern "C" fn $name(x: f64) -> f64 { let f: fn(f64) -> f64 = $f; f(x) })*
            pub extern "C" fn optc_pow(a: f64, b: f64) -> f64 { crate::ops::pow(a, b) }
            pub extern "C" fn optc_atan2(a: f64, b: f64) -> f64 { a.atan2(b) }
        }
        /// The Rust functions the generated code calls, by symbol name.
        pub fn symbols() -> Vec<(&'static str, *const u8)> {
            vec![
                $((stringify!($name), wrap::$name as *const u8),)*
                ("optc_pow", wrap::optc_pow as *const u8),
                ("optc_atan2", wrap::optc_atan2 as *const u8),
            ]
        }
    };
}

// Each wrapper calls exactly what `ops::UnOp::eval` calls, so JIT and interpreter agree.
wrappers! {
    optc_exp: |x| crate::ops::UnOp::Exp.eval(x);
    optc_log: |x| crate::ops::UnOp::Log.eval(x);
    optc_log1p: |x| crate::ops::UnOp::Log1p.eval(x);
    optc_expm1: |x| crate::ops::UnOp::Expm1.eval(x);
    optc_sin: |x| crate::ops::UnOp::Sin.eval(x);
    optc_cos: |x| crate::ops::UnOp::Cos.eval(x);
    optc_tan: |x| crate::ops::UnOp::Tan.eval(x);
    optc_asin: |x| crate::ops::UnOp::Asin.eval(x);
    optc_acos: |x| crate::ops::UnOp::Acos.eval(x);
    optc_atan: |x| crate::ops::UnOp::Atan.eval(x);
    optc_sinh: |x| crate::ops::UnOp::Sinh.eval(x);
    optc_cosh: |x| crate::ops::UnOp::Cosh.eval(x);
    optc_tanh: |x| crate::ops::UnOp::Tanh.eval(x);
}

fn unary_symbol(op: UnOp) -> Option<&'static str> {
    Some(match op {
        UnOp::Exp => "optc_exp",
        UnOp::Log => "optc_log",
        UnOp::Log1p => "optc_log1p",
        UnOp::Expm1 => "optc_expm1",
        UnOp::Sin => "optc_sin",
        UnOp::Cos => "optc_cos",
        UnOp::Tan => "optc_tan",
        UnOp::Asin => "optc_asin",
        UnOp::Acos => "optc_acos",
        UnOp::Atan => "optc_atan",
        UnOp::Sinh => "optc_sinh",
        UnOp::Cosh => "optc_cosh",
        UnOp::Tanh => "optc_tanh",
        _ => return None,
    })
}

/// Compiles a kernel; returns the entry point and, when `want_text`, the Cranelift IR.
pub fn compile(
    module: &mut JITModule,
    k: &Kernel,
    want_text: bool,
) -> Result<(super::Entry, String), String> {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(ptr));
    let mut math: HashMap<&'static str, FuncId> = HashMap::new();
    let mut unary_sig = module.make_signature();
    unary_sig.params.push(AbiParam::new(types::F64));
    unary_sig.returns.push(AbiParam::new(types::F64));
    let mut binary_sig = unary_sig.clone();
    binary_sig.params.push(AbiParam::new(types::F64));
    for (name, _) in symbols() {
        let s = if name == "optc_pow" || name == "optc_atan2" {
            &binary_sig
        } else {
            &unary_sig
        };
        let id = module
            .declare_function(name, Linkage::Import, s)
            .map_err(|e| e.to_string())?;
        math.insert(name, id);
    }
    let chunks = split(&k.body);
    let mut text = String::new();
    let mut fctx = FunctionBuilderContext::new();
    let mut ctx = module.make_context();
    let entry_id;
    if chunks.len() <= 1 {
        entry_id = module
            .declare_function(&k.name, Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        ctx.func.signature = sig.clone();
        ctx.func.name = UserFuncName::user(0, entry_id.as_u32());
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let mut g = Gen::new(b, module, &math, k, ptr, None);
            g.body(&k.body, &HashSet::new(), &HashSet::new())?;
            g.finish();
        }
        define(module, &mut ctx, entry_id, want_text.then_some(&mut text))?;
    } else {
        // Which locals cross chunk boundaries: they live in a memory area after the buffers.
        let uses: Vec<HashSet<u32>> = chunks
            .iter()
            .map(|c| locals_used(&k.body[c.clone()]))
            .collect();
        let defs: Vec<HashSet<u32>> = chunks
            .iter()
            .map(|c| locals_defined(&k.body[c.clone()]))
            .collect();
        let mut ids = Vec::new();
        for (ci, range) in chunks.iter().enumerate() {
            let id = module
                .declare_function(&format!("{}_chunk{ci}", k.name), Linkage::Local, &sig)
                .map_err(|e| e.to_string())?;
            // Loaded at entry: used here, defined in an earlier chunk.
            let live_in: HashSet<u32> = uses[ci]
                .iter()
                .copied()
                .filter(|l| defs[..ci].iter().any(|d| d.contains(l)))
                .collect();
            // Stored at exit: defined here, used in a later chunk.
            let live_out: HashSet<u32> = defs[ci]
                .iter()
                .copied()
                .filter(|l| uses[ci + 1..].iter().any(|u| u.contains(l)))
                .collect();
            ctx.func.signature = sig.clone();
            ctx.func.name = UserFuncName::user(0, id.as_u32());
            {
                let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                let mut g = Gen::new(b, module, &math, k, ptr, Some(k.buffers.len()));
                g.body(&k.body[range.clone()], &live_in, &live_out)?;
                g.finish();
            }
            define(module, &mut ctx, id, want_text.then_some(&mut text))?;
            ids.push(id);
        }
        entry_id = module
            .declare_function(&k.name, Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        ctx.func.signature = sig.clone();
        ctx.func.name = UserFuncName::user(0, entry_id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let block = b.create_block();
            b.append_block_params_for_function_params(block);
            b.switch_to_block(block);
            let table = b.block_params(block)[0];
            for id in &ids {
                let f = module.declare_func_in_func(*id, b.func);
                b.ins().call(f, &[table]);
            }
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        define(module, &mut ctx, entry_id, want_text.then_some(&mut text))?;
    }
    module
        .finalize_definitions()
        .map_err(|e| format!("cranelift: {e}"))?;
    let code = module.get_finalized_function(entry_id);
    // SAFETY: `code` is the finalized entry of a function declared with the signature
    // `fn(*const *mut f64)` in the platform's default calling convention, which is what
    // `extern "C"` means on this host.
    let entry = unsafe { std::mem::transmute::<*const u8, super::Entry>(code) };
    Ok((entry, text))
}

/// Defines the function built in `ctx` as `id` (appending its IR to `text` when asked) and
/// clears the context for the next one.
fn define(
    module: &mut JITModule,
    ctx: &mut cranelift_codegen::Context,
    id: FuncId,
    text: Option<&mut String>,
) -> Result<(), String> {
    if let Some(t) = text {
        t.push_str(&ctx.func.display().to_string());
    }
    module
        .define_function(id, ctx)
        .map_err(|e| format!("cranelift: {e:?}"))?;
    module.clear_context(ctx);
    Ok(())
}

/// Whether the kernel needs a locals area (chunked), and its length.
pub fn locals_area(k: &Kernel) -> usize {
    if split(&k.body).len() > 1 {
        k.n_locals as usize
    } else {
        0
    }
}

fn cost(s: &Stmt) -> usize {
    match s {
        Stmt::Loop { body, .. } => 4 + body.iter().map(cost).sum::<usize>(),
        _ => 1,
    }
}

/// Top-level statement ranges of at most about `CHUNK` instructions each.
fn split(body: &[Stmt]) -> Vec<std::ops::Range<usize>> {
    let total: usize = body.iter().map(cost).sum();
    if total <= CHUNK {
        return std::iter::once(0..body.len()).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut acc = 0;
    for (i, s) in body.iter().enumerate() {
        let c = cost(s);
        if acc > 0 && acc + c > CHUNK {
            out.push(start..i);
            start = i;
            acc = 0;
        }
        acc += c;
    }
    out.push(start..body.len());
    out
}

fn operand_locals(o: &Operand, out: &mut HashSet<u32>) {
    if let Operand::Local(l) = o {
        out.insert(l.0);
    }
}

fn locals_used(body: &[Stmt]) -> HashSet<u32> {
    let mut out = HashSet::new();
    fn walk(body: &[Stmt], out: &mut HashSet<u32>) {
        for s in body {
            match s {
                Stmt::Inst(i) => match i {
                    Inst::Unary { a, .. } => operand_locals(a, out),
                    Inst::Binary { a, b, .. } => {
                        operand_locals(a, out);
                        operand_locals(b, out);
                    }
                    Inst::Select { c, a, b, .. } => {
                        operand_locals(c, out);
                        operand_locals(a, out);
                        operand_locals(b, out);
                    }
                    Inst::Load { .. } | Inst::Index { .. } => {}
                },
                Stmt::Accum { dst, a, .. } => {
                    out.insert(dst.0);
                    operand_locals(a, out);
                }
                Stmt::Store { a, .. } | Stmt::AccumStore { a, .. } => operand_locals(a, out),
                Stmt::Fill { .. } => {}
                Stmt::Init { .. } => {}
                Stmt::Loop { body, .. } => walk(body, out),
            }
        }
    }
    walk(body, &mut out);
    out
}

fn locals_defined(body: &[Stmt]) -> HashSet<u32> {
    let mut out = HashSet::new();
    fn walk(body: &[Stmt], out: &mut HashSet<u32>) {
        for s in body {
            match s {
                Stmt::Inst(i) => {
                    let d = match i {
                        Inst::Load { dst, .. }
                        | Inst::Index { dst, .. }
                        | Inst::Unary { dst, .. }
                        | Inst::Binary { dst, .. }
                        | Inst::Select { dst, .. } => dst,
                    };
                    out.insert(d.0);
                }
                Stmt::Init { dst, .. } | Stmt::Accum { dst, .. } => {
                    out.insert(dst.0);
                }
                Stmt::Loop { body, .. } => walk(body, out),
                Stmt::Store { .. } | Stmt::AccumStore { .. } | Stmt::Fill { .. } => {}
            }
        }
    }
    walk(body, &mut out);
    out
}

struct Gen<'a, 'm> {
    b: FunctionBuilder<'a>,
    module: &'m mut JITModule,
    math_ids: &'m HashMap<&'static str, FuncId>,
    math: HashMap<&'static str, FuncRef>,
    ptr: types::Type,
    bufs: Vec<Value>,
    /// Entries of each buffer.
    lens: Vec<usize>,
    /// The locals area of a chunked kernel (its pointer follows the buffers in the table).
    locals_base: Option<Value>,
    locals: HashMap<u32, Variable>,
    ivars: HashMap<IndexVar, Variable>,
    flags: MemFlagsData,
}

impl<'a, 'm> Gen<'a, 'm> {
    fn new(
        mut b: FunctionBuilder<'a>,
        module: &'m mut JITModule,
        math_ids: &'m HashMap<&'static str, FuncId>,
        kernel: &'m Kernel,
        ptr: types::Type,
        locals_slot: Option<usize>,
    ) -> Self {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let table = b.block_params(entry)[0];
        let flags = MemFlagsData::trusted();
        // Buffer base pointers are loaded once in the entry block, which dominates everything.
        let bufs: Vec<Value> = (0..kernel.buffers.len())
            .map(|i| b.ins().load(ptr, flags, table, (i * 8) as i32))
            .collect();
        let locals_base =
            locals_slot.map(|slot| b.ins().load(ptr, flags, table, (slot * 8) as i32));
        Gen {
            b,
            module,
            math_ids,
            math: HashMap::new(),
            ptr,
            bufs,
            lens: kernel.buffers.iter().map(|b| b.len).collect(),
            locals_base,
            locals: HashMap::new(),
            ivars: HashMap::new(),
            flags,
        }
    }

    fn finish(mut self) {
        self.b.ins().return_(&[]);
        self.b.seal_all_blocks();
        let config = self.module.target_config();
        self.b.finalize(config);
    }

    fn local(&mut self, l: Local) -> Variable {
        if let Some(v) = self.locals.get(&l.0) {
            return *v;
        }
        let v = self.b.declare_var(types::F64);
        self.locals.insert(l.0, v);
        v
    }

    fn ivar(&mut self, v: IndexVar) -> Variable {
        if let Some(x) = self.ivars.get(&v) {
            return *x;
        }
        let x = self.b.declare_var(types::I64);
        self.ivars.insert(v, x);
        x
    }

    fn body(
        &mut self,
        stmts: &[Stmt],
        live_in: &HashSet<u32>,
        live_out: &HashSet<u32>,
    ) -> Result<(), String> {
        if let Some(base) = self.locals_base {
            let mut ins: Vec<u32> = live_in.iter().copied().collect();
            ins.sort();
            for l in ins {
                let val = self
                    .b
                    .ins()
                    .load(types::F64, self.flags, base, (l as i32) * 8);
                let var = self.local(Local(l));
                self.b.def_var(var, val);
            }
        }
        self.block(stmts)?;
        if let Some(base) = self.locals_base {
            let mut outs: Vec<u32> = live_out.iter().copied().collect();
            outs.sort();
            for l in outs {
                let var = self.local(Local(l));
                let val = self.b.use_var(var);
                self.b.ins().store(self.flags, val, base, (l as i32) * 8);
            }
        }
        Ok(())
    }

    fn affine(&mut self, a: &IExpr) -> Value {
        let mut acc = self.b.ins().iconst(types::I64, a.c);
        for &(v, k) in &a.terms {
            let var = self.ivar(v);
            let x = self.b.use_var(var);
            let t = if k == 1 {
                x
            } else {
                self.b.ins().imul_imm_s(x, k)
            };
            acc = self.b.ins().iadd(acc, t);
        }
        acc
    }

    fn address(&mut self, buf: crate::kernel::BufId, offset: &IExpr) -> Value {
        let off = self.affine(offset);
        let bytes = self.b.ins().ishl_imm_u(off, 3);
        let bytes = if self.ptr == types::I64 {
            bytes
        } else {
            self.b.ins().ireduce(self.ptr, bytes)
        };
        self.b.ins().iadd(self.bufs[buf.index()], bytes)
    }

    fn operand(&mut self, o: &Operand) -> Value {
        match o {
            Operand::Const(c) => self.b.ins().f64const(*c),
            Operand::Local(l) => {
                let v = self.local(*l);
                self.b.use_var(v)
            }
        }
    }

    fn call(&mut self, name: &'static str, args: &[Value]) -> Result<Value, String> {
        let f = match self.math.get(name) {
            Some(f) => *f,
            None => {
                let id = *self
                    .math_ids
                    .get(name)
                    .ok_or_else(|| format!("no math symbol {name}"))?;
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.math.insert(name, f);
                f
            }
        };
        let call = self.b.ins().call(f, args);
        Ok(self.b.inst_results(call)[0])
    }

    fn bool_to_f64(&mut self, c: Value) -> Value {
        let one = self.b.ins().f64const(1.0);
        let zero = self.b.ins().f64const(0.0);
        self.b.ins().select(c, one, zero)
    }

    /// `ops::max` / `ops::min`: NaN if either is NaN, else the first operand on ties.
    fn max_min(&mut self, a: Value, b: Value, max: bool) -> Value {
        let cc = if max {
            FloatCC::GreaterThan
        } else {
            FloatCC::LessThan
        };
        let pick_b = self.b.ins().fcmp(cc, b, a);
        let r = self.b.ins().select(pick_b, b, a);
        let unordered = self.b.ins().fcmp(FloatCC::Unordered, a, b);
        let nan = self.b.ins().f64const(f64::NAN);
        self.b.ins().select(unordered, nan, r)
    }

    /// `ops::powi`: the same multiplication sequence, so the result is bit-identical.
    fn powi(&mut self, a: Value, k: i32) -> Value {
        let mut n = k.unsigned_abs();
        let mut base = a;
        let mut acc: Option<Value> = None;
        while n > 0 {
            if n & 1 == 1 {
                acc = Some(match acc {
                    Some(x) => self.b.ins().fmul(x, base),
                    None => base,
                });
            }
            n >>= 1;
            if n > 0 {
                base = self.b.ins().fmul(base, base);
            }
        }
        let r = match acc {
            Some(r) => r,
            None => self.b.ins().f64const(1.0),
        };
        if k < 0 {
            let one = self.b.ins().f64const(1.0);
            self.b.ins().fdiv(one, r)
        } else {
            r
        }
    }

    fn unary(&mut self, op: UnOp, a: Value) -> Result<Value, String> {
        if let Some(sym) = unary_symbol(op) {
            return self.call(sym, &[a]);
        }
        let ins = self.b.ins();
        Ok(match op {
            UnOp::Neg => ins.fneg(a),
            UnOp::Sqrt => ins.sqrt(a),
            UnOp::Abs => ins.fabs(a),
            UnOp::Floor => ins.floor(a),
            UnOp::Ceil => ins.ceil(a),
            UnOp::Not => {
                let zero = self.b.ins().f64const(0.0);
                let c = self.b.ins().fcmp(FloatCC::Equal, a, zero);
                self.bool_to_f64(c)
            }
            UnOp::Sign => {
                let zero = self.b.ins().f64const(0.0);
                let one = self.b.ins().f64const(1.0);
                let minus = self.b.ins().f64const(-1.0);
                let lt = self.b.ins().fcmp(FloatCC::LessThan, a, zero);
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, a, zero);
                let r = self.b.ins().select(lt, minus, a);
                self.b.ins().select(gt, one, r)
            }
            _ => return Err(format!("no code for {}", op.name())),
        })
    }

    fn binary(
        &mut self,
        op: BinOp,
        a: Value,
        b: Value,
        b_const: Option<f64>,
    ) -> Result<Value, String> {
        let cmp = |cc: FloatCC, g: &mut Self| {
            let c = g.b.ins().fcmp(cc, a, b);
            g.bool_to_f64(c)
        };
        Ok(match op {
            BinOp::Add => self.b.ins().fadd(a, b),
            BinOp::Sub => self.b.ins().fsub(a, b),
            BinOp::Mul => self.b.ins().fmul(a, b),
            BinOp::Div => self.b.ins().fdiv(a, b),
            BinOp::Pow => match b_const.and_then(ops::small_int_exponent) {
                Some(k) => self.powi(a, k),
                None => self.call("optc_pow", &[a, b])?,
            },
            BinOp::Max => self.max_min(a, b, true),
            BinOp::Min => self.max_min(a, b, false),
            BinOp::Atan2 => self.call("optc_atan2", &[a, b])?,
            BinOp::Lt => cmp(FloatCC::LessThan, self),
            BinOp::Le => cmp(FloatCC::LessThanOrEqual, self),
            BinOp::Gt => cmp(FloatCC::GreaterThan, self),
            BinOp::Ge => cmp(FloatCC::GreaterThanOrEqual, self),
            BinOp::Eq => cmp(FloatCC::Equal, self),
            BinOp::Ne => cmp(FloatCC::NotEqual, self),
            BinOp::And | BinOp::Or => {
                let zero = self.b.ins().f64const(0.0);
                let ca = self.b.ins().fcmp(FloatCC::NotEqual, a, zero);
                let cb = self.b.ins().fcmp(FloatCC::NotEqual, b, zero);
                let c = if op == BinOp::And {
                    self.b.ins().band(ca, cb)
                } else {
                    self.b.ins().bor(ca, cb)
                };
                self.bool_to_f64(c)
            }
        })
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<(), String> {
        for s in stmts {
            match s {
                Stmt::Inst(i) => self.inst(i)?,
                Stmt::Init { dst, value } => {
                    let v = self.b.ins().f64const(*value);
                    let var = self.local(*dst);
                    self.b.def_var(var, v);
                }
                Stmt::Accum { dst, op, a } => {
                    let var = self.local(*dst);
                    let acc = self.b.use_var(var);
                    let x = self.operand(a);
                    let r = match op {
                        RedOp::Sum => self.b.ins().fadd(acc, x),
                        RedOp::Max => self.max_min(acc, x, true),
                        RedOp::Min => self.max_min(acc, x, false),
                    };
                    self.b.def_var(var, r);
                }
                Stmt::Store { buf, offset, a } => {
                    let v = self.operand(a);
                    let addr = self.address(*buf, offset);
                    self.b.ins().store(self.flags, v, addr, 0);
                }
                Stmt::AccumStore { buf, offset, a } => {
                    let v = self.operand(a);
                    let addr = self.address(*buf, offset);
                    let old = self.b.ins().load(types::F64, self.flags, addr, 0);
                    let sum = self.b.ins().fadd(old, v);
                    self.b.ins().store(self.flags, sum, addr, 0);
                }
                Stmt::Fill { buf, value } => self.fill(*buf, *value),
                Stmt::Loop { var, lo, hi, body } => self.lp(*var, lo, hi, body)?,
            }
        }
        Ok(())
    }

    /// A counted loop storing `value` into every entry of a buffer.
    fn fill(&mut self, buf: crate::kernel::BufId, value: f64) {
        let len = self.lens[buf.index()] as i64;
        if len == 0 {
            return;
        }
        let v = self.b.ins().f64const(value);
        let base = self.bufs[buf.index()];
        let counter = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(counter, zero);
        let header = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(counter);
        let done = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i, len);
        self.b.ins().brif(done, exit, &[], body, &[]);
        self.b.switch_to_block(body);
        let i = self.b.use_var(counter);
        let bytes = self.b.ins().ishl_imm_u(i, 3);
        let addr = self.b.ins().iadd(base, bytes);
        self.b.ins().store(self.flags, v, addr, 0);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(counter, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
    }

    fn lp(
        &mut self,
        var: IndexVar,
        lo: &[IExpr],
        hi: &[IExpr],
        body: &[Stmt],
    ) -> Result<(), String> {
        // Short loops with constant bounds are unrolled: for `k in 1..2` the loop overhead
        // costs more than the body, and constant indices fold into the addresses.
        let consts = |b: &[IExpr]| b.iter().map(|a| a.as_const()).collect::<Option<Vec<i64>>>();
        if let (Some(los), Some(his)) = (consts(lo), consts(hi)) {
            let (l, h) = (
                los.into_iter().max().unwrap_or(1),
                his.into_iter().min().unwrap_or(0),
            );
            let size: usize = body.iter().map(cost).sum();
            if h - l < UNROLL_TRIPS && size * ((h - l + 1).max(0) as usize) <= UNROLL_BODY {
                let iv = self.ivar(var);
                for c in l..=h {
                    let v = self.b.ins().iconst(types::I64, c);
                    self.b.def_var(iv, v);
                    self.block(body)?;
                }
                return Ok(());
            }
        }
        let mut l = match lo.first() {
            Some(a) => self.affine(a),
            None => self.b.ins().iconst(types::I64, 1),
        };
        for a in lo.iter().skip(1) {
            let x = self.affine(a);
            l = self.b.ins().smax(l, x);
        }
        let mut h = match hi.first() {
            Some(a) => self.affine(a),
            None => self.b.ins().iconst(types::I64, 0),
        };
        for a in hi.iter().skip(1) {
            let x = self.affine(a);
            h = self.b.ins().smin(h, x);
        }
        let iv = self.ivar(var);
        self.b.def_var(iv, l);
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(iv);
        let done = self.b.ins().icmp(IntCC::SignedGreaterThan, i, h);
        self.b.ins().brif(done, exit, &[], body_block, &[]);
        self.b.switch_to_block(body_block);
        self.block(body)?;
        let i = self.b.use_var(iv);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(iv, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    fn inst(&mut self, i: &Inst) -> Result<(), String> {
        let (dst, v) = match i {
            Inst::Load { dst, buf, offset } => {
                let addr = self.address(*buf, offset);
                (dst, self.b.ins().load(types::F64, self.flags, addr, 0))
            }
            Inst::Index { dst, value } => {
                let x = self.affine(value);
                (dst, self.b.ins().fcvt_from_sint(types::F64, x))
            }
            Inst::Unary { dst, op, a } => {
                let x = self.operand(a);
                (dst, self.unary(*op, x)?)
            }
            Inst::Binary { dst, op, a, b } => {
                let x = self.operand(a);
                let y = self.operand(b);
                let bc = match b {
                    Operand::Const(c) => Some(*c),
                    _ => None,
                };
                (dst, self.binary(*op, x, y, bc)?)
            }
            Inst::Select { dst, c, a, b } => {
                let cv = self.operand(c);
                let x = self.operand(a);
                let y = self.operand(b);
                let zero = self.b.ins().f64const(0.0);
                let t = self.b.ins().fcmp(FloatCC::NotEqual, cv, zero);
                (dst, self.b.ins().select(t, x, y))
            }
        };
        let var = self.local(*dst);
        self.b.def_var(var, v);
        Ok(())
    }
}
