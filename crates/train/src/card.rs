//! The model card: what a model was trained on, how, and how well it did on the validation
//! period. Written beside the model (`NAME.card.json`) and inside the ONNX file's
//! `metadata_props` (`customs_risk.card`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the card's JSON layout.
pub const CARD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub card_version: u32,
    pub name: String,
    /// `gbdt` or `logistic`.
    pub algo: String,
    /// UTC, RFC 3339.
    pub created_at: String,
    pub customs_risk_version: String,
    pub data: DataInfo,
    pub schema: SchemaInfo,
    pub split: SplitInfo,
    /// Algorithm parameters as given (after defaults).
    pub params: serde_json::Value,
    /// Feature pipeline configuration.
    pub pipeline: serde_json::Value,
    pub seed: u64,
    pub threads: usize,
    /// Wall-clock seconds per stage (read, features, train, validate, export).
    pub timings: BTreeMap<String, f64>,
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
    /// percentiles and channel thresholds when scoring.
    pub score_quantiles: Vec<f32>,
    /// Training distribution of every feature (10 quantile bins + a missing bin), the
    /// reference for feature drift (PSI) when the model is evaluated on new data.
    pub feature_bins: Vec<FeatureBins>,
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
    pub file: String,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationMetrics {
    pub rows: u64,
    pub positives: u64,
    pub roc_auc: Option<f64>,
    /// Average precision (scikit-learn's definition).
    pub pr_auc: Option<f64>,
    pub log_loss: Option<f64>,
    /// Precision (hit rate) and recall at inspection rates 1, 2, 5, 10 %.
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
