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

use crate::proto::{GraphProto, ModelProto, StringStringEntryProto};

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

/// Add the digest of `model`'s graph and its pipeline / features metadata (the pair our
/// exporter binds) under [`GRAPH_DIGEST_KEY`], unless one is there: for models made outside
/// our exporter that carry our pipeline metadata (the service's scikit-learn test and
/// benchmark fixtures). Python cannot compute it: its protobuf encodes fields in another
/// order than prost. Errors name the missing part.
pub fn bind_graph_digest(model: &mut ModelProto) -> Result<(), String> {
    let get = |k: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key.as_deref() == Some(k))
            .and_then(|p| p.value.clone())
    };
    if get(GRAPH_DIGEST_KEY).is_some() {
        return Ok(());
    }
    let (pipeline, features) = (get(cr_model::meta::PIPELINE), get(cr_model::meta::FEATURES));
    let (Some(pipeline), Some(features)) = (pipeline, features) else {
        return Err(format!(
            "the model has no {} / {} metadata to bind its graph to",
            cr_model::meta::PIPELINE,
            cr_model::meta::FEATURES
        ));
    };
    let graph = model.graph.as_ref().ok_or("the model has no graph")?;
    let digest = graph_digest(
        graph,
        &[
            (cr_model::meta::PIPELINE, &pipeline),
            (cr_model::meta::FEATURES, &features),
        ],
    );
    model.metadata_props.push(StringStringEntryProto {
        key: Some(GRAPH_DIGEST_KEY.to_string()),
        value: Some(digest),
    });
    Ok(())
}
