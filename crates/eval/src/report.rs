//! [`evaluate`]: one model's full evaluation report (metrics by estimator, breakdowns,
//! drift) and its configuration.

use serde::{Deserialize, Serialize};

use crate::breakdown::{assign, breakdown, period_groups, Breakdown};
use crate::budget::Budget;
use crate::core::sort_order;
use crate::drift::{feature_psi, score_psi, FeatureDriftInput, PsiResult};
use crate::error::EvalError;
use crate::estimate::{estimator_report, EstSettings, EstimatorReport, Prepared};
use crate::rows::{Estimator, EvalRows};

/// Evaluation settings. Every field has a default (see [`EvalConfig::default`]); unknown
/// fields are rejected when deserialising.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Inspection budgets reported everywhere. Default 1 %, 2 %, 5 %, 10 %.
    pub budgets: Vec<Budget>,
    /// Budget of breakdowns, the hit-rate-by-month plot and the comparison headline. Default 5 %.
    pub headline_budget: Budget,
    /// Estimators to compute (those without sample rows are skipped with a note). Default all.
    pub estimators: Vec<Estimator>,
    /// Estimator of breakdowns, plots and sentences. `None` (default) picks: `Inspected` when
    /// every row is labelled, else `RandomSample` if its sample has both classes, else `Ipw` if
    /// any labelled row has a propensity, else `Inspected` (flagged as biased).
    pub primary_estimator: Option<Estimator>,
    /// Confidence level of all intervals, in (0, 1). Default 0.95.
    pub confidence: f64,
    /// Reliability-diagram bins (uniform on [0, 1]), ≥ 1. Default 10.
    pub calibration_bins: usize,
    /// Maximum points kept per ROC / PR curve in the report, ≥ 2. Default 200.
    pub curve_points: usize,
    /// Inspection rates of the gains / lift curve, each in (0, 1]. `None` (default): 0.1 %
    /// steps up to 20 %, then 1 % steps up to 100 %.
    pub gains_rates: Option<Vec<f64>>,
    /// Segment breakdowns keep the largest this-many groups and merge the rest into
    /// "(other)". ≥ 1. Default 30. (Periods are never merged.)
    pub max_groups: usize,
    /// Quantile bins of the reference scores for the score PSI, ≥ 2. Default 10.
    pub psi_bins: usize,
    /// PSI at or above this is flagged. Default 0.2.
    pub psi_flag: f64,
    /// Paired-bootstrap replicates in comparisons, ≥ 10. Default 1000.
    pub bootstrap_reps: usize,
    /// Master seed of the paired bootstrap (ChaCha8, one stream per replicate). Default 20240917.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            budgets: vec![
                Budget::Rate(0.01),
                Budget::Rate(0.02),
                Budget::Rate(0.05),
                Budget::Rate(0.10),
            ],
            headline_budget: Budget::Rate(0.05),
            estimators: Estimator::ALL.to_vec(),
            primary_estimator: None,
            confidence: 0.95,
            calibration_bins: 10,
            curve_points: 200,
            gains_rates: None,
            max_groups: 30,
            psi_bins: 10,
            psi_flag: 0.2,
            bootstrap_reps: 1000,
            seed: 20_240_917,
        }
    }
}

impl EvalConfig {
    /// Validate every field; called by [`evaluate`] and [`crate::compare`].
    pub fn check(&self) -> Result<(), EvalError> {
        let bad = |s: String| Err(EvalError::Config(s));
        if self.budgets.is_empty() {
            return bad("budgets must not be empty".into());
        }
        for b in self
            .budgets
            .iter()
            .chain(std::iter::once(&self.headline_budget))
        {
            crate::budget::check(b)?;
        }
        if self.estimators.is_empty() {
            return bad("estimators must not be empty".into());
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return bad(format!("confidence {} must be in (0, 1)", self.confidence));
        }
        if self.calibration_bins == 0 {
            return bad("calibration_bins must be >= 1".into());
        }
        if self.curve_points < 2 {
            return bad("curve_points must be >= 2".into());
        }
        if let Some(r) = &self.gains_rates {
            if let Some(x) = r.iter().find(|x| !(**x > 0.0 && **x <= 1.0)) {
                return bad(format!("gains rate {x} must be in (0, 1]"));
            }
        }
        if self.max_groups == 0 {
            return bad("max_groups must be >= 1".into());
        }
        if self.psi_bins < 2 {
            return bad("psi_bins must be >= 2".into());
        }
        if !(self.psi_flag.is_finite() && self.psi_flag > 0.0) {
            return bad(format!("psi_flag {} must be > 0", self.psi_flag));
        }
        if self.bootstrap_reps < 10 {
            return bad(format!(
                "bootstrap_reps {} must be >= 10",
                self.bootstrap_reps
            ));
        }
        Ok(())
    }

    pub(crate) fn gains_grid(&self) -> Vec<f64> {
        match &self.gains_rates {
            Some(r) => r.clone(),
            None => (1..=200)
                .map(|j| j as f64 / 1000.0)
                .chain((21..=100).map(|j| j as f64 / 100.0))
                .collect(),
        }
    }
}

/// One model's scores and the rows they score, plus optional drift inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalInput {
    /// Model name shown in the report.
    pub model: String,
    /// One finite score per row (probabilities in [0, 1] for log loss / Brier / calibration).
    pub scores: Vec<f64>,
    pub rows: EvalRows,
    /// Scores of a reference set (e.g. the training validation split) for the score PSI.
    pub reference_scores: Option<Vec<f64>>,
    /// Feature drift checks.
    pub features: Vec<FeatureDriftInput>,
}

/// Drift section of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub score: Option<PsiResult>,
    pub features: Vec<PsiResult>,
    pub flag: f64,
}

/// Everything [`evaluate`] computes; serialisable to JSON, rendered by
/// [`crate::render_evaluation_html`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    pub model: String,
    pub n_rows: usize,
    pub n_labelled: usize,
    pub n_positive: usize,
    pub n_inspected: usize,
    pub n_random_labelled: usize,
    pub n_with_propensity: usize,
    pub fully_labelled: bool,
    pub primary_estimator: Estimator,
    pub config: EvalConfig,
    /// One entry per available estimator, in `config.estimators` order.
    pub estimators: Vec<EstimatorReport>,
    /// Per-period breakdown (when `rows.period` was given).
    pub by_period: Option<Breakdown>,
    /// One breakdown per segment column, in input order.
    pub by_segment: Vec<Breakdown>,
    pub drift: DriftReport,
    pub notes: Vec<String>,
    pub generator: String,
}

impl EvalConfig {
    /// The defaults with `seed`; `extra`, when given, joins the budgets (if not there) and
    /// becomes the headline budget.
    pub fn with_headline(extra: Option<Budget>, seed: u64) -> EvalConfig {
        let mut cfg = EvalConfig {
            seed,
            ..EvalConfig::default()
        };
        if let Some(b) = extra {
            if !cfg.budgets.contains(&b) {
                cfg.budgets.push(b);
            }
            cfg.headline_budget = b;
        }
        cfg
    }
}

impl EvaluationReport {
    /// The summary a terminal shows: rows and the primary estimator, then per estimator its
    /// ROC-AUC and hit rate / recall at each budget (value and interval), then the notes.
    pub fn headline(&self) -> String {
        use std::fmt::Write;
        let fmt = |e: &Option<crate::Estimate>| {
            e.as_ref()
                .map(|e| format!("{:.3} [{:.3}, {:.3}]", e.value, e.ci_low, e.ci_high))
                .unwrap_or_else(|| "n/a".into())
        };
        let mut s = format!(
            "{}: {} rows, {} labelled ({} seized); primary estimator: {}\n",
            self.model,
            self.n_rows,
            self.n_labelled,
            self.n_positive,
            self.primary_estimator.title()
        );
        for e in &self.estimators {
            let _ = writeln!(
                s,
                "  {} ({} rows{}): ROC-AUC {}",
                e.estimator.title(),
                e.n_sample,
                if e.biased { ", biased" } else { "" },
                fmt(&e.roc_auc)
            );
            for b in &e.budgets {
                let _ = writeln!(
                    s,
                    "    at {:>6}: hit rate {}  recall {}",
                    b.budget.label(),
                    fmt(&b.precision),
                    fmt(&b.recall)
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }

    /// The report of one estimator, if it was computed.
    pub fn estimator(&self, e: Estimator) -> Option<&EstimatorReport> {
        self.estimators.iter().find(|r| r.estimator == e)
    }
    /// The primary estimator's report.
    pub fn primary(&self) -> Option<&EstimatorReport> {
        self.estimator(self.primary_estimator)
    }
    /// Pretty JSON of the whole report (the same numbers as the HTML).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

pub(crate) struct Availability {
    pub available: Vec<Estimator>,
    pub primary: Estimator,
    pub notes: Vec<String>,
}

pub(crate) fn availability(p: &Prepared, cfg: &EvalConfig) -> Result<Availability, EvalError> {
    let mut notes = Vec::new();
    let mut available = Vec::new();
    let count = |e: Estimator| {
        let w = p.weights(e);
        let n = w.iter().filter(|&&x| x > 0.0).count();
        let pos = w.iter().zip(&p.y).filter(|(w, y)| **w > 0.0 && **y).count();
        (n, pos)
    };
    let mut stats = Vec::new();
    for &e in &cfg.estimators {
        if available.contains(&e) {
            continue;
        }
        let (n, pos) = count(e);
        stats.push((e, n, pos));
        if n > 0 {
            available.push(e);
        } else {
            notes.push(format!(
                "estimator {} skipped: no sample rows ({})",
                e.as_str(),
                match e {
                    Estimator::Inspected => "no labelled rows",
                    Estimator::RandomSample => "no labelled rows with selection = random",
                    Estimator::Ipw => "no labelled rows with a propensity",
                }
            ));
        }
    }
    let primary = match cfg.primary_estimator {
        Some(e) => {
            if !available.contains(&e) {
                return Err(EvalError::Config(format!(
                    "primary estimator {} is not available on these rows (or not listed in estimators)",
                    e.as_str()
                )));
            }
            e
        }
        None => {
            let has = |e: Estimator, both: bool| {
                available.contains(&e)
                    && stats
                        .iter()
                        .any(|&(x, n, pos)| x == e && n > 0 && (!both || (pos > 0 && pos < n)))
            };
            if p.fully_labelled && has(Estimator::Inspected, false) {
                Estimator::Inspected
            } else if has(Estimator::RandomSample, true) {
                Estimator::RandomSample
            } else if has(Estimator::Ipw, false) {
                Estimator::Ipw
            } else if let Some(&e) = available.first() {
                e
            } else {
                return Err(EvalError::Empty {
                    metric: "evaluation (no labelled rows)",
                });
            }
        }
    };
    if primary == Estimator::Inspected && !p.fully_labelled {
        notes.push(
            "headline numbers use all inspected rows: they are biased towards the rules/models that chose the inspections (no usable random sample or propensities)".into(),
        );
    }
    Ok(Availability {
        available,
        primary,
        notes,
    })
}

pub(crate) fn check_input(scores: &[f64], rows: &EvalRows) -> Result<(), EvalError> {
    if scores.len() != rows.len() {
        return Err(EvalError::LengthMismatch {
            what: "scores".into(),
            got: scores.len(),
            expected: rows.len(),
        });
    }
    rows.check()?;
    crate::core::check_scores(scores)
}

/// Evaluate one model. Validates the config and the rows (lengths, finite scores,
/// propensities in (0, 1], revenue ≥ 0), sorts once and computes every section.
pub fn evaluate(input: &EvalInput, cfg: &EvalConfig) -> Result<EvaluationReport, EvalError> {
    cfg.check()?;
    check_input(&input.scores, &input.rows)?;
    let order = sort_order(&input.scores)?;
    let mut report = evaluate_sorted(&input.model, &input.scores, &input.rows, &order, cfg)?;
    let mut drift = DriftReport {
        flag: cfg.psi_flag,
        ..DriftReport::default()
    };
    if let Some(r) = &input.reference_scores {
        crate::core::check_scores(r)?;
        drift.score = Some(score_psi(r, &input.scores, cfg.psi_bins, cfg.psi_flag)?);
    }
    for f in &input.features {
        drift.features.push(feature_psi(f, cfg.psi_flag)?);
    }
    let flagged: Vec<&str> = drift
        .score
        .iter()
        .chain(drift.features.iter())
        .filter(|r| r.flagged)
        .map(|r| r.name.as_str())
        .collect();
    if !flagged.is_empty() {
        report.notes.push(format!(
            "drift flagged (PSI >= {}): {}",
            cfg.psi_flag,
            flagged.join(", ")
        ));
    }
    report.drift = drift;
    Ok(report)
}

/// The per-row fields of `rows` in `order` (period and segments left out).
fn permute_rows(rows: &EvalRows, order: &[u32]) -> EvalRows {
    fn pick<T: Copy>(v: &[T], order: &[u32]) -> Vec<T> {
        order.iter().map(|&i| v[i as usize]).collect()
    }
    EvalRows {
        label: pick(&rows.label, order),
        inspected: pick(&rows.inspected, order),
        selection: pick(&rows.selection, order),
        propensity: pick(&rows.propensity, order),
        revenue: pick(&rows.revenue, order),
        period: None,
        segments: Vec::new(),
    }
}

/// Evaluation given an already computed order (no drift). Inputs are already checked.
pub(crate) fn evaluate_sorted(
    model: &str,
    scores: &[f64],
    rows: &EvalRows,
    order: &[u32],
    cfg: &EvalConfig,
) -> Result<EvaluationReport, EvalError> {
    let p = Prepared::new(scores, rows);
    let av = availability(&p, cfg)?;
    let grid = cfg.gains_grid();
    let settings = EstSettings {
        budgets: &cfg.budgets,
        gains_rates: &grid,
        confidence: cfg.confidence,
        calibration_bins: cfg.calibration_bins,
        curve_points: cfg.curve_points,
    };
    // The estimator passes run over rows permuted into score order, so that every pass reads
    // memory sequentially (identity order); results are identical.
    let sorted_scores: Vec<f64> = order.iter().map(|&i| scores[i as usize]).collect();
    let sorted_rows = permute_rows(rows, order);
    let ident: Vec<u32> = (0..order.len() as u32).collect();
    let ps = Prepared::new(&sorted_scores, &sorted_rows);
    let estimators: Vec<EstimatorReport> = av
        .available
        .iter()
        .map(|&e| estimator_report(&ps, e, &ident, &settings))
        .collect();

    let by_period = rows.period.as_ref().map(|period| {
        let (name, gid, names) = period_groups(period);
        breakdown(
            &p,
            &name,
            &gid,
            names,
            order,
            av.primary,
            cfg.headline_budget,
            cfg.confidence,
        )
    });
    let mut by_segment = Vec::new();
    for s in &rows.segments {
        let (gid, names) = assign(&s.values, Some(cfg.max_groups));
        by_segment.push(breakdown(
            &p,
            &s.name,
            &gid,
            names,
            order,
            av.primary,
            cfg.headline_budget,
            cfg.confidence,
        ));
    }

    let r = rows;
    Ok(EvaluationReport {
        model: model.to_string(),
        n_rows: r.len(),
        n_labelled: r.label.iter().filter(|l| l.is_some()).count(),
        n_positive: r.label.iter().filter(|l| **l == Some(true)).count(),
        n_inspected: r.inspected.iter().filter(|&&b| b).count(),
        n_random_labelled: (0..r.len())
            .filter(|&i| {
                r.label[i].is_some() && r.selection[i] == Some(crate::rows::SelectionKind::Random)
            })
            .count(),
        n_with_propensity: (0..r.len())
            .filter(|&i| r.label[i].is_some() && r.propensity[i].is_some())
            .count(),
        fully_labelled: p.fully_labelled,
        primary_estimator: av.primary,
        config: cfg.clone(),
        estimators,
        by_period,
        by_segment,
        drift: DriftReport {
            flag: cfg.psi_flag,
            ..DriftReport::default()
        },
        notes: av.notes,
        generator: format!("cr-eval {}", env!("CARGO_PKG_VERSION")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_headline_adds_the_extra_budget_once_and_heads_with_it() {
        let plain = EvalConfig::with_headline(None, 7);
        assert_eq!(plain.seed, 7);
        assert_eq!(plain.budgets, EvalConfig::default().budgets);
        assert_eq!(plain.headline_budget, Budget::Rate(0.05));
        let extra = EvalConfig::with_headline(Some(Budget::Rate(0.03)), 7);
        assert_eq!(extra.budgets.len(), plain.budgets.len() + 1);
        assert_eq!(extra.headline_budget, Budget::Rate(0.03));
        let known = EvalConfig::with_headline(Some(Budget::Rate(0.02)), 7);
        assert_eq!(known.budgets, plain.budgets);
        assert_eq!(known.headline_budget, Budget::Rate(0.02));
    }
}
