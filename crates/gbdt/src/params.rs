//! Hyper-parameters: a raw, serde-deserializable [`GbdtParams`] (builder-style setters) and
//! its validated form [`ValidGbdtParams`], produced only by [`GbdtParams::check`] (linfa's
//! param-guard pattern). Names and defaults follow LightGBM.

use serde::{Deserialize, Serialize};

use crate::error::GbdtError;
use crate::metric::EvalMetric;
use crate::objective::Objective;

/// Raw training parameters. Every field has a default (listed per field), so a config may
/// name only what it changes; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtParams {
    /// Loss to minimise. Default: binary log loss with `scale_pos_weight = 1`.
    pub objective: Objective,
    /// Number of boosting rounds (trees). Default 100; >= 1.
    pub num_trees: usize,
    /// Shrinkage applied to every leaf value. Default 0.1; finite, > 0.
    pub learning_rate: f64,
    /// Maximum number of leaves per tree (leaf-wise / best-first growth). Default 31; 2..=65536.
    pub num_leaves: usize,
    /// Maximum tree depth (root = depth 0 has children at depth 1); -1 = unlimited. Default -1.
    pub max_depth: i32,
    /// Minimum number of (bagged) rows in a leaf. Default 20; >= 1.
    pub min_data_in_leaf: usize,
    /// Minimum sum of hessians in a leaf. Default 1e-3; >= 0.
    pub min_sum_hessian_in_leaf: f64,
    /// L1 regularisation on leaf values. Default 0; >= 0.
    pub lambda_l1: f64,
    /// L2 regularisation on leaf values. Default 0; >= 0.
    pub lambda_l2: f64,
    /// Minimum gain `G_L^2/(H_L+λ) + G_R^2/(H_R+λ) - G^2/(H+λ)` to split. Default 0; >= 0.
    pub min_gain_to_split: f64,
    /// Maximum number of non-missing bins per feature (one more bin holds NaN). Default 255; 2..=255.
    pub max_bin: usize,
    /// Rows sampled (seeded) to find bin boundaries. Default 200000; >= 1.
    pub bin_construct_sample: usize,
    /// Fraction of features sampled for each tree. Default 1; in (0, 1].
    pub feature_fraction: f64,
    /// Fraction of rows sampled (without replacement) every `bagging_freq` rounds. Default 1; in (0, 1].
    pub bagging_fraction: f64,
    /// Re-sample the bag every k rounds; 0 disables bagging. Default 0.
    pub bagging_freq: usize,
    /// Stop when the validation metric has not improved for this many rounds; 0 = never.
    /// Default 0. Needs a validation set to have any effect.
    pub early_stopping_rounds: usize,
    /// Validation metric; `None` = objective default (log_loss, l2, tweedie). Default None.
    pub metric: Option<EvalMetric>,
    /// Master seed; the binning, bagging and feature-sampling seeds are derived from it.
    /// Default 0.
    pub seed: u64,
    /// Threads for training; 0 = the caller's current rayon pool. Default 0. Results do not
    /// depend on it.
    pub num_threads: usize,
    /// Monotone direction per feature: `+1` the prediction never decreases as the feature
    /// grows, `-1` never increases, `0` free (LightGBM's `monotone_constraints`, basic
    /// method). Default empty = no constraints; otherwise one entry per feature (checked
    /// against the data in `train`), each in {-1, 0, 1}.
    pub monotone_constraints: Vec<i8>,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            objective: Objective::default(),
            num_trees: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: -1,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l1: 0.0,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            max_bin: 255,
            bin_construct_sample: 200_000,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            bagging_freq: 0,
            early_stopping_rounds: 0,
            metric: None,
            seed: 0,
            num_threads: 0,
            monotone_constraints: Vec::new(),
        }
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident: $t:ty),* $(,)?) => {
        $( $(#[$m])* #[must_use] pub fn $name(mut self, v: $t) -> Self { self.$name = v; self } )*
    };
}

impl GbdtParams {
    /// Defaults (same as `Default::default()`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Set [`GbdtParams::objective`].
        objective: Objective,
        /// Set [`GbdtParams::num_trees`].
        num_trees: usize,
        /// Set [`GbdtParams::learning_rate`].
        learning_rate: f64,
        /// Set [`GbdtParams::num_leaves`].
        num_leaves: usize,
        /// Set [`GbdtParams::max_depth`].
        max_depth: i32,
        /// Set [`GbdtParams::min_data_in_leaf`].
        min_data_in_leaf: usize,
        /// Set [`GbdtParams::min_sum_hessian_in_leaf`].
        min_sum_hessian_in_leaf: f64,
        /// Set [`GbdtParams::lambda_l1`].
        lambda_l1: f64,
        /// Set [`GbdtParams::lambda_l2`].
        lambda_l2: f64,
        /// Set [`GbdtParams::min_gain_to_split`].
        min_gain_to_split: f64,
        /// Set [`GbdtParams::max_bin`].
        max_bin: usize,
        /// Set [`GbdtParams::bin_construct_sample`].
        bin_construct_sample: usize,
        /// Set [`GbdtParams::feature_fraction`].
        feature_fraction: f64,
        /// Set [`GbdtParams::bagging_fraction`].
        bagging_fraction: f64,
        /// Set [`GbdtParams::bagging_freq`].
        bagging_freq: usize,
        /// Set [`GbdtParams::early_stopping_rounds`].
        early_stopping_rounds: usize,
        /// Set [`GbdtParams::metric`].
        metric: Option<EvalMetric>,
        /// Set [`GbdtParams::seed`].
        seed: u64,
        /// Set [`GbdtParams::num_threads`].
        num_threads: usize,
        /// Set [`GbdtParams::monotone_constraints`].
        monotone_constraints: Vec<i8>,
    }

    /// Validate every field; the only way to obtain [`ValidGbdtParams`].
    pub fn check(&self) -> Result<ValidGbdtParams, GbdtError> {
        fn bad(name: &'static str, reason: String) -> GbdtError {
            GbdtError::InvalidParam { name, reason }
        }
        let p = self;
        p.objective.check()?;
        if p.num_trees == 0 {
            return Err(bad("num_trees", "must be >= 1".into()));
        }
        if !(p.learning_rate.is_finite() && p.learning_rate > 0.0) {
            return Err(bad(
                "learning_rate",
                format!("must be finite and > 0, got {}", p.learning_rate),
            ));
        }
        if !(2..=65536).contains(&p.num_leaves) {
            return Err(bad(
                "num_leaves",
                format!("must be in 2..=65536, got {}", p.num_leaves),
            ));
        }
        if p.max_depth == 0 || p.max_depth < -1 {
            return Err(bad(
                "max_depth",
                format!("must be -1 (unlimited) or >= 1, got {}", p.max_depth),
            ));
        }
        if p.min_data_in_leaf == 0 {
            return Err(bad("min_data_in_leaf", "must be >= 1".into()));
        }
        for (name, v) in [
            ("min_sum_hessian_in_leaf", p.min_sum_hessian_in_leaf),
            ("lambda_l1", p.lambda_l1),
            ("lambda_l2", p.lambda_l2),
            ("min_gain_to_split", p.min_gain_to_split),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(name, format!("must be finite and >= 0, got {v}")));
            }
        }
        if !(2..=255).contains(&p.max_bin) {
            return Err(bad(
                "max_bin",
                format!("must be in 2..=255, got {}", p.max_bin),
            ));
        }
        if p.bin_construct_sample == 0 {
            return Err(bad("bin_construct_sample", "must be >= 1".into()));
        }
        for (name, v) in [
            ("feature_fraction", p.feature_fraction),
            ("bagging_fraction", p.bagging_fraction),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(bad(name, format!("must be in (0, 1], got {v}")));
            }
        }
        if let Some(v) = p
            .monotone_constraints
            .iter()
            .find(|v| !(-1..=1).contains(*v))
        {
            return Err(bad(
                "monotone_constraints",
                format!("each entry must be -1, 0 or 1, got {v}"),
            ));
        }
        let metric = p
            .metric
            .unwrap_or_else(|| EvalMetric::default_for(&p.objective));
        if !metric.compatible_with(&p.objective) {
            return Err(bad(
                "metric",
                format!("{metric:?} does not apply to objective {:?}", p.objective),
            ));
        }
        Ok(ValidGbdtParams {
            raw: p.clone(),
            metric,
        })
    }
}

/// Parameters that passed [`GbdtParams::check`]. Read-only; derefs to the raw fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidGbdtParams {
    raw: GbdtParams,
    metric: EvalMetric,
}

impl ValidGbdtParams {
    /// The resolved validation metric.
    pub fn metric(&self) -> EvalMetric {
        self.metric
    }
    /// The raw parameters these were validated from.
    pub fn raw(&self) -> &GbdtParams {
        &self.raw
    }
    /// Bagging is active when `bagging_freq > 0 && bagging_fraction < 1`.
    pub fn bagging(&self) -> bool {
        self.raw.bagging_freq > 0 && self.raw.bagging_fraction < 1.0
    }
}

impl std::ops::Deref for ValidGbdtParams {
    type Target = GbdtParams;
    fn deref(&self) -> &GbdtParams {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values_and_valid() {
        let p = GbdtParams::default();
        assert_eq!(
            (p.num_trees, p.num_leaves, p.max_bin, p.min_data_in_leaf),
            (100, 31, 255, 20)
        );
        assert_eq!(
            (p.learning_rate, p.min_sum_hessian_in_leaf, p.lambda_l2),
            (0.1, 1e-3, 0.0)
        );
        assert_eq!(
            (p.feature_fraction, p.bagging_fraction, p.seed),
            (1.0, 1.0, 0)
        );
        assert!(p.check().is_ok());
    }

    #[test]
    fn check_rejects_out_of_range() {
        let cases = [
            GbdtParams::new().num_trees(0),
            GbdtParams::new().learning_rate(0.0),
            GbdtParams::new().learning_rate(f64::NAN),
            GbdtParams::new().num_leaves(1),
            GbdtParams::new().max_depth(0),
            GbdtParams::new().max_bin(256),
            GbdtParams::new().feature_fraction(0.0),
            GbdtParams::new().bagging_fraction(1.5),
            GbdtParams::new().lambda_l2(-1.0),
            GbdtParams::new().objective(Objective::Tweedie {
                variance_power: 2.5,
            }),
            GbdtParams::new()
                .objective(Objective::Regression)
                .metric(Some(EvalMetric::Auc)),
        ];
        for c in cases {
            assert!(
                matches!(c.check(), Err(GbdtError::InvalidParam { .. })),
                "{c:?}"
            );
        }
    }

    #[test]
    fn serde_defaults_and_unknown_fields() {
        let p: GbdtParams = serde_json::from_str(
            r#"{"num_leaves": 63, "objective": {"type": "binary", "scale_pos_weight": 5.0}}"#,
        )
        .unwrap_or_default();
        assert_eq!(p.num_leaves, 63);
        assert_eq!(
            p.objective,
            Objective::Binary {
                scale_pos_weight: 5.0
            }
        );
        assert_eq!(p.num_trees, 100);
        let bad: Result<GbdtParams, _> = serde_json::from_str(r#"{"num_leaf": 63}"#);
        assert!(bad.is_err());
        let t: GbdtParams =
            serde_json::from_str(r#"{"objective": {"type": "tweedie"}}"#).unwrap_or_default();
        assert_eq!(
            t.objective,
            Objective::Tweedie {
                variance_power: 1.5
            }
        );
    }
}
