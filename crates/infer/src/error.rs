//! The one error type of this crate.

use std::path::PathBuf;

/// How to make ONNX Runtime available; part of every error that needs it.
pub const ORT_HINT: &str =
    "install ONNX Runtime with `scripts/setup-ort.sh` (it writes .ort/libonnxruntime.so) \
     and set ORT_DYLIB_PATH to the shared library (cargo sets it from .cargo/config.toml)";

/// Errors of loading and scoring models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a usable ONNX model (bad protobuf, malformed graph or attributes).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// A node of the graph is malformed (wrong number of inputs or outputs, an attribute of
    /// the wrong type, ...): `index` is its position in the graph's node list.
    #[error("invalid model: node {index} {name:?} ({op_type}): {why}")]
    Node {
        index: usize,
        name: String,
        op_type: String,
        why: String,
    },
    /// The requested engine cannot run this graph; `hint` says what would.
    #[error("unsupported: {op}; {hint}")]
    Unsupported { op: String, hint: String },
    /// ONNX Runtime failed (not installed, session creation or run failed).
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The model card or reference scores in the file's metadata cannot be read (a card of
    /// a newer version, a missing field, a non-finite reference score).
    #[error("{key}: {0}", key = cr_model::meta::CARD)]
    Card(#[from] cr_model::ModelError),
    /// Our feature pipeline (a raw-field model's `customs_risk.pipeline`) cannot be read, or
    /// failed on a batch; `context` says which, the source names file, line and column.
    #[error("{context}: {source}")]
    Features {
        context: String,
        #[source]
        source: cr_features::FeatureError,
    },
    /// The caller's input does not fit the model.
    #[error("input {name:?}: {why}")]
    Input { name: String, why: String },
}

impl From<cr_onnx::OnnxError> for InferError {
    fn from(e: cr_onnx::OnnxError) -> InferError {
        match e {
            cr_onnx::OnnxError::Io { path, source, .. } => InferError::Io { path, source },
            other => InferError::InvalidModel(other.to_string()),
        }
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> InferError {
    InferError::InvalidModel(msg.into())
}

pub(crate) fn unsupported(op: impl Into<String>, hint: impl Into<String>) -> InferError {
    InferError::Unsupported {
        op: op.into(),
        hint: hint.into(),
    }
}
