//! Errors of the data layer.

use std::fmt;
use std::sync::Arc;

/// What went wrong, coarsely, so callers can branch without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// The schema file itself is invalid.
    Schema,
    /// The file's columns do not match the schema (missing / unknown columns).
    Columns,
    /// A value was rejected (see the message for file, line, column, value, reason).
    Value,
    /// The file could not be read or written, or is not valid CSV / Parquet.
    Io,
    /// The file format (extension) is not supported, or a column has an unsupported type.
    Format,
    /// The file has no header (CSV) or no content at all.
    Empty,
}

/// A data-layer error: what kind, a message naming file / line / column / value / why, and
/// the underlying error (an `io::Error`, a CSV or Parquet error) as its
/// [`source`](std::error::Error::source), never flattened into the text.
#[derive(Debug, Clone)]
pub struct DataError {
    pub kind: DataErrorKind,
    pub message: String,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl DataError {
    /// An error of `kind` with `message` and no further cause.
    pub fn new(kind: DataErrorKind, message: impl Into<String>) -> DataError {
        DataError {
            kind,
            message: message.into(),
            cause: None,
        }
    }
    /// Attach the underlying error (returned by `source()`).
    pub fn with_source(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> DataError {
        self.cause = Some(Arc::new(cause));
        self
    }
    pub fn schema(msg: impl Into<String>) -> DataError {
        DataError::new(DataErrorKind::Schema, msg)
    }
    pub fn io(msg: impl Into<String>) -> DataError {
        DataError::new(DataErrorKind::Io, msg)
    }
    /// An IO error: `msg` says what was being done to which file, `cause` why it failed.
    pub fn io_source(
        msg: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> DataError {
        DataError::io(msg).with_source(cause)
    }
    pub fn columns(msg: impl Into<String>) -> DataError {
        DataError::new(DataErrorKind::Columns, msg)
    }
    pub fn value(msg: impl Into<String>) -> DataError {
        DataError::new(DataErrorKind::Value, msg)
    }
    pub fn format(msg: impl Into<String>) -> DataError {
        DataError::new(DataErrorKind::Format, msg)
    }
}

/// Equal when kind and message are (the cause is not compared).
impl PartialEq for DataError {
    fn eq(&self, other: &DataError) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for DataError {}

/// The message, then the cause's text (so a one-line print loses nothing); the cause is
/// also the `source()` for callers that walk the chain.
impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            None => f.write_str(&self.message),
            Some(c) => write!(f, "{}: {c}", self.message),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}
