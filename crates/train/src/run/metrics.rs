//! Validation metrics and the reference distributions stored in the card.

use cr_eval::budget::Budget;

use crate::card::{BudgetMetrics, FeatureBins, ValidationMetrics};
use crate::TrainError;

/// Inspection rates reported in every card.
pub const CARD_RATES: [f64; 4] = [0.01, 0.02, 0.05, 0.10];

/// 10 quantile bins per feature over the training matrix, with the share of each bin.
pub(crate) fn feature_bins(
    names: &[String],
    x: &[f32],
    nf: usize,
) -> Result<Vec<FeatureBins>, TrainError> {
    let n = x.len().checked_div(nf).unwrap_or(0);
    let err = |e: cr_eval::EvalError| TrainError::Export(format!("feature bins: {e}"));
    names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let col: Vec<f64> = (0..n).map(|i| f64::from(x[i * nf + j])).collect();
            let edges = cr_eval::drift::quantile_edges(&col, 10);
            let expected = cr_eval::drift::bin_proportions(&col, &edges).map_err(err)?;
            Ok(FeatureBins {
                feature: name.clone(),
                edges,
                expected,
            })
        })
        .collect()
}

/// 0 %, 1 %, ..., 100 % quantiles (nearest rank, lower) of the scores, as f32.
pub fn quantiles(scores: &[f64]) -> Vec<f32> {
    if scores.is_empty() {
        return Vec::new();
    }
    let mut s: Vec<f64> = scores.iter().copied().filter(|v| !v.is_nan()).collect();
    if s.is_empty() {
        return Vec::new();
    }
    s.sort_by(f64::total_cmp);
    (0..=100)
        .map(|q| s[((s.len() - 1) * q) / 100] as f32)
        .collect()
}

/// Metrics of validation `scores` against the seizure `labels` and the `revenue` recovered.
/// `tweedie_power`: the scores are expected revenue (a revenue model): no log loss, and the
/// mean Tweedie deviance against `revenue` with that variance power.
pub(crate) fn validation_metrics(
    scores: &[f64],
    labels: &[bool],
    revenue: Option<&[f64]>,
    tweedie_power: Option<f64>,
) -> Result<Option<ValidationMetrics>, TrainError> {
    if scores.is_empty() {
        return Ok(None);
    }
    let err = |e: cr_eval::EvalError| TrainError::Export(format!("validation metrics: {e}"));
    let roc_auc = cr_eval::metrics::roc_auc(scores, labels, None).ok();
    let pr_auc = cr_eval::metrics::average_precision(scores, labels, None).ok();
    let (log_loss, tweedie_deviance) = match (tweedie_power, revenue) {
        (None, _) => (cr_eval::metrics::log_loss(scores, labels, None).ok(), None),
        (Some(p), Some(r)) => (
            None,
            Some(cr_eval::metrics::tweedie_deviance(r, scores, p).map_err(err)?),
        ),
        (Some(_), None) => {
            return Err(TrainError::Export(
                "validation metrics: a revenue model without validation revenue".into(),
            ))
        }
    };
    let budgets: Vec<Budget> = CARD_RATES.iter().map(|&r| Budget::Rate(r)).collect();
    let pts = cr_eval::metrics::at_budgets(scores, labels, revenue, &budgets).map_err(err)?;
    Ok(Some(ValidationMetrics {
        rows: scores.len() as u64,
        positives: labels.iter().filter(|&&b| b).count() as u64,
        roc_auc,
        pr_auc,
        log_loss,
        tweedie_deviance,
        at_budget: pts
            .iter()
            .zip(CARD_RATES)
            .map(|(p, rate)| BudgetMetrics {
                rate,
                k: p.k,
                precision: p.precision,
                recall: p.recall,
                revenue_share: p.revenue_share,
            })
            .collect(),
    }))
}
