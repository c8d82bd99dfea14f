//! Errors of the logistic regression crate.

/// Everything that can go wrong when fitting or scoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinearError {
    #[error("invalid logistic params: {field}: {reason}")]
    Params { field: &'static str, reason: String },
    #[error("bad training data: {reason}")]
    Data { reason: String },
    #[error("input has {got} features, the model expects {expected}")]
    Shape { expected: usize, got: usize },
    #[error("training labels contain a single class ({positive} positive of {rows} rows)")]
    SingleClass { positive: usize, rows: usize },
    #[error("solver failed: {reason}")]
    Solver { reason: String },
}
