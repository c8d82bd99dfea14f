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

/// A validated training configuration.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub schema: Schema,
    pub algo: Algo,
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
}

impl TrainConfig {
    pub fn new(data: PathBuf, schema: Schema, algo: Algo, out: PathBuf) -> TrainConfig {
        TrainConfig {
            data,
            schema,
            algo,
            out,
            valid_from: None,
            gbdt: GbdtParams::default().early_stopping_rounds(20),
            logistic: LogisticParams::default(),
            pipeline: PipelineConfig::default(),
            pos_weight: 1.0,
            seed: 42,
            threads: 0,
            skip_bad_rows: false,
        }
    }

    /// The one place the run configuration is validated.
    pub fn check(&self) -> Result<(), TrainError> {
        if !(self.pos_weight.is_finite() && self.pos_weight > 0.0) {
            return Err(TrainError::Config(format!(
                "pos_weight {} must be finite and > 0",
                self.pos_weight
            )));
        }
        self.gbdt.check()?;
        self.logistic.check()?;
        self.pipeline.check()?;
        if self.out.as_os_str().is_empty() {
            return Err(TrainError::Config("output path is empty".into()));
        }
        Ok(())
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
