//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong reading, writing or inspecting an ONNX model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is not a valid ONNX protobuf: {source}")]
    Decode {
        what: String,
        source: prost::DecodeError,
    },
    /// A required attribute is absent.
    #[error("node {node}: missing attribute {name:?}")]
    MissingAttribute { node: String, name: String },
    /// An attribute exists but holds another type (or bad content, e.g. non-UTF-8 text).
    #[error("node {node}: attribute {name:?} {why}")]
    BadAttribute {
        node: String,
        name: String,
        why: String,
    },
    /// A tensor cannot be read as the requested element type.
    #[error("tensor {name:?}: {why}")]
    BadTensor { name: String, why: String },
    /// Anything else structurally wrong with a graph.
    #[error("invalid ONNX graph: {0}")]
    Invalid(String),
}
