//! The binding of a graph and the metadata that describes it.
//!
//! Our exporter stores, besides the graph, metadata from which a native engine rebuilds part
//! of the graph (the feature pipeline). The two must describe the same model: an edited graph
//! with untouched metadata would score one way natively and another way in ONNX Runtime.
//! [`graph_digest`] is SHA-256 over the graph's protobuf encoding and the bound metadata
//! values; the exporter stores it under [`cr_model::meta::GRAPH_DIGEST_KEY`], and a reader that wants to use
//! the metadata instead of the graph recomputes it and compares.
//!
//! The encoding is prost's (fields in tag order, no unknown fields), so decoding a file and
//! encoding its graph again gives the bytes the exporter hashed, unless the graph changed.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::proto::GraphProto;

/// Metadata key of the digest (lower-case hex SHA-256); spelled in [`cr_model::meta`], the one
/// home of the model file's keys, and re-exported here for readers of this module.
pub use cr_model::meta::GRAPH_DIGEST_KEY;

/// SHA-256 (hex) of `graph` and the `bound` metadata `(key, value)` pairs, in the given order.
///
/// ```
/// use cr_onnx::{graph_digest, GraphBuilder};
/// let g = GraphBuilder::new("g").build();
/// let d = graph_digest(&g, &[("k", "v")]);
/// assert_eq!(d.len(), 64);
/// assert_ne!(d, graph_digest(&g, &[("k", "w")]));
/// ```
pub fn graph_digest(graph: &GraphProto, bound: &[(&str, &str)]) -> String {
    let mut h = Sha256::new();
    let bytes = graph.encode_to_vec();
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(&bytes);
    for (k, v) in bound {
        for part in [k, v] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    let d = h.finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}
