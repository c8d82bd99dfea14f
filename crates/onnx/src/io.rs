//! Reading and writing `ModelProto` bytes and files.

use std::path::Path;

use prost::Message;

use crate::error::OnnxError;
use crate::proto::ModelProto;

/// Decode a model from protobuf bytes.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    ModelProto::decode(bytes).map_err(|source| OnnxError::Decode {
        what: "bytes".into(),
        source,
    })
}

/// Encode a model to protobuf bytes.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Read and decode an `.onnx` file.
pub fn load_model(path: impl AsRef<Path>) -> Result<ModelProto, OnnxError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    ModelProto::decode(bytes.as_slice()).map_err(|source| OnnxError::Decode {
        what: path.display().to_string(),
        source,
    })
}

/// Encode and write an `.onnx` file (written to a temporary sibling then renamed, so readers
/// never see a half-written model).
pub fn save_model(path: impl AsRef<Path>, model: &ModelProto) -> Result<(), OnnxError> {
    let path = path.as_ref();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, encode(model)).map_err(|source| OnnxError::Io {
        action: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| OnnxError::Io {
        action: "rename into",
        path: path.to_path_buf(),
        source,
    })
}
