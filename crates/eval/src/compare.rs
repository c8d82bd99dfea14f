//! [`compare`]: models scored on the same rows, the first one being the baseline (the model
//! in service). For each challenger and each available estimator: paired-bootstrap intervals
//! of the differences (challenger − baseline) in precision, recall and revenue share at each
//! budget and in ROC-AUC; the DeLong test of the AUC difference; top-k overlap; and one plain
//! sentence per budget.

use serde::{Deserialize, Serialize};

use crate::bootstrap::{model_stats, pack, paired_bootstrap, ModelView, Shared, Stats};
use crate::budget::Budget;
use crate::core::{self, sort_order};
use crate::error::EvalError;
use crate::estimate::{auc_variance, dense_placements, describe, CiMethod, Prepared};
use crate::report::{availability, check_input, evaluate_sorted, EvalConfig, EvaluationReport};
use crate::rows::{Estimator, EvalRows};
use crate::stats::{percentile_sorted, two_sided_p, z_for};

/// A difference challenger − baseline with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub estimator: Estimator,
    pub baseline: f64,
    pub challenger: f64,
    /// challenger − baseline.
    pub diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
    pub ci_method: CiMethod,
    /// Bootstrap replicates in which the difference was defined.
    pub reps_used: usize,
}

impl Diff {
    /// True when the interval excludes 0.
    pub fn significant(&self) -> bool {
        self.ci_low > 0.0 || self.ci_high < 0.0
    }
}

/// DeLong et al. (1988) test of two correlated ROC-AUCs on the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeLongTest {
    pub estimator: Estimator,
    pub auc_baseline: f64,
    pub auc_challenger: f64,
    /// challenger − baseline.
    pub diff: f64,
    pub var_baseline: f64,
    pub var_challenger: f64,
    pub covariance: f64,
    pub var_diff: f64,
    pub se_diff: f64,
    /// diff / se_diff (0 when both are 0).
    pub z: f64,
    /// Two-sided normal p-value.
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
    pub n_positive: usize,
    pub n_negative: usize,
}

/// Differences at one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetDiff {
    pub budget: Budget,
    pub k: usize,
    pub precision: Option<Diff>,
    pub recall: Option<Diff>,
    pub revenue_share: Option<Diff>,
}

/// Overlap of the two models' top-k lists (over all rows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopKOverlap {
    pub budget: Budget,
    pub k: usize,
    pub intersection: usize,
    /// |A ∩ B| / |A ∪ B|.
    pub jaccard: f64,
    /// |A ∩ B| / |A|: share of the baseline's top-k also in the challenger's.
    pub share_of_baseline_in_challenger: f64,
}

/// One estimator's view of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairEstimates {
    pub estimator: Estimator,
    pub biased: bool,
    pub budgets: Vec<BudgetDiff>,
    /// Paired-bootstrap interval of the AUC difference.
    pub auc: Option<Diff>,
    pub delong: Option<DeLongTest>,
}

/// Baseline vs one challenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairComparison {
    pub baseline: String,
    pub challenger: String,
    pub overlap: Vec<TopKOverlap>,
    pub by_estimator: Vec<PairEstimates>,
    /// One sentence per budget, primary estimator.
    pub sentences: Vec<String>,
}

impl PairComparison {
    pub fn estimator(&self, e: Estimator) -> Option<&PairEstimates> {
        self.by_estimator.iter().find(|p| p.estimator == e)
    }
}

/// Everything [`compare`] computes; serialisable, rendered by [`crate::render_comparison_html`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonReport {
    pub baseline: String,
    pub models: Vec<String>,
    pub n_rows: usize,
    pub primary_estimator: Estimator,
    pub config: EvalConfig,
    /// Full evaluation of each model (same order as `models`), without drift.
    pub evaluations: Vec<EvaluationReport>,
    /// Baseline vs each other model.
    pub pairs: Vec<PairComparison>,
    pub notes: Vec<String>,
}

impl ComparisonReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn bootstrap_diff(
    est: Estimator,
    point_a: f64,
    point_b: f64,
    reps: impl Iterator<Item = (f64, f64)>,
    total_reps: usize,
    conf: f64,
) -> Option<Diff> {
    if point_a.is_nan() || point_b.is_nan() {
        return None;
    }
    let mut d: Vec<f64> = reps.map(|(a, b)| b - a).filter(|x| !x.is_nan()).collect();
    if d.len() * 2 < total_reps {
        return None;
    }
    d.sort_by(|a, b| a.total_cmp(b));
    let alpha = 1.0 - conf;
    Some(Diff {
        estimator: est,
        baseline: point_a,
        challenger: point_b,
        diff: point_b - point_a,
        ci_low: percentile_sorted(&d, alpha / 2.0)?,
        ci_high: percentile_sorted(&d, 1.0 - alpha / 2.0)?,
        confidence: conf,
        ci_method: CiMethod::PairedBootstrap,
        reps_used: d.len(),
    })
}

/// DeLong test on fully labelled rows (public convenience; unit weights).
pub fn delong_test(
    scores_baseline: &[f64],
    scores_challenger: &[f64],
    labels: &[bool],
    confidence: f64,
) -> Result<DeLongTest, EvalError> {
    let n = labels.len();
    for (what, s) in [
        ("baseline scores", scores_baseline),
        ("challenger scores", scores_challenger),
    ] {
        if s.len() != n {
            return Err(EvalError::LengthMismatch {
                what: what.into(),
                got: s.len(),
                expected: n,
            });
        }
    }
    let oa = sort_order(scores_baseline)?;
    let ob = sort_order(scores_challenger)?;
    let w = vec![1.0; n];
    delong_weighted(
        Estimator::Inspected,
        scores_baseline,
        &oa,
        scores_challenger,
        &ob,
        labels,
        &w,
        confidence,
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn delong_weighted(
    est: Estimator,
    sa: &[f64],
    oa: &[u32],
    sb: &[f64],
    ob: &[u32],
    y: &[bool],
    w: &[f64],
    conf: f64,
) -> Result<DeLongTest, EvalError> {
    let pa = core::placements(oa, sa, |i| y[i], |i| w[i]);
    let pb = core::placements(ob, sb, |i| y[i], |i| w[i]);
    if pa.auc.is_nan() || pa.n_pos < 2 || pa.n_neg < 2 {
        return Err(EvalError::OneClass {
            metric: "DeLong test (needs >= 2 rows of each class)",
            positives: pa.n_pos,
            negatives: pa.n_neg,
        });
    }
    let (d10b, d01b) = dense_placements(&pb, y.len());
    let var_a = auc_variance(&pa, None, w);
    let var_b = auc_variance(&pb, None, w);
    let var_diff = auc_variance(&pa, Some((&pb, &d10b, &d01b)), w).max(0.0);
    let diff = pb.auc - pa.auc;
    let se = var_diff.sqrt();
    let z = if se > 0.0 {
        diff / se
    } else if diff == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(diff)
    };
    let zc = z_for(conf);
    Ok(DeLongTest {
        estimator: est,
        auc_baseline: pa.auc,
        auc_challenger: pb.auc,
        diff,
        var_baseline: var_a,
        var_challenger: var_b,
        covariance: (var_a + var_b - var_diff) / 2.0,
        var_diff,
        se_diff: se,
        z,
        p_value: two_sided_p(z),
        ci_low: diff - zc * se,
        ci_high: diff + zc * se,
        confidence: conf,
        n_positive: pa.n_pos,
        n_negative: pa.n_neg,
    })
}

fn overlap(oa: &[u32], ob: &[u32], budget: Budget, n: usize) -> TopKOverlap {
    let k = budget.k(n);
    let mut in_a = vec![false; n];
    for &r in &oa[..k] {
        in_a[r as usize] = true;
    }
    let inter = ob[..k].iter().filter(|&&r| in_a[r as usize]).count();
    let union = 2 * k - inter;
    TopKOverlap {
        budget,
        k,
        intersection: inter,
        jaccard: if union > 0 {
            inter as f64 / union as f64
        } else {
            1.0
        },
        share_of_baseline_in_challenger: if k > 0 { inter as f64 / k as f64 } else { 1.0 },
    }
}

/// "B finds 3.1 more seizures per 100 inspections than A at 5 % (500 inspections) [1.2, 5.0] ..."
pub(crate) fn sentence(
    baseline: &str,
    challenger: &str,
    est: Estimator,
    biased: bool,
    b: &BudgetDiff,
) -> String {
    let head = format!("{} ({} inspections)", b.budget.label(), b.k);
    let Some(d) = b.precision else {
        return format!(
            "{challenger} vs {baseline} at {head}: the hit-rate difference cannot be estimated from the {} (too few labelled rows in the top-k).",
            est.title()
        );
    };
    let x = d.diff * 100.0;
    let (lo, hi) = (d.ci_low * 100.0, d.ci_high * 100.0);
    let what = if x.abs() < 0.05 {
        format!("{challenger} finds as many seizures per 100 inspections as {baseline}")
    } else if x > 0.0 {
        format!(
            "{challenger} finds {:.1} more seizures per 100 inspections than {baseline}",
            x
        )
    } else {
        format!(
            "{challenger} finds {:.1} fewer seizures per 100 inspections than {baseline}",
            -x
        )
    };
    let verdict = if d.significant() {
        ""
    } else {
        "; the interval includes 0, so the difference may be chance"
    };
    let bias = if biased {
        " (biased: inspected rows only)"
    } else {
        ""
    };
    format!(
        "{what} at {head} [{lo:.1}, {hi:.1}]{verdict}. {:.0} % paired-bootstrap interval, {} estimate{bias}.",
        d.confidence * 100.0,
        est.title()
    )
}

/// Compare models scored on the same rows. `models[0]` is the baseline; every other model is
/// compared with it. Each score vector must have `rows.len()` finite entries and names must be
/// distinct. Uses `cfg.bootstrap_reps` replicates seeded from `cfg.seed`.
pub fn compare(
    models: &[(String, Vec<f64>)],
    rows: &EvalRows,
    cfg: &EvalConfig,
) -> Result<ComparisonReport, EvalError> {
    cfg.check()?;
    if models.len() < 2 {
        return Err(EvalError::Config(format!(
            "compare needs at least 2 models, got {}",
            models.len()
        )));
    }
    for (i, (name, _)) in models.iter().enumerate() {
        if models[..i].iter().any(|(m, _)| m == name) {
            return Err(EvalError::Config(format!(
                "model name {name:?} appears twice"
            )));
        }
    }
    let wrap = |name: &str, e: EvalError| EvalError::Model {
        model: name.to_string(),
        source: Box::new(e),
    };
    let n = rows.len();
    let mut orders = Vec::with_capacity(models.len());
    let mut evaluations = Vec::with_capacity(models.len());
    for (name, scores) in models {
        check_input(scores, rows).map_err(|e| wrap(name, e))?;
        let order = sort_order(scores).map_err(|e| wrap(name, e))?;
        evaluations
            .push(evaluate_sorted(name, scores, rows, &order, cfg).map_err(|e| wrap(name, e))?);
        orders.push(order);
    }
    let p0 = Prepared::new(&models[0].1, rows);
    let av = availability(&p0, cfg)?;
    let weights: Vec<Vec<f64>> = av.available.iter().map(|&e| p0.weights(e)).collect();
    let ks: Vec<usize> = cfg.budgets.iter().map(|b| b.k(n)).collect();
    let shared = Shared {
        y: &p0.y,
        rev: &p0.rev,
        weights: weights.iter().map(|w| w.as_slice()).collect(),
    };
    let views: Vec<ModelView> = models
        .iter()
        .zip(&orders)
        .map(|((_, s), o)| ModelView {
            order: o,
            scores: s,
        })
        .collect();
    let packed: Vec<_> = views.iter().map(|m| pack(m, &shared)).collect();
    let ne = av.available.len();
    let points: Vec<Vec<Stats>> = packed
        .iter()
        .map(|m| model_stats(m, ne, &ks, None))
        .collect();
    let reps = paired_bootstrap(&packed, ne, &ks, n, cfg.bootstrap_reps, cfg.seed);
    let conf = cfg.confidence;

    let mut pairs = Vec::new();
    let mut notes = av.notes.clone();
    for j in 1..models.len() {
        let (base, chal) = (&models[0].0, &models[j].0);
        let mut by_estimator = Vec::new();
        for (ei, &est) in av.available.iter().enumerate() {
            let (biased, _) = describe(est, p0.fully_labelled);
            let pa = &points[0][ei];
            let pb = &points[j][ei];
            let diff_of = |get: &dyn Fn(&Stats) -> f64| {
                bootstrap_diff(
                    est,
                    get(pa),
                    get(pb),
                    reps.iter().map(|r| (get(&r[0][ei]), get(&r[j][ei]))),
                    reps.len(),
                    conf,
                )
            };
            let budgets = cfg
                .budgets
                .iter()
                .enumerate()
                .map(|(bi, &budget)| BudgetDiff {
                    budget,
                    k: ks[bi],
                    precision: diff_of(&|s: &Stats| s.precision[bi]),
                    recall: diff_of(&|s: &Stats| s.recall[bi]),
                    revenue_share: if p0.has_revenue {
                        diff_of(&|s: &Stats| s.revenue_share[bi])
                    } else {
                        None
                    },
                })
                .collect();
            let auc = diff_of(&|s: &Stats| s.auc);
            let delong = match delong_weighted(
                est,
                &models[0].1,
                &orders[0],
                &models[j].1,
                &orders[j],
                &p0.y,
                &weights[ei],
                conf,
            ) {
                Ok(d) => Some(d),
                Err(e) => {
                    notes.push(format!(
                        "{chal} vs {base}, {}: DeLong test not computed: {e}",
                        est.as_str()
                    ));
                    None
                }
            };
            by_estimator.push(PairEstimates {
                estimator: est,
                biased,
                budgets,
                auc,
                delong,
            });
        }
        let overlap = cfg
            .budgets
            .iter()
            .map(|&b| overlap(&orders[0], &orders[j], b, n))
            .collect();
        let sentences = by_estimator
            .iter()
            .find(|p| p.estimator == av.primary)
            .map(|p| {
                p.budgets
                    .iter()
                    .map(|b| sentence(base, chal, p.estimator, p.biased, b))
                    .collect()
            })
            .unwrap_or_default();
        pairs.push(PairComparison {
            baseline: base.clone(),
            challenger: chal.clone(),
            overlap,
            by_estimator,
            sentences,
        });
    }
    Ok(ComparisonReport {
        baseline: models[0].0.clone(),
        models: models.iter().map(|(m, _)| m.clone()).collect(),
        n_rows: n,
        primary_estimator: av.primary,
        config: cfg.clone(),
        evaluations,
        pairs,
        notes,
    })
}
