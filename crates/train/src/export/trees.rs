//! A [`cr_gbdt::GbdtModel`] as an `ai.onnx.ml.TreeEnsembleClassifier` (binary) or
//! `TreeEnsembleRegressor` node.
//!
//! Node ids within a tree: internal node `i` keeps id `i`, leaf `j` gets id `n_internal + j`.
//! Every split is `BRANCH_LEQ` on an f32 threshold taken from the training data, with
//! `nodes_missing_value_tracks_true = default_left`, so ONNX Runtime routes each row exactly as
//! our trees do. Binary models follow the convention of onnxmltools' LightGBM converter:
//! one weight column (class id 0), `classlabels_int64s = [0, 1]`, `post_transform = LOGISTIC`,
//! `base_values = [base_score]`, giving `probabilities[:, 1] = sigmoid(base + Σ leaves)`.
//!
//! Node covers for TreeSHAP (`cr_infer::shap`): `nodes_hitrates` holds each node's training
//! row count (`internal_count` / `leaf_count`, the in-bag rows that reached it) — LightGBM's
//! choice: its `Tree::TreeSHAP` divides `data_count(node)`, which is `internal_count_` /
//! `leaf_count_` (`include/LightGBM/tree.h`), not the hessian sums. The ONNX spec allows any
//! per-node float there and ONNX Runtime ignores it for scoring. Counts are exact in f32 up to
//! 2^24 rows per node (beyond, rounded to 8 significant digits).

use cr_gbdt::{GbdtModel, Objective};
use cr_onnx::{attr, GraphBuilder};

use crate::TrainError;

struct Flat {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    modes: Vec<&'static str>,
    values: Vec<f32>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    hitrates: Vec<f32>,
    leaf_tree: Vec<i64>,
    leaf_node: Vec<i64>,
    leaf_weight: Vec<f32>,
}

fn flatten(model: &GbdtModel) -> Result<Flat, TrainError> {
    let mut f = Flat {
        tree_ids: vec![],
        node_ids: vec![],
        feature_ids: vec![],
        modes: vec![],
        values: vec![],
        true_ids: vec![],
        false_ids: vec![],
        missing_true: vec![],
        hitrates: vec![],
        leaf_tree: vec![],
        leaf_node: vec![],
        leaf_weight: vec![],
    };
    for (t, tree) in model.trees.iter().enumerate() {
        tree.validate(model.n_features)
            .map_err(|e| TrainError::Export(format!("tree {t}: {e}")))?;
        let t = t as i64;
        let ni = tree.num_internal() as i64;
        let child = |c: i32| -> i64 {
            if c >= 0 {
                i64::from(c)
            } else {
                ni + i64::from(!c)
            }
        };
        for i in 0..tree.num_internal() {
            f.tree_ids.push(t);
            f.node_ids.push(i as i64);
            f.feature_ids.push(i64::from(tree.split_feature[i]));
            f.modes.push("BRANCH_LEQ");
            f.values.push(tree.threshold[i]);
            f.true_ids.push(child(tree.left_child[i]));
            f.false_ids.push(child(tree.right_child[i]));
            f.missing_true.push(i64::from(tree.default_left[i]));
            f.hitrates.push(tree.internal_count[i] as f32);
        }
        for (j, v) in tree.leaf_value.iter().enumerate() {
            let id = ni + j as i64;
            f.tree_ids.push(t);
            f.node_ids.push(id);
            f.feature_ids.push(0);
            f.modes.push("LEAF");
            f.values.push(0.0);
            f.true_ids.push(0);
            f.false_ids.push(0);
            f.missing_true.push(0);
            f.hitrates.push(tree.leaf_count[j] as f32);
            f.leaf_tree.push(t);
            f.leaf_node.push(id);
            f.leaf_weight.push(*v as f32);
        }
    }
    Ok(f)
}

/// Emits the ensemble reading `features`; returns the name of the `float [N, 2]`
/// probabilities output (binary) or `float [N, 1]` prediction (regression; Tweedie:
/// `TreeEnsembleRegressor` then `Exp`, named by [`cr_model::meta::Prediction::output`]).
pub fn emit(model: &GbdtModel, features: &str, g: &mut GraphBuilder) -> Result<String, TrainError> {
    let f = flatten(model)?;
    let mut attrs = vec![
        attr::ints("nodes_treeids", f.tree_ids),
        attr::ints("nodes_nodeids", f.node_ids),
        attr::ints("nodes_featureids", f.feature_ids),
        attr::strings("nodes_modes", &f.modes),
        attr::floats("nodes_values", f.values),
        attr::ints("nodes_truenodeids", f.true_ids),
        attr::ints("nodes_falsenodeids", f.false_ids),
        attr::ints("nodes_missing_value_tracks_true", f.missing_true),
        attr::floats("nodes_hitrates", f.hitrates),
    ];
    match model.objective {
        Objective::Binary { .. } => {
            let n = f.leaf_tree.len();
            attrs.extend([
                attr::ints("class_treeids", f.leaf_tree),
                attr::ints("class_nodeids", f.leaf_node),
                attr::ints("class_ids", vec![0; n]),
                attr::floats("class_weights", f.leaf_weight),
                attr::ints("classlabels_int64s", vec![0, 1]),
                attr::string("post_transform", "LOGISTIC"),
                attr::floats("base_values", vec![model.base_score as f32]),
            ]);
            let label = g.unique_name("label");
            let probs = g.unique_name("probabilities");
            g.add_node(
                "TreeEnsembleClassifier",
                "ai.onnx.ml",
                &[features],
                &[&label, &probs],
                attrs,
            );
            Ok(probs)
        }
        Objective::Regression | Objective::Tweedie { .. } => {
            let n = f.leaf_tree.len();
            attrs.extend([
                attr::ints("target_treeids", f.leaf_tree),
                attr::ints("target_nodeids", f.leaf_node),
                attr::ints("target_ids", vec![0; n]),
                attr::floats("target_weights", f.leaf_weight),
                attr::int("n_targets", 1),
                attr::string("post_transform", "NONE"),
                attr::floats("base_values", vec![model.base_score as f32]),
            ]);
            let raw = g.unique_name("raw_prediction");
            g.add_node(
                "TreeEnsembleRegressor",
                "ai.onnx.ml",
                &[features],
                &[&raw],
                attrs,
            );
            if matches!(model.objective, Objective::Tweedie { .. }) {
                // log link: the prediction is exp(margin), the expected amount
                let out = g.unique_name(cr_model::meta::Prediction::ExpectedRevenue.output());
                g.add_node("Exp", "", &[&raw], &[&out], vec![]);
                Ok(out)
            } else {
                Ok(raw)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cr_gbdt::{GbdtParams, Objective};
    use cr_onnx::{Attrs, GraphBuilder};

    /// The stored covers (`nodes_hitrates`) equal a recount: the training rows routed through
    /// the exported attributes by a first-principles walk (`x <= t`, NaN by
    /// `missing_value_tracks_true`), node by node.
    #[test]
    fn stored_covers_equal_a_recount_of_the_training_rows() {
        let (n, nf) = (3000usize, 5usize);
        // a deterministic pseudo-random matrix with NaN cells and ties
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x = vec![0f32; n * nf];
        for v in x.iter_mut() {
            let u = next();
            *v = if u < 0.05 {
                f32::NAN
            } else {
                ((u * 40.0).floor() / 8.0) as f32
            };
        }
        let y: Vec<f32> = (0..n)
            .map(|r| {
                let a = x[r * nf].max(0.0) + x[r * nf + 1].min(2.0) * 0.5;
                f32::from(a + next() as f32 > 2.0)
            })
            .collect();
        let params = GbdtParams::new()
            .objective(Objective::Binary {
                scale_pos_weight: 1.0,
            })
            .num_trees(12)
            .num_leaves(15)
            .min_data_in_leaf(5)
            .num_threads(1);
        let xv = ndarray::ArrayView2::from_shape((n, nf), &x).unwrap();
        let model = cr_gbdt::train(&params, xv, &y, None, None, None).unwrap();
        let mut g = GraphBuilder::new("t");
        super::emit(&model, "features", &mut g).unwrap();
        let graph = g.build();
        let node = &graph.node[0];
        let a = Attrs::new(node);
        let tree = a.ints("nodes_treeids").unwrap();
        let id = a.ints("nodes_nodeids").unwrap();
        let feat = a.ints("nodes_featureids").unwrap();
        let modes = a.strings("nodes_modes").unwrap();
        let vals = a.floats("nodes_values").unwrap();
        let t_ids = a.ints("nodes_truenodeids").unwrap();
        let f_ids = a.ints("nodes_falsenodeids").unwrap();
        let miss = a.ints("nodes_missing_value_tracks_true").unwrap();
        let hit = a.floats("nodes_hitrates").unwrap();
        let idx: BTreeMap<(i64, i64), usize> = tree
            .iter()
            .zip(id)
            .enumerate()
            .map(|(i, (t, n))| ((*t, *n), i))
            .collect();
        let mut count = vec![0f32; tree.len()];
        for row in x.chunks_exact(nf) {
            for t in 0..model.trees.len() as i64 {
                let mut i = idx[&(t, 0)];
                loop {
                    count[i] += 1.0;
                    if modes[i] == "LEAF" {
                        break;
                    }
                    let v = row[feat[i] as usize];
                    let left = if v.is_nan() {
                        miss[i] == 1
                    } else {
                        v <= vals[i]
                    };
                    i = idx[&(t, if left { t_ids[i] } else { f_ids[i] })];
                }
            }
        }
        assert_eq!(hit, count.as_slice());
        assert!(model.trees.iter().all(|t| t.num_leaves() > 4));
    }
}
