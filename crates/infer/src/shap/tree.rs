//! Path-dependent TreeSHAP (Lundberg, Erion, Chen et al. 2020, "From local explanations to
//! global understanding with explainable AI for trees", Algorithm 2) over the compiled node
//! arrays of a [`CompiledEnsemble`], in f64.
//!
//! # The game
//!
//! For a row `x` and a tree, the value of a feature set `S` is the tree's expected output when
//! the features in `S` take `x`'s values and the others are unknown: at a split on a feature in
//! `S` the row goes where the engine sends it; at any other split both children count,
//! weighted by their share of the node's cover (`cover(child) / cover(node)`). The SHAP
//! values are the Shapley values of this game; Algorithm 2 computes them in `O(L D²)` per
//! tree (`L` leaves, `D` depth) by carrying, along the root-to-leaf path, the proportions of
//! all subsets of the path's unique features (`extend` / `unwind` / `unwound_sum` below, the
//! same recurrences as LightGBM's `Tree::TreeSHAP` in `src/io/tree.cpp` and shap's
//! `tree_shap_recursive`). Local accuracy holds by construction: `bias + Σ φ = f(x)`, where
//! `bias` is the cover-weighted mean leaf value (LightGBM's `ExpectedValue`).
//!
//! # Routing
//!
//! The hot child is chosen by the decision the scoring kernels make on the same compiled
//! node (`thr`, `feat`, the child pair and its missing-value bit): the fast layout's `x <= t`
//! on the re-laid-out row (a negated feature where NaN must go the "true" way), or the
//! general layout's mode with `missing_value_tracks_true`. So NaN and values at a threshold
//! (`BRANCH_LEQ` vs `BRANCH_LT`) go exactly where the engine scores them.
//!
//! # Covers
//!
//! `cover(node)` is LightGBM's `data_count(node)` (`internal_count` / `leaf_count`, training
//! rows; `include/LightGBM/tree.h`), which its `TreeSHAP` divides: the number of training
//! rows reaching the node. A node of cover 0 (a reference sample that never reaches it)
//! splits its parent's weight equally between the children, in the bias as in the values, so
//! local accuracy still holds.

use crate::error::{invalid, unsupported, InferError};
use crate::tree::compile::{gmode, CompiledEnsemble, Payload, INDEX_MASK, MISSING_BIT};
use crate::tree::spec::{Aggregate, Head, PostTransform};

use super::fast::{self, FastTree};

/// One compiled node, re-read for explanation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SNode {
    thr: f32,
    /// Index of the value read in the (pre-processed) feature row.
    pub(crate) read: u32,
    /// The fast layout reads the negated feature (`-x <= t`).
    neg: bool,
    /// Split mode (`gmode`); `LEAF` for leaves.
    pub(crate) mode: u8,
    /// NaN takes the first child.
    missing_first: bool,
    /// First child; the second is `first + 1`.
    pub(crate) first: u32,
    /// Weight of going to the first child (`cover(first) / cover(node)`).
    pub(crate) w_first: f64,
    /// Leaf value of the explained output (leaves only).
    pub(crate) value: f64,
}

impl SNode {
    /// Whether `x` goes to the first child: the scoring kernels' decision, bit for bit.
    #[inline(always)]
    pub(crate) fn goes_first(&self, x: &[f32]) -> bool {
        let v = x[self.read as usize];
        let v = if self.neg { -v } else { v };
        let t = self.thr;
        let c = match self.mode {
            gmode::LEQ => v <= t,
            gmode::LT => v < t,
            gmode::GTE => v >= t,
            gmode::GT => v > t,
            gmode::EQ => v == t,
            _ => v != t,
        };
        c || (self.missing_first && v.is_nan())
    }
}

/// Per-thread scratch of [`TreeShap::row`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    path: Vec<PathElement>,
    dec: Vec<bool>,
}

/// One element of the unique path (Algorithm 2's `m`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PathElement {
    feature: u32,
    zero: f64,
    one: f64,
    pweight: f64,
}

const NO_FEATURE: u32 = u32::MAX;
/// Deepest tree explained (its path buffer: ~16 MB per thread).
const MAX_DEPTH: usize = 1000;

/// Which output of an ensemble is explained, and how it becomes the margin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    slot: usize,
    base: f64,
    scale: f64,
}

/// The margin (pre-`post_transform` value) behind output column `column`:
/// `margin = base + scale * Σ_trees leaf_value[slot]`, following ONNX Runtime's aggregators
/// (see `tree::eval::CompiledEnsemble::finalize`). Shapes whose column is not such a sum are
/// refused.
pub(crate) fn target(e: &CompiledEnsemble, column: usize) -> Result<Target, InferError> {
    let op = &e.op;
    let single = match &e.payload {
        Payload::Single { slot } => Some(*slot),
        Payload::Multi { .. } => None,
    };
    match e.head {
        Head::Regressor { n_targets: 1 } => {
            let base = match e.base_values.as_slice() {
                [b] => f64::from(*b),
                _ => 0.0,
            };
            let scale = match e.aggregate {
                Aggregate::Sum => 1.0,
                Aggregate::Average => 1.0 / e.trees.len().max(1) as f64,
                Aggregate::Min | Aggregate::Max => {
                    return Err(unsupported(
                        format!("{op} with aggregate_function MIN/MAX"),
                        "SHAP values explain a sum of trees; such a model has no additive margin",
                    ))
                }
            };
            Ok(Target {
                slot: 0,
                base,
                scale,
            })
        }
        Head::Classifier {
            n_classes: 2,
            binary_case: true,
            ..
        } if column == 1
            && matches!(e.post, PostTransform::None | PostTransform::Logistic)
            && e.base_values.len() <= 1 =>
        {
            let slot = single.ok_or_else(|| {
                unsupported(
                    format!("{op}: leaves with several weights"),
                    "explanations support binary classifiers with one weight per leaf",
                )
            })?;
            // base_values[0] is added to the one score column (slot 0); a class-1 column
            // gets no base (ORT's TreeAggregatorClassifier).
            let base = match (slot, e.base_values.as_slice()) {
                (0, [b]) => f64::from(*b),
                _ => 0.0,
            };
            Ok(Target {
                slot,
                base,
                scale: 1.0,
            })
        }
        _ => Err(unsupported(
            format!(
                "{op} with this output layout (head {:?}, post_transform {:?}, {} base values, column {column})",
                e.head,
                e.post,
                e.base_values.len()
            ),
            "explanations support single-target regressors and binary classifiers \
             (one score column, post_transform NONE or LOGISTIC)",
        )),
    }
}

/// TreeSHAP tables for one ensemble.
#[derive(Debug, Clone)]
pub(crate) struct TreeShap {
    nodes: Vec<SNode>,
    roots: Vec<u32>,
    /// Per tree: its precomputed tables ([`super::fast`]), or `None` for the recursion.
    fast: Vec<Option<FastTree>>,
    /// Decision buffer length (the most internal nodes of a tabulated tree).
    dec_len: usize,
    /// Path buffer length ((D+1)(D+2)/2 for the deepest tree).
    buf_len: usize,
    scale: f64,
    bias: f64,
}

/// Where the covers come from.
pub(crate) enum Covers<'a> {
    /// Counts per compiled node from routing a reference sample.
    Counts(&'a [u64]),
    /// The file's `nodes_hitrates`.
    File,
}

impl TreeShap {
    pub(crate) fn new(
        e: &CompiledEnsemble,
        column: usize,
        covers: Covers<'_>,
        table_entries: usize,
    ) -> Result<TreeShap, InferError> {
        let t = target(e, column)?;
        let n = e.nodes.len();
        let cover: Vec<f64> = match covers {
            Covers::Counts(c) => c.iter().map(|&v| v as f64).collect(),
            Covers::File => file_covers(e)?,
        };
        if cover.len() != n {
            return Err(invalid(format!(
                "{}: {} covers for {n} nodes",
                e.op,
                cover.len()
            )));
        }
        let leaf_value = |i: usize| -> f64 {
            let nd = &e.nodes[i];
            match &e.payload {
                Payload::Single { .. } => f64::from(nd.value),
                Payload::Multi { offsets, weights } => {
                    let k = nd.value.to_bits() as usize;
                    weights[offsets[k] as usize..offsets[k + 1] as usize]
                        .iter()
                        .filter(|w| w.0 as usize == t.slot)
                        .map(|w| f64::from(w.1))
                        .sum()
                }
            }
        };
        let mut nodes = snodes(e);
        for (i, sn) in nodes.iter_mut().enumerate() {
            if sn.mode == gmode::LEAF {
                sn.value = leaf_value(i);
            } else {
                let w = cover[i];
                sn.w_first = if w > 0.0 {
                    cover[sn.first as usize] / w
                } else {
                    0.5
                };
            }
        }
        let roots: Vec<u32> = e.trees.iter().map(|t| t.root).collect();
        let depth = e.trees.iter().map(|t| t.max_depth).max().unwrap_or(0) as usize;
        if depth > MAX_DEPTH {
            // the path buffer grows with depth² (32 bytes an element, per thread)
            return Err(unsupported(
                format!("{}: a tree of depth {depth}", e.op),
                format!("explanations support trees up to depth {MAX_DEPTH}"),
            ));
        }
        // tables for the trees that fit the bound, in model order
        let mut used = 0usize;
        let fast: Vec<Option<FastTree>> = roots
            .iter()
            .map(|&r| {
                if nodes[r as usize].mode == gmode::LEAF {
                    return None;
                }
                let need = fast::table_entries(&nodes, r)?;
                if used.saturating_add(need) > table_entries {
                    return None;
                }
                used += need;
                Some(FastTree::build(&nodes, r, t.scale))
            })
            .collect();
        let dec_len = fast
            .iter()
            .flatten()
            .map(FastTree::n_internal)
            .max()
            .unwrap_or(0);
        let mut ts = TreeShap {
            nodes,
            roots,
            fast,
            dec_len,
            buf_len: (depth + 2) * (depth + 3) / 2,
            scale: t.scale,
            bias: 0.0,
        };
        // bias = base + scale * Σ_trees E[tree], E by the same weights the values use
        let mut bias = 0.0;
        for &r in &ts.roots {
            bias += ts.expected(r);
        }
        ts.bias = t.base + t.scale * bias;
        Ok(ts)
    }

    pub(crate) fn bias(&self) -> f64 {
        self.bias
    }

    fn expected(&self, i: u32) -> f64 {
        let n = &self.nodes[i as usize];
        if n.mode == gmode::LEAF {
            return n.value;
        }
        n.w_first * self.expected(n.first) + (1.0 - n.w_first) * self.expected(n.first + 1)
    }

    /// Add `scale * φ` of every tree for row `x` into `phi` (one slot per feature);
    /// `path` is grown to the deepest tree's need once.
    pub(crate) fn row(&self, x: &[f32], phi: &mut [f64], scratch: &mut Scratch) {
        if scratch.path.len() < self.buf_len {
            scratch.path.resize(self.buf_len, PathElement::default());
        }
        if scratch.dec.len() < self.dec_len {
            scratch.dec.resize(self.dec_len, false);
        }
        for (&r, fast) in self.roots.iter().zip(&self.fast) {
            if let Some(ft) = fast {
                ft.row(&self.nodes, x, phi, &mut scratch.dec);
                continue;
            }
            if self.nodes[r as usize].mode == gmode::LEAF {
                continue; // a single leaf: no feature matters
            }
            self.recurse(x, phi, r, 0, &mut scratch.path, 0, 1.0, 1.0, NO_FEATURE);
        }
    }

    /// Table entries over all tabulated trees.
    pub(crate) fn table_entries(&self) -> usize {
        self.fast.iter().flatten().map(FastTree::table_len).sum()
    }

    /// Trees explained by tables, and all trees.
    pub(crate) fn tabulated(&self) -> (usize, usize) {
        (self.fast.iter().flatten().count(), self.roots.len())
    }

    /// Algorithm 2's `RECURSE`. The path of this call starts at `path[start..]` and holds
    /// `depth + 1` elements once extended; children's paths start right after it.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &self,
        x: &[f32],
        phi: &mut [f64],
        node: u32,
        mut depth: usize,
        path: &mut [PathElement],
        parent_start: usize,
        zero: f64,
        one: f64,
        feature: u32,
    ) {
        if zero == 0.0 && one == 0.0 {
            // A cold subtree no reference row reaches: every path weight below is 0, so it
            // adds exactly nothing (and unwinding its element would divide 0 by 0).
            return;
        }
        let start = parent_start + depth;
        if depth > 0 {
            path.copy_within(parent_start..parent_start + depth, start);
        }
        let p = &mut path[start..];
        extend(p, depth, zero, one, feature);
        let n = &self.nodes[node as usize];
        if n.mode == gmode::LEAF {
            let v = n.value * self.scale;
            for i in 1..=depth {
                let w = unwound_sum(p, depth, i);
                let el = p[i];
                phi[el.feature as usize] += w * (el.one - el.zero) * v;
            }
            return;
        }
        let hot_first = n.goes_first(x);
        let (hot, cold) = if hot_first {
            (n.first, n.first + 1)
        } else {
            (n.first + 1, n.first)
        };
        let (hot_zero, cold_zero) = if hot_first {
            (n.w_first, 1.0 - n.w_first)
        } else {
            (1.0 - n.w_first, n.w_first)
        };
        let split = n.read;
        let (mut in_zero, mut in_one) = (1.0, 1.0);
        if let Some(k) = (1..=depth).find(|&k| p[k].feature == split) {
            in_zero = p[k].zero;
            in_one = p[k].one;
            unwind(p, depth, k);
            depth -= 1;
        }
        self.recurse(
            x,
            phi,
            hot,
            depth + 1,
            path,
            start,
            hot_zero * in_zero,
            in_one,
            split,
        );
        self.recurse(
            x,
            phi,
            cold,
            depth + 1,
            path,
            start,
            cold_zero * in_zero,
            0.0,
            split,
        );
    }
}

/// The file's `nodes_hitrates` as covers, checked: every internal node's cover is the sum of
/// its children's (within f32 rounding). onnxmltools writes 1.0 everywhere, which fails.
fn file_covers(e: &CompiledEnsemble) -> Result<Vec<f64>, InferError> {
    const HINT: &str = "pass a reference sample to recompute the covers by routing it through \
                        the trees (`--reference FILE`, e.g. the training data)";
    if let Some(why) = &e.no_covers {
        return Err(unsupported(
            format!("{}: no node covers in the file ({why})", e.op),
            HINT,
        ));
    }
    let c: Vec<f64> = e.covers.iter().map(|&v| f64::from(v)).collect();
    for (i, nd) in e.nodes.iter().enumerate() {
        let child = (nd.child & INDEX_MASK) as usize;
        let ok = if child == i {
            c[i].is_finite() && c[i] >= 0.0
        } else {
            let sum = c[child] + c[child + 1];
            c[i].is_finite() && c[i] > 0.0 && (c[i] - sum).abs() <= 1e-5 * c[i]
        };
        if !ok {
            return Err(unsupported(
                format!(
                    "{}: nodes_hitrates are not node covers (compiled node {i}: {} vs children {} + {}; \
                     converters such as onnxmltools write 1.0 everywhere)",
                    e.op,
                    c[i],
                    c.get(child).copied().unwrap_or(f64::NAN),
                    c.get(child + 1).copied().unwrap_or(f64::NAN)
                ),
                HINT,
            ));
        }
    }
    Ok(c)
}

/// The compiled nodes with their split decisions (covers and values unset).
fn snodes(e: &CompiledEnsemble) -> Vec<SNode> {
    let fast = e.modes.is_empty();
    let m = e.min_features as u32;
    e.nodes
        .iter()
        .enumerate()
        .map(|(i, nd)| {
            let first = nd.child & INDEX_MASK;
            let leaf = first as usize == i;
            let (read, neg, mode, missing_first) = if leaf {
                (0, false, gmode::LEAF, false)
            } else if fast {
                // `[x, 0, -x]` re-layout: reads past `m` are of the negated feature
                if nd.feat > m {
                    (nd.feat - m - 1, true, gmode::LEQ, false)
                } else {
                    (nd.feat, false, gmode::LEQ, false)
                }
            } else {
                (nd.feat, false, e.modes[i], nd.child & MISSING_BIT != 0)
            };
            SNode {
                thr: nd.thr,
                read,
                neg,
                mode,
                missing_first,
                first,
                w_first: 0.0,
                value: 0.0,
            }
        })
        .collect()
}

/// How many of `n_rows` (pre-processed) rows of `nf` values reach each compiled node, routed
/// as the engine routes them. Integer counts summed over fixed chunks: the same for any
/// thread count.
pub(crate) fn route_counts(e: &CompiledEnsemble, x: &[f32], nf: usize, n_rows: usize) -> Vec<u64> {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    let nodes = snodes(e);
    let roots: Vec<u32> = e.trees.iter().map(|t| t.root).collect();
    x[..n_rows * nf]
        .par_chunks(CHUNK * nf)
        .map(|xc| {
            let mut c = vec![0u64; nodes.len()];
            for row in xc.chunks_exact(nf) {
                for &r in &roots {
                    let mut i = r as usize;
                    loop {
                        c[i] += 1;
                        let n = &nodes[i];
                        if n.mode == gmode::LEAF {
                            break;
                        }
                        i = (n.first + u32::from(!n.goes_first(row))) as usize;
                    }
                }
            }
            c
        })
        .reduce(
            || vec![0u64; nodes.len()],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Algorithm 2's `EXTEND`: add a feature with fractions (`zero`, `one`) at `path[depth]`.
#[inline]
fn extend(p: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: u32) {
    p[depth] = PathElement {
        feature,
        zero,
        one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        p[i + 1].pweight += one * p[i].pweight * (i + 1) as f64 / d1;
        p[i].pweight = zero * p[i].pweight * (depth - i) as f64 / d1;
    }
}

/// Algorithm 2's `UNWIND`: remove element `k` (undo its `extend`).
#[inline]
fn unwind(p: &mut [PathElement], depth: usize, k: usize) {
    let one = p[k].one;
    let zero = p[k].zero;
    let mut next = p[depth].pweight;
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = p[i].pweight;
            p[i].pweight = next * d1 / ((i + 1) as f64 * one);
            next = tmp - p[i].pweight * zero * (depth - i) as f64 / d1;
        } else {
            p[i].pweight = p[i].pweight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in k..depth {
        p[i].feature = p[i + 1].feature;
        p[i].zero = p[i + 1].zero;
        p[i].one = p[i + 1].one;
    }
}

/// Total permutation weight of the path with element `k` unwound (without modifying it).
#[inline]
fn unwound_sum(p: &[PathElement], depth: usize, k: usize) -> f64 {
    let one = p[k].one;
    let zero = p[k].zero;
    let mut next = p[depth].pweight;
    let mut total = 0.0;
    let d1 = (depth + 1) as f64;
    if one != 0.0 {
        for i in (0..depth).rev() {
            let tmp = next * d1 / ((i + 1) as f64 * one);
            total += tmp;
            next = p[i].pweight - tmp * zero * ((depth - i) as f64 / d1);
        }
    } else if zero != 0.0 {
        for i in (0..depth).rev() {
            total += (p[i].pweight / zero) / ((depth - i) as f64 / d1);
        }
    }
    total
}
