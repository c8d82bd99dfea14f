//! Errors of the data layer.

use std::fmt;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    pub kind: DataErrorKind,
    pub message: String,
}

impl DataError {
    pub fn schema(msg: impl Into<String>) -> DataError {
        DataError {
            kind: DataErrorKind::Schema,
            message: msg.into(),
        }
    }
    pub fn io(msg: impl Into<String>) -> DataError {
        DataError {
            kind: DataErrorKind::Io,
            message: msg.into(),
        }
    }
    pub fn columns(msg: impl Into<String>) -> DataError {
        DataError {
            kind: DataErrorKind::Columns,
            message: msg.into(),
        }
    }
    pub fn value(msg: impl Into<String>) -> DataError {
        DataError {
            kind: DataErrorKind::Value,
            message: msg.into(),
        }
    }
    pub fn format(msg: impl Into<String>) -> DataError {
        DataError {
            kind: DataErrorKind::Format,
            message: msg.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DataError {}
