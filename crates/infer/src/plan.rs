//! Graph analysis: which output is the score, and whether the path from an input tensor to
//! it is something the native engine compiles (pre-ops -> tree/linear core -> post-ops).
//!
//! Supported native paths (anything else goes to ONNX Runtime):
//! - pre-processing of the `[N, F]` float tensor: any DAG of element-wise ops with constant
//!   `[1, F]`/scalar operands (`Scaler`, `Imputer`, `Sign`, `Abs`, `Neg`, `Log`, `Sqrt`,
//!   `Reciprocal`, `Floor`, `Ceil`, `Add`, `Sub`, `Mul`, `Div`, comparisons, `IsNaN`, `Not`,
//!   `And`, `Or`, `Xor`, `Where`, `Identity`, `Cast` float/bool), compiled per feature by
//!   the `prep` module;
//! - core: `TreeEnsembleClassifier`, `TreeEnsembleRegressor`, `TreeEnsemble` (opset 5),
//!   `LinearClassifier`, `LinearRegressor`, `MatMul` (+ `Add`), `Gemm`;
//! - post-ops on the score tensor: `Identity`, `Cast` to float, `Sigmoid`, `Mul`/`Add`/`Sub`/
//!   `Div` by a constant, a trailing `ZipMap` (which the ORT path strips too), and a final
//!   `Concat(1 - p, p)` of one-column tensors (our logistic export), read at its last column.

use std::collections::BTreeMap;

use cr_onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto};
use cr_onnx::{
    node_label, tensor_f32, value_info_dims, value_info_elem_type, Attrs, Dim, ElemType,
};

use crate::check::check_graph;
use crate::error::{invalid, unsupported, InferError};
use crate::linear::CompiledLinear;
use crate::math::mlas_logistic;
use crate::prep::build_dag;
pub(crate) use crate::prep::Prep;
use crate::tree::{compile_tree_node, CompiledEnsemble, TREE_OPS};

const CLASSIFIERS: [&str; 2] = ["TreeEnsembleClassifier", "LinearClassifier"];
const HINT: &str = "use Engine::Ort (or Engine::Auto, which falls back to ONNX Runtime)";

/// The compiled model part that turns features into scores.
#[derive(Debug, Clone)]
pub enum Core {
    Trees(Box<CompiledEnsemble>),
    Linear(CompiledLinear),
}

/// A natively compiled path from one float tensor `[N, F]` to the score column.
///
/// Obtained from [`compile_for_tensor`] (or inside [`crate::Model`]). `score` gives the
/// positive-class probability (column 1 of a two-column output) or the regression value.
#[derive(Debug, Clone)]
pub struct NativeScorer {
    pub(crate) input: String,
    pub(crate) n_features: usize,
    pub(crate) pre: Prep,
    pub(crate) core: Core,
    pub(crate) post: Vec<PostOp>,
    pub(crate) column: usize,
}

/// Element-wise step after the core, on the score column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PostOp {
    /// ai.onnx `Sigmoid` (MLAS logistic).
    Sigmoid,
    /// ai.onnx `Exp`.
    Exp,
    /// `Mul` / `Add` / `Sub` / `Div` by a constant (`rev`: constant on the left).
    Arith { op: u8, c: f32, rev: bool },
}

impl PostOp {
    #[inline]
    fn apply(self, v: f32) -> f32 {
        match self {
            PostOp::Sigmoid => mlas_logistic(v),
            PostOp::Exp => v.exp(),
            PostOp::Arith { op, c, rev } => match (op, rev) {
                (b'*', _) => v * c,
                (b'+', _) => v + c,
                (b'-', false) => v - c,
                (b'-', true) => c - v,
                (b'/', false) => v / c,
                _ => c / v,
            },
        }
    }
}

impl NativeScorer {
    /// Name of the tensor this scorer reads.
    pub fn input_name(&self) -> &str {
        &self.input
    }

    /// Features per row expected in `score`'s input.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Which column of the core's output is returned.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Scores of `n_rows` row-major rows (sequential; see [`crate::Model`] for parallel).
    pub fn score_into(&self, x: &[f32], n_rows: usize, out: &mut [f32]) -> Result<(), InferError> {
        let f = self.n_features;
        if x.len() != n_rows * f {
            return Err(InferError::Input {
                name: self.input.clone(),
                why: format!("{} values for {n_rows} rows x {f} features", x.len()),
            });
        }
        if out.len() != n_rows {
            return Err(InferError::Input {
                name: "output".into(),
                why: format!("{} slots for {n_rows} rows", out.len()),
            });
        }
        let pre_x;
        let xs: &[f32] = if self.pre.is_identity() {
            x
        } else {
            let mut buf = x.to_vec();
            self.pre.apply(&mut buf, n_rows);
            pre_x = buf;
            &pre_x
        };
        match &self.core {
            Core::Trees(t) => t.predict_column(xs, f, n_rows, self.column, out)?,
            Core::Linear(l) => {
                let k = l.n_outputs();
                let mut z = vec![0.0f32; k];
                for (xr, o) in xs.chunks_exact(f).zip(out.iter_mut()) {
                    l.row(xr, &mut z);
                    *o = z[self.column];
                }
            }
        }
        for p in &self.post {
            out.iter_mut().for_each(|v| *v = p.apply(*v));
        }
        Ok(())
    }

    /// Convenience wrapper of [`NativeScorer::score_into`].
    pub fn score(&self, x: &[f32], n_rows: usize) -> Result<Vec<f32>, InferError> {
        let mut out = vec![0.0f32; n_rows];
        self.score_into(x, n_rows, &mut out)?;
        Ok(out)
    }
}

pub(crate) struct Index<'g> {
    graph: &'g GraphProto,
    producer: BTreeMap<&'g str, (usize, usize)>,
    inits: BTreeMap<&'g str, &'g TensorProto>,
}

impl<'g> Index<'g> {
    fn new(graph: &'g GraphProto) -> Index<'g> {
        let mut producer = BTreeMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for (k, o) in n.output.iter().enumerate() {
                producer.insert(o.as_str(), (i, k));
            }
        }
        let inits = graph.initializer.iter().map(|t| (t.name(), t)).collect();
        Index {
            graph,
            producer,
            inits,
        }
    }

    pub(crate) fn node_of(&self, value: &str) -> Option<(&'g NodeProto, usize)> {
        self.producer
            .get(value)
            .map(|&(i, k)| (&self.graph.node[i], k))
    }

    /// Constant tensor: initializer or `Constant` node output.
    pub(crate) fn constant(&self, value: &str) -> Option<&'g TensorProto> {
        if let Some(t) = self.inits.get(value) {
            return Some(t);
        }
        let (n, _) = self.node_of(value)?;
        if n.op_type() == "Constant" {
            return Attrs::new(n).tensor_opt("value").ok().flatten();
        }
        None
    }
}

fn is_cast_to_float(n: &NodeProto) -> bool {
    n.op_type() == "Cast" && Attrs::new(n).int_opt("to").ok().flatten() == Some(1)
}

/// Which graph output carries the score: the probability output of a classifier (through
/// `Identity`/`Cast`/`ZipMap`) if there is one, else the first float tensor output.
pub(crate) fn select_score_output(graph: &GraphProto) -> Result<String, InferError> {
    let idx = Index::new(graph);
    let is_float = |name: &str| {
        graph
            .output
            .iter()
            .find(|o| o.name() == name)
            .map(|o| {
                matches!(
                    value_info_elem_type(o),
                    Some(ElemType::F32) | Some(ElemType::F64)
                )
            })
            .unwrap_or(false)
    };
    for out in &graph.output {
        let mut v = out.name();
        while let Some((n, k)) = idx.node_of(v) {
            if CLASSIFIERS.contains(&n.op_type()) && k == 1 {
                return Ok(out.name().to_string());
            }
            if matches!(
                n.op_type(),
                "Identity" | "Cast" | "ZipMap" | "Sigmoid" | "Exp" | "Mul" | "Add" | "Sub" | "Div"
            ) && !n.input.is_empty()
            {
                // follow the non-constant operand
                v = match n.input.get(1) {
                    Some(b) if idx.constant(n.input[0].as_str()).is_some() => b.as_str(),
                    _ => n.input[0].as_str(),
                };
            } else {
                break;
            }
        }
    }
    graph
        .output
        .iter()
        .map(|o| o.name())
        .find(|n| is_float(n))
        .map(str::to_string)
        .ok_or_else(|| invalid("the graph has no float tensor output to read scores from"))
}

/// Compile the path ending at the score output, starting at graph input `input` (or, with
/// [`compile_for_tensor`], at any tensor).
fn compile_path(model: &ModelProto, start: Option<&str>) -> Result<NativeScorer, InferError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("model has no graph"))?;
    // every known node's arity and attribute types: the indexing below relies on it
    check_graph(graph)?;
    let idx = Index::new(graph);
    let out = select_score_output(graph)?;

    // Walk back from the output through post-ops to the core.
    let mut v = out.as_str();
    let mut post_rev: Vec<(PostOp, Vec<f32>)> = Vec::new();
    // declared width of the score output: a `Concat` of `[N, 1]` columns is read at column 1
    // of two (or the only column)
    let out_width = graph
        .output
        .iter()
        .find(|o| o.name() == out)
        .and_then(value_info_dims)
        .and_then(|d| match d.as_slice() {
            [_, Dim::Known(w)] => Some(*w),
            _ => None,
        });
    let mut through_concat = false;
    let (core_node, out_k) = loop {
        let (n, k) = idx
            .node_of(v)
            .ok_or_else(|| unsupported(format!("score output {out:?} is a graph input"), HINT))?;
        match n.op_type() {
            "Identity" | "ZipMap" => v = n.input[0].as_str(),
            "Concat"
                if !through_concat
                    && post_rev.is_empty()
                    && matches!(Attrs::new(n).int_opt("axis")?, Some(1) | Some(-1))
                    && matches!(n.input.len(), 1 | 2)
                    && out_width.is_none_or(|w| w == n.input.len() as i64) =>
            {
                // each input must be one column: checked on the core below
                through_concat = true;
                v = n.input[n.input.len() - 1].as_str();
            }
            "Cast" if is_cast_to_float(n) => v = n.input[0].as_str(),
            "Sigmoid" => {
                post_rev.push((PostOp::Sigmoid, Vec::new()));
                v = n.input[0].as_str();
            }
            "Exp" => {
                post_rev.push((PostOp::Exp, Vec::new()));
                v = n.input[0].as_str();
            }
            op @ ("Mul" | "Add" | "Sub" | "Div")
                if n.input.len() == 2
                    && (idx.constant(&n.input[0]).is_some()
                        != idx.constant(&n.input[1]).is_some())
                    && !(op == "Add" && add_feeds_matmul(&idx, n)) =>
            {
                let rev = idx.constant(&n.input[0]).is_some();
                let (c, x) = if rev {
                    (&n.input[0], &n.input[1])
                } else {
                    (&n.input[1], &n.input[0])
                };
                let values = idx
                    .constant(c)
                    .map(tensor_f32)
                    .transpose()?
                    .unwrap_or_default();
                let code = match op {
                    "Mul" => b'*',
                    "Add" => b'+',
                    "Sub" => b'-',
                    _ => b'/',
                };
                post_rev.push((
                    PostOp::Arith {
                        op: code,
                        c: 0.0,
                        rev,
                    },
                    values,
                ));
                v = x.as_str();
            }
            op if TREE_OPS.contains(&op)
                || matches!(
                    op,
                    "LinearClassifier" | "LinearRegressor" | "MatMul" | "Gemm" | "Add"
                ) =>
            {
                break (n, k)
            }
            op => {
                return Err(unsupported(
                    format!("{op} ({}) on the score path", node_label(n)),
                    HINT,
                ))
            }
        }
    };

    // Core.
    let (core, x_value, column_of) = match core_node.op_type() {
        op if TREE_OPS.contains(&op) => {
            let t = compile_tree_node(core_node)?;
            (Core::Trees(Box::new(t)), core_node.input[0].as_str(), out_k)
        }
        "LinearClassifier" | "LinearRegressor" => {
            let l = CompiledLinear::from_node(core_node)?;
            (Core::Linear(l), core_node.input[0].as_str(), out_k)
        }
        _ => {
            let (l, x) = compile_matmul(&idx, core_node)?;
            (Core::Linear(l), x, 0)
        }
    };
    let n_out = match &core {
        Core::Trees(t) => t.n_outputs(),
        Core::Linear(l) => l.n_outputs(),
    };
    if through_concat && n_out != 1 {
        return Err(unsupported(
            format!(
                "a Concat of {}-column {} outputs",
                n_out,
                core_node.op_type()
            ),
            HINT,
        ));
    }
    let is_classifier = CLASSIFIERS.contains(&core_node.op_type());
    if is_classifier && column_of != 1 {
        return Err(unsupported(
            "the label output of a classifier as score",
            HINT,
        ));
    }
    let column =
        match n_out {
            1 => 0,
            2 => 1,
            k => return Err(unsupported(
                format!(
                    "{} with {k} output columns (multi-class / multi-target)",
                    core_node.op_type()
                ),
                "score_matrix returns one score per row; run the model with ONNX Runtime directly",
            )),
        };

    // Walk back from the core input through the element-wise pre-processing to the start
    // tensor.
    let (dag, input) = build_dag(&idx, x_value, start)?;
    if start.is_none() {
        let gi = graph
            .input
            .iter()
            .find(|i| i.name() == input)
            .ok_or_else(|| {
                unsupported(
                    format!("the core's input {input:?} is not a graph input"),
                    HINT,
                )
            })?;
        if value_info_elem_type(gi) != Some(ElemType::F32) {
            return Err(unsupported(
                format!("input {input:?} is not a float tensor"),
                HINT,
            ));
        }
    } else if Some(input.as_str()) != start {
        return Err(unsupported(
            format!(
                "the score path does not start at tensor {:?}",
                start.unwrap_or("")
            ),
            HINT,
        ));
    }

    // Features per row: declared dim if known, else what the core needs.
    let declared = graph
        .input
        .iter()
        .chain(graph.value_info.iter())
        .find(|i| i.name() == input)
        .and_then(value_info_dims)
        .and_then(|d| match d.as_slice() {
            [_, Dim::Known(f)] if *f > 0 => Some(*f as usize),
            _ => None,
        });
    let n_features = match (&core, declared) {
        (Core::Linear(l), Some(f)) if f != l.n_features() => {
            return Err(invalid(format!(
                "input has {f} features, {} has {} coefficients per row",
                l.op(),
                l.n_features()
            )))
        }
        (Core::Trees(t), Some(f)) if f < t.min_features() => {
            return Err(invalid(format!(
                "input has {f} features, the trees read feature {}",
                t.min_features() - 1
            )))
        }
        (_, Some(f)) => f,
        (Core::Linear(l), None) => l.n_features(),
        (Core::Trees(t), None) => t.min_features(),
    };
    let pre = dag.compile(n_features)?;
    // Constants of post-ops: a scalar, or one value per output column (take ours).
    let mut post = Vec::with_capacity(post_rev.len());
    for (p, values) in post_rev.into_iter().rev() {
        post.push(match p {
            PostOp::Arith { op, rev, .. } => {
                let c = match values.len() {
                    1 => values[0],
                    k if k == n_out => values[column],
                    k => {
                        return Err(unsupported(
                            format!("an element-wise constant of {k} values after the core"),
                            HINT,
                        ))
                    }
                };
                PostOp::Arith { op, c, rev }
            }
            other => other,
        });
    }
    Ok(NativeScorer {
        input,
        n_features,
        pre,
        core,
        post,
        column,
    })
}

/// Whether this `Add` is the bias of a `MatMul` (then it is part of the linear core).
fn add_feeds_matmul(idx: &Index<'_>, add: &NodeProto) -> bool {
    add.input.iter().any(|i| {
        idx.node_of(i)
            .map(|(n, _)| n.op_type() == "MatMul")
            .unwrap_or(false)
    })
}

/// `MatMul(X, W)` (+ `Add(., b)`) or `Gemm(X, W, b)` with constant `W`, `b`.
fn compile_matmul<'g>(
    idx: &Index<'g>,
    node: &'g NodeProto,
) -> Result<(CompiledLinear, &'g str), InferError> {
    let (mm, bias) = match node.op_type() {
        "Add" => {
            let (a, b) = (node.input[0].as_str(), node.input[1].as_str());
            let (x, c) = if idx.constant(b).is_some() {
                (a, b)
            } else {
                (b, a)
            };
            let c = idx
                .constant(c)
                .ok_or_else(|| unsupported("Add of two non-constant tensors", HINT))?;
            let (n, _) = idx
                .node_of(x)
                .ok_or_else(|| unsupported("Add on a graph input", HINT))?;
            if n.op_type() != "MatMul" {
                return Err(unsupported(format!("Add after {}", n.op_type()), HINT));
            }
            (n, tensor_f32(c)?)
        }
        _ => (node, Vec::new()),
    };
    let label = node_label(mm);
    let w_t = idx
        .constant(mm.input.get(1).map(String::as_str).unwrap_or(""))
        .ok_or_else(|| unsupported(format!("{label}: non-constant weights"), HINT))?;
    let w = tensor_f32(w_t)?;
    let dims = &w_t.dims;
    let (mut f, mut k) = match dims.as_slice() {
        [f, k] => (*f as usize, *k as usize),
        [f] => (*f as usize, 1),
        _ => {
            return Err(unsupported(
                format!("{label}: weights of rank {}", dims.len()),
                HINT,
            ))
        }
    };
    if w.len() != f * k {
        return Err(invalid(format!(
            "{label}: weights have {} values for dims {dims:?}",
            w.len()
        )));
    }
    let mut bias = bias;
    let mut w_rows = vec![0.0f32; f * k];
    if mm.op_type() == "Gemm" {
        let a = Attrs::new(mm);
        if a.int_or("transA", 0)? != 0
            || a.float_or("alpha", 1.0)? != 1.0
            || a.float_or("beta", 1.0)? != 1.0
        {
            return Err(unsupported(
                format!("{label}: Gemm with transA/alpha/beta"),
                HINT,
            ));
        }
        if a.int_or("transB", 0)? != 0 {
            std::mem::swap(&mut f, &mut k);
            w_rows.copy_from_slice(&w); // already [k, f]
        } else {
            for i in 0..f {
                for j in 0..k {
                    w_rows[j * f + i] = w[i * k + j];
                }
            }
        }
        if let Some(c) = mm.input.get(2).filter(|s| !s.is_empty()) {
            bias = tensor_f32(
                idx.constant(c)
                    .ok_or_else(|| unsupported(format!("{label}: non-constant C"), HINT))?,
            )?;
        }
    } else {
        for i in 0..f {
            for j in 0..k {
                w_rows[j * f + i] = w[i * k + j];
            }
        }
    }
    let l = CompiledLinear::raw(mm.op_type(), f, w_rows, bias)?;
    Ok((l, mm.input[0].as_str()))
}

/// Compile the native path from graph input to score output (what `Engine::Native` runs).
pub(crate) fn compile_native(model: &ModelProto) -> Result<NativeScorer, InferError> {
    compile_path(model, None)
}

/// Compile the part of `model` from tensor `tensor` (any value in the graph, e.g. the
/// feature matrix produced by an embedded feature pipeline) to the score output.
///
/// This is the hook for models whose front part (raw declaration fields -> features) is run
/// by the caller in Rust: the caller computes the `[N, F]` features itself and calls
/// [`NativeScorer::score`].
pub fn compile_for_tensor(model: &ModelProto, tensor: &str) -> Result<NativeScorer, InferError> {
    compile_path(model, Some(tensor))
}

/// Remove every `ZipMap` whose output is a graph output; the graph output becomes the
/// ZipMap's input (a plain float tensor `[N, classes]`). Returns how many were removed.
pub(crate) fn strip_zipmap(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut removed = 0;
    loop {
        let pos = graph.node.iter().position(|n| {
            n.op_type() == "ZipMap"
                && n.output
                    .first()
                    .map(|o| graph.output.iter().any(|g| g.name() == o))
                    .unwrap_or(false)
        });
        let Some(pos) = pos else { break };
        let node = graph.node.remove(pos);
        let (Some(x), Some(y)) = (node.input.first(), node.output.first()) else {
            continue;
        };
        let n_classes = Attrs::new(&node)
            .ints_opt("classlabels_int64s")
            .ok()
            .flatten()
            .map(<[i64]>::len)
            .or_else(|| {
                Attrs::new(&node)
                    .strings_opt("classlabels_strings")
                    .ok()
                    .flatten()
                    .map(|s| s.len())
            })
            .unwrap_or(0);
        let vi = cr_onnx::builder::value_info(
            x,
            ElemType::F32,
            &[Dim::batch(), Dim::Known(n_classes as i64)],
        );
        let already = graph.output.iter().any(|g| g.name() == x);
        if let Some(slot) = graph.output.iter().position(|g| g.name() == y) {
            if already {
                graph.output.remove(slot);
            } else {
                graph.output[slot] = vi;
            }
        }
        removed += 1;
    }
    removed
}
