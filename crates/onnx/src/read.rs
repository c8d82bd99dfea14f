//! Reading helpers: find nodes, typed attribute access with clear errors, value-info types.

use std::collections::BTreeMap;

use crate::builder::{Dim, ElemType};
use crate::error::OnnxError;
use crate::proto::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};

/// Nodes of `graph` (top level, in graph order) whose `op_type` is `op_type`.
pub fn find_nodes<'g>(graph: &'g GraphProto, op_type: &str) -> Vec<&'g NodeProto> {
    graph
        .node
        .iter()
        .filter(|n| n.op_type() == op_type)
        .collect()
}

/// Mutable variant of [`find_nodes`].
pub fn find_nodes_mut<'g>(graph: &'g mut GraphProto, op_type: &str) -> Vec<&'g mut NodeProto> {
    graph
        .node
        .iter_mut()
        .filter(|n| n.op_type() == op_type)
        .collect()
}

/// A short human label for a node: its name, else `op_type(first output)`.
pub fn node_label(node: &NodeProto) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => format!("{n} ({})", node.op_type()),
        _ => format!(
            "{}({})",
            node.op_type(),
            node.output.first().map(String::as_str).unwrap_or("?")
        ),
    }
}

/// The model's `metadata_props` as an ordered map (a repeated key keeps the last value).
pub fn metadata_map(model: &ModelProto) -> BTreeMap<String, String> {
    model
        .metadata_props
        .iter()
        .map(|p| (p.key().to_string(), p.value().to_string()))
        .collect()
}

/// The opset version the model imports for `domain` (`""` or `"ai.onnx"` = default domain).
pub fn opset_version(model: &ModelProto, domain: &str) -> Option<i64> {
    let norm = |d: &str| {
        if d == "ai.onnx" {
            String::new()
        } else {
            d.to_string()
        }
    };
    let want = norm(domain);
    model
        .opset_import
        .iter()
        .find(|o| norm(o.domain()) == want)
        .map(|o| o.version())
}

/// Element type of a tensor-typed value info (`None` if not a tensor of a type we know).
pub fn value_info_elem_type(vi: &ValueInfoProto) -> Option<ElemType> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => ElemType::from_code(t.elem_type?),
        _ => None,
    }
}

/// Declared dims of a tensor-typed value info (`None` if the shape is not declared).
pub fn value_info_dims(vi: &ValueInfoProto) -> Option<Vec<Dim>> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(
            t.shape
                .as_ref()?
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(dimension::Value::DimValue(v)) => Dim::Known(*v),
                    Some(dimension::Value::DimParam(s)) => Dim::Named(s.clone()),
                    None => Dim::Named(String::new()),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Typed, error-reporting access to a node's attributes.
///
/// ```
/// # use cr_onnx::{attr, Attrs, proto::NodeProto};
/// let node = NodeProto { attribute: vec![attr::int("n", 3)], ..Default::default() };
/// let a = Attrs::new(&node);
/// assert_eq!(a.int("n").unwrap(), 3);
/// assert_eq!(a.int_or("m", 7).unwrap(), 7);
/// assert!(a.floats("n").is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { node }
    }

    pub fn node(&self) -> &'a NodeProto {
        self.node
    }

    /// The raw attribute, if present.
    pub fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn missing(&self, name: &str) -> OnnxError {
        OnnxError::MissingAttribute {
            node: node_label(self.node),
            name: name.to_string(),
        }
    }

    fn bad(&self, name: &str, why: String) -> OnnxError {
        OnnxError::BadAttribute {
            node: node_label(self.node),
            name: name.to_string(),
            why,
        }
    }

    /// The attribute if present and of type `ty`; error if present with another type.
    fn typed(
        &self,
        name: &str,
        ty: AttributeType,
    ) -> Result<Option<&'a AttributeProto>, OnnxError> {
        let Some(a) = self.get(name) else {
            return Ok(None);
        };
        let found = a
            .r#type
            .and_then(|t| AttributeType::try_from(t).ok())
            .unwrap_or(AttributeType::Undefined);
        if found == ty || (found == AttributeType::Undefined && undefined_matches(a, ty)) {
            Ok(Some(a))
        } else {
            Err(self.bad(
                name,
                format!(
                    "is {} but {} was expected",
                    found.as_str_name(),
                    ty.as_str_name()
                ),
            ))
        }
    }

    pub fn int_opt(&self, name: &str) -> Result<Option<i64>, OnnxError> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i()))
    }
    pub fn int(&self, name: &str) -> Result<i64, OnnxError> {
        self.int_opt(name)?.ok_or_else(|| self.missing(name))
    }
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    pub fn float_opt(&self, name: &str) -> Result<Option<f32>, OnnxError> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f()))
    }
    pub fn float(&self, name: &str) -> Result<f32, OnnxError> {
        self.float_opt(name)?.ok_or_else(|| self.missing(name))
    }
    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self.float_opt(name)?.unwrap_or(default))
    }

    pub fn string_opt(&self, name: &str) -> Result<Option<String>, OnnxError> {
        match self.typed(name, AttributeType::String)? {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s().to_vec())
                .map(Some)
                .map_err(|_| self.bad(name, "is not valid UTF-8".into())),
        }
    }
    pub fn string(&self, name: &str) -> Result<String, OnnxError> {
        self.string_opt(name)?.ok_or_else(|| self.missing(name))
    }
    pub fn string_or(&self, name: &str, default: &str) -> Result<String, OnnxError> {
        Ok(self
            .string_opt(name)?
            .unwrap_or_else(|| default.to_string()))
    }

    pub fn ints_opt(&self, name: &str) -> Result<Option<&'a [i64]>, OnnxError> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.as_slice()))
    }
    pub fn ints(&self, name: &str) -> Result<&'a [i64], OnnxError> {
        self.ints_opt(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn floats_opt(&self, name: &str) -> Result<Option<&'a [f32]>, OnnxError> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.as_slice()))
    }
    pub fn floats(&self, name: &str) -> Result<&'a [f32], OnnxError> {
        self.floats_opt(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn strings_opt(&self, name: &str) -> Result<Option<Vec<String>>, OnnxError> {
        match self.typed(name, AttributeType::Strings)? {
            None => Ok(None),
            Some(a) => a
                .strings
                .iter()
                .map(|b| {
                    String::from_utf8(b.clone())
                        .map_err(|_| self.bad(name, "has a non-UTF-8 element".into()))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }
    pub fn strings(&self, name: &str) -> Result<Vec<String>, OnnxError> {
        self.strings_opt(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn tensor_opt(&self, name: &str) -> Result<Option<&'a TensorProto>, OnnxError> {
        Ok(self
            .typed(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }
    pub fn tensor(&self, name: &str) -> Result<&'a TensorProto, OnnxError> {
        self.tensor_opt(name)?.ok_or_else(|| self.missing(name))
    }
}

/// Old exporters sometimes omit `type`; accept the attribute if the matching field is set.
fn undefined_matches(a: &AttributeProto, ty: AttributeType) -> bool {
    match ty {
        AttributeType::Int => a.i.is_some(),
        AttributeType::Float => a.f.is_some(),
        AttributeType::String => a.s.is_some(),
        AttributeType::Tensor => a.t.is_some(),
        AttributeType::Ints => !a.ints.is_empty(),
        AttributeType::Floats => !a.floats.is_empty(),
        AttributeType::Strings => !a.strings.is_empty(),
        _ => false,
    }
}
