//! Scoring ONNX models: ONNX Runtime (`ort`) for any graph, and a native compiled evaluator
//! for tree ensembles and linear models that gives the same scores (within 1e-6, usually
//! bit-identical) several times faster.
//!
//! Owns: model loading and checking ([`Model::load`]), engine choice ([`Engine`]), the native
//! evaluator ([`CompiledEnsemble`], [`CompiledLinear`], [`NativeScorer`]), the ORT session pool,
//! batch-parallel scoring with rayon (fixed-size row chunks, input order preserved), and
//! bulk scoring of whole files ([`bulk::score_file`]: streaming CSV/Parquet in and out,
//! rejects, duplicate ids checked with bounded memory, budget selection) that the
//! `customs-risk score` command and any batch runner share.
//!
//! Must not: print to a terminal (callers get progress through [`bulk::Progress`]), train,
//! know learner types (cr-gbdt/cr-linear/cr-train), or implement the feature pipeline (our
//! raw-field models run `cr-features`' pipeline through [`DeclarationModel`]).
//!
//! ```no_run
//! use cr_infer::{Engine, LoadOptions, Model};
//! let model = Model::load("model.onnx", &LoadOptions { engine: Engine::Auto, threads: 0 })?;
//! let x = vec![0.0f32; 2 * 25]; // 2 rows x 25 features, row-major
//! let scores = model.score_matrix(&x, 2)?; // positive-class probabilities
//! # Ok::<(), cr_infer::InferError>(())
//! ```
//!
//! ONNX Runtime is loaded at run time from `ORT_DYLIB_PATH` (see `scripts/setup-ort.sh`); when
//! it is missing, natively supported models still load and score.

pub mod bulk;
pub(crate) mod check;
pub mod declarations;
pub mod error;
pub mod input;
pub mod linear;
pub mod math;
pub mod model;
pub mod ort_engine;
pub mod plan;
pub(crate) mod prep;
pub mod shap;
pub mod tree;

pub use bulk::{score_file, BulkError, BulkOptions, BulkSummary, Progress};
pub use declarations::{is_declaration_model, DeclarationModel};
pub use error::{InferError, ORT_HINT};
pub use input::{InputColumn, InputKind};
pub use linear::CompiledLinear;
pub use model::{Engine, LoadOptions, Model};
pub use ort_engine::ort_available;
pub use plan::{compile_for_tensor, Core, NativeScorer};
pub use tree::{compile_tree_node, CompiledEnsemble};

#[cfg(test)]
mod tests {
    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Model>();
        check::<crate::CompiledEnsemble>();
        check::<crate::NativeScorer>();
        check::<crate::shap::Explainer>();
    }
}
