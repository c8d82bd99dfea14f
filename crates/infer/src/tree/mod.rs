//! Native tree-ensemble evaluator: attribute parsing ([`spec`]), flat layout ([`compile`])
//! and batch evaluation ([`eval`], with per-thread reusable buffers in [`scratch`]).
//!
//! Semantics follow ONNX Runtime 1.31 (`onnxruntime/core/providers/cpu/ml/
//! tree_ensemble_common.h`, `tree_ensemble_aggregator.h`, `ml_common.h`): f32 thresholds
//! compared against f32 inputs, leaf values summed in f32 in tree order, missing values (NaN)
//! follow `nodes_missing_value_tracks_true`, and the binary-classifier quirks of
//! `TreeAggregatorClassifier` (one weight column, `base_values`, `post_transform`) reproduced
//! exactly. References: ONNX ML operator spec (TreeEnsembleClassifier/Regressor, opset-5
//! TreeEnsemble).

pub(crate) mod compile;
pub(crate) mod eval;
pub(crate) mod scratch;
pub(crate) mod simd;
pub(crate) mod spec;
#[cfg(test)]
pub(crate) mod tests;

pub use compile::CompiledEnsemble;
pub use spec::{Aggregate, PostTransform};

use cr_onnx::proto::NodeProto;

use crate::error::{unsupported, InferError};

/// Ops the native tree evaluator compiles.
pub const TREE_OPS: [&str; 3] = [
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "TreeEnsemble",
];

/// Compile one tree-ensemble node (`TreeEnsembleClassifier`, `TreeEnsembleRegressor` or
/// opset-5 `TreeEnsemble`).
pub fn compile_tree_node(node: &NodeProto) -> Result<CompiledEnsemble, InferError> {
    let spec = match node.op_type() {
        "TreeEnsembleClassifier" | "TreeEnsembleRegressor" => spec::parse_v3(node)?,
        "TreeEnsemble" => spec::parse_v5(node)?,
        other => return Err(unsupported(other, "not a tree ensemble")),
    };
    compile::compile(&spec)
}
