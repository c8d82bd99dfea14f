//! The crate's one error type.

/// Everything that can go wrong in `cr-eval`. Row indices are 0-based positions in the
/// slices/vectors handed to the function (the caller maps them back to file lines).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A score was NaN or infinite. NaN is an error, never a number.
    #[error("score at row {row} is {value}: scores must be finite numbers")]
    BadScore { row: usize, value: f64 },
    /// A probability metric (log loss, Brier, calibration) got a score outside [0, 1].
    #[error("{metric}: score at row {row} is {value}, not a probability in [0, 1]")]
    NotProbability {
        metric: &'static str,
        row: usize,
        value: f64,
    },
    /// Two inputs that must be aligned row by row have different lengths.
    #[error("{what} has {got} rows, expected {expected}")]
    LengthMismatch {
        what: String,
        got: usize,
        expected: usize,
    },
    /// The metric is undefined because one class is missing (e.g. ROC-AUC with no negatives).
    #[error("{metric} is undefined: {positives} positive and {negatives} negative labelled rows (needs both classes)")]
    OneClass {
        metric: &'static str,
        positives: usize,
        negatives: usize,
    },
    /// The metric is undefined on zero rows (or zero total weight).
    #[error("{metric} is undefined on an empty input")]
    Empty { metric: &'static str },
    /// A per-row input value is invalid (negative weight, propensity outside (0, 1], ...).
    #[error("row {row}: {column} {why}")]
    InvalidRow {
        row: usize,
        column: &'static str,
        why: String,
    },
    /// The configuration is invalid.
    #[error("invalid evaluation config: {0}")]
    Config(String),
    /// Drift inputs are inconsistent (edges not increasing, proportion lengths differ, ...).
    #[error("drift ({name}): {why}")]
    Drift { name: String, why: String },
    /// An error while evaluating one named model of a comparison.
    #[error("model {model:?}: {source}")]
    Model {
        model: String,
        source: Box<EvalError>,
    },
}
