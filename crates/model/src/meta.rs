//! The `metadata_props` keys of a customs-risk ONNX file: the one place they are spelled.
//!
//! | key | value | written by |
//! |---|---|---|
//! | [`CARD`] | the model card, JSON ([`crate::ModelCard`]) | `cr-train` |
//! | [`PIPELINE`] | the fitted feature pipeline, JSON (`cr_features::FittedPipeline`, schema included) | `cr-train` |
//! | [`KIND`] | `gbdt` or `logistic` | `cr-train` |
//! | [`FEATURES`] | the name of the feature tensor inside the graph | `cr-train` |
//! | [`LOGISTIC`] | logistic models: the preprocessing and coefficients, JSON | `cr-train` |
//! | [`REFERENCE_SCORES`] | a JSON array of reference scores, for models without a card | anyone (e.g. a notebook exporting a foreign model) |
//! | [`GRAPH_DIGEST_KEY`] | SHA-256 (hex) binding the graph to the pipeline metadata (`cr_onnx::graph_digest`) | `cr-train` |
//!
//! A file with [`PIPELINE`] takes raw declaration fields as inputs (one `[N, 1]` tensor per
//! schema column); any other file is a "foreign" model.

/// The model card (JSON, [`crate::ModelCard`]).
pub const CARD: &str = "customs_risk.card";
/// The fitted feature pipeline (JSON, `cr_features::FittedPipeline`, schema included).
pub const PIPELINE: &str = "customs_risk.pipeline";
/// The model kind: `gbdt` or `logistic`.
pub const KIND: &str = "customs_risk.kind";
/// The name of the feature tensor `[N, F]` between the pipeline and the model inside the graph.
pub const FEATURES: &str = "customs_risk.features";
/// Logistic models: preprocessing and coefficients (JSON, `cr_linear::LogisticModel`).
pub const LOGISTIC: &str = "customs_risk.logistic";
/// Reference scores (a JSON array of finite numbers, any order) for files without a card: the
/// distribution percentiles and percentile thresholds are read against. A card's
/// `score_quantiles` take precedence.
pub const REFERENCE_SCORES: &str = "customs_risk.reference_scores";
/// SHA-256 (lower-case hex) of the graph and the metadata a native engine rebuilds it from
/// (`cr_onnx::graph_digest` over the graph, [`PIPELINE`] and [`FEATURES`]); a reader that uses
/// the metadata instead of the graph recomputes it and compares.
pub const GRAPH_DIGEST_KEY: &str = "customs_risk.graph_sha256";
