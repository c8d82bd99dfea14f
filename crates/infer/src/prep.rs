//! Element-wise preprocessing before the model core, compiled to one small program per
//! feature.
//!
//! The graph between the feature tensor `X [N, F]` and the tree/linear core may be any DAG of
//! element-wise ops whose other operands are constants broadcast along the rows (scalar,
//! `[F]`, `[1, F]`): what our logistic export writes (signed log `Sign, Abs, Add, Log, Mul`
//! under a `Where` mask, NaN imputation `IsNaN, Where`, standardisation `Sub, Div`) and what
//! skl2onnx writes (`Scaler`, `Imputer`). It is compiled once per feature with its constants
//! folded (a `Where` on a constant mask picks its branch at load time), then evaluated a column
//! block at a time. Every op computes in f32 exactly as ONNX Runtime's CPU kernels do; `Log`
//! is Eigen's vectorised `plog` ([`crate::math::eigen_log`]).

use std::collections::BTreeMap;

use cr_onnx::proto::{NodeProto, TensorProto};
use cr_onnx::{node_label, Attrs};

use crate::error::{invalid, unsupported, InferError};
use crate::math::eigen_log;
use crate::plan::Index;

const HINT: &str = "use Engine::Ort (or Engine::Auto, which falls back to ONNX Runtime)";

/// Value type inside the program; booleans are held as 1.0 / 0.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    F32,
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnOp {
    Neg,
    Abs,
    Sign,
    Log,
    Sqrt,
    Reciprocal,
    Floor,
    Ceil,
    IsNaN,
    Not,
    /// `Cast` float -> bool (`v != 0`, NaN is true).
    ToBool,
    /// `Cast` bool -> float (a change of type only).
    Id,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Greater,
    Less,
    Equal,
    GreaterOrEqual,
    LessOrEqual,
    And,
    Or,
    Xor,
    /// `Imputer`: `a` unless it matches `replaced` (NaN matches NaN), else `b`.
    Impute {
        replaced: f32,
    },
}

#[inline]
fn b2f(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl UnOp {
    #[inline(always)]
    fn eval(self, v: f32) -> f32 {
        match self {
            UnOp::Neg => -v,
            UnOp::Abs => v.abs(),
            // ORT: NaN stays NaN, ±0 -> +0
            UnOp::Sign => {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else if v.is_nan() {
                    v
                } else {
                    0.0
                }
            }
            UnOp::Log => eigen_log(v),
            UnOp::Sqrt => v.sqrt(),
            UnOp::Reciprocal => 1.0 / v,
            UnOp::Floor => v.floor(),
            UnOp::Ceil => v.ceil(),
            UnOp::IsNaN => b2f(v.is_nan()),
            UnOp::Not => b2f(v == 0.0),
            UnOp::ToBool => b2f(v != 0.0),
            UnOp::Id => v,
        }
    }

    fn types(self) -> (Ty, Ty) {
        match self {
            UnOp::IsNaN | UnOp::ToBool => (Ty::F32, Ty::Bool),
            UnOp::Not => (Ty::Bool, Ty::Bool),
            UnOp::Id => (Ty::Bool, Ty::F32),
            _ => (Ty::F32, Ty::F32),
        }
    }
}

impl BinOp {
    #[inline(always)]
    fn eval(self, a: f32, b: f32) -> f32 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Greater => b2f(a > b),
            BinOp::Less => b2f(a < b),
            BinOp::Equal => b2f(a == b),
            BinOp::GreaterOrEqual => b2f(a >= b),
            BinOp::LessOrEqual => b2f(a <= b),
            BinOp::And => b2f(a != 0.0 && b != 0.0),
            BinOp::Or => b2f(a != 0.0 || b != 0.0),
            BinOp::Xor => b2f((a != 0.0) != (b != 0.0)),
            BinOp::Impute { replaced } => {
                let hit = if replaced.is_nan() {
                    a.is_nan()
                } else {
                    a == replaced
                };
                if hit {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// (operand type, result type).
    fn types(self) -> (Ty, Ty) {
        match self {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Impute { .. } => {
                (Ty::F32, Ty::F32)
            }
            BinOp::Greater
            | BinOp::Less
            | BinOp::Equal
            | BinOp::GreaterOrEqual
            | BinOp::LessOrEqual => (Ty::F32, Ty::Bool),
            BinOp::And | BinOp::Or | BinOp::Xor => (Ty::Bool, Ty::Bool),
        }
    }
}

/// A node of the element-wise DAG (shared by all features).
#[derive(Debug, Clone)]
enum Expr {
    /// The element of the input tensor.
    Input,
    /// One value, or one per feature.
    Const(Vec<f32>),
    Un(UnOp, usize),
    Bin(BinOp, usize, usize),
    Where(usize, usize, usize),
}

/// Operand of an instruction: a register (column block) or a folded constant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Opnd {
    R(usize),
    C(f32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ins {
    Un(UnOp, usize),
    Bin(BinOp, Opnd, Opnd),
    Where(Opnd, Opnd, Opnd),
}

/// What one feature becomes.
#[derive(Debug, Clone, PartialEq)]
enum FeatProg {
    /// Unchanged.
    Keep,
    /// The same value on every row.
    Const(f32),
    /// Instruction `i` writes register `i + 1` (register 0 is the input column); register
    /// `out` is the result.
    Run { ins: Vec<Ins>, out: usize },
}

/// The compiled per-feature preprocessing (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Prep {
    progs: Vec<FeatProg>,
    max_regs: usize,
}

/// Rows per column block of [`Prep::apply`].
const BLOCK: usize = 256;

impl Prep {
    /// Whether it changes nothing (no pre-ops, or only identities).
    pub(crate) fn is_identity(&self) -> bool {
        self.progs.iter().all(|p| *p == FeatProg::Keep)
    }

    /// Apply to `n_rows` row-major rows of `progs.len()` features, in place.
    pub(crate) fn apply(&self, x: &mut [f32], n_rows: usize) {
        let f = self.progs.len();
        if f == 0 || self.is_identity() {
            return;
        }
        let mut regs = vec![0.0f32; (self.max_regs + 1) * BLOCK];
        let mut start = 0;
        while start < n_rows {
            let len = BLOCK.min(n_rows - start);
            let xb = &mut x[start * f..(start + len) * f];
            for (j, p) in self.progs.iter().enumerate() {
                match p {
                    FeatProg::Keep => {}
                    FeatProg::Const(c) => xb.iter_mut().skip(j).step_by(f).for_each(|v| *v = *c),
                    FeatProg::Run { ins, out } => {
                        let out = *out;
                        for (r, v) in regs[..len].iter_mut().zip(xb.iter().skip(j).step_by(f)) {
                            *r = *v;
                        }
                        for (i, op) in ins.iter().enumerate() {
                            run_ins(*op, &mut regs, i + 1, len);
                        }
                        let res = &regs[out * BLOCK..out * BLOCK + len];
                        for (v, r) in xb.iter_mut().skip(j).step_by(f).zip(res) {
                            *v = *r;
                        }
                    }
                }
            }
            start += len;
        }
    }
}

#[inline(always)]
fn bin_loop(lo: &[f32], d: &mut [f32], a: Opnd, b: Opnd, f: impl Fn(f32, f32) -> f32) {
    let n = d.len();
    let reg = |r: usize| &lo[r * BLOCK..r * BLOCK + n];
    match (a, b) {
        (Opnd::R(x), Opnd::R(y)) => d
            .iter_mut()
            .zip(reg(x).iter().zip(reg(y)))
            .for_each(|(o, (p, q))| *o = f(*p, *q)),
        (Opnd::R(x), Opnd::C(c)) => d.iter_mut().zip(reg(x)).for_each(|(o, p)| *o = f(*p, c)),
        (Opnd::C(c), Opnd::R(y)) => d.iter_mut().zip(reg(y)).for_each(|(o, q)| *o = f(c, *q)),
        (Opnd::C(c), Opnd::C(e)) => d.iter_mut().for_each(|o| *o = f(c, e)),
    }
}

fn run_ins(op: Ins, regs: &mut [f32], dst: usize, n: usize) {
    let (lo, hi) = regs.split_at_mut(dst * BLOCK);
    let d = &mut hi[..n];
    match op {
        Ins::Un(u, s) => {
            let src = &lo[s * BLOCK..s * BLOCK + n];
            match u {
                // one loop per op so each is a straight, vectorisable loop
                UnOp::Neg => d
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = UnOp::Neg.eval(*v)),
                UnOp::Abs => d
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = UnOp::Abs.eval(*v)),
                UnOp::Log => d
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = UnOp::Log.eval(*v)),
                UnOp::Sign => d
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = UnOp::Sign.eval(*v)),
                UnOp::IsNaN => d
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = UnOp::IsNaN.eval(*v)),
                other => d.iter_mut().zip(src).for_each(|(o, v)| *o = other.eval(*v)),
            }
        }
        Ins::Bin(b, x, y) => match b {
            BinOp::Add => bin_loop(lo, d, x, y, |p, q| p + q),
            BinOp::Sub => bin_loop(lo, d, x, y, |p, q| p - q),
            BinOp::Mul => bin_loop(lo, d, x, y, |p, q| p * q),
            BinOp::Div => bin_loop(lo, d, x, y, |p, q| p / q),
            other => bin_loop(lo, d, x, y, |p, q| other.eval(p, q)),
        },
        Ins::Where(c, a, b) => {
            let get = |o: Opnd, i: usize| match o {
                Opnd::R(r) => lo[r * BLOCK + i],
                Opnd::C(v) => v,
            };
            for (i, o) in d.iter_mut().enumerate() {
                *o = if get(c, i) != 0.0 {
                    get(a, i)
                } else {
                    get(b, i)
                };
            }
        }
    }
}

/// Builds the DAG from the core's input back to the one non-constant tensor it reads.
struct Builder<'a, 'g> {
    idx: &'a Index<'g>,
    start: Option<&'a str>,
    nodes: Vec<(Expr, Ty)>,
    memo: BTreeMap<String, usize>,
    input: Option<String>,
}

/// Values of a constant broadcast along rows: scalar, `[k]`, `[1, k]` (any leading 1s).
fn const_values(t: &TensorProto, label: &str) -> Result<(Vec<f32>, Ty), InferError> {
    let dims = &t.dims;
    if dims.len() > 1 && dims[..dims.len() - 1].iter().any(|&d| d != 1) {
        return Err(unsupported(
            format!("{label}: a constant of shape {dims:?} (only scalars and [1, F] rows)"),
            HINT,
        ));
    }
    match t.data_type.unwrap_or(0) {
        9 => {
            // BOOL: one byte each in raw_data, or int32_data
            let v: Vec<f32> = match t.raw_data.as_deref().filter(|r| !r.is_empty()) {
                Some(raw) => raw.iter().map(|&b| b2f(b != 0)).collect(),
                None => t.int32_data.iter().map(|&b| b2f(b != 0)).collect(),
            };
            Ok((v, Ty::Bool))
        }
        1 => Ok((cr_onnx::tensor_f32(t)?, Ty::F32)),
        code => Err(unsupported(
            format!("{label}: a constant of data type {code} (float and bool only)"),
            HINT,
        )),
    }
}

impl<'a, 'g> Builder<'a, 'g> {
    fn push(&mut self, e: Expr, ty: Ty) -> usize {
        self.nodes.push((e, ty));
        self.nodes.len() - 1
    }

    fn value(&mut self, v: &str, depth: usize) -> Result<usize, InferError> {
        if let Some(&k) = self.memo.get(v) {
            return Ok(k);
        }
        if depth > 200 {
            return Err(invalid(format!(
                "element-wise chain deeper than 200 nodes at {v:?} (cycle?)"
            )));
        }
        let k = self.build(v, depth)?;
        self.memo.insert(v.to_string(), k);
        Ok(k)
    }

    fn leaf_input(&mut self, v: &str) -> Result<usize, InferError> {
        match &self.input {
            Some(i) if i != v => {
                return Err(unsupported(
                    format!("pre-processing that reads two tensors ({i:?} and {v:?})"),
                    HINT,
                ))
            }
            _ => self.input = Some(v.to_string()),
        }
        Ok(self.push(Expr::Input, Ty::F32))
    }

    fn typed(&self, k: usize, want: Ty, n: &NodeProto) -> Result<usize, InferError> {
        if self.nodes[k].1 != want {
            return Err(unsupported(
                format!(
                    "{}: operand of type {:?} where {want:?} is needed",
                    node_label(n),
                    self.nodes[k].1
                ),
                HINT,
            ));
        }
        Ok(k)
    }

    fn build(&mut self, v: &str, depth: usize) -> Result<usize, InferError> {
        if Some(v) == self.start {
            return self.leaf_input(v);
        }
        if let Some(t) = self.idx.constant(v) {
            let (vals, ty) = const_values(t, v)?;
            if vals.is_empty() {
                return Err(unsupported(
                    format!("empty constant {v:?} before the model core"),
                    HINT,
                ));
            }
            return Ok(self.push(Expr::Const(vals), ty));
        }
        let Some((n, _)) = self.idx.node_of(v) else {
            if self.start.is_some() {
                return Err(unsupported(
                    format!(
                        "the score path does not start at tensor {:?}",
                        self.start.unwrap_or("")
                    ),
                    HINT,
                ));
            }
            return self.leaf_input(v);
        };
        let label = node_label(n);
        let arg = |i: usize| -> Result<&str, InferError> {
            n.input
                .get(i)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("{label} lacks input {i}")))
        };
        let un = |op: UnOp| Some(op);
        let unary = match n.op_type() {
            "Neg" => un(UnOp::Neg),
            "Abs" => un(UnOp::Abs),
            "Sign" => un(UnOp::Sign),
            "Log" => un(UnOp::Log),
            "Sqrt" => un(UnOp::Sqrt),
            "Reciprocal" => un(UnOp::Reciprocal),
            "Floor" => un(UnOp::Floor),
            "Ceil" => un(UnOp::Ceil),
            "IsNaN" => un(UnOp::IsNaN),
            "Not" => un(UnOp::Not),
            _ => None,
        };
        if let Some(op) = unary {
            let a = self.value(arg(0)?, depth + 1)?;
            let a = self.typed(a, op.types().0, n)?;
            return Ok(self.push(Expr::Un(op, a), op.types().1));
        }
        let binary = match n.op_type() {
            "Add" => Some(BinOp::Add),
            "Sub" => Some(BinOp::Sub),
            "Mul" => Some(BinOp::Mul),
            "Div" => Some(BinOp::Div),
            "Greater" => Some(BinOp::Greater),
            "Less" => Some(BinOp::Less),
            "Equal" => Some(BinOp::Equal),
            "GreaterOrEqual" => Some(BinOp::GreaterOrEqual),
            "LessOrEqual" => Some(BinOp::LessOrEqual),
            "And" => Some(BinOp::And),
            "Or" => Some(BinOp::Or),
            "Xor" => Some(BinOp::Xor),
            _ => None,
        };
        if let Some(op) = binary {
            if n.input.len() != 2 {
                return Err(invalid(format!("{label}: {} inputs", n.input.len())));
            }
            let (a, b) = (
                self.value(arg(0)?, depth + 1)?,
                self.value(arg(1)?, depth + 1)?,
            );
            let (a, b) = (
                self.typed(a, op.types().0, n)?,
                self.typed(b, op.types().0, n)?,
            );
            return Ok(self.push(Expr::Bin(op, a, b), op.types().1));
        }
        match n.op_type() {
            "Identity" => self.value(arg(0)?, depth + 1),
            "Where" => {
                let c = self.value(arg(0)?, depth + 1)?;
                let c = self.typed(c, Ty::Bool, n)?;
                let (a, b) = (
                    self.value(arg(1)?, depth + 1)?,
                    self.value(arg(2)?, depth + 1)?,
                );
                let ty = self.nodes[a].1;
                let b = self.typed(b, ty, n)?;
                Ok(self.push(Expr::Where(c, a, b), ty))
            }
            "Cast" => {
                let a = self.value(arg(0)?, depth + 1)?;
                match (Attrs::new(n).int_opt("to")?, self.nodes[a].1) {
                    (Some(1), Ty::F32) | (Some(9), Ty::Bool) => Ok(a),
                    // bool is held as 1.0 / 0.0 already: only the type changes
                    (Some(1), Ty::Bool) => Ok(self.push(Expr::Un(UnOp::Id, a), Ty::F32)),
                    (Some(9), Ty::F32) => Ok(self.push(Expr::Un(UnOp::ToBool, a), Ty::Bool)),
                    (to, _) => Err(unsupported(
                        format!("{label}: Cast to data type {}", to.unwrap_or(0)),
                        HINT,
                    )),
                }
            }
            "Scaler" => {
                let at = Attrs::new(n);
                let offset = at
                    .floats_opt("offset")?
                    .map(<[f32]>::to_vec)
                    .unwrap_or_else(|| vec![0.0]);
                let scale = at
                    .floats_opt("scale")?
                    .map(<[f32]>::to_vec)
                    .unwrap_or_else(|| vec![1.0]);
                let x = self.value(arg(0)?, depth + 1)?;
                let x = self.typed(x, Ty::F32, n)?;
                let o = self.push(Expr::Const(offset), Ty::F32);
                let s = self.push(Expr::Const(scale), Ty::F32);
                let c = self.push(Expr::Bin(BinOp::Sub, x, o), Ty::F32);
                Ok(self.push(Expr::Bin(BinOp::Mul, c, s), Ty::F32))
            }
            "Imputer" => {
                let at = Attrs::new(n);
                let values = at
                    .floats_opt("imputed_value_floats")?
                    .map(<[f32]>::to_vec)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| unsupported(format!("{label}: non-float Imputer"), HINT))?;
                let replaced = at.float_or("replaced_value_float", 0.0)?;
                let x = self.value(arg(0)?, depth + 1)?;
                let x = self.typed(x, Ty::F32, n)?;
                let c = self.push(Expr::Const(values), Ty::F32);
                Ok(self.push(Expr::Bin(BinOp::Impute { replaced }, x, c), Ty::F32))
            }
            op => Err(unsupported(
                format!("{op} ({label}) before the model core"),
                HINT,
            )),
        }
    }
}

/// The element-wise DAG from `core_input` back to its input tensor (`start`, or the graph
/// input it reaches). Returns the DAG and the input tensor's name.
pub(crate) struct PrepDag {
    nodes: Vec<(Expr, Ty)>,
    root: usize,
}

pub(crate) fn build_dag(
    idx: &Index<'_>,
    core_input: &str,
    start: Option<&str>,
) -> Result<(PrepDag, String), InferError> {
    let mut b = Builder {
        idx,
        start,
        nodes: Vec::new(),
        memo: BTreeMap::new(),
        input: None,
    };
    let root = b.value(core_input, 0)?;
    if b.nodes[root].1 != Ty::F32 {
        return Err(unsupported(
            "a boolean tensor as the model core's input",
            HINT,
        ));
    }
    let input = b
        .input
        .ok_or_else(|| unsupported("the model core's input is a constant", HINT))?;
    Ok((
        PrepDag {
            nodes: b.nodes,
            root,
        },
        input,
    ))
}

impl PrepDag {
    /// Specialise to `n_features` features (constants must have 1 or `n_features` values).
    pub(crate) fn compile(&self, n_features: usize) -> Result<Prep, InferError> {
        for (e, _) in &self.nodes {
            if let Expr::Const(v) = e {
                if v.len() != 1 && v.len() != n_features {
                    return Err(unsupported(
                        format!(
                            "an element-wise constant of {} values for {n_features} features",
                            v.len()
                        ),
                        HINT,
                    ));
                }
            }
        }
        let mut progs = Vec::with_capacity(n_features);
        let mut max_regs = 0;
        for j in 0..n_features {
            let mut memo = vec![None; self.nodes.len()];
            let mut ins = Vec::new();
            let out = self.fold(self.root, j, &mut memo, &mut ins);
            let p = match out {
                Opnd::C(c) => FeatProg::Const(c),
                Opnd::R(0) => FeatProg::Keep,
                Opnd::R(r) => {
                    max_regs = max_regs.max(ins.len());
                    FeatProg::Run { ins, out: r }
                }
            };
            progs.push(p);
        }
        Ok(Prep { progs, max_regs })
    }

    fn fold(&self, k: usize, j: usize, memo: &mut Vec<Option<Opnd>>, ins: &mut Vec<Ins>) -> Opnd {
        if let Some(o) = memo[k] {
            return o;
        }
        let emit = |ins: &mut Vec<Ins>, i: Ins| {
            ins.push(i);
            Opnd::R(ins.len())
        };
        let o = match &self.nodes[k].0 {
            Expr::Input => Opnd::R(0),
            Expr::Const(v) => Opnd::C(if v.len() == 1 { v[0] } else { v[j] }),
            Expr::Un(op, a) => match self.fold(*a, j, memo, ins) {
                Opnd::C(c) => Opnd::C(op.eval(c)),
                Opnd::R(r) if *op == UnOp::Id => Opnd::R(r),
                Opnd::R(r) => emit(ins, Ins::Un(*op, r)),
            },
            Expr::Bin(op, a, b) => {
                let (x, y) = (self.fold(*a, j, memo, ins), self.fold(*b, j, memo, ins));
                match (x, y) {
                    (Opnd::C(p), Opnd::C(q)) => Opnd::C(op.eval(p, q)),
                    _ => emit(ins, Ins::Bin(*op, x, y)),
                }
            }
            Expr::Where(c, a, b) => match self.fold(*c, j, memo, ins) {
                Opnd::C(cv) => {
                    if cv != 0.0 {
                        self.fold(*a, j, memo, ins)
                    } else {
                        self.fold(*b, j, memo, ins)
                    }
                }
                cr => {
                    let (x, y) = (self.fold(*a, j, memo, ins), self.fold(*b, j, memo, ins));
                    if matches!((x, y), (Opnd::R(p), Opnd::R(q)) if p == q) {
                        x
                    } else {
                        emit(ins, Ins::Where(cr, x, y))
                    }
                }
            },
        };
        memo[k] = Some(o);
        o
    }
}
