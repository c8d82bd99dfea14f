//! Our own models: raw declaration fields in, one risk score per declaration out.
//!
//! A model exported by `cr-train` is one ONNX graph (raw fields → feature pipeline → trees or
//! linear → probabilities) whose `metadata_props` carry the fitted pipeline
//! (`customs_risk.pipeline`, schema included) and the name of the feature tensor
//! (`customs_risk.features`). [`DeclarationModel`] scores validated [`cr_data::Batch`]es:
//!
//! - **native** (the default when the core compiles): the pipeline in Rust
//!   ([`cr_features::CompiledPipeline`], bit-exact with the graph's pipeline nodes) and the
//!   rest of the graph compiled by [`crate::compile_for_tensor`]: the tree ensemble, or for
//!   logistic models the element-wise preprocessing (signed log, imputation, standardisation)
//!   and the linear core, with ORT's f32 arithmetic (bit-identical scores in our tests). It
//!   ignores the graph's pipeline nodes, so it runs only when the digest the exporter stored
//!   ([`meta::GRAPH_DIGEST_KEY`]) matches the graph and the pipeline metadata as loaded;
//!   an edited file goes to ONNX Runtime ([`DeclarationModel::native_refused`] says why) or,
//!   with [`Engine::Native`], is an error;
//! - **ONNX Runtime** (fallback, or forced with [`Engine::Ort`]): the whole graph, fed the raw
//!   columns as the exporter declares them (date `YYYY-MM-DD` string, HS code int64,
//!   categoricals string, numerics float).

use std::collections::BTreeMap;
use std::path::Path;

use cr_data::{Batch, Schema};
use cr_features::{CompiledPipeline, FittedPipeline};
use rayon::prelude::*;

use crate::{
    compile_for_tensor, Engine, InferError, InputColumn, InputKind, LoadOptions, Model,
    NativeScorer,
};
use cr_model::meta::Prediction;
use cr_model::{meta, ModelCard, Reference};

/// Rows per parallel scoring task.
const SCORE_BLOCK: usize = 4096;

/// What scores the features: the compiled core ([`crate::plan::Core`]: trees or linear, run
/// on our pipeline's features) or the whole graph on ONNX Runtime.
enum Backend {
    Native(Box<NativeScorer>),
    Ort(Box<Model>),
}

/// A loaded customs-risk model (see the module docs). `Send + Sync`: share it across threads.
pub struct DeclarationModel {
    metadata: BTreeMap<String, String>,
    card: Option<ModelCard>,
    reference: Option<Reference>,
    prediction: Prediction,
    pipeline: CompiledPipeline,
    backend: Backend,
    threads: usize,
    /// With [`Engine::Auto`]: why the native engine was not used (ONNX Runtime scores).
    native_refused: Option<String>,
}

impl std::fmt::Debug for DeclarationModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclarationModel")
            .field("engine", &self.engine_used())
            .finish_non_exhaustive()
    }
}

/// Whether `path` holds one of our raw-field models (has the pipeline metadata).
pub fn is_declaration_model(model: &cr_onnx::proto::ModelProto) -> bool {
    model
        .metadata_props
        .iter()
        .any(|p| p.key.as_deref() == Some(meta::PIPELINE))
}

impl DeclarationModel {
    /// Load and check `path`: the pipeline is parsed and compiled, the core compiled natively
    /// or an ONNX Runtime session opened, once.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<DeclarationModel, InferError> {
        let proto = cr_onnx::load_model(path)?;
        DeclarationModel::from_proto(&proto, opts)
    }

    pub fn from_proto(
        proto: &cr_onnx::proto::ModelProto,
        opts: &LoadOptions,
    ) -> Result<DeclarationModel, InferError> {
        let metadata = cr_onnx::metadata_map(proto);
        if let Some(g) = &proto.graph {
            crate::check::check_graph(g)?;
        }
        // the card is checked once, here: a card this program cannot read stops the load
        let card = ModelCard::from_metadata(&metadata)?;
        let reference = cr_model::reference_from_metadata(&metadata)?;
        let prediction = Prediction::from_metadata(&metadata)?;
        let pipeline_json = metadata.get(meta::PIPELINE).ok_or_else(|| {
            InferError::InvalidModel(format!(
                "no {} metadata: not a customs-risk model with raw declaration fields as inputs \
                 (score foreign models with a feature matrix instead)",
                meta::PIPELINE
            ))
        })?;
        let pipeline = FittedPipeline::from_json(pipeline_json)
            .and_then(|p| p.compile())
            .map_err(|source| InferError::Features {
                context: format!("invalid model: metadata {}", meta::PIPELINE),
                source,
            })?;
        let native = || -> Result<NativeScorer, InferError> {
            let tensor = metadata.get(meta::FEATURES).ok_or_else(|| {
                InferError::InvalidModel(format!(
                    "no {} metadata (feature tensor name)",
                    meta::FEATURES
                ))
            })?;
            check_binding(proto, pipeline_json, tensor)?;
            let s = compile_for_tensor(proto, tensor)?;
            if s.n_features() != pipeline.feature_names().len() {
                return Err(InferError::InvalidModel(format!(
                    "the pipeline makes {} features, tensor {tensor:?} has {}",
                    pipeline.feature_names().len(),
                    s.n_features()
                )));
            }
            Ok(s)
        };
        let ort = || -> Result<Backend, InferError> {
            let m = Model::from_proto(
                proto,
                &LoadOptions {
                    engine: Engine::Ort,
                    threads: opts.threads,
                },
            )?;
            Ok(Backend::Ort(Box::new(m)))
        };
        let mut native_refused = None;
        let backend = match opts.engine {
            Engine::Native => Backend::Native(Box::new(native()?)),
            Engine::Ort => ort()?,
            Engine::Auto => match native() {
                Ok(s) => Backend::Native(Box::new(s)),
                Err(native_err) => {
                    let backend = ort().map_err(|ort_err| InferError::Unsupported {
                        op: format!("native engine: {native_err}"),
                        hint: format!("ONNX Runtime fallback failed too: {ort_err}"),
                    })?;
                    native_refused = Some(native_err.to_string());
                    backend
                }
            },
        };
        Ok(DeclarationModel {
            metadata,
            card,
            reference,
            prediction,
            pipeline,
            backend,
            threads: opts.threads,
            native_refused,
        })
    }

    /// `Native` or `Ort` (never `Auto`).
    pub fn engine_used(&self) -> Engine {
        match self.backend {
            Backend::Native(_) => Engine::Native,
            Backend::Ort(_) => Engine::Ort,
        }
    }

    /// With [`Engine::Auto`] and ONNX Runtime scoring: why the native engine was not used
    /// (e.g. the graph does not match the metadata the native path rebuilds it from).
    pub fn native_refused(&self) -> Option<&str> {
        self.native_refused.as_deref()
    }

    /// The schema declarations must follow (the one the model was trained with).
    pub fn schema(&self) -> &Schema {
        self.pipeline.schema()
    }

    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The model card (read and version-checked at load); `None` when the file has none.
    pub fn card(&self) -> Option<&ModelCard> {
        self.card.as_ref()
    }

    /// The reference score distribution percentiles are read against
    /// ([`cr_model::reference_from_metadata`]); `None` when the file carries none.
    pub fn reference(&self) -> Option<&Reference> {
        self.reference.as_ref()
    }

    /// What the score predicts ([`meta::PREDICTION`]): a risk probability, or for a revenue
    /// model the expected revenue recovered (its column name: [`Prediction::column`]).
    pub fn prediction(&self) -> Prediction {
        self.prediction
    }

    /// The compiled feature pipeline (for drift checks and explanations).
    pub fn pipeline(&self) -> &CompiledPipeline {
        &self.pipeline
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// One score per row of `batch`, in row order: the risk, or for a revenue model the
    /// expected revenue ([`DeclarationModel::prediction`]).
    ///
    /// The native path runs on the caller's rayon pool (the global one unless the caller is
    /// inside `ThreadPool::install`), in fixed 4096-row blocks: scores never depend on the
    /// thread count. The ONNX Runtime fallback uses its own pool of `threads` threads.
    pub fn score_batch(&self, batch: &Batch) -> Result<Vec<f32>, InferError> {
        let n = batch.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let scores = match &self.backend {
            Backend::Native(s) => {
                let nf = s.n_features();
                let mut out = vec![0f32; n];
                // fixed-size row blocks: results never depend on the thread count; each block's
                // features are made into a per-thread buffer and scored while still in cache
                out.par_chunks_mut(SCORE_BLOCK)
                    .enumerate()
                    .try_for_each_init(Vec::new, |buf: &mut Vec<f32>, (k, o)| {
                        buf.resize(o.len() * nf, 0.0);
                        self.pipeline
                            .transform_rows(batch, k * SCORE_BLOCK, buf)
                            .map_err(|source| InferError::Features {
                                context: "computing features".into(),
                                source,
                            })?;
                        s.score_into(buf, o.len(), o)
                    })?;
                out
            }
            Backend::Ort(m) => {
                let cols = raw_columns(m, self.schema(), batch)?;
                m.score_columns(&cols, n)?
            }
        };
        if let Some(bad) = scores.iter().position(|s| !s.is_finite()) {
            return Err(InferError::Runtime(format!(
                "{}: line {}: the model gave a non-finite score",
                batch.source,
                batch.lines.get(bad).copied().unwrap_or(0)
            )));
        }
        Ok(scores)
    }
}

/// The native path runs the pipeline from the metadata and ignores the graph's pipeline
/// nodes, so it may only run when the graph is the one exported with that metadata: the
/// digest stored by the exporter ([`meta::GRAPH_DIGEST_KEY`]) must equal the digest of the
/// graph, the pipeline JSON and the feature tensor name as loaded.
fn check_binding(
    proto: &cr_onnx::proto::ModelProto,
    pipeline_json: &str,
    features: &str,
) -> Result<(), InferError> {
    let key = meta::GRAPH_DIGEST_KEY;
    let stored = proto
        .metadata_props
        .iter()
        .rev()
        .find(|p| p.key() == key)
        .map(|p| p.value())
        .ok_or_else(|| {
            InferError::InvalidModel(format!(
                "no {key} metadata, so the graph cannot be checked against the pipeline \
                 metadata the native engine runs (a model exported before this check: \
                 export it again, or score it with ONNX Runtime)"
            ))
        })?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| InferError::InvalidModel("model has no graph".into()))?;
    let actual = cr_onnx::graph_digest(
        graph,
        &[(meta::PIPELINE, pipeline_json), (meta::FEATURES, features)],
    );
    if actual != stored {
        return Err(InferError::InvalidModel(format!(
            "the graph or its pipeline metadata was changed after export ({key} is {stored}, \
             the file gives {actual}): the native engine would not score what the graph says"
        )));
    }
    Ok(())
}

/// The graph's raw inputs from a validated batch.
fn raw_columns(
    model: &Model,
    s: &Schema,
    batch: &Batch,
) -> Result<Vec<(String, InputColumn)>, InferError> {
    let InputKind::NamedColumns(inputs) = model.input_kind() else {
        return Err(InferError::InvalidModel(
            "a customs-risk model has named raw-field inputs".into(),
        ));
    };
    inputs
        .iter()
        .map(|(name, _)| {
            let col = if *name == s.date {
                InputColumn::Str(
                    batch
                        .dates
                        .iter()
                        .map(|&d| cr_data::schema::ymd_from_days(d))
                        .collect(),
                )
            } else if *name == s.hs_code {
                InputColumn::I64(
                    batch
                        .hs
                        .iter()
                        .map(|&h| i64::try_from(h).unwrap_or(i64::MAX))
                        .collect(),
                )
            } else if let Some(i) = s.categorical.iter().position(|c| c.name == *name) {
                InputColumn::Str(batch.categorical[i].clone())
            } else if let Some(i) = s.numeric.iter().position(|c| c.name == *name) {
                InputColumn::F32(batch.numeric[i].clone())
            } else {
                return Err(InferError::InvalidModel(format!(
                    "graph input {name:?} is not a column of the model's schema"
                )));
            };
            Ok((name.clone(), col))
        })
        .collect()
}
