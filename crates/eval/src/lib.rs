//! # cr-eval: judging risk scores
//!
//! Owns metrics, selection-aware estimates, model comparison, drift (PSI) and self-contained
//! HTML reports. It sees **scores and labels only**: it must not depend on any model crate
//! (`cr-gbdt`, `cr-linear`, `cr-train`, `cr-infer`, …) nor on `cr-data` — callers hand in plain
//! vectors, so any model (ours or a notebook's) is judged the same way.
//!
//! ## Entry points
//! - [`evaluate`]`(&EvalInput, &EvalConfig) -> Result<EvaluationReport, EvalError>`
//! - [`compare`]`(&[(name, scores)], &EvalRows, &EvalConfig) -> Result<ComparisonReport, EvalError>`
//! - [`render_evaluation_html`] / [`render_comparison_html`]: one self-contained HTML page
//!   (inline SVG, no script, no network); the report structs also serialise to JSON.
//! - Plain metrics on fully labelled slices in [`metrics`]: [`roc_auc`], [`average_precision`],
//!   [`log_loss`], [`brier_score`], [`roc_curve`], [`pr_curve`], [`at_budgets`],
//!   [`gains_curve`], [`calibration`], [`top_k`]; [`delong_test`]; drift: [`psi`],
//!   [`bin_counts`], [`bin_proportions`], [`quantile_edges`], [`feature_psi`], [`score_psi`].
//!
//! ```
//! use cr_eval::{evaluate, EvalConfig, EvalInput, EvalRows, Estimator};
//! let labels = [true, false, true, false, false, false, true, false];
//! let input = EvalInput {
//!     model: "demo".into(),
//!     scores: vec![0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
//!     rows: EvalRows::fully_labelled(&labels),
//!     ..EvalInput::default()
//! };
//! let report = evaluate(&input, &EvalConfig::default()).unwrap();
//! let auc = report.estimator(Estimator::Inspected).unwrap().roc_auc.unwrap();
//! assert!((auc.value - 10.0 / 15.0).abs() < 1e-12); // 10 of 15 pos/neg pairs ordered correctly
//! let html = cr_eval::render_evaluation_html(&report);
//! assert!(html.contains("<svg"));
//! ```
//!
//! ## Definitions and ties
//! - **Order.** Rows are sorted once by score descending, ties broken by row index ascending
//!   (`-0.0 == 0.0`). A budget's top-k is the first k rows of that order, `k = ceil(rate·n)`
//!   ([`Budget::k`]; products within 1e-9 of an integer are that integer). The index rule is
//!   deterministic but arbitrary among tied rows at the cut-off: give distinct scores if it
//!   matters.
//! - **ROC-AUC** uses midranks (a tied positive/negative pair counts ½), like scikit-learn;
//!   undefined (error / `None` with a note) unless both classes are present.
//! - **Average precision** is scikit-learn's: Σ over distinct thresholds of ΔRecall·Precision.
//! - **Log loss** clips p to [ε, 1−ε] (ε = f64::EPSILON) like scikit-learn 1.9; **Brier** is the
//!   mean squared error; both need scores in [0, 1] (otherwise omitted with a note).
//! - **Precision@budget** (hit rate) = positives in top-k / labelled rows in top-k;
//!   **recall** = positives in top-k / positives; **revenue share** = revenue in top-k /
//!   revenue; **lift** = recall / (k/n). With weights every count is a sum of weights.
//! - **Calibration**: uniform bins, right-closed like `sklearn.calibration.calibration_curve`;
//!   ECE = Σ_b (w_b/W)·|observed_b − predicted_b|.
//! - **NaN or ±∞ scores are errors** ([`EvalError::BadScore`]), never numbers.
//!
//! ## Selection-aware estimates
//! Only inspected declarations carry labels, and inspections were chosen by rules or models,
//! so metrics on inspected rows flatter whoever chose them. Every estimate carries an
//! [`Estimator`]: `Inspected` (all labelled rows, biased unless every row is labelled),
//! `RandomSample` (labelled rows with selection = random: unbiased) and `Ipw` (labelled rows
//! weighted by 1/propensity, Hajek form of Horvitz–Thompson). Budget metrics always take the
//! model's top-k over **all** rows and estimate the hit rate among the sample rows inside it.
//! Intervals: see [`estimate`] (Wilson, linearised normal, DeLong, Boyd logit) and
//! [`compare`] (paired bootstrap). The fraud rate among uninspected rows is estimated from
//! the random sample (difference estimator) and by IPW with weights (1−π)/π.
//!
//! ## Determinism
//! Single-threaded passes after one sort; the paired bootstrap uses `ChaCha8Rng` seeded from
//! `cfg.seed` with stream = replicate index, so results do not depend on the thread count.

mod bootstrap;
pub mod breakdown;
pub mod budget;
pub mod compare;
mod core;
pub mod drift;
mod error;
pub mod estimate;
mod html;
pub mod metrics;
pub mod offpolicy;
pub mod report;
pub mod rows;
pub mod stats;

pub use breakdown::{month_key, Breakdown, GroupRow, OTHER_GROUP};
pub use budget::Budget;
pub use compare::{
    compare, delong_test, BudgetDiff, ComparisonReport, DeLongTest, Diff, PairComparison,
    PairEstimates, TopKOverlap,
};
pub use drift::{
    bin_counts, bin_index, bin_proportions, feature_inputs, feature_psi, psi, psi_terms,
    quantile_edges, score_psi, DriftLevel, FeatureDriftInput, PsiBin, PsiResult, PSI_FLOOR,
};
pub use error::EvalError;
pub use estimate::{BudgetEstimate, CiMethod, Estimate, EstimatorReport};
pub use html::{render_comparison_html, render_evaluation_html};
pub use metrics::{
    at_budgets, average_precision, brier_score, calibration, gains_curve, log_loss, pr_curve,
    roc_auc, roc_curve, top_k, BudgetPoint, Calibration, CalibrationBin, GainsPoint, PrPoint,
    RocPoint,
};
pub use report::{evaluate, DriftReport, EvalConfig, EvalInput, EvaluationReport};
pub use rows::{Estimator, EvalRows, Period, SegmentColumn, SelectionKind};
