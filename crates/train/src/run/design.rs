//! The design matrix the learners see: labelled rows, f32 features, labels.

use cr_data::Batch;
use cr_features::{FittedPipeline, PipelineConfig};
use ndarray::ArrayView2;

use crate::config::SampleWeight;
use crate::TrainError;

/// How the inverse-propensity weights came out (for the card).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct WeightStats {
    /// Weights above the maximum, set to it.
    pub clipped: usize,
    /// Kish's effective sample size `(Σw)² / Σw²`.
    pub effective_rows: f64,
}

/// `1 / propensity` of each labelled row, clipped at `max_weight`. A labelled row without a
/// propensity is an error naming its line.
fn ipw(
    rows: &Batch,
    labelled: &[usize],
    max_weight: f64,
) -> Result<(Vec<f32>, WeightStats), TrainError> {
    let mut w = Vec::with_capacity(labelled.len());
    let mut clipped = 0;
    for &i in labelled {
        let Some(p) = rows.propensity[i].filter(|p| *p > 0.0 && p.is_finite()) else {
            return Err(TrainError::Split(format!(
                "{} line {}: --sample-weight ipw needs the propensity of every inspected \
                 declaration, this one has none",
                rows.source, rows.lines[i]
            )));
        };
        let raw = 1.0 / p;
        if raw > max_weight {
            clipped += 1;
        }
        w.push(raw.min(max_weight) as f32);
    }
    let (s, s2) = w.iter().fold((0.0f64, 0.0f64), |(a, b), &v| {
        (a + f64::from(v), b + f64::from(v) * f64::from(v))
    });
    let effective_rows = if s2 > 0.0 { s * s / s2 } else { 0.0 };
    Ok((
        w,
        WeightStats {
            clipped,
            effective_rows,
        },
    ))
}

/// Labelled rows as a learner sees them (row-major features, NaN = missing).
pub(crate) struct Design {
    pub x: Vec<f32>,
    pub n_features: usize,
    pub y: Vec<bool>,
    /// Row weights (`--sample-weight ipw`); `None` = all 1.
    pub weight: Option<Vec<f32>>,
    /// `--objective revenue`: the revenue recovered per labelled row (clean inspections 0).
    pub revenue: Option<Vec<f32>>,
}

impl Design {
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn positives(&self) -> usize {
        self.y.iter().filter(|&&b| b).count()
    }

    pub fn view(&self) -> Result<ArrayView2<'_, f32>, TrainError> {
        ArrayView2::from_shape((self.rows(), self.n_features), &self.x)
            .map_err(|e| TrainError::Config(format!("design matrix: {e}")))
    }

    /// The GBDT's target: the revenue (revenue objective), else the labels as 0/1 floats.
    pub fn y_f32(&self) -> Vec<f32> {
        match &self.revenue {
            Some(r) => r.clone(),
            None => self.y.iter().map(|&b| f32::from(u8::from(b))).collect(),
        }
    }
}

/// The revenue recovered by each of the `labelled` rows: the revenue column, 0 for a clean
/// inspection without one. A seized row without revenue, or a negative or non-finite one, is
/// an error naming its line (it would silently count as nothing recovered).
pub(crate) fn revenue_target(rows: &Batch, labelled: &[usize]) -> Result<Vec<f32>, TrainError> {
    labelled
        .iter()
        .map(|&i| match (rows.revenue[i], rows.label[i]) {
            (Some(r), _) if r.is_finite() && r >= 0.0 => Ok(r),
            (None, Some(false)) => Ok(0.0),
            (None, _) => Err(TrainError::Split(format!(
                "{} line {}: --objective revenue needs the revenue recovered by every seized \
                 declaration, this one has none",
                rows.source, rows.lines[i]
            ))),
            (Some(r), _) => Err(TrainError::Split(format!(
                "{} line {}: revenue {r} is not a finite amount >= 0",
                rows.source, rows.lines[i]
            ))),
        })
        .collect()
}

/// Fits the feature pipeline on `rows` (every row feeds its statistics; labelled rows get
/// out-of-fold risk features) and returns it with the design matrix of the labelled rows.
pub(crate) fn fit_features(
    schema: &cr_data::Schema,
    rows: &Batch,
    cfg: &PipelineConfig,
    weighting: (SampleWeight, f64),
    revenue: bool,
) -> Result<(FittedPipeline, Design, WeightStats), TrainError> {
    let (pipeline, oof) = cr_features::fit(schema, rows, cfg)?;
    let nf = oof.n_cols;
    let labelled: Vec<usize> = (0..rows.len())
        .filter(|&i| rows.label[i].is_some())
        .collect();
    let mut x = Vec::with_capacity(labelled.len() * nf);
    for &i in &labelled {
        x.extend_from_slice(oof.row(i));
    }
    let y = labelled
        .iter()
        .map(|&i| rows.label[i] == Some(true))
        .collect();
    let (weight, stats) = match weighting {
        (SampleWeight::None, _) => (None, WeightStats::default()),
        (SampleWeight::Ipw, max_weight) => {
            let (w, s) = ipw(rows, &labelled, max_weight)?;
            (Some(w), s)
        }
    };
    let revenue = revenue
        .then(|| revenue_target(rows, &labelled))
        .transpose()?;
    Ok((
        pipeline,
        Design {
            x,
            n_features: nf,
            y,
            weight,
            revenue,
        },
        stats,
    ))
}

/// The fitted pipeline applied to labelled rows (`rows` must hold labelled rows only).
pub(crate) fn transform(
    pipeline: &FittedPipeline,
    rows: &Batch,
    revenue: bool,
) -> Result<Design, TrainError> {
    let m = pipeline.transform(rows)?;
    let all: Vec<usize> = (0..rows.len()).collect();
    Ok(Design {
        x: m.data,
        n_features: m.n_cols,
        y: rows.label.iter().map(|l| *l == Some(true)).collect(),
        weight: None,
        revenue: revenue.then(|| revenue_target(rows, &all)).transpose()?,
    })
}
