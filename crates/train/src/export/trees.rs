//! A [`cr_gbdt::GbdtModel`] as an `ai.onnx.ml.TreeEnsembleClassifier` (binary) or
//! `TreeEnsembleRegressor` node.
//!
//! Node ids within a tree: internal node `i` keeps id `i`, leaf `j` gets id `n_internal + j`.
//! Every split is `BRANCH_LEQ` on an f32 threshold taken from the training data, with
//! `nodes_missing_value_tracks_true = default_left`, so ONNX Runtime routes each row exactly as
//! our trees do. Binary models follow the convention of onnxmltools' LightGBM converter:
//! one weight column (class id 0), `classlabels_int64s = [0, 1]`, `post_transform = LOGISTIC`,
//! `base_values = [base_score]`, giving `probabilities[:, 1] = sigmoid(base + Σ leaves)`.

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
            f.leaf_tree.push(t);
            f.leaf_node.push(id);
            f.leaf_weight.push(*v as f32);
        }
    }
    Ok(f)
}

/// Emits the ensemble reading `features`; returns the name of the `float [N, 2]`
/// probabilities output (binary) or `float [N, 1]` prediction (regression).
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
                let out = g.unique_name("prediction");
                g.add_node("Exp", "", &[&raw], &[&out], vec![]);
                Ok(out)
            } else {
                Ok(raw)
            }
        }
    }
}
