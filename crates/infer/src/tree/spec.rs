//! Tree-ensemble attributes read from ONNX nodes into one neutral form ([`EnsembleSpec`]),
//! with ONNX Runtime's reading rules: `TreeEnsembleClassifier`/`TreeEnsembleRegressor`
//! (ai.onnx.ml 1-3) directly, opset-5 `TreeEnsemble` converted to the same form (as ORT
//! does internally).

use cr_onnx::proto::NodeProto;
use cr_onnx::{node_label, tensor_f32, tensor_i64, Attrs};

use crate::error::{invalid, unsupported, InferError};

/// How leaf values of all trees are combined (`aggregate_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// `post_transform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(s: &str) -> PostTransform {
        // ORT's MakeTransform: anything unknown is PROBIT.
        match s {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            _ => PostTransform::Probit,
        }
    }
}

/// Split rule of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leaf,
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

impl Mode {
    fn parse(s: &str) -> Mode {
        // ORT's MakeTreeNodeMode: anything unknown is BRANCH_NEQ.
        match s {
            "BRANCH_LEQ" => Mode::Leq,
            "LEAF" => Mode::Leaf,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            _ => Mode::Neq,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RawNode {
    pub tree: i64,
    pub id: i64,
    pub feature: i64,
    pub mode: Mode,
    pub value: f32,
    pub true_id: i64,
    pub false_id: i64,
    pub missing_true: bool,
    /// `nodes_hitrates` entry (a node cover when the exporter stored one); NaN when absent.
    pub hitrate: f32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RawTarget {
    pub tree: i64,
    pub node: i64,
    pub slot: i64,
    pub weight: f32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    /// `n_classes` = number of class labels; `binary_case` and `all_positive` as ORT computes
    /// them (two labels and one distinct class id; no negative class weight).
    Classifier {
        n_classes: usize,
        binary_case: bool,
        all_positive: bool,
    },
    Regressor {
        n_targets: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct EnsembleSpec {
    pub op: String,
    pub head: Head,
    pub aggregate: Aggregate,
    pub post: PostTransform,
    pub base_values: Vec<f32>,
    pub nodes: Vec<RawNode>,
    pub targets: Vec<RawTarget>,
    /// Why `RawNode::hitrate` is NaN (no `nodes_hitrates`, or an unusable one); `None` when
    /// every node has one.
    pub no_hitrates: Option<String>,
}

fn same_len(node: &NodeProto, what: &[(&str, usize)]) -> Result<(), InferError> {
    let n = what[0].1;
    for (name, len) in what {
        if *len != n {
            return Err(invalid(format!(
                "{}: attribute {name} has {len} entries, {} has {n}",
                node_label(node),
                what[0].0
            )));
        }
    }
    Ok(())
}

/// Float attribute given either as `name` (floats) or `name_as_tensor`.
fn floats_or_tensor(a: &Attrs, name: &str) -> Result<Vec<f32>, InferError> {
    let tname = format!("{name}_as_tensor");
    match (a.floats_opt(name)?, a.tensor_opt(&tname)?) {
        (Some(v), None) => Ok(v.to_vec()),
        (None, Some(t)) => {
            if t.data_type != Some(cr_onnx::proto::tensor_proto::DataType::Float as i32) {
                return Err(unsupported(
                    format!("{}: {tname} of double precision", node_label(a.node())),
                    "the native engine evaluates float thresholds only; use Engine::Ort",
                ));
            }
            Ok(tensor_f32(t)?)
        }
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => Err(invalid(format!(
            "{}: both {name} and {tname} given",
            node_label(a.node())
        ))),
    }
}

fn ints_or_empty(a: &Attrs, name: &str) -> Result<Vec<i64>, InferError> {
    Ok(a.ints_opt(name)?.map(<[i64]>::to_vec).unwrap_or_default())
}

/// Read a `TreeEnsembleClassifier` or `TreeEnsembleRegressor` (ai.onnx.ml 1-3).
pub(crate) fn parse_v3(node: &NodeProto) -> Result<EnsembleSpec, InferError> {
    let a = Attrs::new(node);
    let op = node.op_type().to_string();
    let is_classifier = op == "TreeEnsembleClassifier";
    let treeids = ints_or_empty(&a, "nodes_treeids")?;
    let nodeids = ints_or_empty(&a, "nodes_nodeids")?;
    let featureids = ints_or_empty(&a, "nodes_featureids")?;
    let modes = a.strings_opt("nodes_modes")?.unwrap_or_default();
    let values = floats_or_tensor(&a, "nodes_values")?;
    let trueids = ints_or_empty(&a, "nodes_truenodeids")?;
    let falseids = ints_or_empty(&a, "nodes_falsenodeids")?;
    let missing = ints_or_empty(&a, "nodes_missing_value_tracks_true")?;
    same_len(
        node,
        &[
            ("nodes_treeids", treeids.len()),
            ("nodes_nodeids", nodeids.len()),
            ("nodes_featureids", featureids.len()),
            ("nodes_modes", modes.len()),
            ("nodes_values", values.len()),
            ("nodes_truenodeids", trueids.len()),
            ("nodes_falsenodeids", falseids.len()),
        ],
    )?;
    if !missing.is_empty() && missing.len() != treeids.len() {
        return Err(invalid(format!(
            "{}: nodes_missing_value_tracks_true has {} entries for {} nodes",
            node_label(node),
            missing.len(),
            treeids.len()
        )));
    }
    // Covers are optional for scoring (ORT ignores them): an unusable attribute only makes
    // them absent, with the reason kept for the explainer's error message.
    let (hitrates, no_hitrates) = match floats_or_tensor(&a, "nodes_hitrates") {
        Ok(h) if h.is_empty() => (h, Some("the file has no nodes_hitrates".to_string())),
        Ok(h) if h.len() != treeids.len() => (
            Vec::new(),
            Some(format!(
                "nodes_hitrates has {} entries for {} nodes",
                h.len(),
                treeids.len()
            )),
        ),
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(format!("nodes_hitrates unusable: {e}"))),
    };
    let nodes = (0..treeids.len())
        .map(|i| RawNode {
            tree: treeids[i],
            id: nodeids[i],
            feature: featureids[i],
            mode: Mode::parse(&modes[i]),
            value: values[i],
            true_id: trueids[i],
            false_id: falseids[i],
            missing_true: missing.get(i).copied() == Some(1),
            hitrate: hitrates.get(i).copied().unwrap_or(f32::NAN),
        })
        .collect();

    let prefix = if is_classifier { "class" } else { "target" };
    let t_tree = ints_or_empty(&a, &format!("{prefix}_treeids"))?;
    let t_node = ints_or_empty(&a, &format!("{prefix}_nodeids"))?;
    let t_id = ints_or_empty(&a, &format!("{prefix}_ids"))?;
    let t_w = floats_or_tensor(&a, &format!("{prefix}_weights"))?;
    same_len(
        node,
        &[
            ("*_treeids", t_tree.len()),
            ("*_nodeids", t_node.len()),
            ("*_ids", t_id.len()),
            ("*_weights", t_w.len()),
        ],
    )?;
    let targets: Vec<RawTarget> = (0..t_tree.len())
        .map(|i| RawTarget {
            tree: t_tree[i],
            node: t_node[i],
            slot: t_id[i],
            weight: t_w[i],
        })
        .collect();

    let base_values = floats_or_tensor(&a, "base_values")?;
    let post = PostTransform::parse(&a.string_or("post_transform", "NONE")?);
    let head = if is_classifier {
        let n_classes = match a.strings_opt("classlabels_strings")? {
            Some(s) if !s.is_empty() => s.len(),
            _ => ints_or_empty(&a, "classlabels_int64s")?.len(),
        };
        let distinct: std::collections::BTreeSet<i64> = targets.iter().map(|t| t.slot).collect();
        Head::Classifier {
            n_classes,
            binary_case: n_classes == 2 && distinct.len() == 1,
            all_positive: targets.iter().all(|t| t.weight >= 0.0),
        }
    } else {
        Head::Regressor {
            n_targets: a.int_or("n_targets", 0)?.max(0) as usize,
        }
    };
    let aggregate = if is_classifier {
        Aggregate::Sum
    } else {
        match a.string_or("aggregate_function", "SUM")?.as_str() {
            "AVERAGE" => Aggregate::Average,
            "SUM" => Aggregate::Sum,
            "MIN" => Aggregate::Min,
            _ => Aggregate::Max,
        }
    };
    Ok(EnsembleSpec {
        op,
        head,
        aggregate,
        post,
        base_values,
        nodes,
        targets,
        no_hitrates,
    })
}

/// Read an opset-5 `TreeEnsemble` into the v3 form (leaves become LEAF nodes with one weight).
pub(crate) fn parse_v5(node: &NodeProto) -> Result<EnsembleSpec, InferError> {
    let a = Attrs::new(node);
    let label = node_label(node);
    let splits_t = a.tensor("nodes_splits")?;
    if splits_t.data_type != Some(cr_onnx::proto::tensor_proto::DataType::Float as i32) {
        return Err(unsupported(
            format!("{label}: nodes_splits of a non-float type"),
            "the native engine evaluates float thresholds only; use Engine::Ort",
        ));
    }
    let splits = tensor_f32(splits_t)?;
    let modes_t = a.tensor("nodes_modes")?;
    let modes: Vec<i64> =
        if modes_t.data_type == Some(cr_onnx::proto::tensor_proto::DataType::Uint8 as i32) {
            match modes_t.raw_data.as_deref() {
                Some(r) if !r.is_empty() => r.iter().map(|&b| i64::from(b)).collect(),
                _ => modes_t.int32_data.iter().map(|&v| i64::from(v)).collect(),
            }
        } else {
            tensor_i64(modes_t)?
        };
    let feat = ints_or_empty(&a, "nodes_featureids")?;
    let tid = ints_or_empty(&a, "nodes_truenodeids")?;
    let tleaf = ints_or_empty(&a, "nodes_trueleafs")?;
    let fid = ints_or_empty(&a, "nodes_falsenodeids")?;
    let fleaf = ints_or_empty(&a, "nodes_falseleafs")?;
    let missing = ints_or_empty(&a, "nodes_missing_value_tracks_true")?;
    let roots = ints_or_empty(&a, "tree_roots")?;
    let leaf_target = ints_or_empty(&a, "leaf_targetids")?;
    let leaf_w = tensor_f32(a.tensor("leaf_weights")?)?;
    same_len(
        node,
        &[
            ("nodes_featureids", feat.len()),
            ("nodes_splits", splits.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", tid.len()),
            ("nodes_trueleafs", tleaf.len()),
            ("nodes_falsenodeids", fid.len()),
            ("nodes_falseleafs", fleaf.len()),
        ],
    )?;
    same_len(
        node,
        &[
            ("leaf_targetids", leaf_target.len()),
            ("leaf_weights", leaf_w.len()),
        ],
    )?;
    let n_nodes = feat.len() as i64;
    let n_leaves = leaf_w.len() as i64;
    let mut nodes = Vec::new();
    let mut targets = Vec::new();
    // Each tree is laid out from its root; node ids are positions, leaf ids n_nodes + leaf.
    for (t, &root) in roots.iter().enumerate() {
        let t = t as i64;
        if root < 0 || root >= n_nodes {
            return Err(invalid(format!(
                "{label}: tree_roots[{t}] = {root} is not a node"
            )));
        }
        let mut stack = vec![root];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(j) = stack.pop() {
            if !seen.insert(j) {
                continue;
            }
            if j >= n_nodes {
                let k = j - n_nodes;
                if k >= n_leaves {
                    return Err(invalid(format!("{label}: leaf index {k} out of range")));
                }
                let ku = k as usize;
                nodes.push(RawNode {
                    tree: t,
                    id: j,
                    feature: 0,
                    mode: Mode::Leaf,
                    value: 0.0,
                    true_id: 0,
                    false_id: 0,
                    missing_true: false,
                    hitrate: f32::NAN,
                });
                targets.push(RawTarget {
                    tree: t,
                    node: j,
                    slot: leaf_target[ku],
                    weight: leaf_w[ku],
                });
                continue;
            }
            let ju = j as usize;
            let mode = match modes[ju] {
                0 => Mode::Leq,
                1 => Mode::Lt,
                2 => Mode::Gte,
                3 => Mode::Gt,
                4 => Mode::Eq,
                5 => Mode::Neq,
                6 => return Err(unsupported(
                    format!("{label}: BRANCH_MEMBER nodes"),
                    "set-membership splits run on ONNX Runtime; use Engine::Ort or Engine::Auto",
                )),
                m => return Err(invalid(format!("{label}: unknown node mode {m}"))),
            };
            let child = |id: i64, leaf: i64| if leaf != 0 { n_nodes + id } else { id };
            let (ti, fi) = (child(tid[ju], tleaf[ju]), child(fid[ju], fleaf[ju]));
            nodes.push(RawNode {
                tree: t,
                id: j,
                feature: feat[ju],
                mode,
                value: splits[ju],
                true_id: ti,
                false_id: fi,
                missing_true: missing.get(ju).copied() == Some(1),
                hitrate: f32::NAN,
            });
            stack.push(fi);
            stack.push(ti);
        }
    }
    // The root must come first within its tree (the compiler starts from the first node).
    let post = match a.int_or("post_transform", 0)? {
        0 => PostTransform::None,
        1 => PostTransform::Softmax,
        2 => PostTransform::Logistic,
        3 => PostTransform::SoftmaxZero,
        4 => PostTransform::Probit,
        p => return Err(invalid(format!("{label}: unknown post_transform {p}"))),
    };
    let aggregate = match a.int_or("aggregate_function", 1)? {
        0 => Aggregate::Average,
        1 => Aggregate::Sum,
        2 => Aggregate::Min,
        3 => Aggregate::Max,
        g => return Err(invalid(format!("{label}: unknown aggregate_function {g}"))),
    };
    let n_targets = a.int("n_targets")?.max(0) as usize;
    Ok(EnsembleSpec {
        op: "TreeEnsemble".into(),
        head: Head::Regressor { n_targets },
        aggregate,
        post,
        base_values: Vec::new(),
        nodes,
        targets,
        no_hitrates: Some("opset-5 TreeEnsemble stores no node covers".into()),
    })
}
