//! The production [`ModelLoader`]: our raw-field ONNX models, scored with `cr-infer`.
//!
//! A model exported by `cr-train` is one ONNX graph (raw declaration fields → feature
//! pipeline → trees / linear → probabilities) whose `metadata_props` carry the fitted pipeline
//! (`customs_risk.pipeline`, schema included) and the name of the feature tensor
//! (`customs_risk.features`). Scoring a request:
//!
//! 1. JSON records → validated [`cr_data::Batch`] with the pipeline's schema
//!    ([`cr_data::batch_from_json`]); any reject → [`ScoreError::Invalid`] with per-field
//!    details;
//! 2. **native** (default): the pipeline in Rust ([`cr_features::CompiledPipeline`], bit-exact
//!    with the graph's pipeline nodes) and the graph's tree/linear core compiled by
//!    [`cr_infer::compile_for_tensor`] from the feature tensor — microseconds per declaration;
//! 3. **ONNX Runtime** (fallback when the core does not compile natively, or forced with
//!    [`Engine::Ort`]): the whole graph through [`cr_infer::Model::score_columns`], fed the raw
//!    columns as the exporter declares them (date string `YYYY-MM-DD`, HS code int64,
//!    categoricals string, numerics float).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cr_data::{Batch, Schema};
use cr_features::{CompiledPipeline, FittedPipeline};
use cr_infer::{Engine, InputColumn, InputKind, LoadOptions, Model, NativeScorer, PIPELINE_METADATA_KEY};

use crate::scorer::{FieldIssue, ModelLoader, RiskScorer, ScoreError, Scored};

/// Metadata key naming the feature tensor inside the graph (written by `cr-train`).
pub const FEATURES_METADATA_KEY: &str = "customs_risk.features";

/// Loads ONNX models with `cr-infer` (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct InferLoader {
    /// `Auto` (native when the core compiles, else ONNX Runtime), `Native` or `Ort`.
    pub engine: Engine,
}

enum Core {
    Native(NativeScorer),
    Ort(Box<Model>),
}

/// A loaded model: schema, pipeline and scoring core.
pub struct InferScorer {
    metadata: BTreeMap<String, String>,
    schema: Schema,
    pipeline: CompiledPipeline,
    core: Core,
}

impl std::fmt::Debug for InferScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferScorer").field("engine", &self.engine()).finish_non_exhaustive()
    }
}

impl InferScorer {
    /// Load and check `path` (see [`InferLoader`]).
    pub fn load(path: &Path, engine: Engine) -> Result<InferScorer, String> {
        let proto = cr_onnx::load_model(path).map_err(|e| e.to_string())?;
        let metadata = cr_onnx::metadata_map(&proto);
        let pipeline_json = metadata.get(PIPELINE_METADATA_KEY).ok_or_else(|| {
            format!("no {PIPELINE_METADATA_KEY} metadata: not a customs-risk model (raw declaration fields in)")
        })?;
        let pipeline = FittedPipeline::from_json(pipeline_json)
            .and_then(|p| p.compile())
            .map_err(|e| format!("metadata {PIPELINE_METADATA_KEY}: {e}"))?;
        let schema = pipeline.schema().clone();
        let native = || -> Result<NativeScorer, String> {
            let tensor = metadata
                .get(FEATURES_METADATA_KEY)
                .ok_or_else(|| format!("no {FEATURES_METADATA_KEY} metadata (feature tensor name)"))?;
            let s = cr_infer::compile_for_tensor(&proto, tensor).map_err(|e| e.to_string())?;
            if s.n_features() != pipeline.feature_names().len() {
                return Err(format!(
                    "the pipeline makes {} features, tensor {tensor:?} has {}",
                    pipeline.feature_names().len(),
                    s.n_features()
                ));
            }
            Ok(s)
        };
        let ort = || -> Result<Core, String> {
            // One thread per model: the service already runs requests in parallel.
            let m = Model::from_proto(&proto, &LoadOptions { engine: Engine::Ort, threads: 1 })
                .map_err(|e| e.to_string())?;
            Ok(Core::Ort(Box::new(m)))
        };
        let core = match engine {
            Engine::Native => Core::Native(native()?),
            Engine::Ort => ort()?,
            Engine::Auto => match native() {
                Ok(s) => Core::Native(s),
                Err(native_err) => ort().map_err(|ort_err| {
                    format!("native engine: {native_err}; ONNX Runtime fallback: {ort_err}")
                })?,
            },
        };
        Ok(InferScorer { metadata, schema, pipeline, core })
    }

    /// `Native` or `Ort`.
    pub fn engine(&self) -> Engine {
        match self.core {
            Core::Native(_) => Engine::Native,
            Core::Ort(_) => Engine::Ort,
        }
    }

    /// The schema declarations are validated against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn ort_columns(&self, model: &Model, batch: &Batch) -> Result<Vec<(String, InputColumn)>, ScoreError> {
        let InputKind::NamedColumns(inputs) = model.input_kind() else {
            return Err(ScoreError::Internal("ONNX Runtime path needs a raw-field (named inputs) model".into()));
        };
        let s = &self.schema;
        inputs
            .iter()
            .map(|(name, _)| {
                let col = if *name == s.date {
                    InputColumn::Str(batch.dates.iter().map(|&d| cr_data::schema::ymd_from_days(d)).collect())
                } else if *name == s.hs_code {
                    InputColumn::I64(batch.hs.iter().map(|&h| i64::try_from(h).unwrap_or(i64::MAX)).collect())
                } else if let Some(i) = s.categorical.iter().position(|c| c.name == *name) {
                    InputColumn::Str(batch.categorical[i].clone())
                } else if let Some(i) = s.numeric.iter().position(|c| c.name == *name) {
                    InputColumn::F32(batch.numeric[i].clone())
                } else {
                    return Err(ScoreError::Internal(format!("graph input {name:?} is not a schema column")));
                };
                Ok((name.clone(), col))
            })
            .collect()
    }
}

impl RiskScorer for InferScorer {
    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    fn score(&self, records: &[serde_json::Value]) -> Result<Vec<Scored>, ScoreError> {
        let (batch, rejects) = cr_data::batch_from_json(&self.schema, records, "request");
        if !rejects.is_empty() {
            let issues = rejects
                .iter()
                .flat_map(|r| {
                    let index = usize::try_from(r.line.saturating_sub(1)).unwrap_or(usize::MAX);
                    let problems: Vec<FieldIssue> = r
                        .problems
                        .iter()
                        .map(|p| FieldIssue { index, field: p.column.clone(), reason: p.reason.clone() })
                        .collect();
                    if problems.is_empty() {
                        vec![FieldIssue { index, field: r.column.clone(), reason: r.reason.clone() }]
                    } else {
                        problems
                    }
                })
                .collect();
            return Err(ScoreError::Invalid(issues));
        }
        if batch.len() != records.len() {
            return Err(ScoreError::Internal(format!("{} records validated into {} rows", records.len(), batch.len())));
        }
        let n = batch.len();
        let scores = match &self.core {
            Core::Native(s) => {
                let x = self.pipeline.transform(&batch).map_err(|e| ScoreError::Internal(e.to_string()))?;
                let mut out = vec![0f32; n];
                s.score_into(&x.data, n, &mut out).map_err(|e| ScoreError::Internal(e.to_string()))?;
                out
            }
            Core::Ort(m) => {
                let cols = self.ort_columns(m, &batch)?;
                m.score_columns(&cols, n).map_err(|e| ScoreError::Internal(e.to_string()))?
            }
        };
        if let Some(bad) = scores.iter().position(|s| !s.is_finite()) {
            return Err(ScoreError::Internal(format!("model gave a non-finite score for row {bad}")));
        }
        Ok(batch.ids.into_iter().zip(scores).map(|(id, score)| Scored { id, score }).collect())
    }
}

impl ModelLoader for InferLoader {
    fn load(&self, path: &Path) -> Result<Arc<dyn RiskScorer>, String> {
        InferScorer::load(path, self.engine).map(|s| Arc::new(s) as Arc<dyn RiskScorer>)
    }
}
