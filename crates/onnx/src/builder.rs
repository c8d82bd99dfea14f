//! Building ONNX graphs and models for exporters.
//!
//! [`GraphBuilder`] keeps every value name unique (inputs, outputs, initializers, node
//! outputs) and names nodes itself; [`ModelBuilder`] wraps a graph with opset imports,
//! producer name and `metadata_props`.

use std::collections::BTreeSet;

use crate::proto::{
    self, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// Producer name written into every model this crate builds.
pub const PRODUCER_NAME: &str = "customs-risk";
/// IR version written by default (ONNX 1.15+, needed by ai.onnx opset 21).
pub const DEFAULT_IR_VERSION: i64 = 10;

/// Element type of a graph input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElemType {
    F32,
    I64,
    Str,
    F64,
}

impl ElemType {
    /// The `TensorProto.DataType` code.
    pub fn data_type(self) -> DataType {
        match self {
            ElemType::F32 => DataType::Float,
            ElemType::I64 => DataType::Int64,
            ElemType::Str => DataType::String,
            ElemType::F64 => DataType::Double,
        }
    }

    /// The inverse of [`ElemType::data_type`]; `None` for other ONNX element types.
    pub fn from_code(code: i32) -> Option<ElemType> {
        match DataType::try_from(code).ok()? {
            DataType::Float => Some(ElemType::F32),
            DataType::Int64 => Some(ElemType::I64),
            DataType::String => Some(ElemType::Str),
            DataType::Double => Some(ElemType::F64),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ElemType::F32 => "float",
            ElemType::I64 => "int64",
            ElemType::Str => "string",
            ElemType::F64 => "double",
        }
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Known(i64),
    /// A symbolic dimension (`dim_param`), e.g. the batch size `"N"`.
    Named(String),
}

impl Dim {
    /// The symbolic batch dimension `"N"`.
    pub fn batch() -> Dim {
        Dim::Named("N".into())
    }
}

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::Known(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Dim {
        Dim::Named(v.to_string())
    }
}

/// A tensor `ValueInfoProto` with element type and shape.
pub fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            denotation: None,
            value: Some(match d {
                Dim::Known(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem.data_type() as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

/// Attribute constructors (`attr::int("n", 3)`, `attr::floats("w", vec![..])`, ...).
pub mod attr {
    use crate::proto::{attribute_proto::AttributeType, AttributeProto, TensorProto};

    fn base(name: &str, ty: AttributeType) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_string()),
            r#type: Some(ty as i32),
            ..Default::default()
        }
    }
    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            i: Some(v),
            ..base(name, AttributeType::Int)
        }
    }
    pub fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
        AttributeProto {
            ints: v,
            ..base(name, AttributeType::Ints)
        }
    }
    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            f: Some(v),
            ..base(name, AttributeType::Float)
        }
    }
    pub fn floats(name: &str, v: Vec<f32>) -> AttributeProto {
        AttributeProto {
            floats: v,
            ..base(name, AttributeType::Floats)
        }
    }
    pub fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            s: Some(v.as_bytes().to_vec()),
            ..base(name, AttributeType::String)
        }
    }
    pub fn strings<S: AsRef<str>>(name: &str, v: &[S]) -> AttributeProto {
        AttributeProto {
            strings: v.iter().map(|s| s.as_ref().as_bytes().to_vec()).collect(),
            ..base(name, AttributeType::Strings)
        }
    }
    pub fn tensor(name: &str, t: TensorProto) -> AttributeProto {
        AttributeProto {
            t: Some(t),
            ..base(name, AttributeType::Tensor)
        }
    }
}

/// Builds a `GraphProto`, keeping names unique.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    graph: GraphProto,
    used: BTreeSet<String>,
    counter: u64,
}

impl GraphBuilder {
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder {
            graph: GraphProto {
                name: Some(name.to_string()),
                ..Default::default()
            },
            used: BTreeSet::new(),
            counter: 0,
        }
    }

    /// A fresh name starting with `prefix` that no value or node of this graph uses yet;
    /// the name is reserved.
    pub fn unique_name(&mut self, prefix: &str) -> String {
        let prefix = if prefix.is_empty() { "v" } else { prefix };
        if !self.used.contains(prefix) {
            self.used.insert(prefix.to_string());
            return prefix.to_string();
        }
        loop {
            self.counter += 1;
            let name = format!("{prefix}_{}", self.counter);
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// Declare a graph input, e.g. `add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(20)])`.
    pub fn add_input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> &mut Self {
        self.reserve(name);
        self.graph.input.push(value_info(name, elem, dims));
        self
    }

    /// Declare a graph output (the value must be produced by a node or be an input).
    pub fn add_output(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> &mut Self {
        self.reserve(name);
        self.graph.output.push(value_info(name, elem, dims));
        self
    }

    /// Add a node; returns its (generated, unique) node name. `domain` is `""` for the default
    /// ai.onnx domain or e.g. `"ai.onnx.ml"`.
    pub fn add_node(
        &mut self,
        op_type: &str,
        domain: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        for o in outputs {
            self.reserve(o);
        }
        let name = self.unique_name(op_type);
        self.graph.node.push(NodeProto {
            name: Some(name.clone()),
            op_type: Some(op_type.to_string()),
            domain: Some(domain.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
        name
    }

    /// Add a constant tensor (see [`crate::tensor`] for constructors). Its name is reserved.
    pub fn add_initializer(&mut self, t: TensorProto) -> &mut Self {
        if let Some(n) = &t.name {
            let n = n.clone();
            self.reserve(&n);
        }
        self.graph.initializer.push(t);
        self
    }

    /// Intermediate value type annotation (optional in ONNX).
    pub fn add_value_info(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> &mut Self {
        self.graph.value_info.push(value_info(name, elem, dims));
        self
    }

    pub fn doc_string(&mut self, doc: &str) -> &mut Self {
        self.graph.doc_string = Some(doc.to_string());
        self
    }

    /// The graph so far (e.g. to inspect it before building).
    pub fn graph(&self) -> &GraphProto {
        &self.graph
    }

    pub fn build(self) -> GraphProto {
        self.graph
    }
}

/// Wraps a graph into a `ModelProto`.
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    graph: GraphProto,
    opsets: Vec<(String, i64)>,
    ir_version: i64,
    producer_version: String,
    doc: Option<String>,
    metadata: Vec<(String, String)>,
}

impl ModelBuilder {
    /// Defaults: IR [`DEFAULT_IR_VERSION`], opsets `ai.onnx` 21 and `ai.onnx.ml` 3, producer
    /// [`PRODUCER_NAME`] with this crate's version.
    pub fn new(graph: GraphProto) -> ModelBuilder {
        ModelBuilder {
            graph,
            opsets: vec![(String::new(), 21), ("ai.onnx.ml".to_string(), 3)],
            ir_version: DEFAULT_IR_VERSION,
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            doc: None,
            metadata: Vec::new(),
        }
    }

    /// Set (or add) the opset version of a domain (`""` = ai.onnx; `"ai.onnx"` is accepted too).
    pub fn opset(mut self, domain: &str, version: i64) -> Self {
        let domain = if domain == "ai.onnx" { "" } else { domain };
        match self.opsets.iter_mut().find(|(d, _)| d == domain) {
            Some(slot) => slot.1 = version,
            None => self.opsets.push((domain.to_string(), version)),
        }
        self
    }

    pub fn ir_version(mut self, v: i64) -> Self {
        self.ir_version = v;
        self
    }

    pub fn producer_version(mut self, v: &str) -> Self {
        self.producer_version = v.to_string();
        self
    }

    pub fn doc_string(mut self, doc: &str) -> Self {
        self.doc = Some(doc.to_string());
        self
    }

    /// Add a `metadata_props` entry; a repeated key replaces the earlier value.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.metadata.push((key.to_string(), value.to_string())),
        }
        self
    }

    pub fn build(self) -> ModelProto {
        ModelProto {
            ir_version: Some(self.ir_version),
            opset_import: self
                .opsets
                .into_iter()
                .map(|(domain, version)| OperatorSetIdProto {
                    domain: Some(domain),
                    version: Some(version),
                })
                .collect(),
            producer_name: Some(PRODUCER_NAME.to_string()),
            producer_version: Some(self.producer_version),
            doc_string: self.doc,
            graph: Some(self.graph),
            metadata_props: self
                .metadata
                .into_iter()
                .map(|(key, value)| StringStringEntryProto {
                    key: Some(key),
                    value: Some(value),
                })
                .collect(),
            ..Default::default()
        }
    }
}

#[allow(unused_imports)]
use proto as _;
