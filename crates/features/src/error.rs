//! The crate's one error type.

/// Everything that can go wrong while fitting, loading or applying a feature pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// A [`crate::PipelineConfig`] value is out of range, or does not fit the schema.
    #[error("invalid feature pipeline config: {message}")]
    Config { message: String },
    /// The training batch has no labelled row (no inspection outcome), so no risk profile
    /// can be learnt.
    #[error("cannot fit the feature pipeline on {file}: none of its {rows} rows carries a label (inspection outcome)")]
    NoLabels { file: String, rows: usize },
    /// The training batch cannot be fitted (too few labelled rows, too few labelled rows, ...).
    #[error("cannot fit the feature pipeline on {file}: {message}")]
    Fit { file: String, message: String },
    /// A batch does not have the shape the pipeline's schema describes.
    #[error("batch {file} does not match schema {schema:?}: {message}")]
    Shape {
        file: String,
        schema: String,
        message: String,
    },
    /// One cell of a batch cannot be featurised.
    #[error("{file}: line {line}, column {column:?}: {message}")]
    Data {
        file: String,
        line: u64,
        column: String,
        message: String,
    },
    /// A serialized or hand-built fitted pipeline is malformed.
    #[error("invalid fitted pipeline: {message}")]
    Format { message: String },
}

impl FeatureError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        FeatureError::Config {
            message: message.into(),
        }
    }
    pub(crate) fn format(message: impl Into<String>) -> Self {
        FeatureError::Format {
            message: message.into(),
        }
    }
}
