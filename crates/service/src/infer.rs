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
//! 2. **native** (default): the pipeline in Rust (`cr_features::CompiledPipeline`, bit-exact
//!    with the graph's pipeline nodes) and the graph's tree/linear core compiled by
//!    [`cr_infer::compile_for_tensor`] from the feature tensor — microseconds per declaration;
//! 3. **ONNX Runtime** (fallback when the core does not compile natively, or forced with
//!    [`Engine::Ort`]): the whole graph through [`cr_infer::Model::score_columns`], fed the raw
//!    columns as the exporter declares them (date string `YYYY-MM-DD`, HS code int64,
//!    categoricals string, numerics float).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cr_data::Schema;
use cr_infer::{DeclarationModel, Engine, InferError, LoadOptions};

use crate::scorer::{FieldIssue, LoadError, ModelLoader, RiskScorer, ScoreError, Scored};

/// Loads ONNX models with `cr-infer` (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct InferLoader {
    /// `Auto` (native when the core compiles, else ONNX Runtime), `Native` or `Ort`.
    pub engine: Engine,
    /// The key of models whose schema pseudonymises identifier columns (`serve
    /// --pseudonym-key`); `None`: the environment variable `CR_PSEUDONYM_KEY`, read when such
    /// a model is loaded. A model that needs a key and gets none, or the wrong one, is not
    /// loaded (the error says which), so it never scores every identifier as unseen.
    pub pseudonym_key: Option<Arc<cr_data::PseudonymKey>>,
}

/// A loaded model: [`cr_infer::DeclarationModel`] behind the service's [`RiskScorer`] trait.
pub struct InferScorer {
    model: DeclarationModel,
    /// Applied to the pseudonymised columns of each request (checked against the model's
    /// schema at load).
    key: Option<Arc<cr_data::PseudonymKey>>,
}

impl std::fmt::Debug for InferScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferScorer")
            .field("engine", &self.engine())
            .finish_non_exhaustive()
    }
}

impl InferScorer {
    /// Load and check `path` (see [`InferLoader`]). One ONNX Runtime thread per model: the
    /// service already runs requests in parallel.
    pub fn load(path: &Path, engine: Engine) -> Result<InferScorer, InferError> {
        DeclarationModel::load(path, &LoadOptions { engine, threads: 1 })
            .map(|model| InferScorer { model, key: None })
    }

    /// [`InferScorer::load`] for a model that may pseudonymise identifiers: `key` (else the
    /// environment's `CR_PSEUDONYM_KEY`) must be the key the model was trained with.
    pub fn load_keyed(
        path: &Path,
        engine: Engine,
        key: Option<Arc<cr_data::PseudonymKey>>,
    ) -> Result<InferScorer, LoadError> {
        let mut s = InferScorer::load(path, engine)?;
        if !s.schema().pseudonymised().is_empty() {
            let key = match key {
                Some(k) => Some(k),
                None => cr_data::PseudonymKey::load(None)?.map(Arc::new),
            };
            cr_data::check_pseudonym_key(s.schema(), key.as_deref())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            s.key = key;
        }
        Ok(s)
    }

    /// `Native` or `Ort`.
    pub fn engine(&self) -> Engine {
        self.model.engine_used()
    }

    /// The schema declarations are validated against.
    pub fn schema(&self) -> &Schema {
        self.model.schema()
    }
}

impl RiskScorer for InferScorer {
    fn metadata(&self) -> &BTreeMap<String, String> {
        self.model.metadata()
    }

    fn id_column(&self) -> Option<&str> {
        Some(&self.schema().id)
    }

    fn schema(&self) -> Option<&Schema> {
        Some(self.model.schema())
    }

    fn score(&self, records: &[serde_json::Value]) -> Result<Vec<Scored>, ScoreError> {
        let (batch, scores) = self.score_rows(records)?;
        Ok(batch
            .ids
            .into_iter()
            .zip(scores)
            .map(|(id, score)| Scored { id, score })
            .collect())
    }

    fn score_rows(
        &self,
        records: &[serde_json::Value],
    ) -> Result<(cr_data::Batch, Vec<f32>), ScoreError> {
        let (batch, rejects) =
            cr_data::batch_from_json_keyed(self.schema(), records, "request", self.key.as_deref())
                // the key was checked against the schema at load
                .map_err(|e| ScoreError::Internal(Arc::new(e)))?;
        if !rejects.is_empty() {
            let issues = rejects
                .iter()
                .flat_map(|r| {
                    let index = usize::try_from(r.line.saturating_sub(1)).unwrap_or(usize::MAX);
                    let problems: Vec<FieldIssue> = r
                        .problems
                        .iter()
                        .map(|p| FieldIssue {
                            index,
                            field: p.column.clone(),
                            reason: p.reason.clone(),
                        })
                        .collect();
                    if problems.is_empty() {
                        vec![FieldIssue {
                            index,
                            field: r.column.clone(),
                            reason: r.reason.clone(),
                        }]
                    } else {
                        problems
                    }
                })
                .collect();
            return Err(ScoreError::Invalid(issues));
        }
        if batch.len() != records.len() {
            return Err(ScoreError::internal(format!(
                "{} records validated into {} rows",
                records.len(),
                batch.len()
            )));
        }
        let scores = self
            .model
            .score_batch(&batch)
            .map_err(|e| ScoreError::Internal(Arc::new(e)))?;
        Ok((batch, scores))
    }
}

impl ModelLoader for InferLoader {
    fn load(&self, path: &Path) -> Result<Arc<dyn RiskScorer>, LoadError> {
        InferScorer::load_keyed(path, self.engine, self.pseudonym_key.clone())
            .map(|s| Arc::new(s) as Arc<dyn RiskScorer>)
    }
}
