//! The error of bulk scoring: what failed, naming the file (and for a bad row its line,
//! column, value and why). The binary prints it with its source chain.

use std::path::PathBuf;

use cr_data::DataError;

use crate::InferError;

/// Errors of [`super::score_file`]. The `Display` text is the outermost message; the source
/// chain holds the cause (as anyhow's `context` would).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    /// The model cannot be loaded (or its engine cannot run it).
    #[error("loading {}", path.display())]
    Load { path: PathBuf, source: InferError },
    /// The data file cannot be read, or (with [`cr_data::OnError::Fail`]) a row of our
    /// models' data is bad; the source names line, column, value and why.
    #[error("reading {}", path.display())]
    Read { path: PathBuf, source: DataError },
    /// A bad row of a foreign model's data (with [`cr_data::OnError::Fail`]), or data that
    /// does not fit the model: the message names file, line, column, value and why.
    #[error("{0}")]
    Invalid(String),
    /// The policy of `select` cannot be loaded (the source names file, line, column and
    /// rule), or selection failed.
    #[error("policy {}", path.display())]
    Policy {
        path: PathBuf,
        source: Box<cr_policy::PolicyError>,
    },
    /// Scoring failed.
    #[error(transparent)]
    Score(#[from] InferError),
    /// Writing the output or the rejects failed, or a reader could not start.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Anything else, with what was being done.
    #[error("{context}")]
    Other {
        context: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BulkError {
    pub(crate) fn other(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BulkError {
        BulkError::Other {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl From<std::io::Error> for BulkError {
    fn from(e: std::io::Error) -> BulkError {
        BulkError::other("writing the output", e)
    }
}
