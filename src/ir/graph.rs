//! The pointful expression graph: scalar nodes over index variables, hash-consed.
//!
//! Invariants (relied on by diff, kernel and jit):
//! - **children have smaller ids than parents** (nodes are created bottom-up), so a loop over
//!   ids in increasing order is a topological order;
//! - **an index variable always denotes the same range** (`IndexVarInfo`), whichever reduction
//!   binds it; a variable may be bound by several reductions, never by one nested in another;
//! - nodes are never mutated: a transform builds new nodes.

use crate::affine;
use crate::ops::{BinOp, UnOp};
use std::collections::HashMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexVar(pub u32);

impl IndexVar {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for IndexVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub u32);

impl TensorId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Integer affine form over index variables.
pub type Affine = affine::Affine<IndexVar>;

/// A range end: the lower end is the max of the alternatives, the upper end the min.
pub type Bound = Vec<Affine>;

/// An f64 compared and hashed by bits, so constants can be hash-consed.
#[derive(Clone, Copy, Debug)]
pub struct F64(pub f64);

impl PartialEq for F64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for F64 {}
impl std::hash::Hash for F64 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedOp {
    Sum,
    Max,
    Min,
}

impl RedOp {
    pub fn name(self) -> &'static str {
        match self {
            RedOp::Sum => "sum",
            RedOp::Max => "max",
            RedOp::Min => "min",
        }
    }

    /// The value of an empty reduction.
    pub fn identity(self) -> f64 {
        match self {
            RedOp::Sum => 0.0,
            RedOp::Max => f64::NEG_INFINITY,
            RedOp::Min => f64::INFINITY,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Const(F64),
    /// `tensor[idx…]`, indices 1-based.
    Load(TensorId, Box<[Affine]>),
    /// The value of an index variable, as a float.
    Index(IndexVar),
    Unary(UnOp, NodeId),
    Binary(BinOp, NodeId, NodeId),
    /// `if c ≠ 0 then a else b`
    Select(NodeId, NodeId, NodeId),
    /// A reduction of the body over the variable's range.
    Reduce(RedOp, IndexVar, NodeId),
}

/// The range of an index variable: `max(lo…) ..= min(hi…)`, affine in outer variables.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexVarInfo {
    pub name: String,
    pub lo: Bound,
    pub hi: Bound,
}

/// What a tensor of the program is.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorKind {
    Var(u32),
    Param(u32),
    /// Multipliers of a constraint.
    Dual(u32),
    /// A constant (literal) tensor, row-major.
    Constant(Vec<f64>),
    /// An extra input: a direction, a cotangent, or a pde argument.
    Input(String),
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: TensorKind,
}

/// A tensor-valued expression: `[body for vars]`, `vars[k]` ranging over `1..=shape[k]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorExpr {
    pub shape: Vec<usize>,
    pub vars: Vec<IndexVar>,
    pub body: NodeId,
}

/// The arena of nodes, index variables and tensors.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    dedup: HashMap<Node, NodeId>,
    /// Free index variables of each node, sorted.
    free: Vec<Box<[IndexVar]>>,
    vars: Vec<IndexVarInfo>,
    var_dedup: HashMap<(String, IndexVarInfo), IndexVar>,
    tensors: Vec<TensorInfo>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn free_vars(&self, id: NodeId) -> &[IndexVar] {
        &self.free[id.index()]
    }

    pub fn var(&self, v: IndexVar) -> &IndexVarInfo {
        &self.vars[v.index()]
    }

    pub fn var_count(&self) -> usize {
        self.vars.len()
    }

    pub fn tensor(&self, t: TensorId) -> &TensorInfo {
        &self.tensors[t.index()]
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn add_tensor(&mut self, info: TensorInfo) -> TensorId {
        self.tensors.push(info);
        TensorId((self.tensors.len() - 1) as u32)
    }

    /// A fresh index variable with the given range.
    pub fn fresh_var(&mut self, name: &str, lo: Bound, hi: Bound) -> IndexVar {
        self.vars.push(IndexVarInfo {
            name: name.to_string(),
            lo,
            hi,
        });
        IndexVar((self.vars.len() - 1) as u32)
    }

    /// The index variable for `key` with this range: the same key and range give the same
    /// variable, so re-lowering an expression builds the same nodes.
    pub fn keyed_var(&mut self, key: String, name: &str, lo: Bound, hi: Bound) -> IndexVar {
        let info = IndexVarInfo {
            name: name.to_string(),
            lo,
            hi,
        };
        if let Some(&v) = self.var_dedup.get(&(key.clone(), info.clone())) {
            return v;
        }
        self.vars.push(info.clone());
        let v = IndexVar((self.vars.len() - 1) as u32);
        self.var_dedup.insert((key, info), v);
        v
    }

    /// The variables a bound mentions.
    pub fn bound_vars(b: &Bound) -> impl Iterator<Item = IndexVar> + '_ {
        b.iter().flat_map(|a| a.syms())
    }

    /// Interns a node without simplification (see `build` for the simplifying constructors).
    pub fn intern(&mut self, n: Node) -> NodeId {
        if let Some(&id) = self.dedup.get(&n) {
            return id;
        }
        let free = self.compute_free(&n);
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(n.clone());
        self.free.push(free);
        self.dedup.insert(n, id);
        id
    }

    fn compute_free(&self, n: &Node) -> Box<[IndexVar]> {
        let mut out: Vec<IndexVar> = Vec::new();
        match n {
            Node::Const(_) => {}
            Node::Load(_, idx) => {
                for a in idx.iter() {
                    out.extend(a.syms());
                }
            }
            Node::Index(v) => out.push(*v),
            Node::Unary(_, a) => out.extend_from_slice(self.free_vars(*a)),
            Node::Binary(_, a, b) => {
                out.extend_from_slice(self.free_vars(*a));
                out.extend_from_slice(self.free_vars(*b));
            }
            Node::Select(c, a, b) => {
                out.extend_from_slice(self.free_vars(*c));
                out.extend_from_slice(self.free_vars(*a));
                out.extend_from_slice(self.free_vars(*b));
            }
            Node::Reduce(_, v, body) => {
                out.extend(self.free_vars(*body).iter().copied().filter(|x| x != v));
                let info = self.var(*v);
                out.extend(Graph::bound_vars(&info.lo));
                out.extend(Graph::bound_vars(&info.hi));
            }
        }
        out.sort();
        out.dedup();
        out.into_boxed_slice()
    }

    /// Variables in a valid nesting order: every variable after those its range mentions,
    /// and otherwise in creation order (lowering creates outer binders first).
    pub fn nesting_order(&self, vars: impl IntoIterator<Item = IndexVar>) -> Vec<IndexVar> {
        let mut left: Vec<IndexVar> = vars.into_iter().collect();
        left.sort();
        left.dedup();
        let mut out = Vec::with_capacity(left.len());
        while !left.is_empty() {
            // The smallest variable whose range needs nothing still left.
            let pos = left
                .iter()
                .position(|&v| {
                    let info = self.var(v);
                    Graph::bound_vars(&info.lo)
                        .chain(Graph::bound_vars(&info.hi))
                        .all(|u| !left.contains(&u) || u == v)
                })
                .unwrap_or(0);
            out.push(left.remove(pos));
        }
        out
    }

    pub fn depends_on(&self, id: NodeId, v: IndexVar) -> bool {
        self.free_vars(id).binary_search(&v).is_ok()
    }

    pub fn as_const(&self, id: NodeId) -> Option<f64> {
        match self.node(id) {
            Node::Const(F64(v)) => Some(*v),
            _ => None,
        }
    }

    /// The children of a node.
    pub fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> {
        let v: smallvec3::SmallVec3 = match self.node(id) {
            Node::Const(_) | Node::Load(..) | Node::Index(_) => smallvec3::SmallVec3::new(&[]),
            Node::Unary(_, a) | Node::Reduce(_, _, a) => smallvec3::SmallVec3::new(&[*a]),
            Node::Binary(_, a, b) => smallvec3::SmallVec3::new(&[*a, *b]),
            Node::Select(c, a, b) => smallvec3::SmallVec3::new(&[*c, *a, *b]),
        };
        v.into_iter()
    }

    /// All nodes reachable from `roots`, in increasing id order (a topological order).
    pub fn reachable(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut mark = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(n) = stack.pop() {
            if mark[n.index()] {
                continue;
            }
            mark[n.index()] = true;
            stack.extend(self.children(n));
        }
        (0..self.nodes.len())
            .filter(|&i| mark[i])
            .map(|i| NodeId(i as u32))
            .collect()
    }
}

/// A tiny fixed-capacity list for node children (no allocation in traversals).
mod smallvec3 {
    use super::NodeId;

    pub struct SmallVec3 {
        items: [NodeId; 3],
        len: usize,
    }

    impl SmallVec3 {
        pub fn new(items: &[NodeId]) -> SmallVec3 {
            let mut a = [NodeId(0); 3];
            a[..items.len()].copy_from_slice(items);
            SmallVec3 {
                items: a,
                len: items.len(),
            }
        }
    }

    impl IntoIterator for SmallVec3 {
        type Item = NodeId;
        type IntoIter = std::iter::Take<std::array::IntoIter<NodeId, 3>>;
        fn into_iter(self) -> Self::IntoIter {
            self.items.into_iter().take(self.len)
        }
    }
}
