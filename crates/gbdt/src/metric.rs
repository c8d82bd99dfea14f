//! Evaluation metrics used for training progress and early stopping.
//!
//! All sums run over fixed-size chunks combined in order (thread-count independent).

use serde::{Deserialize, Serialize};

use crate::objective::Objective;
use crate::par::chunked_sum2;

/// Metric evaluated on the validation set for early stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalMetric {
    /// Mean binary log loss (lower is better). Binary objective only.
    LogLoss,
    /// Area under the ROC curve (higher is better). Binary objective only.
    Auc,
    /// Mean squared error of the prediction (lower is better).
    L2,
    /// Mean Tweedie negative log-likelihood (lower is better). Tweedie objective only.
    Tweedie,
}

impl EvalMetric {
    /// The default metric for an objective: log loss, l2, tweedie.
    pub fn default_for(obj: &Objective) -> Self {
        match obj {
            Objective::Binary { .. } => EvalMetric::LogLoss,
            Objective::Regression => EvalMetric::L2,
            Objective::Tweedie { .. } => EvalMetric::Tweedie,
        }
    }

    /// Whether larger values are better.
    pub fn higher_is_better(&self) -> bool {
        matches!(self, EvalMetric::Auc)
    }

    /// Whether the metric makes sense for the objective.
    pub(crate) fn compatible_with(&self, obj: &Objective) -> bool {
        matches!(
            (self, obj),
            (
                EvalMetric::LogLoss | EvalMetric::Auc,
                Objective::Binary { .. }
            ) | (EvalMetric::L2, _)
                | (EvalMetric::Tweedie, Objective::Tweedie { .. })
        )
    }

    /// Evaluate on raw margins `raw` for labels `y` (optional weights `w`).
    pub fn eval(&self, obj: &Objective, y: &[f32], raw: &[f64], w: Option<&[f32]>) -> f64 {
        match self {
            EvalMetric::Auc => {
                let scores: Vec<f64> = raw.to_vec();
                auc(y, &scores, w)
            }
            EvalMetric::LogLoss => {
                let binary = Objective::Binary {
                    scale_pos_weight: 1.0,
                };
                weighted_mean(y.len(), w, |i| binary.loss(y[i] as f64, raw[i]))
            }
            EvalMetric::L2 => weighted_mean(y.len(), w, |i| {
                let d = obj.transform(raw[i]) - y[i] as f64;
                d * d
            }),
            EvalMetric::Tweedie => weighted_mean(y.len(), w, |i| obj.loss(y[i] as f64, raw[i])),
        }
    }
}

fn weighted_mean<F: Fn(usize) -> f64 + Sync>(n: usize, w: Option<&[f32]>, f: F) -> f64 {
    let (s, sw) = chunked_sum2(n, |i| {
        let wi = w.map_or(1.0, |w| w[i] as f64);
        (wi * f(i), wi)
    });
    if sw > 0.0 {
        s / sw
    } else {
        f64::NAN
    }
}

/// ROC AUC with ties handled by the trapezoid rule (equal scores form one ROC step), optional
/// weights. Labels > 0.5 are positive. Returns NaN when one class is absent.
pub fn auc(y: &[f32], scores: &[f64], w: Option<&[f32]>) -> f64 {
    let n = y.len().min(scores.len());
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    let mut tp = 0.0f64;
    let mut fp = 0.0f64;
    let mut area = 0.0f64;
    let mut i = 0;
    while i < n {
        let s = scores[order[i] as usize];
        let (mut dtp, mut dfp) = (0.0, 0.0);
        while i < n && scores[order[i] as usize].total_cmp(&s).is_eq() {
            let r = order[i] as usize;
            let wi = w.map_or(1.0, |w| w[r] as f64);
            if y[r] > 0.5 {
                dtp += wi;
            } else {
                dfp += wi;
            }
            i += 1;
        }
        area += dfp * (tp + 0.5 * dtp);
        tp += dtp;
        fp += dfp;
    }
    if tp <= 0.0 || fp <= 0.0 {
        return f64::NAN;
    }
    area / (tp * fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUC from its definition: P(score_pos > score_neg) + 0.5 P(tie), all pairs enumerated.
    fn auc_pairs(y: &[f32], s: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..y.len() {
            for j in 0..y.len() {
                if y[i] > 0.5 && y[j] <= 0.5 {
                    den += 1.0;
                    if s[i] > s[j] {
                        num += 1.0;
                    } else if s[i] == s[j] {
                        num += 0.5;
                    }
                }
            }
        }
        num / den
    }

    #[test]
    fn auc_matches_pairwise_definition() {
        let y = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        let s = [0.9, 0.1, 0.4, 0.4, 0.8, 0.4, 0.3, 0.95, 0.1, 0.2];
        let a = auc(&y, &s, None);
        assert!((a - auc_pairs(&y, &s)).abs() < 1e-12);
        // integer weights == repeated rows
        let w = [2.0f32, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0];
        let (mut yr, mut sr) = (vec![], vec![]);
        for i in 0..y.len() {
            for _ in 0..w[i] as usize {
                yr.push(y[i]);
                sr.push(s[i]);
            }
        }
        assert!((auc(&y, &s, Some(&w)) - auc_pairs(&yr, &sr)).abs() < 1e-12);
    }

    #[test]
    fn logloss_metric_matches_definition() {
        let y = [1.0f32, 0.0, 1.0];
        let raw = [0.3, -1.0, 2.0];
        let m = EvalMetric::LogLoss.eval(&Objective::default(), &y, &raw, None);
        let p = |s: f64| 1.0 / (1.0 + (-s).exp());
        let expect = -((p(0.3)).ln() + (1.0 - p(-1.0)).ln() + p(2.0).ln()) / 3.0;
        assert!((m - expect).abs() < 1e-12);
    }
}
