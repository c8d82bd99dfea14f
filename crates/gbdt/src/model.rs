//! The trained model: trees plus the base score, objective and feature metadata.

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::GbdtError;
use crate::objective::Objective;
use crate::params::GbdtParams;
use crate::tree::Tree;

/// Wall-clock seconds spent in each training phase (not serialized; differs run to run).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrainStats {
    /// Input validation + finding bin boundaries + mapping values to bins.
    pub binning_s: f64,
    /// Objective gradients and hessians.
    pub gradients_s: f64,
    /// Histogram construction (including subtraction).
    pub histogram_s: f64,
    /// Split search over histograms.
    pub split_s: f64,
    /// Partitioning leaf rows into children.
    pub partition_s: f64,
    /// Updating training and validation scores, metrics and bagging.
    pub other_s: f64,
    /// Everything, end to end.
    pub total_s: f64,
    /// Boosting rounds actually run (before early-stopping truncation).
    pub rounds: usize,
    /// Histogram bins over all features (missing bins included).
    pub total_bins: usize,
}

/// Which feature importance to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceType {
    /// Sum of split gains of the splits on the feature.
    Gain,
    /// Number of splits on the feature.
    Split,
}

/// A trained gradient-boosted tree ensemble.
///
/// Raw prediction for a row `x`: `base_score + Σ_t trees[t].leaf_value[leaf_t(x)]` (f64),
/// where `leaf_t(x)` follows the routing rule documented in [`crate::tree`]. The output scale
/// is `objective.transform(raw)` (sigmoid for binary). JSON via serde (`to_json`/`from_json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtModel {
    /// Objective the model was trained for (defines the link function).
    pub objective: Objective,
    /// Initial raw score added to every prediction (log-odds of the weighted base rate for
    /// binary).
    pub base_score: f64,
    /// Number of input columns expected.
    pub n_features: usize,
    /// Column names (default `f0, f1, ...`); set with [`GbdtModel::with_feature_names`].
    pub feature_names: Vec<String>,
    /// The trees, in boosting order (leaf values include the learning rate).
    pub trees: Vec<Tree>,
    /// With a validation set: number of trees kept (the round with the best validation metric,
    /// 1-based); the trees after it were dropped. `None` without a validation set.
    pub best_iteration: Option<usize>,
    /// Best validation metric value (at `best_iteration`).
    pub best_score: Option<f64>,
    /// Parameters used for training.
    pub params: GbdtParams,
    /// Timings of the training run that produced this model (not serialized).
    #[serde(skip)]
    pub train_stats: TrainStats,
}

impl GbdtModel {
    /// Number of trees.
    pub fn num_trees(&self) -> usize {
        self.trees.len()
    }

    /// Replace the default feature names.
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Self, GbdtError> {
        if names.len() != self.n_features {
            return Err(GbdtError::FeatureNames {
                expected: self.n_features,
                got: names.len(),
            });
        }
        self.feature_names = names;
        Ok(self)
    }

    /// Check every tree's structure and that feature names match `n_features`.
    pub fn validate(&self) -> Result<(), GbdtError> {
        if self.feature_names.len() != self.n_features {
            return Err(GbdtError::FeatureNames {
                expected: self.n_features,
                got: self.feature_names.len(),
            });
        }
        for (i, t) in self.trees.iter().enumerate() {
            t.validate(self.n_features)
                .map_err(|reason| GbdtError::InvalidModel { tree: i, reason })?;
        }
        Ok(())
    }

    /// Serialize to JSON.
    pub fn to_json(&self) -> Result<String, GbdtError> {
        serde_json::to_string(self).map_err(|e| GbdtError::Serde(e.to_string()))
    }

    /// Deserialize from JSON and validate.
    pub fn from_json(s: &str) -> Result<Self, GbdtError> {
        let m: GbdtModel = serde_json::from_str(s).map_err(|e| GbdtError::Serde(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Raw margins (log-odds for binary) for every row of `x` (`n_rows x n_features`, NaN =
    /// missing).
    pub fn predict_raw(&self, x: ArrayView2<f32>) -> Result<Vec<f64>, GbdtError> {
        if x.ncols() != self.n_features {
            return Err(GbdtError::Shape {
                what: "x columns",
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        self.validate()?;
        let x = x.as_standard_layout();
        let nf = self.n_features;
        let flat: &[f32] = x.as_slice().unwrap_or(&[]);
        let mut out = vec![self.base_score; x.nrows()];
        const CH: usize = 1024;
        out.par_chunks_mut(CH).enumerate().for_each(|(c, o)| {
            let r0 = c * CH;
            for t in &self.trees {
                for (i, v) in o.iter_mut().enumerate() {
                    let r = r0 + i;
                    *v += t.predict_row(&flat[r * nf..(r + 1) * nf]);
                }
            }
        });
        Ok(out)
    }

    /// Predictions on the output scale: probability (binary), value (regression), mean
    /// (tweedie, `exp(raw)`).
    pub fn predict(&self, x: ArrayView2<f32>) -> Result<Vec<f64>, GbdtError> {
        let mut raw = self.predict_raw(x)?;
        for v in raw.iter_mut() {
            *v = self.objective.transform(*v);
        }
        Ok(raw)
    }

    /// Positive-class probabilities `sigmoid(raw)`; binary objective only.
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Result<Vec<f64>, GbdtError> {
        if !matches!(self.objective, Objective::Binary { .. }) {
            return Err(GbdtError::InvalidParam {
                name: "objective",
                reason: "predict_proba needs a binary model".into(),
            });
        }
        self.predict(x)
    }

    /// Per-feature importance (length `n_features`).
    pub fn feature_importance(&self, kind: ImportanceType) -> Vec<f64> {
        let mut imp = vec![0.0; self.n_features];
        for t in &self.trees {
            for (i, &f) in t.split_feature.iter().enumerate() {
                if let Some(v) = imp.get_mut(f as usize) {
                    *v += match kind {
                        ImportanceType::Gain => t.split_gain[i],
                        ImportanceType::Split => 1.0,
                    };
                }
            }
        }
        imp
    }
}
