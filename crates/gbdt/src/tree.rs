//! One regression tree as flat arrays (the layout the ONNX exporter reads).
//!
//! # Layout
//!
//! A tree with `L` leaves has `L - 1` internal nodes, indexed `0..L-1`; node 0 is the root
//! (a tree with a single leaf has no internal node and always outputs `leaf_value[0]`).
//! For internal node `i`:
//!
//! * `split_feature[i]`: column index into the feature matrix;
//! * `threshold[i]`: f32 threshold; **go left iff `x <= threshold[i]`** (f32 comparison), or
//!   `x` is NaN and `default_left[i]` is true. NaN goes right iff `default_left[i]` is false.
//!   Thresholds are actual f32 bin upper bounds (values seen in training) so this comparison
//!   routes every training row exactly as training did; a threshold may be `+inf` (split
//!   "all non-missing left, missing right");
//! * `left_child[i]` / `right_child[i]`: a value `c >= 0` is internal node `c` (always `> i`);
//!   a value `c < 0` is leaf `!c` (i.e. `-c - 1`, LightGBM's encoding);
//! * `split_gain[i]`: loss reduction of the split (importance "gain");
//! * `internal_value[i]`, `internal_count[i]`, `internal_hessian[i]`: shrunken output, row
//!   count and hessian sum ("cover") the node had as a leaf before it was split.
//!
//! For leaf `j` in `0..L`: `leaf_value[j]` (already multiplied by the learning rate; the model
//! prediction is `base_score + Σ_trees leaf_value`), `leaf_count[j]`, `leaf_hessian[j]`.
//! ONNX mapping: `nodes_modes = BRANCH_LEQ`, `nodes_missing_value_tracks_true = default_left`,
//! `nodes_truenodeids = left_child`, `nodes_falsenodeids = right_child`.

use serde::{Deserialize, Serialize};

/// A regression tree; see the module docs for the exact layout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub split_feature: Vec<u32>,
    pub threshold: Vec<f32>,
    pub default_left: Vec<bool>,
    pub left_child: Vec<i32>,
    pub right_child: Vec<i32>,
    pub split_gain: Vec<f64>,
    pub internal_value: Vec<f64>,
    pub internal_count: Vec<u32>,
    pub internal_hessian: Vec<f64>,
    pub leaf_value: Vec<f64>,
    pub leaf_count: Vec<u32>,
    pub leaf_hessian: Vec<f64>,
}

impl Tree {
    /// Number of leaves.
    pub fn num_leaves(&self) -> usize {
        self.leaf_value.len()
    }

    /// Number of internal (split) nodes.
    pub fn num_internal(&self) -> usize {
        self.split_feature.len()
    }

    /// Leaf reached by a row. The tree must be valid (see [`Tree::validate`]).
    #[inline]
    pub fn leaf_index(&self, row: &[f32]) -> usize {
        if self.split_feature.is_empty() {
            return 0;
        }
        let mut node = 0i32;
        while node >= 0 {
            let i = node as usize;
            let x = row
                .get(self.split_feature[i] as usize)
                .copied()
                .unwrap_or(f32::NAN);
            let left = if x.is_nan() {
                self.default_left[i]
            } else {
                x <= self.threshold[i]
            };
            node = if left {
                self.left_child[i]
            } else {
                self.right_child[i]
            };
        }
        !node as usize
    }

    /// Leaf value reached by a row.
    #[inline]
    pub fn predict_row(&self, row: &[f32]) -> f64 {
        self.leaf_value[self.leaf_index(row)]
    }

    /// Maximum depth (root = 0; a single leaf has depth 0).
    pub fn depth(&self) -> usize {
        fn rec(t: &Tree, node: i32) -> usize {
            if node < 0 {
                0
            } else {
                let i = node as usize;
                1 + rec(t, t.left_child[i]).max(rec(t, t.right_child[i]))
            }
        }
        if self.split_feature.is_empty() {
            0
        } else {
            rec(self, 0)
        }
    }

    /// Check structural invariants: equal array lengths, `L - 1` internal nodes, children in
    /// range with internal children after their parent, every leaf and non-root node reached
    /// exactly once, features `< n_features`, thresholds not NaN.
    pub fn validate(&self, n_features: usize) -> Result<(), String> {
        let ni = self.split_feature.len();
        let nl = self.leaf_value.len();
        if nl == 0 {
            return Err("tree has no leaves".into());
        }
        if ni + 1 != nl {
            return Err(format!("{ni} internal nodes for {nl} leaves"));
        }
        let lens = [
            self.threshold.len(),
            self.default_left.len(),
            self.left_child.len(),
            self.right_child.len(),
            self.split_gain.len(),
            self.internal_value.len(),
            self.internal_count.len(),
            self.internal_hessian.len(),
        ];
        if lens.iter().any(|&l| l != ni) {
            return Err("internal node arrays differ in length".into());
        }
        if self.leaf_count.len() != nl || self.leaf_hessian.len() != nl {
            return Err("leaf arrays differ in length".into());
        }
        let mut seen_leaf = vec![false; nl];
        let mut seen_node = vec![false; ni];
        for i in 0..ni {
            if self.split_feature[i] as usize >= n_features {
                return Err(format!(
                    "node {i}: feature {} >= {n_features}",
                    self.split_feature[i]
                ));
            }
            if self.threshold[i].is_nan() {
                return Err(format!("node {i}: NaN threshold"));
            }
            for c in [self.left_child[i], self.right_child[i]] {
                if c >= 0 {
                    let c = c as usize;
                    if c <= i || c >= ni || seen_node[c] {
                        return Err(format!("node {i}: bad internal child {c}"));
                    }
                    seen_node[c] = true;
                } else {
                    let l = !c as usize;
                    if l >= nl || seen_leaf[l] {
                        return Err(format!("node {i}: bad leaf child {l}"));
                    }
                    seen_leaf[l] = true;
                }
            }
        }
        if ni > 0 && (seen_node.iter().skip(1).any(|s| !s) || seen_leaf.iter().any(|s| !s)) {
            return Err("unreachable node or leaf".into());
        }
        Ok(())
    }
}
