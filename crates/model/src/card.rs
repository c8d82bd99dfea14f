//! The model card: what a model was trained on, how, and how well it did on the validation
//! period. Written beside the model (`NAME.card.json`) and inside the ONNX file's
//! `metadata_props` ([`crate::meta::CARD`]).
//!
//! # Versions
//!
//! Every card carries `card_version`. [`ModelCard::from_json`] reads:
//! - the current version ([`CARD_VERSION`]) as is;
//! - an older version by upgrading its JSON one version at a time ([`UPGRADES`]: step `v`
//!   turns a version-`v` card into a version-`v+1` card), then reading it as current;
//! - a newer version: [`ModelError::NewerCard`], never a guess (a newer program may have
//!   changed what a field means);
//! - no `card_version`, or 0: [`ModelError::CardVersion`].
//!
//! When to bump: a field is removed or renamed, or changes type or meaning. Then add the step
//! from the previous version to [`UPGRADES`] and a test reading a card of the previous version.
//! A new field that older cards lack needs no bump when it has a `#[serde(default)]` that is
//! true of those older models.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::reference::Reference;
use crate::{meta, ModelError};

/// Version of the card's JSON layout that this program writes and reads.
///
/// - 1: the first layout.
/// - 2: the facts of the run that are not facts of the model (`created_at`, `threads`,
///   `timings`, `data.file`) moved into [`RunInfo`] (`run`), which the card inside the ONNX
///   file leaves out, so the same data, schema, parameters and seed give byte-identical model
///   files (and the same registry version label, which is named by the file's sha256).
pub const CARD_VERSION: u32 = 2;

/// One upgrade step: a card of version `v` (index `v - 1`) becomes a card of version `v + 1`.
pub type Upgrade = fn(&mut Map<String, Value>) -> Result<(), ModelError>;

/// The upgrade steps of older card versions, oldest first: `UPGRADES[v - 1]` turns version `v`
/// into `v + 1`, so `UPGRADES.len() == CARD_VERSION - 1`.
pub const UPGRADES: &[Upgrade] = &[v1_to_v2];

/// Version 1 -> 2: `created_at`, `threads`, `timings` and `data.file` move into `run`.
fn v1_to_v2(map: &mut Map<String, Value>) -> Result<(), ModelError> {
    let missing = |f: &str| ModelError::CardVersion(format!("a version-1 model card lacks `{f}`"));
    let created_at = map
        .remove("created_at")
        .ok_or_else(|| missing("created_at"))?;
    let threads = map.remove("threads").ok_or_else(|| missing("threads"))?;
    let timings = map.remove("timings").ok_or_else(|| missing("timings"))?;
    let data_file = map
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .and_then(|d| d.remove("file"))
        .ok_or_else(|| missing("data.file"))?;
    let mut run = Map::new();
    run.insert("created_at".into(), created_at);
    run.insert("data_file".into(), data_file);
    run.insert("threads".into(), threads);
    run.insert("timings".into(), timings);
    map.insert("run".into(), Value::Object(run));
    Ok(())
}

const _: () = assert!(UPGRADES.len() as u32 == CARD_VERSION - 1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub card_version: u32,
    pub name: String,
    /// `gbdt` or `logistic`.
    pub algo: String,
    /// What the model was fitted to: `binary` (seized or not; the score is a probability) or
    /// `revenue` (Tweedie on the revenue recovered; the score is the expected revenue, see
    /// [`crate::meta::Prediction`]). Cards written before it existed are `binary`.
    #[serde(default = "default_objective")]
    pub objective: String,
    pub customs_risk_version: String,
    pub data: DataInfo,
    pub schema: SchemaInfo,
    pub split: SplitInfo,
    /// Algorithm parameters as given (after defaults).
    pub params: serde_json::Value,
    /// Feature pipeline configuration.
    pub pipeline: serde_json::Value,
    pub seed: u64,
    /// Metrics on the validation period (labelled rows dated on or after `split.valid_from`).
    pub validation: Option<ValidationMetrics>,
    pub features: Vec<String>,
    /// GBDT: gain and split-count importance per feature (sorted by gain, descending).
    pub importance: Vec<Importance>,
    /// GBDT: number of trees kept (early stopping), if a validation set was used.
    pub best_iteration: Option<usize>,
    /// How the shipped model was fitted: refit on every labelled row or not, row weights,
    /// the solver's convergence. (`validation` describes the fit before the validation
    /// period, which chose the setting.) Absent in cards written before it existed.
    #[serde(default)]
    pub fit: FitInfo,
    /// Quantiles 0, 1, ..., 100 % of the validation scores: the reference distribution for
    /// percentiles and channel thresholds when scoring ([`ModelCard::reference`]).
    pub score_quantiles: Vec<f32>,
    /// Training distribution of every feature (10 quantile bins + a missing bin), the
    /// reference for feature drift (PSI) when the model is evaluated on new data: the rows of
    /// the training file (every row, inspected or not; at most 200,000 evenly spaced) through
    /// the shipped pipeline, i.e. the features as scoring computes them.
    pub feature_bins: Vec<FeatureBins>,
    /// The facts of the training run that are not facts of the model: when, where from, how
    /// fast. Written in the card beside the model (`NAME.card.json`); left out of the card
    /// inside the ONNX file ([`ModelCard::for_model_file`]), whose bytes then depend only on
    /// the data, schema, parameters, seed and program version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
}

/// How one training run went (see [`ModelCard::run`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// UTC, RFC 3339.
    pub created_at: String,
    /// The training data's path as given (the data's identity is `data.sha256`).
    pub data_file: String,
    /// Worker threads (the model does not depend on them).
    pub threads: usize,
    /// Wall-clock seconds per stage (read, features, train, validate, export).
    pub timings: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    pub feature: String,
    /// Interior bin edges (strictly increasing); m edges give m + 1 value bins.
    pub edges: Vec<f64>,
    /// Training share per bin: m + 1 value bins, then the missing (NaN) bin.
    pub expected: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// sha256 of the file's bytes.
    pub sha256: String,
    pub rows_read: u64,
    pub rows_rejected: u64,
    /// Rows with an inspection outcome.
    pub labelled: u64,
    pub positives: u64,
    pub date_min: String,
    pub date_max: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfo {
    pub name: String,
    /// sha256 of the validated schema's canonical JSON.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// First day of the validation period (YYYY-MM-DD).
    pub valid_from: String,
    pub train_rows: u64,
    pub train_positives: u64,
    pub valid_rows: u64,
    pub valid_positives: u64,
}

fn default_objective() -> String {
    "binary".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationMetrics {
    pub rows: u64,
    pub positives: u64,
    /// Of the score against the seizure label (for a revenue model: of the predicted revenue).
    pub roc_auc: Option<f64>,
    /// Average precision (scikit-learn's definition).
    pub pr_auc: Option<f64>,
    /// Binary models only (a revenue model's score is not a probability).
    pub log_loss: Option<f64>,
    /// Revenue models: mean unit Tweedie deviance of the predicted revenue against the
    /// revenue recovered (clean inspections 0), with the model's variance power. Absent for
    /// binary models and in older cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tweedie_deviance: Option<f64>,
    /// Precision (hit rate), recall and revenue caught (share of the validation revenue among
    /// the top k by score) at inspection rates 1, 2, 5, 10 %.
    pub at_budget: Vec<BudgetMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetMetrics {
    pub rate: f64,
    pub k: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub revenue_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub feature: String,
    pub gain: f64,
    pub splits: f64,
}

/// How the shipped model was fitted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FitInfo {
    /// Fitted again on every labelled row (validation period included) with the setting
    /// chosen on validation; false: the model that was validated is shipped.
    pub refit: bool,
    /// Labelled rows (and positives) the shipped model learned from.
    pub rows: u64,
    pub positives: u64,
    /// GBDT: trees in the shipped model.
    pub trees: Option<usize>,
    /// `none` or `ipw` (1 / propensity, clipped at `ipw_max_weight`).
    pub sample_weight: String,
    pub ipw_max_weight: Option<f64>,
    /// Rows whose weight was clipped.
    pub ipw_clipped_rows: Option<u64>,
    /// Kish's effective sample size `(Σw)² / Σw²` of the weights.
    pub effective_rows: Option<f64>,
    /// Logistic regression: the solver's report for the shipped model.
    pub solver: Option<SolverInfo>,
}

/// Convergence of an iterative solver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverInfo {
    pub iterations: u64,
    /// Cost and gradient evaluations, line search included.
    pub evaluations: u64,
    /// Largest absolute component of the (mean) objective's gradient at the solution.
    pub gradient_max: f64,
    pub objective: f64,
    /// `gradient`, `cost` (converged) or `max_iter`, `line_search` (not converged).
    pub stop: String,
    pub converged: bool,
}

impl ModelCard {
    /// Read a card from its JSON text, upgrading an older `card_version` (see the module doc).
    pub fn from_json(text: &str) -> Result<ModelCard, ModelError> {
        let value: Value = serde_json::from_str(text).map_err(|source| ModelError::Json {
            what: "the model card",
            source,
        })?;
        ModelCard::from_value(value)
    }

    /// [`ModelCard::from_json`] for an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<ModelCard, ModelError> {
        let Value::Object(mut map) = value else {
            return Err(ModelError::CardVersion(
                "the model card is not a JSON object".into(),
            ));
        };
        let version = card_version(&map)?;
        upgrade(&mut map, version, CARD_VERSION, UPGRADES)?;
        serde_json::from_value(Value::Object(map)).map_err(|source| ModelError::Json {
            what: "the model card",
            source,
        })
    }

    /// The card in a file's `metadata_props` ([`meta::CARD`]); `Ok(None)` when the file has
    /// none (a foreign model), an error when it has one that cannot be read.
    pub fn from_metadata(
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<ModelCard>, ModelError> {
        metadata
            .get(meta::CARD)
            .map(|t| ModelCard::from_json(t))
            .transpose()
    }

    /// The card as it goes into the model file: without [`ModelCard::run`].
    pub fn for_model_file(&self) -> ModelCard {
        ModelCard {
            run: None,
            ..self.clone()
        }
    }

    /// The card as pretty JSON (what `cr-train` writes beside the model and into the file).
    pub fn to_json_pretty(&self) -> Result<String, ModelError> {
        serde_json::to_string_pretty(self).map_err(|source| ModelError::Json {
            what: "the model card",
            source,
        })
    }

    /// The reference distribution: the validation score quantiles; `None` when the card has
    /// none (no validation period).
    pub fn reference(&self) -> Result<Option<Reference>, ModelError> {
        Reference::from_f32(&self.score_quantiles)
    }
}

fn card_version(map: &Map<String, Value>) -> Result<u32, ModelError> {
    let v = map
        .get("card_version")
        .ok_or_else(|| ModelError::CardVersion("the model card has no card_version".into()))?;
    match v.as_u64().and_then(|v| u32::try_from(v).ok()) {
        Some(0) | None => Err(ModelError::CardVersion(format!(
            "the model card's card_version {v} is not a version number (1, 2, ...)"
        ))),
        Some(v) => Ok(v),
    }
}

/// Upgrade a version-`from` card to version `to` with `steps` (`steps[v - 1]`: v -> v + 1),
/// setting `card_version` after each step. A version above `to` is [`ModelError::NewerCard`].
pub fn upgrade(
    map: &mut Map<String, Value>,
    from: u32,
    to: u32,
    steps: &[Upgrade],
) -> Result<(), ModelError> {
    if from > to {
        return Err(ModelError::NewerCard {
            found: from,
            supported: to,
        });
    }
    for v in from..to {
        let step = steps.get(v as usize - 1).ok_or_else(|| {
            ModelError::CardVersion(format!("no upgrade from card version {v} to {}", v + 1))
        })?;
        step(map)?;
        map.insert("card_version".into(), Value::from(v + 1));
    }
    Ok(())
}
