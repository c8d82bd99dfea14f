//! The scoring interface the service needs from a loaded model, and how models are loaded.
//!
//! The service never looks inside a model: it hands raw JSON declarations to a [`RiskScorer`]
//! and gets back one score per declaration (or per-field validation problems). The production
//! implementation is [`crate::infer::InferLoader`], backed by `cr-infer`; the trait exists so
//! the HTTP layer, registry and audit trail do not depend on how inference is done.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

/// One problem with one declaration of a request: user input, safe to return to the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldIssue {
    /// 0-based index of the declaration in the request (0 for a single declaration).
    pub index: usize,
    /// The raw column name, when the problem is with one field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

/// Why scoring failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// The declarations are invalid for the model's schema (client error).
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldIssue>),
    /// The model failed on valid input (server error; the text is logged, never returned).
    #[error("{0}")]
    Internal(String),
}

/// One scored declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The declaration id (the schema's id column).
    pub id: String,
    /// Risk score, higher is riskier (usually a probability of a positive inspection).
    pub score: f32,
}

/// A loaded model that scores raw declarations.
///
/// Implementations must be cheap to call from many threads at once and must never panic on
/// any JSON input: every malformed declaration is a [`ScoreError::Invalid`].
pub trait RiskScorer: Send + Sync {
    /// The model file's `metadata_props` (card, pipeline, ...).
    fn metadata(&self) -> &BTreeMap<String, String>;
    /// Score `records` (JSON objects keyed by the schema's raw column names), one result per
    /// record, in order.
    fn score(&self, records: &[serde_json::Value]) -> Result<Vec<Scored>, ScoreError>;
    /// The raw column holding the declaration id (bounded by [`crate::Limits::max_id_bytes`]
    /// instead of the text limit), when the model knows it.
    fn id_column(&self) -> Option<&str> {
        None
    }
}

/// Loads a model file into a scorer. The registry and the server use one loader.
pub trait ModelLoader: Send + Sync {
    fn load(&self, path: &Path) -> Result<Arc<dyn RiskScorer>, String>;
}

/// Metadata key holding the model card (JSON).
pub const CARD_KEY: &str = "customs_risk.card";
/// Optional metadata key holding the reference score distribution (JSON array of numbers), used
/// when the card has no `reference_scores`.
pub const REFERENCE_KEY: &str = "customs_risk.reference_scores";
