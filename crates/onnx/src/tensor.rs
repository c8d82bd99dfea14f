//! Constant tensors: constructors for exporters and typed readers for the native engine.
//!
//! Readers accept both the typed repeated fields and `raw_data` (little-endian), which is
//! what other exporters (skl2onnx, onnxmltools, PyTorch) write.

use crate::error::OnnxError;
use crate::proto::{tensor_proto::DataType, TensorProto};

fn base(name: &str, dims: &[i64], ty: DataType) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(ty as i32),
        ..Default::default()
    }
}

/// A float tensor.
pub fn f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        float_data: data.to_vec(),
        ..base(name, dims, DataType::Float)
    }
}

/// A double tensor.
pub fn f64(name: &str, dims: &[i64], data: &[f64]) -> TensorProto {
    TensorProto {
        double_data: data.to_vec(),
        ..base(name, dims, DataType::Double)
    }
}

/// An int64 tensor.
pub fn i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        int64_data: data.to_vec(),
        ..base(name, dims, DataType::Int64)
    }
}

/// A string tensor.
pub fn strings<S: AsRef<str>>(name: &str, dims: &[i64], data: &[S]) -> TensorProto {
    TensorProto {
        string_data: data
            .iter()
            .map(|s| s.as_ref().as_bytes().to_vec())
            .collect(),
        ..base(name, dims, DataType::String)
    }
}

fn tname(t: &TensorProto) -> String {
    t.name.clone().unwrap_or_default()
}

fn bad(t: &TensorProto, why: impl Into<String>) -> OnnxError {
    OnnxError::BadTensor {
        name: tname(t),
        why: why.into(),
    }
}

fn dtype(t: &TensorProto) -> Result<DataType, OnnxError> {
    let code = t.data_type.unwrap_or(0);
    DataType::try_from(code).map_err(|_| bad(t, format!("unknown data_type {code}")))
}

fn check_external(t: &TensorProto) -> Result<(), OnnxError> {
    if !t.external_data.is_empty() {
        return Err(bad(
            t,
            "external data is not supported (embed the tensor in the model)",
        ));
    }
    Ok(())
}

fn raw_chunks<const W: usize, T>(
    t: &TensorProto,
    raw: &[u8],
    f: impl Fn([u8; W]) -> T,
) -> Result<Vec<T>, OnnxError> {
    if !raw.len().is_multiple_of(W) {
        return Err(bad(
            t,
            format!("raw_data length {} is not a multiple of {W}", raw.len()),
        ));
    }
    Ok(raw
        .chunks_exact(W)
        .map(|c| {
            let mut a = [0u8; W];
            a.copy_from_slice(c);
            f(a)
        })
        .collect())
}

/// Values of a float or double tensor as f64 (exact for both).
pub fn tensor_f64(t: &TensorProto) -> Result<Vec<f64>, OnnxError> {
    check_external(t)?;
    let raw = t.raw_data.as_deref().filter(|r| !r.is_empty());
    match dtype(t)? {
        DataType::Double => match raw {
            Some(r) => raw_chunks::<8, _>(t, r, f64::from_le_bytes),
            None => Ok(t.double_data.clone()),
        },
        DataType::Float => Ok(tensor_f32(t)?.into_iter().map(f64::from).collect()),
        other => Err(bad(
            t,
            format!("expected float or double, found {}", other.as_str_name()),
        )),
    }
}

/// Values of a float tensor; a double tensor is rounded to f32 (`as f32`, round to nearest).
pub fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    check_external(t)?;
    let raw = t.raw_data.as_deref().filter(|r| !r.is_empty());
    match dtype(t)? {
        DataType::Float => match raw {
            Some(r) => raw_chunks::<4, _>(t, r, f32::from_le_bytes),
            None => Ok(t.float_data.clone()),
        },
        DataType::Double => Ok(tensor_f64(t)?.into_iter().map(|v| v as f32).collect()),
        other => Err(bad(
            t,
            format!("expected float, found {}", other.as_str_name()),
        )),
    }
}

/// Values of an int64 (or int32) tensor.
pub fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>, OnnxError> {
    check_external(t)?;
    let raw = t.raw_data.as_deref().filter(|r| !r.is_empty());
    match dtype(t)? {
        DataType::Int64 => match raw {
            Some(r) => raw_chunks::<8, _>(t, r, i64::from_le_bytes),
            None => Ok(t.int64_data.clone()),
        },
        DataType::Int32 => match raw {
            Some(r) => raw_chunks::<4, _>(t, r, |b| i64::from(i32::from_le_bytes(b))),
            None => Ok(t.int32_data.iter().map(|&v| i64::from(v)).collect()),
        },
        other => Err(bad(
            t,
            format!("expected int64, found {}", other.as_str_name()),
        )),
    }
}

/// Values of a string tensor (UTF-8).
pub fn tensor_strings(t: &TensorProto) -> Result<Vec<String>, OnnxError> {
    check_external(t)?;
    match dtype(t)? {
        DataType::String => t
            .string_data
            .iter()
            .map(|b| {
                String::from_utf8(b.clone()).map_err(|_| bad(t, "string element is not UTF-8"))
            })
            .collect(),
        other => Err(bad(
            t,
            format!("expected string, found {}", other.as_str_name()),
        )),
    }
}
