//! Selection-aware estimates: the same metric computed from different samples of labelled
//! rows, each with a confidence interval, each saying which [`Estimator`] produced it.
//!
//! Notation: the population is all rows handed in (n rows, labelled or not); the sample S_e
//! of estimator e is its labelled rows with weights w_i (1 for `Inspected` and
//! `RandomSample`, 1/π_i for `Ipw`). All point estimates are Hajek ratios Σ w·x / Σ w.
//!
//! Intervals (z = Φ⁻¹(½ + confidence/2)):
//! - proportions from unweighted samples (prevalence, precision, recall): Wilson score;
//! - weighted proportions and all other means/ratios: normal with the linearised (Taylor)
//!   variance of the ratio, e.g. Var(Σwy/Σw) ≈ Σ w²(y − ȳ)² / (Σw)², clipped to the range;
//! - ROC-AUC: DeLong placement variance (weighted placements for `Ipw`, with the n/(n−1)
//!   correction so that unit weights give exactly DeLong's estimate); [0, 1] when a class
//!   has fewer than 2 rows;
//! - average precision: logit interval of Boyd, Eng & Page (2013), logit(AP) ± z/√(n⁺·AP·(1−AP)),
//!   n⁺ = (Kish effective) number of positives.
//!
//! Budget metrics use the model's top-k over ALL rows of the population (k from the
//! population size); the hit rate is then estimated among the sample rows inside the top-k.

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::core::{self, Acc, Placements};
use crate::metrics::{self, Calibration, GainsPoint, PrPoint, RocPoint};
use crate::rows::{Estimator, EvalRows, SelectionKind};
use crate::stats::{wilson, z_for};

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiMethod {
    Wilson,
    /// Normal approximation with a linearised (delta-method) variance.
    Normal,
    DeLong,
    /// Boyd et al. (2013) logit interval for average precision.
    Logit,
    /// Percentile interval of a paired bootstrap.
    PairedBootstrap,
    /// No information: the interval is the whole range.
    Unknown,
}

/// A number with its interval and provenance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub estimator: Estimator,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
    pub ci_method: CiMethod,
    /// Sample rows that carried information (e.g. labelled rows inside the top-k).
    pub n: usize,
}

impl Estimate {
    pub(crate) fn normal(
        est: Estimator,
        value: f64,
        var: f64,
        z: f64,
        n: usize,
        conf: f64,
        range: (f64, f64),
    ) -> Estimate {
        let half = z * var.max(0.0).sqrt();
        Estimate {
            estimator: est,
            value,
            ci_low: (value - half).max(range.0),
            ci_high: (value + half).min(range.1),
            confidence: conf,
            ci_method: CiMethod::Normal,
            n,
        }
    }
    pub(crate) fn wilson(
        est: Estimator,
        successes: f64,
        n: usize,
        z: f64,
        conf: f64,
    ) -> Option<Estimate> {
        let (lo, hi) = wilson(successes, n as f64, z)?;
        Some(Estimate {
            estimator: est,
            value: successes / n as f64,
            ci_low: lo,
            ci_high: hi,
            confidence: conf,
            ci_method: CiMethod::Wilson,
            n,
        })
    }
    /// True when the interval excludes `x`.
    pub fn excludes(&self, x: f64) -> bool {
        x < self.ci_low || x > self.ci_high
    }
}

/// Metrics of the model's top-k at one budget, as estimated by one estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetEstimate {
    pub budget: Budget,
    /// Rows inspected: `budget.k(n_rows)` over all rows.
    pub k: usize,
    /// Sample (labelled) rows inside the top-k.
    pub labelled_in_top_k: usize,
    /// Positive sample rows inside the top-k.
    pub positives_in_top_k: usize,
    /// Hit rate among the top-k.
    pub precision: Option<Estimate>,
    /// Share of all positives that fall in the top-k.
    pub recall: Option<Estimate>,
    /// Share of recovered revenue that falls in the top-k.
    pub revenue_share: Option<Estimate>,
    /// recall / (k / n).
    pub lift: Option<f64>,
}

/// Everything one estimator says about one model on one population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimatorReport {
    pub estimator: Estimator,
    /// True when the numbers are known to be biased (inspected rows of targeted traffic).
    pub biased: bool,
    pub description: String,
    /// Sample rows (labelled rows used by this estimator).
    pub n_sample: usize,
    pub n_positive: usize,
    /// Σ weights (estimated population size for `Ipw`).
    pub weight_sum: f64,
    /// Fraud rate in all traffic.
    pub prevalence: Option<Estimate>,
    /// Fraud rate among uninspected declarations (`RandomSample`, `Ipw` only).
    pub uninspected_fraud_rate: Option<Estimate>,
    pub roc_auc: Option<Estimate>,
    pub average_precision: Option<Estimate>,
    pub log_loss: Option<Estimate>,
    pub brier: Option<Estimate>,
    pub budgets: Vec<BudgetEstimate>,
    pub gains: Vec<GainsPoint>,
    /// Down-sampled for plotting (≤ `curve_points` points); starts at the highest threshold.
    pub roc_curve: Vec<RocPoint>,
    pub pr_curve: Vec<PrPoint>,
    pub calibration: Option<Calibration>,
    pub notes: Vec<String>,
}

/// Per-row data prepared once for all estimators.
pub(crate) struct Prepared<'a> {
    pub scores: &'a [f64],
    pub rows: &'a EvalRows,
    pub y: Vec<bool>,
    pub rev: Vec<f64>,
    pub has_revenue: bool,
    pub probabilities: bool,
    pub fully_labelled: bool,
}

impl<'a> Prepared<'a> {
    pub fn new(scores: &'a [f64], rows: &'a EvalRows) -> Prepared<'a> {
        let y = rows.label.iter().map(|l| l.unwrap_or(false)).collect();
        let rev = rows.revenue.iter().map(|r| r.unwrap_or(0.0)).collect();
        let has_revenue = rows
            .revenue
            .iter()
            .zip(&rows.label)
            .any(|(r, l)| r.is_some() && l.is_some());
        let probabilities = scores.iter().all(|s| (0.0..=1.0).contains(s));
        let fully_labelled = rows.label.iter().all(Option::is_some);
        Prepared {
            scores,
            rows,
            y,
            rev,
            has_revenue,
            probabilities,
            fully_labelled,
        }
    }

    /// Sample weights of an estimator (0 = not in the sample).
    pub fn weights(&self, est: Estimator) -> Vec<f64> {
        let r = self.rows;
        (0..r.len())
            .map(|i| {
                if r.label[i].is_none() {
                    return 0.0;
                }
                match est {
                    Estimator::Inspected => 1.0,
                    Estimator::RandomSample => {
                        if r.selection[i] == Some(SelectionKind::Random) {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    Estimator::Ipw => r.propensity[i].map_or(0.0, |p| 1.0 / p),
                }
            })
            .collect()
    }
}

/// Settings the estimate functions need.
pub(crate) struct EstSettings<'c> {
    pub budgets: &'c [Budget],
    pub gains_rates: &'c [f64],
    pub confidence: f64,
    pub calibration_bins: usize,
    pub curve_points: usize,
}

pub(crate) fn describe(est: Estimator, fully_labelled: bool) -> (bool, String) {
    match est {
        Estimator::Inspected if fully_labelled => {
            (false, "all rows are labelled: every row is used, unweighted (unbiased for these rows)".into())
        }
        Estimator::Inspected => (
            true,
            "all labelled (inspected) rows, unweighted: BIASED towards whoever chose the inspections".into(),
        ),
        Estimator::RandomSample => {
            (false, "labelled rows selected at random, unweighted: unbiased for all traffic".into())
        }
        Estimator::Ipw => (
            false,
            "labelled rows weighted by 1/propensity (Hajek): unbiased if the recorded propensities are right".into(),
        ),
    }
}

/// Hajek proportion Σwy/Σw with its interval (Wilson if unweighted).
fn proportion(est: Estimator, a: &Acc, z: f64, conf: f64) -> Option<Estimate> {
    if a.sw <= 0.0 {
        return None;
    }
    if est != Estimator::Ipw {
        return Estimate::wilson(est, a.n_pos as f64, a.n, z, conf);
    }
    let m = a.swy / a.sw;
    let var = (a.sw2y * (1.0 - 2.0 * m) + m * m * a.sw2) / (a.sw * a.sw);
    Some(Estimate::normal(est, m, var, z, a.n, conf, (0.0, 1.0)))
}

/// AUC with DeLong (or weighted-placement) interval.
pub(crate) fn auc_estimate(
    est: Estimator,
    pl: &Placements,
    w: &[f64],
    z: f64,
    conf: f64,
) -> Option<Estimate> {
    if pl.auc.is_nan() {
        return None;
    }
    let n = pl.n_pos + pl.n_neg;
    if pl.n_pos < 2 || pl.n_neg < 2 {
        return Some(Estimate {
            estimator: est,
            value: pl.auc,
            ci_low: 0.0,
            ci_high: 1.0,
            confidence: conf,
            ci_method: CiMethod::Unknown,
            n,
        });
    }
    let var = auc_variance(pl, None, w);
    let mut e = Estimate::normal(est, pl.auc, var, z, n, conf, (0.0, 1.0));
    e.ci_method = CiMethod::DeLong;
    Some(e)
}

/// DeLong variance of AUC_a (b = None) or of AUC_a − AUC_b (placements on the same rows,
/// same order of rows in `pos`/`neg` lists is NOT assumed: `b` values are looked up by row).
pub(crate) fn auc_variance(
    a: &Placements,
    b: Option<(&Placements, &[f64], &[f64])>,
    w: &[f64],
) -> f64 {
    // b: (placements of model b, dense per-row v10 of b, dense per-row v01 of b)
    let term = |list: &[(u32, f64)],
                auc_a: f64,
                dense_b: Option<(&[f64], f64)>,
                wsum: f64,
                cnt: usize|
     -> f64 {
        if cnt < 2 || wsum <= 0.0 {
            return 0.0;
        }
        let mut s = 0.0;
        for &(r, v) in list {
            let mut d = v - auc_a;
            if let Some((db, auc_b)) = dense_b {
                d -= db[r as usize] - auc_b;
            }
            let wi = w[r as usize];
            s += wi * wi * d * d;
        }
        s / (wsum * wsum) * (cnt as f64 / (cnt as f64 - 1.0))
    };
    match b {
        None => {
            term(&a.pos, a.auc, None, a.w_pos, a.n_pos)
                + term(&a.neg, a.auc, None, a.w_neg, a.n_neg)
        }
        Some((pb, d10, d01)) => {
            term(&a.pos, a.auc, Some((d10, pb.auc)), a.w_pos, a.n_pos)
                + term(&a.neg, a.auc, Some((d01, pb.auc)), a.w_neg, a.n_neg)
        }
    }
}

/// Dense per-row placement vectors (NaN outside the sample): (v10 for positives, v01 for negatives).
pub(crate) fn dense_placements(pl: &Placements, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut d10 = vec![f64::NAN; n];
    let mut d01 = vec![f64::NAN; n];
    for &(r, v) in &pl.pos {
        d10[r as usize] = v;
    }
    for &(r, v) in &pl.neg {
        d01[r as usize] = v;
    }
    (d10, d01)
}

/// Budget estimates for one estimator over the population `order`.
pub(crate) fn budget_estimates(
    p: &Prepared,
    est: Estimator,
    w: &[f64],
    order: &[u32],
    budgets: &[Budget],
    z: f64,
    conf: f64,
) -> Vec<BudgetEstimate> {
    let n = order.len();
    let ks: Vec<usize> = budgets.iter().map(|b| b.k(n)).collect();
    let (snaps, total) = core::prefix_snapshots(order, &ks, |i| p.y[i], |i| p.rev[i], |i| w[i]);
    budgets
        .iter()
        .zip(ks.iter().zip(snaps))
        .map(|(b, (&k, s))| {
            let precision = proportion(est, &s, z, conf);
            let recall = ratio_estimate(
                est,
                s.swy,
                total.swy,
                s.sw2y,
                total.sw2y,
                s.n_pos,
                total.n_pos,
                z,
                conf,
                true,
            );
            let revenue_share = if p.has_revenue {
                ratio_estimate(
                    est,
                    s.swr,
                    total.swr,
                    s.sw2r2,
                    total.sw2r2,
                    s.n,
                    total.n,
                    z,
                    conf,
                    false,
                )
            } else {
                None
            };
            let lift = recall
                .as_ref()
                .filter(|_| k > 0)
                .map(|r| r.value / (k as f64 / n as f64));
            BudgetEstimate {
                budget: *b,
                k,
                labelled_in_top_k: s.n,
                positives_in_top_k: s.n_pos,
                precision,
                recall,
                revenue_share,
                lift,
            }
        })
        .collect()
}

/// R = part/total where part ⊂ total: recall (binary) or revenue share.
#[allow(clippy::too_many_arguments)]
fn ratio_estimate(
    est: Estimator,
    part: f64,
    total: f64,
    part_sq: f64,
    total_sq: f64,
    n_part: usize,
    n_total: usize,
    z: f64,
    conf: f64,
    binary: bool,
) -> Option<Estimate> {
    if total <= 0.0 {
        return None;
    }
    if binary && est != Estimator::Ipw {
        let mut e = Estimate::wilson(est, n_part as f64, n_total, z, conf)?;
        e.n = n_total;
        return Some(e);
    }
    let r = part / total;
    let var =
        (part_sq * (1.0 - r).powi(2) + (total_sq - part_sq).max(0.0) * r * r) / (total * total);
    Some(Estimate::normal(est, r, var, z, n_total, conf, (0.0, 1.0)))
}

/// Hajek mean of a per-row value with linearised variance.
fn mean_estimate(
    est: Estimator,
    vals: impl Iterator<Item = (f64, f64)>,
    z: f64,
    conf: f64,
    range: (f64, f64),
) -> Option<Estimate> {
    let (mut n, mut sw, mut swx, mut sw2, mut sw2x, mut sw2x2) = (0usize, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (x, w) in vals {
        if w > 0.0 {
            n += 1;
            sw += w;
            swx += w * x;
            sw2 += w * w;
            sw2x += w * w * x;
            sw2x2 += w * w * x * x;
        }
    }
    if sw <= 0.0 {
        return None;
    }
    let m = swx / sw;
    let mut var = (sw2x2 - 2.0 * m * sw2x + m * m * sw2) / (sw * sw);
    if est != Estimator::Ipw && n > 1 {
        var *= n as f64 / (n as f64 - 1.0);
    }
    Some(Estimate::normal(est, m, var, z, n, conf, range))
}

fn downsample<T: Copy>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max || max < 2 {
        return v.to_vec();
    }
    let last = v.len() - 1;
    let mut out: Vec<T> = Vec::with_capacity(max);
    let mut prev = usize::MAX;
    for j in 0..max {
        let i = ((j as f64) * last as f64 / (max - 1) as f64).round() as usize;
        if i != prev {
            out.push(v[i]);
            prev = i;
        }
    }
    out
}

/// The full report of one estimator on the population `order`.
pub(crate) fn estimator_report(
    p: &Prepared,
    est: Estimator,
    order: &[u32],
    s: &EstSettings,
) -> EstimatorReport {
    let z = z_for(s.confidence);
    let conf = s.confidence;
    let w = p.weights(est);
    let (biased, description) = describe(est, p.fully_labelled);
    let mut notes = Vec::new();

    let (_, total) = core::prefix_snapshots(order, &[], |i| p.y[i], |i| p.rev[i], |i| w[i]);
    let prevalence = proportion(est, &total, z, conf);

    // Uninspected fraud rate.
    let uninspected_fraud_rate = uninspected_rate(p, est, &w, order, &total, z, conf, &mut notes);

    let pl = core::placements(order, p.scores, |i| p.y[i], |i| w[i]);
    let roc_auc = auc_estimate(est, &pl, &w, z, conf);
    if roc_auc.is_none() {
        notes.push(format!(
            "ROC-AUC undefined: {} positive and {} negative sample rows (needs both classes)",
            pl.n_pos, pl.n_neg
        ));
    }
    let ap = core::average_precision_weighted(order, p.scores, |i| p.y[i], |i| w[i]);
    let average_precision = (!ap.is_nan()).then(|| {
        let wp: f64 = pl.pos.iter().map(|&(r, _)| w[r as usize]).sum();
        let wp2: f64 = pl.pos.iter().map(|&(r, _)| w[r as usize].powi(2)).sum();
        let n_eff = if wp2 > 0.0 { wp * wp / wp2 } else { 0.0 };
        boyd_logit(est, ap, n_eff, z, conf, pl.n_pos)
    });

    let (log_loss, brier, calibration) = if p.probabilities {
        let it = || order.iter().map(|&r| r as usize);
        (
            mean_estimate(
                est,
                it().map(|i| (metrics::row_log_loss(p.scores[i], p.y[i]), w[i])),
                z,
                conf,
                (0.0, f64::INFINITY),
            ),
            mean_estimate(
                est,
                it().map(|i| ((p.scores[i] - if p.y[i] { 1.0 } else { 0.0 }).powi(2), w[i])),
                z,
                conf,
                (0.0, 1.0),
            ),
            metrics::calibration_weighted(
                it().map(|i| (p.scores[i], p.y[i], w[i])),
                s.calibration_bins,
            ),
        )
    } else {
        notes.push(
            "scores are not all in [0, 1]: log loss, Brier and calibration are not computed".into(),
        );
        (None, None, None)
    };

    let budgets = budget_estimates(p, est, &w, order, s.budgets, z, conf);
    let n = order.len();
    let gains_budgets: Vec<Budget> = s.gains_rates.iter().map(|&r| Budget::Rate(r)).collect();
    let gains = budget_estimates(p, est, &w, order, &gains_budgets, z, conf)
        .into_iter()
        .map(|b| GainsPoint {
            rate: if n > 0 { b.k as f64 / n as f64 } else { 0.0 },
            k: b.k,
            recall: b.recall.map(|e| e.value),
            revenue_share: b.revenue_share.map(|e| e.value),
            lift: b.lift,
        })
        .collect();

    let counts = metrics::curve_counts(order, p.scores, |i| p.y[i], |i| w[i]);
    let (tp_all, fp_all) = counts.last().map_or((0.0, 0.0), |c| (c.1, c.2));
    let roc_curve = if tp_all > 0.0 && fp_all > 0.0 {
        let full: Vec<RocPoint> = counts
            .iter()
            .map(|&(t, tp, fp)| RocPoint {
                threshold: t,
                fpr: fp / fp_all,
                tpr: tp / tp_all,
            })
            .collect();
        downsample(&full, s.curve_points)
    } else {
        Vec::new()
    };
    let pr_curve = if tp_all > 0.0 {
        downsample(&metrics::pr_from_counts(&counts, tp_all), s.curve_points)
    } else {
        Vec::new()
    };

    if total.n == 0 {
        notes.push("no sample rows: nothing can be estimated".into());
    }
    if est == Estimator::Ipw {
        let missing = (0..p.rows.len())
            .filter(|&i| p.rows.label[i].is_some() && p.rows.propensity[i].is_none())
            .count();
        if missing > 0 {
            notes.push(format!(
                "{missing} labelled rows have no propensity and are left out of the IPW estimate"
            ));
        }
    }

    EstimatorReport {
        estimator: est,
        biased,
        description,
        n_sample: total.n,
        n_positive: total.n_pos,
        weight_sum: total.sw,
        prevalence,
        uninspected_fraud_rate,
        roc_auc,
        average_precision,
        log_loss,
        brier,
        budgets,
        gains,
        roc_curve,
        pr_curve,
        calibration,
        notes,
    }
}

fn boyd_logit(est: Estimator, ap: f64, n_eff: f64, z: f64, conf: f64, n_pos: usize) -> Estimate {
    if n_eff <= 0.0 {
        return Estimate {
            estimator: est,
            value: ap,
            ci_low: 0.0,
            ci_high: 1.0,
            confidence: conf,
            ci_method: CiMethod::Unknown,
            n: n_pos,
        };
    }
    // keep the logit finite at AP = 0 or 1
    let a = ap
        .clamp(0.5 / n_eff, 1.0 - 0.5 / n_eff)
        .clamp(1e-12, 1.0 - 1e-12);
    let eta = (a / (1.0 - a)).ln();
    let tau = 1.0 / (n_eff * a * (1.0 - a)).sqrt();
    let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
    Estimate {
        estimator: est,
        value: ap,
        ci_low: expit(eta - z * tau).min(ap),
        ci_high: expit(eta + z * tau).max(ap),
        confidence: conf,
        ci_method: CiMethod::Logit,
        n: n_pos,
    }
}

/// Fraud rate among uninspected rows.
/// - `RandomSample`: difference estimator (N·p̂_R − K)/N_u where p̂_R is the random-sample
///   fraud rate, K the known positives among inspected rows and N_u the uninspected count;
///   Var = (N/N_u)²·p̂(1−p̂)/n_R. The value is clipped to [0, 1] (noted when it was negative).
/// - `Ipw`: Hajek mean of y with weights (1−π)/π: each labelled row stands for (1−π)/π
///   uninspected rows like it.
#[allow(clippy::too_many_arguments)]
fn uninspected_rate(
    p: &Prepared,
    est: Estimator,
    w: &[f64],
    order: &[u32],
    total: &Acc,
    z: f64,
    conf: f64,
    notes: &mut Vec<String>,
) -> Option<Estimate> {
    let r = p.rows;
    let n_u = order.iter().filter(|&&i| !r.inspected[i as usize]).count();
    if n_u == 0 {
        return None;
    }
    match est {
        Estimator::Inspected => None,
        Estimator::RandomSample => {
            if total.n == 0 {
                return None;
            }
            let big_n = order.len() as f64;
            let k_known = order
                .iter()
                .filter(|&&i| r.inspected[i as usize] && r.label[i as usize] == Some(true))
                .count() as f64;
            let ph = total.n_pos as f64 / total.n as f64;
            let raw = (big_n * ph - k_known) / n_u as f64;
            if raw < 0.0 {
                notes.push(format!(
                    "random-sample estimate of the uninspected fraud rate was {raw:.4}, clipped to 0 (the random sample found fewer positives than the inspections already did)"
                ));
            }
            let var = (big_n / n_u as f64).powi(2) * ph * (1.0 - ph) / total.n as f64;
            let mut e =
                Estimate::normal(est, raw.clamp(0.0, 1.0), var, z, total.n, conf, (0.0, 1.0));
            e.ci_low = e.ci_low.min(e.value);
            e.ci_high = e.ci_high.max(e.value);
            Some(e)
        }
        Estimator::Ipw => {
            let vals = order.iter().map(|&i| {
                let i = i as usize;
                let wi = if w[i] > 0.0 { w[i] - 1.0 } else { 0.0 }; // (1-π)/π = 1/π − 1
                (if p.y[i] { 1.0 } else { 0.0 }, wi)
            });
            let e = mean_estimate(est, vals, z, conf, (0.0, 1.0));
            if e.is_none() {
                notes.push(
                    "IPW uninspected fraud rate undefined: every labelled row has propensity 1"
                        .into(),
                );
            }
            e
        }
    }
}
