//! Compiling an [`EnsembleSpec`] into flat node arrays.
//!
//! Layout: all trees in one `Vec<Node>` of 16-byte nodes. Each tree is laid out breadth-first
//! from its root; the two children of an internal node are adjacent (`child` = the child taken
//! when the split condition holds, `child + 1` the other one), so a step is
//! `idx = child + !cond`. Leaves point to themselves and always satisfy the condition, so
//! extra steps are harmless and a group of rows can be advanced in lock-step without branches.
//!
//! Fast layout (every split is `<=`, `<`, `>=` or `>`): splits are rewritten to `x <= t`
//! with exact f32 rules: `x < t` is `x <= next_down(t)`; `x > t` and `x >= t` swap the
//! children (and the missing-value direction) of `x <= t` / `x < t`. Graphs with `==`/`!=`
//! splits keep their modes and use the general (branchy) kernel.
//!
//! Shared subtrees (ORT accepts DAGs, e.g. LightGBM categorical `BRANCH_EQ` chains) are
//! duplicated; cycles and runaway growth are rejected.

use std::collections::BTreeMap;

use super::simd::{Kernel, SimdLayout};
use super::spec::{Aggregate, EnsembleSpec, Head, Mode, PostTransform};
use crate::error::{invalid, unsupported, InferError};

pub(crate) const MISSING_BIT: u32 = 1 << 31;
pub(crate) const INDEX_MASK: u32 = !MISSING_BIT;
const MAX_DEPTH: u32 = 4096;

/// One tree node (16 bytes). `child` holds the index of the condition-true child in its low
/// 31 bits and "missing values take the condition-true child" in bit 31.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(16))]
pub(crate) struct Node {
    pub thr: f32,
    pub feat: u32,
    pub child: u32,
    /// Leaf value (single-output ensembles) or the leaf's ordinal as bits (multi-output).
    pub value: f32,
}

/// Per-node split mode for the general kernel.
pub(crate) mod gmode {
    pub const LEAF: u8 = 0;
    pub const LEQ: u8 = 1;
    pub const LT: u8 = 2;
    pub const GTE: u8 = 3;
    pub const GT: u8 = 4;
    pub const EQ: u8 = 5;
    pub const NEQ: u8 = 6;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TreeInfo {
    pub root: u32,
    /// Steps after which some row may be at a leaf / all rows are.
    pub min_depth: u32,
    pub max_depth: u32,
}

/// What a leaf contributes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// One value per leaf (`Node::value`) added into score slot `slot`.
    Single { slot: usize },
    /// Leaf ordinal `k` (in `Node::value` bits) owns `weights[offsets[k]..offsets[k + 1]]`.
    Multi {
        offsets: Vec<u32>,
        weights: Vec<(u32, f32)>,
    },
}

/// A tree ensemble compiled for batch evaluation, with ONNX Runtime's semantics.
///
/// Built by [`crate::compile_tree_node`] (or through [`crate::Model`]); evaluate with
/// [`CompiledEnsemble::predict`] / [`CompiledEnsemble::predict_column`].
#[derive(Debug, Clone)]
pub struct CompiledEnsemble {
    pub(crate) op: String,
    pub(crate) nodes: Vec<Node>,
    /// Empty for the fast layout; else one mode per node.
    pub(crate) modes: Vec<u8>,
    pub(crate) trees: Vec<TreeInfo>,
    pub(crate) min_features: usize,
    pub(crate) payload: Payload,
    pub(crate) n_slots: usize,
    pub(crate) head: Head,
    pub(crate) aggregate: Aggregate,
    pub(crate) post: PostTransform,
    pub(crate) base_values: Vec<f32>,
    /// Structure-of-arrays copy for the SIMD kernels (fast layout only).
    pub(crate) simd: Option<SimdLayout>,
    /// Kernel for the fast layout (detected at compile time).
    pub(crate) kernel: Kernel,
    /// The file's `nodes_hitrates` per compiled node (node covers for TreeSHAP, see
    /// [`crate::shap`]); empty with the reason in `no_covers` when the file has none.
    pub(crate) covers: Vec<f32>,
    pub(crate) no_covers: Option<String>,
}

fn next_down(t: f32) -> f32 {
    if t.is_nan() || t == f32::NEG_INFINITY {
        return f32::NAN; // `x < -inf` never holds; `x <= NaN` never holds either
    }
    if t == 0.0 {
        return -f32::from_bits(1);
    }
    let b = t.to_bits();
    if t > 0.0 {
        f32::from_bits(b - 1)
    } else {
        f32::from_bits(b + 1)
    }
}

struct Raw<'a> {
    spec: &'a EnsembleSpec,
    index: BTreeMap<(i64, i64), usize>,
}

impl Raw<'_> {
    fn child(&self, i: usize, id: i64, which: &str) -> Result<usize, InferError> {
        let n = &self.spec.nodes[i];
        let j = *self.index.get(&(n.tree, id)).ok_or_else(|| {
            invalid(format!(
                "{}: tree {} node {} has {which} node {id}, which does not exist",
                self.spec.op, n.tree, n.id
            ))
        })?;
        if j == i {
            return Err(invalid(format!(
                "{}: tree {} node {} points to itself",
                self.spec.op, n.tree, n.id
            )));
        }
        Ok(j)
    }
}

pub(crate) fn compile(spec: &EnsembleSpec) -> Result<CompiledEnsemble, InferError> {
    let op = spec.op.clone();
    let n_slots = check_head(spec)?;
    let (index, roots) = index_nodes(spec)?;
    let raw = Raw { spec, index };
    let leaf_weights = leaf_weights(&raw, n_slots)?;
    let single_slot = single_slot(spec, &leaf_weights);
    check_probit(spec, &leaf_weights)?;
    let fast = spec.nodes.iter().all(|n| {
        matches!(
            n.mode,
            Mode::Leaf | Mode::Leq | Mode::Lt | Mode::Gte | Mode::Gt
        )
    });
    // Features read (max id + 1) = M. The fast kernel reads rows re-laid out as
    // [x_0..x_{M-1}, 0.0, -x_0..-x_{M-1}] (see `eval`): leaves read the 0.0 pad.
    let min_features = spec
        .nodes
        .iter()
        .filter(|n| n.mode != Mode::Leaf)
        .map(|n| n.feature as usize + 1)
        .max()
        .unwrap_or(0);

    let mut layout = Layout {
        raw: &raw,
        leaf_weights: &leaf_weights,
        single_slot,
        fast,
        m32: min_features as u32,
        cap: spec.nodes.len().saturating_mul(4) + 4096,
        nodes: Vec::with_capacity(spec.nodes.len()),
        modes: Vec::new(),
        covers: Vec::new(),
        trees: Vec::with_capacity(roots.len()),
        offsets: vec![0],
        weights: Vec::new(),
    };
    for &r in &roots {
        layout.lay_out_tree(r)?;
    }
    let Layout {
        nodes,
        mut modes,
        mut covers,
        trees,
        offsets,
        weights,
        ..
    } = layout;
    if fast {
        modes.clear();
        check_fast_bounds(&op, &nodes, &trees, min_features)?;
    }
    let payload = match single_slot {
        Some(slot) => Payload::Single { slot },
        None => Payload::Multi { offsets, weights },
    };
    let simd = if fast {
        SimdLayout::new(&nodes, &trees, min_features)
    } else {
        None
    };
    let kernel = if simd.is_some() {
        Kernel::detect()
    } else {
        Kernel::Scalar
    };
    let no_covers = spec.no_hitrates.clone();
    if no_covers.is_some() {
        covers = Vec::new();
    } else {
        covers.resize(nodes.len(), f32::NAN);
    }
    Ok(CompiledEnsemble {
        covers,
        no_covers,
        simd,
        kernel,
        op,
        nodes,
        modes,
        trees,
        min_features,
        payload,
        n_slots,
        head: spec.head.clone(),
        aggregate: spec.aggregate,
        post: spec.post,
        base_values: spec.base_values.clone(),
    })
}

/// The number of score slots (classes or targets), after the head's consistency checks.
fn check_head(spec: &EnsembleSpec) -> Result<usize, InferError> {
    let op = &spec.op;
    let n_slots = match spec.head {
        Head::Classifier { n_classes, .. } => n_classes,
        Head::Regressor { n_targets } => n_targets,
    };
    if n_slots == 0 {
        return Err(invalid(format!("{op}: no class labels / n_targets is 0")));
    }
    if let Head::Classifier { n_classes: 1, .. } = spec.head {
        return Err(unsupported(
            format!("{op} with a single class label"),
            "use Engine::Ort",
        ));
    }
    if matches!(spec.head, Head::Classifier { n_classes, .. } if spec.base_values.len() > n_classes)
    {
        return Err(invalid(format!("{op}: more base_values than classes")));
    }
    if matches!(spec.head, Head::Classifier { .. }) && spec.nodes.is_empty() {
        return Err(invalid(format!("{op}: no nodes")));
    }
    Ok(n_slots)
}

/// `(tree, id) -> raw index`, and each tree's root (its first node); trees in order of first
/// appearance, each contiguous.
#[allow(clippy::type_complexity)]
fn index_nodes(
    spec: &EnsembleSpec,
) -> Result<(BTreeMap<(i64, i64), usize>, Vec<usize>), InferError> {
    let op = &spec.op;
    let mut index = BTreeMap::new();
    let mut roots: Vec<usize> = Vec::new();
    let mut seen_trees = std::collections::BTreeSet::new();
    let mut prev: Option<i64> = None;
    for (i, n) in spec.nodes.iter().enumerate() {
        if index.insert((n.tree, n.id), i).is_some() {
            return Err(invalid(format!(
                "{op}: node {} of tree {} appears twice",
                n.id, n.tree
            )));
        }
        if prev != Some(n.tree) {
            if !seen_trees.insert(n.tree) {
                return Err(invalid(format!(
                    "{op}: the nodes of tree {} are not contiguous",
                    n.tree
                )));
            }
            roots.push(i);
            prev = Some(n.tree);
        }
        if n.mode != Mode::Leaf && n.feature < 0 {
            return Err(invalid(format!(
                "{op}: tree {} node {} has feature id {}",
                n.tree, n.id, n.feature
            )));
        }
    }
    Ok((index, roots))
}

/// Each raw node's leaf weights `(slot, weight)`, in ORT's order: sorted by (tree, node), then
/// attribute order. Weights on internal nodes are ignored, as ORT does (old onnxmltools
/// exports carry some).
fn leaf_weights(raw: &Raw<'_>, n_slots: usize) -> Result<Vec<Vec<(u32, f32)>>, InferError> {
    let spec = raw.spec;
    let op = &spec.op;
    let mut order: Vec<usize> = (0..spec.targets.len()).collect();
    order.sort_by_key(|&k| (spec.targets[k].tree, spec.targets[k].node, k));
    let mut leaf_weights: Vec<Vec<(u32, f32)>> = vec![Vec::new(); spec.nodes.len()];
    for k in order {
        let t = &spec.targets[k];
        let i = *raw.index.get(&(t.tree, t.node)).ok_or_else(|| {
            invalid(format!(
                "{op}: a weight refers to node {} of tree {}, which does not exist",
                t.node, t.tree
            ))
        })?;
        if spec.nodes[i].mode != Mode::Leaf {
            continue;
        }
        if t.slot < 0 || t.slot as usize >= n_slots {
            return Err(invalid(format!(
                "{op}: class/target id {} out of range 0..{n_slots}",
                t.slot
            )));
        }
        leaf_weights[i].push((t.slot as u32, t.weight));
    }
    Ok(leaf_weights)
}

/// The score slot of single-value leaves, where ORT's arithmetic is one running value per row.
fn single_slot(spec: &EnsembleSpec, leaf_weights: &[Vec<(u32, f32)>]) -> Option<usize> {
    match spec.head {
        Head::Regressor { n_targets: 1 } => Some(0usize),
        Head::Classifier {
            binary_case: true, ..
        } if spec
            .nodes
            .iter()
            .zip(leaf_weights)
            .all(|(n, w)| n.mode != Mode::Leaf || w.len() == 1) =>
        {
            spec.targets.first().map(|t| t.slot as usize)
        }
        _ => None,
    }
}

/// PROBIT with a single score column: ORT writes probit(s) and leaves column 1 unwritten.
fn check_probit(spec: &EnsembleSpec, leaf_weights: &[Vec<(u32, f32)>]) -> Result<(), InferError> {
    if let Head::Classifier { n_classes: 2, .. } = spec.head {
        let class1_everywhere = spec
            .nodes
            .iter()
            .zip(leaf_weights)
            .all(|(n, w)| n.mode != Mode::Leaf || w.iter().any(|x| x.0 == 1));
        if spec.post == PostTransform::Probit && spec.base_values.len() != 2 && !class1_everywhere {
            return Err(unsupported(
                format!(
                    "{}: PROBIT on a one-column binary output (ORT leaves column 1 undefined)",
                    spec.op
                ),
                "use Engine::Ort",
            ));
        }
    }
    Ok(())
}

/// `(threshold, swap children, mode for the general kernel)` of an internal node. The fast
/// layout rewrites every split to `x <= thr` (see the module doc); the general one keeps it.
fn split_rule(op: &str, mode: Mode, t: f32, fast: bool) -> Result<(f32, bool, u8), InferError> {
    if !fast {
        let gm = match mode {
            Mode::Leq => gmode::LEQ,
            Mode::Lt => gmode::LT,
            Mode::Gte => gmode::GTE,
            Mode::Gt => gmode::GT,
            Mode::Eq => gmode::EQ,
            Mode::Neq => gmode::NEQ,
            Mode::Leaf => gmode::LEAF,
        };
        return Ok((t, false, gm));
    }
    Ok(match mode {
        Mode::Leq => (t, false, gmode::LEQ),
        Mode::Lt => (next_down(t), false, gmode::LEQ),
        Mode::Gt if t.is_nan() => (f32::NAN, false, gmode::LEQ),
        Mode::Gte if t.is_nan() => (f32::NAN, false, gmode::LEQ),
        Mode::Gt => (t, true, gmode::LEQ),
        Mode::Gte => (next_down(t), true, gmode::LEQ),
        _ => {
            return Err(invalid(format!(
                "{op}: internal error: mode {mode:?} in fast layout"
            )))
        }
    })
}

/// The fast kernel indexes without bounds checks: verify what makes that sound.
fn check_fast_bounds(
    op: &str,
    nodes: &[Node],
    trees: &[TreeInfo],
    min_features: usize,
) -> Result<(), InferError> {
    let w = 2 * min_features as u64 + 1;
    let n = nodes.len() as u64;
    let bad_node = |(k, nd): (usize, &Node)| {
        let leaf = nd.child as usize == k;
        let last_child = u64::from(nd.child) + u64::from(!leaf);
        last_child >= n || u64::from(nd.feat) >= w
    };
    if let Some(bad) = nodes.iter().enumerate().position(bad_node) {
        return Err(invalid(format!(
            "{op}: internal error: node {bad} of the compiled layout is out of range"
        )));
    }
    if trees.iter().any(|t| t.root as u64 >= n) {
        return Err(invalid(format!("{op}: internal error: root out of range")));
    }
    Ok(())
}

/// The compiled arrays under construction, and what laying out a tree reads.
struct Layout<'a> {
    raw: &'a Raw<'a>,
    leaf_weights: &'a [Vec<(u32, f32)>],
    single_slot: Option<usize>,
    fast: bool,
    /// `min_features` as u32: the 0.0 pad leaves read in the fast layout.
    m32: u32,
    /// Node budget for expanding shared subtrees.
    cap: usize,
    nodes: Vec<Node>,
    modes: Vec<u8>,
    covers: Vec<f32>,
    trees: Vec<TreeInfo>,
    offsets: Vec<u32>,
    weights: Vec<(u32, f32)>,
}

impl Layout<'_> {
    /// Lays out the tree rooted at raw node `r` breadth-first, children adjacent.
    fn lay_out_tree(&mut self, r: usize) -> Result<(), InferError> {
        let op = &self.raw.spec.op;
        let root_slot = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        self.modes.push(gmode::LEAF);
        let mut queue = std::collections::VecDeque::new();
        queue.push_back((root_slot, r, 0u32));
        let (mut min_d, mut max_d) = (u32::MAX, 0u32);
        while let Some((slot, i, depth)) = queue.pop_front() {
            if depth > MAX_DEPTH {
                return Err(invalid(format!(
                    "{op}: a tree is deeper than {MAX_DEPTH} (cycle?)"
                )));
            }
            if self.nodes.len() > self.cap {
                return Err(unsupported(
                    format!("{op}: shared subtrees too large to expand"),
                    "use Engine::Ort",
                ));
            }
            let s = slot as usize;
            self.covers.resize(self.nodes.len(), f32::NAN);
            self.covers[s] = self.raw.spec.nodes[i].hitrate;
            if self.raw.spec.nodes[i].mode == Mode::Leaf {
                min_d = min_d.min(depth);
                max_d = max_d.max(depth);
                self.place_leaf(slot, i);
                continue;
            }
            let c = self.nodes.len() as u32;
            let (first, second) = self.place_split(slot, i)?;
            queue.push_back((c, first, depth + 1));
            queue.push_back((c + 1, second, depth + 1));
        }
        self.trees.push(TreeInfo {
            root: root_slot,
            min_depth: min_d.min(max_d),
            max_depth: max_d,
        });
        Ok(())
    }

    /// Writes raw leaf `i` at `slot`: its value, or (multi-output) its ordinal in the weights.
    fn place_leaf(&mut self, slot: u32, i: usize) {
        let n = &self.raw.spec.nodes[i];
        let value = match self.single_slot {
            Some(_) => self.leaf_weights[i].first().map(|w| w.1).unwrap_or(n.value),
            None => {
                let k = self.offsets.len() as u32 - 1;
                self.weights.extend_from_slice(&self.leaf_weights[i]);
                self.offsets.push(self.weights.len() as u32);
                f32::from_bits(k)
            }
        };
        let feat = if self.fast { self.m32 } else { 0 };
        self.nodes[slot as usize] = Node {
            thr: f32::INFINITY,
            feat,
            child: slot,
            value,
        };
        self.modes[slot as usize] = gmode::LEAF;
    }

    /// Writes raw split `i` at `slot`, reserves its two adjacent children and returns the raw
    /// nodes to place there (condition-true child first).
    fn place_split(&mut self, slot: u32, i: usize) -> Result<(usize, usize), InferError> {
        let raw = self.raw;
        let op = &raw.spec.op;
        let n = &raw.spec.nodes[i];
        let (ti, fi) = (
            raw.child(i, n.true_id, "true")?,
            raw.child(i, n.false_id, "false")?,
        );
        let c = self.nodes.len() as u32;
        if c >= INDEX_MASK - 2 {
            return Err(unsupported(
                format!("{op}: too many nodes"),
                "use Engine::Ort",
            ));
        }
        self.nodes.push(Node::default());
        self.nodes.push(Node::default());
        self.modes.push(gmode::LEAF);
        self.modes.push(gmode::LEAF);
        let feat = n.feature as u32;
        let (thr, swap, gm) = split_rule(op, n.mode, n.value, self.fast)?;
        let missing = n.missing_true != swap;
        let (mut first, mut second) = if swap { (fi, ti) } else { (ti, fi) };
        let s = slot as usize;
        if self.fast {
            // Fast layout: one ordered `v <= thr` per step, NaN always takes the second
            // child. Where NaN must take the first child, negate: `!(v <= t)` on numbers
            // is `-v <= next_down(-t)`, read from the negated copy, children swapped.
            let (thr, feat) = if !missing {
                (thr, feat)
            } else {
                std::mem::swap(&mut first, &mut second);
                if thr.is_nan() {
                    (f32::INFINITY, feat)
                } else {
                    (next_down(-thr), self.m32 + 1 + feat)
                }
            };
            self.nodes[s] = Node {
                thr,
                feat,
                child: c,
                value: 0.0,
            };
        } else {
            self.nodes[s] = Node {
                thr,
                feat,
                child: c | if missing { MISSING_BIT } else { 0 },
                value: 0.0,
            };
        }
        self.modes[s] = gm;
        Ok((first, second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_down_is_exact() {
        for &t in &[1.0f32, -1.0, 0.5, 1e-30, -3.3e7, f32::MAX, f32::INFINITY] {
            let d = next_down(t);
            assert!(d < t);
            for v in [d, t, (d + t) / 2.0] {
                assert_eq!(v < t, v <= d, "t={t} v={v}");
            }
        }
        assert_eq!(-0.0f32 < 0.0, -0.0f32 <= next_down(0.0));
        assert!(next_down(f32::NEG_INFINITY).is_nan());
    }
}
