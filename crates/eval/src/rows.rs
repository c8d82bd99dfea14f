//! Per-row evaluation inputs other than the scores: labels, inspection, selection,
//! propensity, revenue, period and segment keys.

use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// How an inspected declaration was selected. Mirrors `cr_data::Selection` (same snake_case
/// names: `rule`, `random`, `model`, `other`) without depending on `cr-data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionKind {
    Rule,
    /// The random sample: the unbiased subset.
    Random,
    Model,
    Other,
}

impl SelectionKind {
    /// Parse `rule` / `random` / `model` / `other` (case-insensitive), as `cr_data` writes them.
    pub fn parse(s: &str) -> Option<SelectionKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rule" => Some(SelectionKind::Rule),
            "random" => Some(SelectionKind::Random),
            "model" => Some(SelectionKind::Model),
            "other" => Some(SelectionKind::Other),
            _ => None,
        }
    }
}

/// Which rows a number was estimated from, and how. Every estimate in a report carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// All labelled (inspected) rows, unweighted. Biased whenever inspection was targeted:
    /// it flatters whoever chose the rows. Unbiased only when every row is labelled.
    Inspected,
    /// Labelled rows whose selection is `random`, unweighted: an unbiased sample of traffic.
    RandomSample,
    /// Labelled rows with a recorded propensity π, weighted by 1/π (Hajek ratio form of the
    /// Horvitz–Thompson estimator). Unbiased if the propensities are right.
    Ipw,
}

impl Estimator {
    pub const ALL: [Estimator; 3] = [
        Estimator::Inspected,
        Estimator::RandomSample,
        Estimator::Ipw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Estimator::Inspected => "inspected",
            Estimator::RandomSample => "random_sample",
            Estimator::Ipw => "ipw",
        }
    }

    /// Short human name for reports.
    pub fn title(self) -> &'static str {
        match self {
            Estimator::Inspected => "all inspected rows",
            Estimator::RandomSample => "random sample",
            Estimator::Ipw => "inverse-propensity weighted",
        }
    }
}

/// The period of each row, for per-month breakdowns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Days since 1970-01-01; grouped by calendar month, keys `YYYY-MM`.
    DaysSinceEpoch(Vec<i32>),
    /// Any string key (e.g. `2024-03`, `2024-Q1`); groups sorted by key.
    Key(Vec<String>),
}

impl Period {
    pub fn len(&self) -> usize {
        match self {
            Period::DaysSinceEpoch(v) => v.len(),
            Period::Key(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One string key per row (office, HS chapter, origin, ...), for per-segment breakdowns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentColumn {
    pub name: String,
    pub values: Vec<String>,
}

/// Everything known about the rows except the model scores. All vectors have one entry per
/// row, aligned with the scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalRows {
    /// Inspection outcome (`Some(true)` = seizure / fraud found); `None` = no label.
    pub label: Vec<Option<bool>>,
    /// Whether the declaration was inspected.
    pub inspected: Vec<bool>,
    /// Why it was inspected; `None` if not inspected or unknown.
    pub selection: Vec<Option<SelectionKind>>,
    /// Recorded probability π in (0, 1] that the row would be inspected (labelled).
    pub propensity: Vec<Option<f64>>,
    /// Revenue (extra duty) recovered, ≥ 0. Missing on a labelled row counts as 0.
    pub revenue: Vec<Option<f64>>,
    /// Optional period of each row (per-month breakdown).
    pub period: Option<Period>,
    /// Optional segment columns (per-segment breakdowns).
    pub segments: Vec<SegmentColumn>,
}

impl EvalRows {
    /// Rows with the given labels; `inspected = label.is_some()`, nothing else recorded.
    pub fn from_labels(label: Vec<Option<bool>>) -> EvalRows {
        let n = label.len();
        EvalRows {
            inspected: label.iter().map(Option::is_some).collect(),
            label,
            selection: vec![None; n],
            propensity: vec![None; n],
            revenue: vec![None; n],
            period: None,
            segments: Vec::new(),
        }
    }

    /// Every row labelled (e.g. a test split with known outcomes).
    pub fn fully_labelled(labels: &[bool]) -> EvalRows {
        EvalRows::from_labels(labels.iter().map(|&b| Some(b)).collect())
    }

    pub fn len(&self) -> usize {
        self.label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    /// Validate lengths and values: propensity in (0, 1], revenue finite and ≥ 0.
    pub fn check(&self) -> Result<(), EvalError> {
        let n = self.len();
        let lens = [
            ("inspected", self.inspected.len()),
            ("selection", self.selection.len()),
            ("propensity", self.propensity.len()),
            ("revenue", self.revenue.len()),
        ];
        for (what, got) in lens {
            if got != n {
                return Err(EvalError::LengthMismatch {
                    what: what.into(),
                    got,
                    expected: n,
                });
            }
        }
        if let Some(p) = &self.period {
            if p.len() != n {
                return Err(EvalError::LengthMismatch {
                    what: "period".into(),
                    got: p.len(),
                    expected: n,
                });
            }
        }
        for s in &self.segments {
            if s.values.len() != n {
                return Err(EvalError::LengthMismatch {
                    what: format!("segment {:?}", s.name),
                    got: s.values.len(),
                    expected: n,
                });
            }
        }
        for (row, p) in self.propensity.iter().enumerate() {
            if let Some(p) = *p {
                if !(p > 0.0 && p <= 1.0) {
                    return Err(EvalError::InvalidRow {
                        row,
                        column: "propensity",
                        why: format!("is {p}, must be in (0, 1]"),
                    });
                }
            }
        }
        for (row, r) in self.revenue.iter().enumerate() {
            if let Some(r) = *r {
                if !(r.is_finite() && r >= 0.0) {
                    return Err(EvalError::InvalidRow {
                        row,
                        column: "revenue",
                        why: format!("is {r}, must be a finite number >= 0"),
                    });
                }
            }
        }
        Ok(())
    }
}
