//! Plain metrics on fully labelled rows: `scores[i]` with `labels[i]`, optional weights.
//!
//! Definitions (each cross-checked against scikit-learn 1.9 in `tests/it/sklearn.rs`):
//! - **ROC-AUC**: Mann–Whitney with midrank ties, P(s⁺ > s⁻) + ½·P(s⁺ = s⁻); with weights
//!   each pair counts w⁺·w⁻ (= `roc_auc_score(y, s, sample_weight=w)`). Needs both classes,
//!   otherwise [`EvalError::OneClass`].
//! - **Average precision**: `Σ_t (R_t − R_{t−1})·P_t` over distinct score thresholds, highest
//!   first (= `average_precision_score`). Needs a positive; 1.0 when every row is positive.
//! - **Log loss**: mean of −[y·ln p + (1−y)·ln(1−p)], with p and 1−p clipped to
//!   [ε, 1−ε], ε = 2.22e-16 (= `log_loss(y, p, labels=[0, 1])`). Scores must be in [0, 1].
//! - **Brier**: mean (p − y)² (= `brier_score_loss`).
//! - **Budget metrics**: the top `k` rows (see [`Budget::k`]) by score descending, ties by row
//!   index ascending. precision = positives in top-k / k; recall = positives in top-k / all
//!   positives; revenue share = revenue in top-k / all revenue; lift = recall / (k/n).
//! - **Calibration**: `n_bins` equal-width bins on [0, 1], right-closed `(lo, hi]` with the
//!   first bin also holding 0 (= `calibration_curve(strategy="uniform")`); ECE = Σ_b (n_b/n)·
//!   |fraction positive_b − mean predicted_b|.

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::core::{self, sort_order};
use crate::error::EvalError;

fn check_len(what: &str, got: usize, expected: usize) -> Result<(), EvalError> {
    if got != expected {
        return Err(EvalError::LengthMismatch {
            what: what.into(),
            got,
            expected,
        });
    }
    Ok(())
}

fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<(), EvalError> {
    if let Some(w) = weights {
        check_len("weights", w.len(), n)?;
        if let Some(row) = w.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(EvalError::InvalidRow {
                row,
                column: "weight",
                why: format!("is {}, must be finite and >= 0", w[row]),
            });
        }
    }
    Ok(())
}

pub(crate) fn check_probabilities(metric: &'static str, p: &[f64]) -> Result<(), EvalError> {
    if let Some(row) = p.iter().position(|x| !(*x >= 0.0 && *x <= 1.0)) {
        if !p[row].is_finite() {
            return Err(EvalError::BadScore { row, value: p[row] });
        }
        return Err(EvalError::NotProbability {
            metric,
            row,
            value: p[row],
        });
    }
    Ok(())
}

fn wfn(weights: Option<&[f64]>) -> impl Fn(usize) -> f64 + '_ {
    move |i| weights.map_or(1.0, |w| w[i])
}

/// ROC-AUC (midrank ties). Errors: NaN/∞ score, length mismatch, one class.
pub fn roc_auc(scores: &[f64], labels: &[bool], weights: Option<&[f64]>) -> Result<f64, EvalError> {
    check_len("labels", labels.len(), scores.len())?;
    check_weights(weights, scores.len())?;
    let order = sort_order(scores)?;
    let (auc, n_pos, n_neg, w_pos, w_neg) =
        core::auc_weighted(&order, scores, |i| labels[i], wfn(weights));
    if !(w_pos > 0.0 && w_neg > 0.0) {
        return Err(EvalError::OneClass {
            metric: "ROC-AUC",
            positives: n_pos,
            negatives: n_neg,
        });
    }
    Ok(auc)
}

/// Average precision, scikit-learn's definition (no interpolation).
pub fn average_precision(
    scores: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
) -> Result<f64, EvalError> {
    check_len("labels", labels.len(), scores.len())?;
    check_weights(weights, scores.len())?;
    let order = sort_order(scores)?;
    let ap = core::average_precision_weighted(&order, scores, |i| labels[i], wfn(weights));
    if ap.is_nan() {
        let positives = labels.iter().filter(|&&b| b).count();
        return Err(EvalError::OneClass {
            metric: "average precision",
            positives,
            negatives: labels.len() - positives,
        });
    }
    Ok(ap)
}

/// Machine epsilon used to clip probabilities in [`log_loss`].
pub const LOG_LOSS_EPS: f64 = f64::EPSILON;

/// Per-row log loss with sklearn's clipping.
#[inline]
pub(crate) fn row_log_loss(p: f64, y: bool) -> f64 {
    if y {
        -p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
    } else {
        -(1.0 - p).clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
    }
}

/// Mean log loss. Scores must be probabilities in [0, 1].
pub fn log_loss(probs: &[f64], labels: &[bool], weights: Option<&[f64]>) -> Result<f64, EvalError> {
    weighted_mean("log loss", probs, labels, weights, row_log_loss)
}

/// Brier score: mean squared error of the probabilities.
pub fn brier_score(
    probs: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
) -> Result<f64, EvalError> {
    weighted_mean("Brier score", probs, labels, weights, |p, y| {
        (p - if y { 1.0 } else { 0.0 }).powi(2)
    })
}

fn weighted_mean(
    metric: &'static str,
    probs: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
    f: impl Fn(f64, bool) -> f64,
) -> Result<f64, EvalError> {
    check_len("labels", labels.len(), probs.len())?;
    check_weights(weights, probs.len())?;
    check_probabilities(metric, probs)?;
    let w = wfn(weights);
    let (mut sw, mut s) = (0.0, 0.0);
    for i in 0..probs.len() {
        let wi = w(i);
        if wi > 0.0 {
            sw += wi;
            s += wi * f(probs[i], labels[i]);
        }
    }
    if sw > 0.0 {
        Ok(s / sw)
    } else {
        Err(EvalError::Empty { metric })
    }
}

/// Mean unit Tweedie deviance of predictions `mu` (> 0) against amounts `y` (>= 0), variance
/// power `power` in (1, 2):
/// `2·[y^(2−p)/((1−p)(2−p)) − y·μ^(1−p)/(1−p) + μ^(2−p)/(2−p)]`
/// (= scikit-learn's `mean_tweedie_deviance(y, mu, power=p)`). 0 when every `μ = y`.
pub fn tweedie_deviance(y: &[f64], mu: &[f64], power: f64) -> Result<f64, EvalError> {
    check_len("amounts", y.len(), mu.len())?;
    if !(power > 1.0 && power < 2.0) {
        return Err(EvalError::Config(format!(
            "Tweedie variance power {power} must be in (1, 2)"
        )));
    }
    if mu.is_empty() {
        return Err(EvalError::Empty {
            metric: "Tweedie deviance",
        });
    }
    let p = power;
    let mut s = 0.0;
    for (i, (&y, &m)) in y.iter().zip(mu).enumerate() {
        if !(m.is_finite() && m > 0.0) {
            return Err(EvalError::InvalidRow {
                row: i,
                column: "prediction",
                why: format!("is {m}; a Tweedie deviance needs predictions > 0"),
            });
        }
        if !(y.is_finite() && y >= 0.0) {
            return Err(EvalError::InvalidRow {
                row: i,
                column: "amount",
                why: format!("is {y}; a Tweedie deviance needs amounts >= 0"),
            });
        }
        let a = if y > 0.0 {
            y.powf(2.0 - p) / ((1.0 - p) * (2.0 - p))
        } else {
            0.0
        };
        s += 2.0 * (a - y * m.powf(1.0 - p) / (1.0 - p) + m.powf(2.0 - p) / (2.0 - p));
    }
    Ok(s / mu.len() as f64)
}

/// One ROC point at a distinct score threshold (rows with score ≥ threshold are flagged).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// One precision–recall point at a distinct score threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
}

/// ROC curve: one point per distinct score (highest first), like
/// `roc_curve(drop_intermediate=False)` without its leading (∞, 0, 0) point.
pub fn roc_curve(
    scores: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
) -> Result<Vec<RocPoint>, EvalError> {
    check_len("labels", labels.len(), scores.len())?;
    check_weights(weights, scores.len())?;
    let order = sort_order(scores)?;
    let c = curve_counts(&order, scores, |i| labels[i], wfn(weights));
    let (tp_all, fp_all) = c.last().map_or((0.0, 0.0), |x| (x.1, x.2));
    if !(tp_all > 0.0 && fp_all > 0.0) {
        let positives = labels.iter().filter(|&&b| b).count();
        return Err(EvalError::OneClass {
            metric: "ROC curve",
            positives,
            negatives: labels.len() - positives,
        });
    }
    Ok(c.iter()
        .map(|&(t, tp, fp)| RocPoint {
            threshold: t,
            fpr: fp / fp_all,
            tpr: tp / tp_all,
        })
        .collect())
}

/// Precision–recall curve: one point per distinct score (highest first), like
/// `precision_recall_curve` reversed and without its final (precision 1, recall 0) point.
pub fn pr_curve(
    scores: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
) -> Result<Vec<PrPoint>, EvalError> {
    check_len("labels", labels.len(), scores.len())?;
    check_weights(weights, scores.len())?;
    let order = sort_order(scores)?;
    let c = curve_counts(&order, scores, |i| labels[i], wfn(weights));
    let tp_all = c.last().map_or(0.0, |x| x.1);
    if tp_all <= 0.0 {
        let positives = labels.iter().filter(|&&b| b).count();
        return Err(EvalError::OneClass {
            metric: "PR curve",
            positives,
            negatives: labels.len() - positives,
        });
    }
    Ok(pr_from_counts(&c, tp_all))
}

pub(crate) fn pr_from_counts(c: &[(f64, f64, f64)], tp_all: f64) -> Vec<PrPoint> {
    c.iter()
        .filter(|&&(_, tp, fp)| tp + fp > 0.0)
        .map(|&(t, tp, fp)| PrPoint {
            threshold: t,
            precision: tp / (tp + fp),
            recall: tp / tp_all,
        })
        .collect()
}

/// (threshold, cumulative weighted TP, cumulative weighted FP) per distinct score among rows
/// with weight > 0.
pub(crate) fn curve_counts(
    order: &[u32],
    scores: &[f64],
    y: impl Fn(usize) -> bool,
    w: impl Fn(usize) -> f64,
) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    core::for_each_tie_group(order, scores, |g| {
        let mut any = false;
        for &r in g {
            let wi = w(r as usize);
            if wi > 0.0 {
                any = true;
                if y(r as usize) {
                    tp += wi;
                } else {
                    fp += wi;
                }
            }
        }
        if any {
            out.push((scores[g[0] as usize], tp, fp));
        }
    });
    out
}

/// Row indices of the top `k` rows: score descending, ties by row index ascending.
pub fn top_k(scores: &[f64], k: usize) -> Result<Vec<usize>, EvalError> {
    let order = sort_order(scores)?;
    Ok(order.iter().take(k).map(|&r| r as usize).collect())
}

/// Metrics of the top-k rows at one budget, fully labelled data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetPoint {
    pub budget: Budget,
    pub k: usize,
    pub positives: usize,
    /// positives in top-k / k (None when k = 0).
    pub precision: Option<f64>,
    /// positives in top-k / all positives (None without positives).
    pub recall: Option<f64>,
    /// revenue in top-k / all revenue (None without revenue or with zero total).
    pub revenue_share: Option<f64>,
    /// recall / (k / n) (None when undefined).
    pub lift: Option<f64>,
}

/// Precision, recall, revenue share and lift at each budget (fully labelled rows).
pub fn at_budgets(
    scores: &[f64],
    labels: &[bool],
    revenue: Option<&[f64]>,
    budgets: &[Budget],
) -> Result<Vec<BudgetPoint>, EvalError> {
    let n = scores.len();
    check_len("labels", labels.len(), n)?;
    if let Some(r) = revenue {
        check_len("revenue", r.len(), n)?;
        if let Some(row) = r.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(EvalError::InvalidRow {
                row,
                column: "revenue",
                why: format!("is {}, must be finite and >= 0", r[row]),
            });
        }
    }
    for b in budgets {
        crate::budget::check(b)?;
    }
    let order = sort_order(scores)?;
    let ks: Vec<usize> = budgets.iter().map(|b| b.k(n)).collect();
    let rv = |i: usize| revenue.map_or(0.0, |r| r[i]);
    let (snaps, total) = core::prefix_snapshots(&order, &ks, |i| labels[i], rv, |_| 1.0);
    Ok(budgets
        .iter()
        .zip(ks.iter().zip(snaps))
        .map(|(b, (&k, s))| {
            let recall = (total.swy > 0.0).then(|| s.swy / total.swy);
            BudgetPoint {
                budget: *b,
                k,
                positives: s.n_pos,
                precision: (k > 0).then(|| s.swy / k as f64),
                recall,
                revenue_share: (revenue.is_some() && total.swr > 0.0).then(|| s.swr / total.swr),
                lift: recall.filter(|_| k > 0).map(|r| r / (k as f64 / n as f64)),
            }
        })
        .collect())
}

/// One reliability-diagram bin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    /// Rows in the bin (sample rows for selection-aware estimates).
    pub n: usize,
    /// Total weight in the bin (= n when unweighted).
    pub weight: f64,
    pub mean_predicted: Option<f64>,
    pub fraction_positive: Option<f64>,
}

/// Reliability bins and expected calibration error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub bins: Vec<CalibrationBin>,
    /// Σ_b (weight_b / total)·|fraction positive_b − mean predicted_b|.
    pub ece: f64,
}

/// Bin index of probability `p` among `n_bins` uniform bins, sklearn's rule: the number of
/// interior edges `j/n_bins` strictly below p.
#[inline]
pub(crate) fn calibration_bin(p: f64, n_bins: usize) -> usize {
    let step = 1.0 / n_bins as f64;
    // interior edges e_j = j·step, j = 1..n_bins-1 (as numpy.linspace computes them)
    let guess = ((p / step).floor() as isize).clamp(0, n_bins as isize - 1) as usize;
    let mut b = guess;
    // adjust for rounding so that b = #{j in 1..n_bins-1 : j·step < p}
    while b > 0 && (b as f64) * step >= p {
        b -= 1;
    }
    while b + 1 < n_bins && ((b + 1) as f64) * step < p {
        b += 1;
    }
    b
}

pub(crate) fn calibration_weighted(
    rows: impl Iterator<Item = (f64, bool, f64)>,
    n_bins: usize,
) -> Option<Calibration> {
    let mut n = vec![0usize; n_bins];
    let mut sw = vec![0.0; n_bins];
    let mut swp = vec![0.0; n_bins];
    let mut swy = vec![0.0; n_bins];
    for (p, y, w) in rows {
        if w <= 0.0 {
            continue;
        }
        let b = calibration_bin(p, n_bins);
        n[b] += 1;
        sw[b] += w;
        swp[b] += w * p;
        if y {
            swy[b] += w;
        }
    }
    let total: f64 = sw.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let step = 1.0 / n_bins as f64;
    let mut ece = 0.0;
    let bins = (0..n_bins)
        .map(|b| {
            let (mp, fp) = if sw[b] > 0.0 {
                (Some(swp[b] / sw[b]), Some(swy[b] / sw[b]))
            } else {
                (None, None)
            };
            if let (Some(mp), Some(fp)) = (mp, fp) {
                ece += sw[b] / total * (fp - mp).abs();
            }
            CalibrationBin {
                lo: b as f64 * step,
                hi: if b + 1 == n_bins {
                    1.0
                } else {
                    (b + 1) as f64 * step
                },
                n: n[b],
                weight: sw[b],
                mean_predicted: mp,
                fraction_positive: fp,
            }
        })
        .collect();
    Some(Calibration { bins, ece })
}

/// Reliability diagram and ECE with `n_bins` uniform bins.
pub fn calibration(
    probs: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
    n_bins: usize,
) -> Result<Calibration, EvalError> {
    check_len("labels", labels.len(), probs.len())?;
    check_weights(weights, probs.len())?;
    check_probabilities("calibration", probs)?;
    if n_bins == 0 {
        return Err(EvalError::Config(
            "calibration needs at least one bin".into(),
        ));
    }
    let w = wfn(weights);
    calibration_weighted(
        (0..probs.len()).map(|i| (probs[i], labels[i], w(i))),
        n_bins,
    )
    .ok_or(EvalError::Empty {
        metric: "calibration",
    })
}

/// One point of the cumulative gains / lift curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GainsPoint {
    /// k / n: share of rows inspected.
    pub rate: f64,
    pub k: usize,
    /// Share of positives in the top k (None if undefined for this sample).
    pub recall: Option<f64>,
    /// Share of revenue in the top k.
    pub revenue_share: Option<f64>,
    /// recall / rate.
    pub lift: Option<f64>,
}

/// Cumulative gains at the given inspection rates (fully labelled rows).
pub fn gains_curve(
    scores: &[f64],
    labels: &[bool],
    revenue: Option<&[f64]>,
    rates: &[f64],
) -> Result<Vec<GainsPoint>, EvalError> {
    let budgets: Vec<Budget> = rates.iter().map(|&r| Budget::Rate(r)).collect();
    let pts = at_budgets(scores, labels, revenue, &budgets)?;
    let n = scores.len();
    Ok(pts
        .into_iter()
        .map(|p| GainsPoint {
            rate: if n > 0 { p.k as f64 / n as f64 } else { 0.0 },
            k: p.k,
            recall: p.recall,
            revenue_share: p.revenue_share,
            lift: p.lift,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tweedie_deviance_from_first_principles() {
        // mu = y: no deviance; y = 0: 2 mu^(2-p) / (2-p); p = 1.5, y = 4, mu = 1:
        // 2 [4^0.5/(-0.5*0.5) - 4/(-0.5) + 1/0.5] = 2 [-8 + 8 + 2] = 4
        let d = super::tweedie_deviance(&[3.0, 0.5], &[3.0, 0.5], 1.5).unwrap();
        assert!(d.abs() < 1e-12, "{d}");
        let d = super::tweedie_deviance(&[0.0], &[4.0], 1.5).unwrap();
        assert!((d - 2.0 * 2.0 / 0.5).abs() < 1e-12, "{d}");
        let d = super::tweedie_deviance(&[4.0, 0.0], &[1.0, 4.0], 1.5).unwrap();
        assert!((d - (4.0 + 8.0) / 2.0).abs() < 1e-12, "{d}");
        assert!(super::tweedie_deviance(&[1.0], &[0.0], 1.5).is_err());
        assert!(super::tweedie_deviance(&[-1.0], &[1.0], 1.5).is_err());
    }

    use super::*;

    #[test]
    fn calibration_bins_follow_sklearn_edges() {
        assert_eq!(calibration_bin(0.0, 10), 0);
        assert_eq!(calibration_bin(0.1, 10), 0); // right-closed
        assert_eq!(calibration_bin(0.1000001, 10), 1);
        assert_eq!(calibration_bin(0.3, 10), 2); // 3*0.1 = 0.30000000000000004 > 0.3
        assert_eq!(calibration_bin(1.0, 10), 9);
        assert_eq!(calibration_bin(0.55, 10), 5);
    }

    #[test]
    fn one_class_auc_is_an_error() {
        let e = roc_auc(&[0.1, 0.2], &[true, true], None).unwrap_err();
        assert!(matches!(
            e,
            EvalError::OneClass {
                positives: 2,
                negatives: 0,
                ..
            }
        ));
        assert_eq!(average_precision(&[0.1, 0.2], &[true, true], None), Ok(1.0));
    }
}
