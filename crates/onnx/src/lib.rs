//! ONNX protobuf types and small helpers to build and read ONNX graphs.
//!
//! Owns: the generated protobuf types ([`proto`], from the vendored `proto/onnx-ml.proto`,
//! ONNX 1.23.2, Apache-2.0), byte/file IO ([`load_model`], [`save_model`], [`decode`],
//! [`encode`]), a builder for exporters ([`GraphBuilder`], [`ModelBuilder`], [`attr`],
//! [`tensor`]) and typed read accessors ([`Attrs`], [`find_nodes`], [`tensor_f32`], ...).
//!
//! Must not: know any learner, feature pipeline or runtime. It does not validate operator
//! semantics (ONNX Runtime / `onnx.checker` do); it only keeps graphs well formed enough to
//! round-trip (unique names, declared types).
//!
//! ```
//! use cr_onnx::{attr, Dim, ElemType, GraphBuilder, ModelBuilder};
//! let mut g = GraphBuilder::new("tiny");
//! g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
//! g.add_initializer(cr_onnx::tensor::f32("one", &[1], &[1.0]));
//! g.add_node("Add", "", &["x", "one"], &["y"], vec![]);
//! g.add_output("y", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
//! let model = ModelBuilder::new(g.build()).metadata("k", "v").build();
//! let bytes = cr_onnx::encode(&model);
//! assert_eq!(cr_onnx::decode(&bytes).unwrap(), model);
//! ```

pub mod builder;
pub mod digest;
pub mod error;
pub mod io;
pub mod read;
pub mod tensor;

/// Generated ONNX protobuf types (package `onnx`).
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use builder::{
    attr, Dim, ElemType, GraphBuilder, ModelBuilder, DEFAULT_IR_VERSION, PRODUCER_NAME,
};
pub use digest::{bind_graph_digest, graph_digest, GRAPH_DIGEST_KEY};
pub use error::OnnxError;
pub use io::{decode, encode, load_model, save_model};
pub use read::{
    find_nodes, find_nodes_mut, metadata_map, node_label, opset_version, value_info_dims,
    value_info_elem_type, Attrs,
};
pub use tensor::{tensor_f32, tensor_f64, tensor_i64, tensor_strings};
