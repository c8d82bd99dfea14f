//! A [`cr_linear::LogisticModel`] as plain ONNX ops, following its documented prediction
//! contract: signed log (`Sign`, `Abs`, `Add`, `Log`, `Mul`) on the chosen features → NaN
//! imputation (`IsNaN`, `Where`) → standardisation (`Sub`, `Div`) → `MatMul`, `Add` →
//! `Sigmoid`; output `probabilities = Concat(1 − p, p)`, `float [N, 2]`.

use cr_linear::LogisticModel;
use cr_onnx::{attr, tensor, GraphBuilder};

use crate::TrainError;

pub fn emit(
    model: &LogisticModel,
    features: &str,
    g: &mut GraphBuilder,
) -> Result<String, TrainError> {
    model
        .validate()
        .map_err(|e| TrainError::Export(e.to_string()))?;
    let d = model.n_features as i64;
    let init = |g: &mut GraphBuilder, prefix: &str, dims: &[i64], data: &[f32]| {
        let n = g.unique_name(prefix);
        g.add_initializer(tensor::f32(&n, dims, data));
        n
    };
    let node = |g: &mut GraphBuilder, op: &str, inputs: &[&str]| {
        let out = g.unique_name(&op.to_ascii_lowercase());
        g.add_node(op, "", inputs, &[&out], vec![]);
        out
    };
    let mut x = features.to_string();
    if model.log_transform.iter().any(|&b| b) {
        // v' = mask ? sign(v)·ln(1+|v|) : v
        let mask: Vec<bool> = model.log_transform.clone();
        let mask_name = g.unique_name("log_mask");
        g.add_initializer(cr_onnx::proto::TensorProto {
            name: Some(mask_name.clone()),
            dims: vec![1, d],
            data_type: Some(9), // BOOL
            int32_data: mask.iter().map(|&b| i32::from(b)).collect(),
            ..Default::default()
        });
        let one = init(g, "one", &[], &[1.0]);
        let sign = node(g, "Sign", &[&x]);
        let abs = node(g, "Abs", &[&x]);
        let a1 = node(g, "Add", &[&one, &abs]);
        let ln = node(g, "Log", &[&a1]);
        let lg = node(g, "Mul", &[&ln, &sign]);
        x = node(g, "Where", &[&mask_name, &lg, &x]);
    }
    let impute = init(g, "impute", &[1, d], &model.impute);
    let isnan = node(g, "IsNaN", &[&x]);
    let x = node(g, "Where", &[&isnan, &impute, &x]);
    let mean = init(g, "mean", &[1, d], &model.mean);
    let scale = init(g, "scale", &[1, d], &model.scale);
    let c = node(g, "Sub", &[&x, &mean]);
    let s = node(g, "Div", &[&c, &scale]);
    let coef = init(g, "coef", &[d, 1], &model.coef);
    let intercept = init(g, "intercept", &[1], &[model.intercept]);
    let z = node(g, "MatMul", &[&s, &coef]);
    let z = node(g, "Add", &[&z, &intercept]);
    let p = node(g, "Sigmoid", &[&z]);
    let one = init(g, "one", &[], &[1.0]);
    let q = node(g, "Sub", &[&one, &p]);
    let probs = g.unique_name("probabilities");
    g.add_node(
        "Concat",
        "",
        &[&q, &p],
        &[&probs],
        vec![attr::int("axis", 1)],
    );
    Ok(probs)
}
