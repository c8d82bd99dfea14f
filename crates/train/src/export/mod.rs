//! One self-contained ONNX file per model: raw declaration fields in, risk score out.
//!
//! Graph: raw inputs → [`pipeline`] (the fitted feature pipeline) → `features: float [N, F]` →
//! [`trees`] or [`linear`] → `probabilities: float [N, 2]` (column 1 is the risk score), or for
//! a revenue model (Tweedie GBDT) the tree margin → `Exp` → `expected_revenue: float [N, 1]`
//! (names and the [`cr_model::meta::PREDICTION`] metadata: [`cr_model::meta::Prediction`]).
//! `metadata_props` carry the model card and everything the native engine needs, under the
//! keys of [`cr_model::meta`] (their one home, with what each holds).
//! `customs_risk.graph_sha256` ([`meta::GRAPH_DIGEST_KEY`]) holds [`cr_onnx::graph_digest`] of
//! the graph with the pipeline and features metadata: a native engine that rebuilds the
//! pipeline from metadata runs only when the graph is the one the metadata produced.

pub mod linear;
pub mod pipeline;
pub mod trees;

use cr_features::FittedPipeline;
use cr_onnx::proto::ModelProto;
use cr_onnx::{Dim, ElemType, GraphBuilder, ModelBuilder};

use crate::card::ModelCard;
use crate::TrainError;

use cr_model::meta::{self, Prediction};

/// The trained model inside an export.
pub enum Trained<'a> {
    Gbdt(&'a cr_gbdt::GbdtModel),
    Logistic(&'a cr_linear::LogisticModel),
}

/// Builds the full graph (pipeline + model) with its metadata.
pub fn to_onnx(
    pipeline: &FittedPipeline,
    model: Trained<'_>,
    prediction: Prediction,
    card: &ModelCard,
) -> Result<ModelProto, TrainError> {
    let mut g = GraphBuilder::new(&format!("customs-risk {}", card.name));
    let features = pipeline::emit(pipeline, &mut g)?;
    let n_features = pipeline.features.len() as i64;
    g.add_value_info(
        &features,
        ElemType::F32,
        &[Dim::batch(), Dim::Known(n_features)],
    );
    let (kind, probs, extra) = match model {
        Trained::Gbdt(m) => {
            if m.n_features != pipeline.features.len() {
                return Err(TrainError::Export(format!(
                    "model expects {} features, pipeline gives {}",
                    m.n_features,
                    pipeline.features.len()
                )));
            }
            ("gbdt", trees::emit(m, &features, &mut g)?, None)
        }
        Trained::Logistic(m) => {
            let json = serde_json::to_string(m).map_err(|e| TrainError::Export(e.to_string()))?;
            ("logistic", linear::emit(m, &features, &mut g)?, Some(json))
        }
    };
    if probs != prediction.output() {
        return Err(TrainError::Export(format!(
            "the model's output is {probs:?}, expected {:?} (is a schema column named {:?}?)",
            prediction.output(),
            prediction.output()
        )));
    }
    let out_dims = match prediction {
        Prediction::Risk => [Dim::batch(), Dim::Known(2)],
        Prediction::ExpectedRevenue => [Dim::batch(), Dim::Known(1)],
    };
    g.add_output(&probs, ElemType::F32, &out_dims);
    g.doc_string(match prediction {
        Prediction::Risk => "customs-risk model: raw declaration fields in (one [N,1] tensor per schema column), probabilities [N,2] out; column 1 is the risk score.",
        Prediction::ExpectedRevenue => "customs-risk revenue model: raw declaration fields in (one [N,1] tensor per schema column), expected_revenue [N,1] out: the revenue an inspection is expected to recover.",
    });
    // Without the run facts (time, paths, timings): the same inputs give the same bytes.
    let card_json = card.for_model_file().to_json_pretty()?;
    let graph = g.build();
    let pipeline_json = pipeline.to_json();
    // binds the graph to the metadata a native engine rebuilds the pipeline from
    let digest = cr_onnx::graph_digest(
        &graph,
        &[
            (meta::PIPELINE, &pipeline_json),
            (meta::FEATURES, &features),
        ],
    );
    let mut mb = ModelBuilder::new(graph)
        .doc_string(&format!("{} ({})", card.name, card.algo))
        .metadata(meta::CARD, &card_json)
        .metadata(meta::PIPELINE, &pipeline_json)
        .metadata(meta::KIND, kind)
        .metadata(meta::PREDICTION, prediction.as_str())
        .metadata(meta::FEATURES, &features)
        .metadata(meta::GRAPH_DIGEST_KEY, &digest);
    if let Some(j) = extra {
        mb = mb.metadata(meta::LOGISTIC, &j);
    }
    Ok(mb.build())
}
