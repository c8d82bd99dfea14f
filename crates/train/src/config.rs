//! Training configuration: the `train` flags, or the same in a TOML file
//! (`customs-risk train --config train.toml`, see `data/train.example.toml`).

use std::path::PathBuf;

use cr_data::Schema;
use cr_features::PipelineConfig;
use cr_gbdt::GbdtParams;
use cr_linear::LogisticParams;
use serde::{Deserialize, Serialize};

use crate::TrainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algo {
    Gbdt,
    Logistic,
}

impl Algo {
    pub fn as_str(self) -> &'static str {
        match self {
            Algo::Gbdt => "gbdt",
            Algo::Logistic => "logistic",
        }
    }
}

/// What the model is fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainObjective {
    /// Seized or not (log loss); the score is the probability of a seizure.
    Binary,
    /// The revenue recovered by an inspection (Tweedie deviance, log link; clean inspections
    /// count 0): the score is the expected revenue. GBDT only.
    Revenue,
}

impl TrainObjective {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainObjective::Binary => "binary",
            TrainObjective::Revenue => "revenue",
        }
    }

    /// What the exported model's output predicts.
    pub fn prediction(self) -> cr_model::meta::Prediction {
        match self {
            TrainObjective::Binary => cr_model::meta::Prediction::Risk,
            TrainObjective::Revenue => cr_model::meta::Prediction::ExpectedRevenue,
        }
    }
}

/// Tweedie variance power of `--objective revenue` (LightGBM's default): a compound
/// Poisson-gamma, i.e. many exact zeros (clean inspections) and skewed positive amounts.
pub const REVENUE_VARIANCE_POWER: f64 = 1.5;

/// How labelled rows are weighted when fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleWeight {
    /// Every labelled row counts once.
    None,
    /// Inverse inclusion probability `1 / propensity` from the schema's propensity column,
    /// clipped at [`TrainConfig::ipw_max_weight`]: the labelled rows then stand for all
    /// declarations rather than for the ones the legacy rules picked.
    Ipw,
}

impl SampleWeight {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleWeight::None => "none",
            SampleWeight::Ipw => "ipw",
        }
    }
}

/// A validated training configuration.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub schema: Schema,
    pub algo: Algo,
    /// What the model is fitted to; default [`TrainObjective::Binary`].
    pub objective: TrainObjective,
    /// Output base path: writes `<out>.onnx` and `<out>.card.json`.
    pub out: PathBuf,
    /// First day of the validation period (days since 1970-01-01). `None`: the first day of the
    /// month that leaves about the latest 20 % of labelled rows for validation.
    pub valid_from: Option<i32>,
    pub gbdt: GbdtParams,
    pub logistic: LogisticParams,
    pub pipeline: PipelineConfig,
    /// Weight of seized rows relative to clean ones (class imbalance), > 0.
    pub pos_weight: f64,
    /// Master seed (pipeline folds, bagging, feature sampling).
    pub seed: u64,
    /// Worker threads (0 = all cores). Results do not depend on it.
    pub threads: usize,
    /// Skip rejected rows (reported in the card) instead of failing.
    pub skip_bad_rows: bool,
    /// After choosing the setting on the validation period (GBDT: the rounds kept by early
    /// stopping), fit the pipeline and the model again on every labelled row, validation
    /// period included, and ship that model. Default true; false ships the model trained
    /// without the validation rows.
    pub refit: bool,
    /// GBDT monotone constraints by feature name (pipeline feature names, as listed in the
    /// card's `features`): `+1` the score never decreases as the feature grows, `-1` never
    /// increases. Unknown names are an error when the pipeline is fitted.
    pub monotone: Vec<(String, i8)>,
    /// Row weights for fitting. Default [`SampleWeight::None`].
    pub sample_weight: SampleWeight,
    /// Largest inverse-propensity weight (larger ones are clipped to it, and counted in the
    /// card), > 1. Default 100 (propensities below 1 %).
    pub ipw_max_weight: f64,
    /// Fewest seized and fewest not-seized labelled training rows a run accepts
    /// ([`DEFAULT_MIN_PER_CLASS`]); below it [`TrainConfig::check_class_counts`] refuses.
    pub min_per_class: usize,
    /// Key of the schema's pseudonymised columns (`schema` then records its fingerprint,
    /// see `cr_data::Schema::keyed`).
    pub pseudonym_key: Option<cr_data::PseudonymKey>,
}

/// Default of [`TrainConfig::min_per_class`]: with fewer than 20 seizures (or 20 clean
/// inspections) a model learns noise, and its validation numbers are undefined or meaningless.
pub const DEFAULT_MIN_PER_CLASS: usize = 20;

impl TrainConfig {
    pub fn new(data: PathBuf, schema: Schema, algo: Algo, out: PathBuf) -> TrainConfig {
        TrainConfig {
            data,
            schema,
            algo,
            objective: TrainObjective::Binary,
            out,
            valid_from: None,
            gbdt: GbdtParams::default().early_stopping_rounds(20),
            logistic: LogisticParams::default(),
            pipeline: PipelineConfig::default(),
            pos_weight: 1.0,
            seed: 42,
            threads: 0,
            skip_bad_rows: false,
            refit: true,
            monotone: Vec::new(),
            sample_weight: SampleWeight::None,
            ipw_max_weight: 100.0,
            min_per_class: DEFAULT_MIN_PER_CLASS,
            pseudonym_key: None,
        }
    }

    /// Refuse to train on (almost) nothing: fewer than `min_per_class` seized or not-seized
    /// labelled rows in the training period (before `valid_from`, a `YYYY-MM-DD` date) is
    /// [`TrainError::TooFewLabels`], which says how many there are.
    pub fn check_class_counts(
        &self,
        positives: usize,
        negatives: usize,
        valid_from: &str,
    ) -> Result<(), TrainError> {
        if positives < self.min_per_class || negatives < self.min_per_class {
            return Err(TrainError::TooFewLabels {
                positives,
                negatives,
                min: self.min_per_class,
                before: valid_from.to_string(),
            });
        }
        Ok(())
    }

    /// `--objective revenue`: refuse a training period with fewer than `min_per_class`
    /// inspections that recovered revenue (> 0) or that recovered none.
    pub fn check_revenue_counts(
        &self,
        with_revenue: usize,
        without: usize,
        valid_from: &str,
    ) -> Result<(), TrainError> {
        if with_revenue < self.min_per_class || without < self.min_per_class {
            return Err(TrainError::Config(format!(
                "too few labelled rows to learn revenue from: {with_revenue} inspections with \
                 revenue > 0 and {without} without before {valid_from} (the validation start); \
                 at least {} of each are required (min_per_class)",
                self.min_per_class
            )));
        }
        Ok(())
    }

    /// The one place the run configuration is validated.
    pub fn check(&self) -> Result<(), TrainError> {
        if self.objective == TrainObjective::Revenue {
            if self.algo != Algo::Gbdt {
                return Err(TrainError::Config(format!(
                    "--objective revenue needs --algo gbdt (a Tweedie GBDT); --algo {} fits \
                     the binary objective only",
                    self.algo.as_str()
                )));
            }
            if self.schema.revenue.is_none() {
                return Err(TrainError::Config(format!(
                    "--objective revenue needs a revenue column (the revenue recovered by each \
                     inspection); schema {:?} names none (add `revenue = {{ column = \"...\" }}`)",
                    self.schema.name
                )));
            }
            if self.pos_weight != 1.0 {
                return Err(TrainError::Config(format!(
                    "pos_weight {} applies to --objective binary (seized rows weighted against \
                     clean ones); a revenue model weighs rows by their revenue",
                    self.pos_weight
                )));
            }
        }
        if !(self.pos_weight.is_finite() && self.pos_weight > 0.0) {
            return Err(TrainError::Config(format!(
                "pos_weight {} must be finite and > 0",
                self.pos_weight
            )));
        }
        self.gbdt.check()?;
        self.logistic.check()?;
        self.pipeline.check()?;
        if !(self.ipw_max_weight.is_finite() && self.ipw_max_weight > 1.0) {
            return Err(TrainError::Config(format!(
                "ipw_max_weight {} must be finite and > 1",
                self.ipw_max_weight
            )));
        }
        if self.sample_weight == SampleWeight::Ipw && self.schema.propensity.is_none() {
            return Err(TrainError::Config(format!(
                "--sample-weight ipw needs a propensity column; schema {:?} has none",
                self.schema.name
            )));
        }
        for (name, dir) in &self.monotone {
            if !matches!(dir, -1 | 1) {
                return Err(TrainError::Config(format!(
                    "monotone constraint for {name:?} must be +1 or -1, got {dir}"
                )));
            }
            if self.algo != Algo::Gbdt {
                return Err(TrainError::Config(format!(
                    "monotone constraints apply to --algo gbdt only (got {})",
                    self.algo.as_str()
                )));
            }
        }
        if self.out.as_os_str().is_empty() {
            return Err(TrainError::Config("output path is empty".into()));
        }
        self.model_name()?;
        Ok(())
    }

    /// The model's name (in its card): the output file name without `.onnx`. An output path
    /// that names no file (`/`, `..`) is an error, not a model without a name.
    pub fn model_name(&self) -> Result<String, TrainError> {
        self.out
            .file_name()
            .map(|s| s.to_string_lossy().trim_end_matches(".onnx").to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "output path {} names no file (give e.g. models/gbdt)",
                    self.out.display()
                ))
            })
    }

    pub fn onnx_path(&self) -> PathBuf {
        with_suffix(&self.out, ".onnx")
    }

    pub fn card_path(&self) -> PathBuf {
        with_suffix(&self.out, ".card.json")
    }
}

fn with_suffix(base: &std::path::Path, suffix: &str) -> PathBuf {
    let s = base.to_string_lossy();
    let s = s.strip_suffix(".onnx").unwrap_or(&s);
    PathBuf::from(format!("{s}{suffix}"))
}

/// Parses one `FEATURE=+1` / `FEATURE=-1` monotone constraint.
pub fn parse_monotone(s: &str) -> Result<(String, i8), TrainError> {
    let bad = || {
        TrainError::Config(format!(
            "monotone constraint {s:?}: expected FEATURE=+1 or FEATURE=-1"
        ))
    };
    let (name, dir) = s.rsplit_once('=').ok_or_else(bad)?;
    let dir = match dir.trim() {
        "+1" | "1" => 1,
        "-1" => -1,
        _ => return Err(bad()),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(bad());
    }
    Ok((name.to_string(), dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min: usize) -> TrainConfig {
        let schema = Schema::from_toml(
            "name='t'\nid={column='i'}\ndate={column='d'}\nhs_code={column='h', width=6}\n\
             categorical=[{column='c'}]\nnumeric=[{column='n'}]\nlabel={column='y'}\n",
        )
        .unwrap();
        let mut c = TrainConfig::new("d.csv".into(), schema, Algo::Gbdt, "m".into());
        c.min_per_class = min;
        c
    }

    #[test]
    fn revenue_needs_gbdt_a_revenue_column_and_enough_revenue_rows() {
        let mut c = cfg(DEFAULT_MIN_PER_CLASS);
        c.objective = TrainObjective::Revenue;
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("needs a revenue column") && e.contains("schema \"t\""),
            "{e}"
        );
        c.schema = Schema::from_toml(
            "name='t'\nid={column='i'}\ndate={column='d'}\nhs_code={column='h', width=6}\n\
             categorical=[{column='c'}]\nnumeric=[{column='n'}]\nlabel={column='y'}\n\
             revenue={column='r'}\n",
        )
        .unwrap();
        assert!(c.check().is_ok());
        c.algo = Algo::Logistic;
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("--objective revenue needs --algo gbdt"), "{e}");
        let e = c
            .check_revenue_counts(19, 500, "2024-01-01")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("19 inspections with revenue > 0 and 500 without before 2024-01-01")
                && e.contains("at least 20 of each"),
            "{e}"
        );
        assert!(c.check_revenue_counts(20, 20, "2024-01-01").is_ok());
    }

    #[test]
    fn too_few_of_either_class_is_refused_with_the_counts() {
        let c = cfg(DEFAULT_MIN_PER_CLASS);
        assert!(c.check_class_counts(20, 20, "2024-01-01").is_ok());
        for (pos, neg) in [(0, 5000), (19, 5000), (5000, 19)] {
            let e = c.check_class_counts(pos, neg, "2024-01-01").unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(&format!(
                    "{pos} seized and {neg} not seized before 2024-01-01"
                )) && msg.contains("at least 20 of each"),
                "{msg}"
            );
        }
        assert!(cfg(0).check_class_counts(0, 0, "2024-01-01").is_ok());
    }
}
