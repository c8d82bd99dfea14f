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

/// A failure with its chain of causes, shareable (scoring errors are cloned into the audit
/// path and the shadow log).
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Why scoring failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScoreError {
    /// The declarations are invalid for the model's schema (client error).
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldIssue>),
    /// The model failed on valid input (server error; logged with its causes, never
    /// returned). Its `source()` chain is the engine's error chain.
    #[error(transparent)]
    Internal(Cause),
}

impl ScoreError {
    /// An internal error from a message (no further cause).
    pub fn internal(message: impl Into<String>) -> ScoreError {
        let e: Box<dyn std::error::Error + Send + Sync> = message.into().into();
        ScoreError::Internal(Arc::from(e))
    }
}

impl PartialEq for ScoreError {
    /// Invalid: the same issues; Internal: the same message.
    fn eq(&self, other: &ScoreError) -> bool {
        match (self, other) {
            (ScoreError::Invalid(a), ScoreError::Invalid(b)) => a == b,
            (ScoreError::Internal(a), ScoreError::Internal(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

/// Why a model could not be loaded, with its chain of causes.
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

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
    /// The schema declarations are read with, when the model has one (a targeting policy is
    /// compiled against it).
    fn schema(&self) -> Option<&cr_data::Schema> {
        None
    }
    /// Score `records` and also return them as the validated [`cr_data::Batch`] the scores
    /// were computed from (row `i` is record `i`), which a targeting policy's rules read.
    /// Models without a schema cannot apply a policy (the default).
    fn score_rows(
        &self,
        records: &[serde_json::Value],
    ) -> Result<(cr_data::Batch, Vec<f32>), ScoreError> {
        let _ = records;
        Err(ScoreError::internal(
            "this model has no declaration schema, so no targeting policy can be applied",
        ))
    }
}

/// Loads a model file into a scorer. The registry and the server use one loader.
pub trait ModelLoader: Send + Sync {
    fn load(&self, path: &Path) -> Result<Arc<dyn RiskScorer>, LoadError>;
}
