//! Pipeline hyper-parameters ([`PipelineConfig`]) and risk-profile keys ([`KeyPart`]).

use cr_data::{CategoricalKind, Schema};
use serde::{Deserialize, Serialize};

use crate::error::FeatureError;

/// One component of a risk-profile key.
///
/// JSON / TOML form (externally tagged): `{"categorical": 0}`, `{"hs": 4}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    /// Index into `schema.categorical` (and `batch.categorical`). Key part: the cell string,
    /// `""` when missing.
    Categorical(usize),
    /// HS prefix of this many digits (even, 2..=schema.hs_width). Key part: the decimal
    /// integer `hs / 10^(width - digits)` without padding (HS4 of `071080` is `"710"`).
    Hs(u8),
}

/// Hyper-parameters of [`crate::fit`]. Missing fields take their defaults; unknown fields are
/// rejected. Validated by [`PipelineConfig::check`] (also called by `fit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Smoothing strength `m` of the risk rates `(pos + m * prior) / (n + m)`. Finite, >= 0.
    /// Default 20.
    pub smoothing: f64,
    /// Number of out-of-fold folds for the training-row risk features, 2..=100. Default 5.
    pub folds: usize,
    /// Seed of the fold assignment (ChaCha8). Default 42.
    pub seed: u64,
    /// Multi-part risk keys built in addition to the single-column ones. `None` = defaults by
    /// kind: importer×declarant, importer×HS4, origin×HS6, declarant×origin, office×HS4
    /// (each only when the schema has those kinds / HS digits). `Some(vec![])` = no pairs.
    pub pairs: Option<Vec<Vec<KeyPart>>>,
    /// Keys seen on fewer labelled training rows than this are left out of the tables (they
    /// read as unseen: rate = prior, count = 0), in the final and in the per-fold tables.
    /// At least 1. Default 5: a model file then holds no profile of an importer (declarant, ...)
    /// with fewer than 5 inspections (with smoothing 20 such a rate would have moved at most
    /// 4/24 ~ 17 % of the way from the prior to the key's own rate anyway).
    pub min_count: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            smoothing: 20.0,
            folds: 5,
            seed: 42,
            pairs: None,
            min_count: 5,
        }
    }
}

impl PipelineConfig {
    /// Checks the schema-independent ranges. Keys are checked against a schema by `fit`.
    pub fn check(&self) -> Result<(), FeatureError> {
        if !self.smoothing.is_finite() || self.smoothing < 0.0 {
            return Err(FeatureError::config(format!(
                "smoothing = {} must be finite and >= 0",
                self.smoothing
            )));
        }
        if !(2..=100).contains(&self.folds) {
            return Err(FeatureError::config(format!(
                "folds = {} must be in 2..=100",
                self.folds
            )));
        }
        if self.min_count < 1 {
            return Err(FeatureError::config("min_count must be >= 1"));
        }
        if let Some(pairs) = &self.pairs {
            if pairs.iter().any(|k| k.is_empty()) {
                return Err(FeatureError::config("pairs: a key has no parts"));
            }
        }
        Ok(())
    }
}

/// Checks that `key` is non-empty and every part exists in `schema`.
pub(crate) fn check_key(key: &[KeyPart], schema: &Schema) -> Result<(), String> {
    if key.is_empty() {
        return Err("risk key has no parts".into());
    }
    for part in key {
        match *part {
            KeyPart::Categorical(i) if i >= schema.categorical.len() => {
                return Err(format!(
                    "risk key part categorical {i} is out of range (schema has {} categorical columns)",
                    schema.categorical.len()
                ));
            }
            KeyPart::Hs(d) if d < 2 || d % 2 != 0 || d > schema.hs_width => {
                return Err(format!(
                    "risk key part hs {d} must be an even number of digits from 2 to the HS width {}",
                    schema.hs_width
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Display name of a key: part names joined with `"|"` (column name, or `hs4`).
pub(crate) fn key_name(key: &[KeyPart], schema: &Schema) -> String {
    key.iter()
        .map(|p| match *p {
            KeyPart::Categorical(i) => schema
                .categorical
                .get(i)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| format!("categorical{i}")),
            KeyPart::Hs(d) => format!("hs{d}"),
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Every risk key `fit` builds, in pipeline order: each categorical column (schema order),
/// then HS6, HS4, HS2 (those not wider than the code), then the pairs (config or defaults).
pub(crate) fn risk_keys(
    schema: &Schema,
    cfg: &PipelineConfig,
) -> Result<Vec<Vec<KeyPart>>, FeatureError> {
    let mut keys: Vec<Vec<KeyPart>> = (0..schema.categorical.len())
        .map(|i| vec![KeyPart::Categorical(i)])
        .collect();
    for d in [6u8, 4, 2] {
        if d <= schema.hs_width {
            keys.push(vec![KeyPart::Hs(d)]);
        }
    }
    match &cfg.pairs {
        Some(pairs) => {
            for p in pairs {
                check_key(p, schema).map_err(|m| FeatureError::config(format!("pairs: {m}")))?;
                if keys.contains(p) {
                    return Err(FeatureError::config(format!(
                        "pairs: key {} is listed twice (single-column and HS keys are always built)",
                        key_name(p, schema)
                    )));
                }
                keys.push(p.clone());
            }
        }
        None => {
            use CategoricalKind::*;
            let cat = |k: CategoricalKind| schema.categorical_index(k).map(KeyPart::Categorical);
            let hs = |d: u8| (d <= schema.hs_width).then_some(KeyPart::Hs(d));
            let defaults = [
                (cat(Importer), cat(Declarant)),
                (cat(Importer), hs(4)),
                (cat(CountryOfOrigin), hs(6)),
                (cat(Declarant), cat(CountryOfOrigin)),
                (cat(Office), hs(4)),
            ];
            for (a, b) in defaults {
                if let (Some(a), Some(b)) = (a, b) {
                    keys.push(vec![a, b]);
                }
            }
        }
    }
    Ok(keys)
}
