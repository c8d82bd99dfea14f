//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong while validating parameters, training or predicting.
///
/// Bad input is always reported as an `Err` naming the row/column and the reason; the
/// library never panics on data.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum GbdtError {
    /// A hyper-parameter is out of its documented range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// Two inputs disagree in size (e.g. `x.nrows() != y.len()`).
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The training matrix has no rows or no columns.
    #[error("empty input: {what}")]
    Empty { what: &'static str },
    /// A label is not valid for the objective (NaN, not 0/1 for binary, negative for Tweedie).
    #[error("invalid label in {set} set at row {row}: {value} ({reason})")]
    InvalidLabel {
        set: &'static str,
        row: usize,
        value: f32,
        reason: &'static str,
    },
    /// A sample weight is negative or not finite.
    #[error("invalid sample weight at row {row}: {value} (must be finite and >= 0)")]
    InvalidWeight { row: usize, value: f32 },
    /// All sample weights (after `scale_pos_weight`) sum to zero.
    #[error("sum of sample weights is zero")]
    ZeroWeight,
    /// Feature names given to the model do not match the number of features.
    #[error("expected {expected} feature names, got {got}")]
    FeatureNames { expected: usize, got: usize },
    /// A (deserialized) model is structurally invalid.
    #[error("invalid model: tree {tree}: {reason}")]
    InvalidModel { tree: usize, reason: String },
    /// JSON (de)serialization failed.
    #[error("model serialization: {0}")]
    Serde(String),
    /// The rayon thread pool requested by `num_threads` could not be created.
    #[error("cannot build thread pool: {0}")]
    ThreadPool(String),
}
