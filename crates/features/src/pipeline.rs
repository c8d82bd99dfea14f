//! The fitted pipeline: its serialized definition ([`FittedPipeline`], [`FeatureDef`]) and
//! its validation. Applying it lives in `compiled.rs`, fitting in `fit.rs`.

use std::collections::{BTreeMap, BTreeSet};

use cr_data::{Batch, Schema};
use serde::{Deserialize, Serialize};

use crate::calc::{parse_canonical_decimal, push_key};
use crate::compiled::{check_batch, CompiledPipeline};
use crate::config::{check_key, KeyPart};
use crate::error::FeatureError;
use crate::FeatureMatrix;

/// Version of the JSON form of [`FittedPipeline`]; `from_json` rejects any other.
pub const FORMAT_VERSION: u32 = 1;

/// One output column of the pipeline. JSON: internally tagged by `"type"` (snake_case).
///
/// Every definition is exact f32 arithmetic over the raw fields (see [`crate::calc`]), so an
/// ONNX graph can reproduce it bit-exactly. Missing outputs are the canonical `f32::NAN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureDef {
    /// `batch.numeric[index][row]` as-is (NaN = missing). Name `num[<column>]`.
    Numeric { name: String, index: usize },
    /// [`crate::calc::unit_value`]`(numeric[value_index], numeric[mass_index])`.
    /// Name `unit_value`.
    UnitValue {
        name: String,
        value_index: usize,
        mass_index: usize,
    },
    /// `uv = unit_value(value, mass)` as in `UnitValue`; `median = hs4_median[hs4 key]`,
    /// else `hs2_median[hs2 key]`, else `global_median` (keys: decimal HS prefixes as in
    /// [`KeyPart::Hs`]); output [`crate::calc::rel_unit_value`]`(uv, median)` = `uv / median`
    /// (one f32 division), NaN when `uv` is NaN. Medians are over the training rows whose unit
    /// value is finite and > 0, all finite and > 0 (global 1.0 if there were none); the HS4
    /// table is empty when the HS width is below 4. Name `rel_unit_value`.
    RelUnitValue {
        name: String,
        value_index: usize,
        mass_index: usize,
        hs4_median: BTreeMap<String, f32>,
        hs2_median: BTreeMap<String, f32>,
        global_median: f32,
    },
    /// `hs / 10^(width - digits)` (int64 integer division) cast to f32 (exact: < 2^24).
    /// Name `hs<digits>`.
    HsPrefix { name: String, digits: u8 },
    /// [`crate::calc::day_of_week`] of the date (0 = Monday). Name `day_of_week`.
    DayOfWeek { name: String },
    /// Month 1..=12 of the date ([`crate::calc::month`]). Name `month`.
    Month { name: String },
    /// Smoothed seizure rate of the row's key: `table[key string]`, else `default` (the prior).
    /// Name `risk_rate[<key name>]`.
    RiskRate {
        name: String,
        key: Vec<KeyPart>,
        table: BTreeMap<String, f32>,
        default: f32,
    },
    /// Labelled-training-row count of the row's key: `table[key string]`, else `default` (0).
    /// Name `risk_count[<key name>]`.
    RiskCount {
        name: String,
        key: Vec<KeyPart>,
        table: BTreeMap<String, f32>,
        default: f32,
    },
}

impl FeatureDef {
    /// The output column name.
    pub fn name(&self) -> &str {
        match self {
            FeatureDef::Numeric { name, .. }
            | FeatureDef::UnitValue { name, .. }
            | FeatureDef::RelUnitValue { name, .. }
            | FeatureDef::HsPrefix { name, .. }
            | FeatureDef::DayOfWeek { name }
            | FeatureDef::Month { name }
            | FeatureDef::RiskRate { name, .. }
            | FeatureDef::RiskCount { name, .. } => name,
        }
    }

    /// Why this feature's distribution shifts by construction between a training period and
    /// a later one (a calendar position: the months of a time split barely overlap), so that
    /// drift reports can show it without flagging it. `None` for every other feature.
    pub fn shifts_with_time(&self) -> Option<&'static str> {
        match self {
            FeatureDef::Month { .. } => Some("the month of the year moves with any time split"),
            FeatureDef::DayOfWeek { .. } => {
                Some("the weekday mix follows the calendar of the period")
            }
            _ => None,
        }
    }
}

/// A fitted feature pipeline: the schema it was fitted for and its feature definitions, in
/// output column order. Serialized with [`FittedPipeline::to_json`] (deterministic: sorted
/// tables) and loaded with [`FittedPipeline::from_json`] (version and contents checked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedPipeline {
    pub format_version: u32,
    pub schema: Schema,
    pub features: Vec<FeatureDef>,
    /// Positive rate of the labelled training rows (the default of every `RiskRate`).
    pub prior: f64,
    /// Labelled training rows the tables were built on.
    pub n_labelled: u64,
}

impl FittedPipeline {
    /// Output column names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name().to_string()).collect()
    }

    /// Deterministic pretty JSON (tables are `BTreeMap`s; no NaN anywhere by construction).
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (string keys, finite floats).
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Parses and validates (format version, indices, key parts, finite table values).
    pub fn from_json(s: &str) -> Result<Self, FeatureError> {
        /// Only the version (other fields skipped unparsed): the pipeline itself is then
        /// deserialized straight from the text, without a `serde_json::Value` in between.
        #[derive(Deserialize)]
        struct Probe {
            format_version: Option<serde_json::Value>,
        }
        let version = match serde_json::from_str::<Probe>(s) {
            Ok(p) => p.format_version.and_then(|v| v.as_u64()),
            Err(_) => {
                let v: serde_json::Value = serde_json::from_str(s)
                    .map_err(|e| FeatureError::format(format!("not JSON: {e}")))?;
                v.get("format_version").and_then(|v| v.as_u64())
            }
        };
        match version {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(FeatureError::format(format!(
                    "format_version {v} is not supported (this build reads {FORMAT_VERSION})"
                )))
            }
            None => return Err(FeatureError::format("format_version is missing")),
        }
        let p: FittedPipeline =
            serde_json::from_str(s).map_err(|e| FeatureError::format(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks every invariant `transform` relies on. Called by `from_json` and `compile`.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if self.format_version != FORMAT_VERSION {
            return Err(FeatureError::format(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            )));
        }
        let s = &self.schema;
        if !(2..=12).contains(&s.hs_width) || s.hs_width & 1 != 0 {
            return Err(FeatureError::format(format!(
                "schema hs_width {} is invalid",
                s.hs_width
            )));
        }
        if self.features.is_empty() {
            return Err(FeatureError::format("no features"));
        }
        let mut names = BTreeSet::new();
        for f in &self.features {
            let name = f.name();
            let bad = |m: String| FeatureError::format(format!("feature {name:?}: {m}"));
            if name.is_empty() || !names.insert(name) {
                return Err(bad("name is empty or repeated".into()));
            }
            let num = |i: usize| {
                if i < s.numeric.len() {
                    Ok(())
                } else {
                    Err(bad(format!(
                        "numeric index {i} out of range ({} numeric columns)",
                        s.numeric.len()
                    )))
                }
            };
            match f {
                FeatureDef::Numeric { index, .. } => num(*index)?,
                FeatureDef::UnitValue {
                    value_index,
                    mass_index,
                    ..
                } => {
                    num(*value_index)?;
                    num(*mass_index)?;
                }
                FeatureDef::RelUnitValue {
                    value_index,
                    mass_index,
                    hs4_median,
                    hs2_median,
                    global_median,
                    ..
                } => {
                    num(*value_index)?;
                    num(*mass_index)?;
                    let ok = |v: f32| v.is_finite() && v > 0.0;
                    if s.hs_width < 4 && !hs4_median.is_empty() {
                        return Err(bad(
                            "hs4_median must be empty when the HS width is below 4".into()
                        ));
                    }
                    if !ok(*global_median) {
                        return Err(bad("global_median must be finite and > 0".into()));
                    }
                    for (k, v) in hs4_median.iter().chain(hs2_median.iter()) {
                        if parse_canonical_decimal(k).is_none() || !ok(*v) {
                            return Err(bad(format!("median entry {k:?} = {v}: key must be a decimal HS prefix and the value finite and > 0")));
                        }
                    }
                }
                FeatureDef::HsPrefix { digits, .. } => {
                    check_key(&[KeyPart::Hs(*digits)], s).map_err(bad)?;
                }
                FeatureDef::DayOfWeek { .. } | FeatureDef::Month { .. } => {}
                FeatureDef::RiskRate {
                    key,
                    table,
                    default,
                    ..
                }
                | FeatureDef::RiskCount {
                    key,
                    table,
                    default,
                    ..
                } => {
                    check_key(key, s).map_err(bad)?;
                    if let Some((k, v)) = table.iter().find(|(_, v)| !v.is_finite()) {
                        return Err(bad(format!("table value {v} for key {k:?} is not finite")));
                    }
                    if !default.is_finite() {
                        return Err(bad("default is not finite".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Builds the fast lookup form used to transform batches. Hold on to it when scoring
    /// many batches; [`FittedPipeline::transform`] compiles on every call.
    pub fn compile(&self) -> Result<CompiledPipeline, FeatureError> {
        CompiledPipeline::new(self)
    }

    /// Features of every row of `batch` (row-major). Compiles the tables first (cost
    /// proportional to the table sizes); use [`FittedPipeline::compile`] to reuse them.
    pub fn transform(&self, batch: &Batch) -> Result<FeatureMatrix, FeatureError> {
        self.compile()?.transform(batch)
    }

    /// The key string of `row` under `key`, exactly as looked up in the risk tables: parts
    /// joined with `"|"`, categorical parts verbatim (`""` when missing), HS parts the decimal
    /// prefix without padding. Errors when the key, batch shape or row is out of range.
    pub fn key_string(
        &self,
        key: &[KeyPart],
        batch: &Batch,
        row: usize,
    ) -> Result<String, FeatureError> {
        key_string(&self.schema, key, batch, row)
    }
}

/// [`FittedPipeline::key_string`] for a schema (usable before fitting).
pub fn key_string(
    schema: &Schema,
    key: &[KeyPart],
    batch: &Batch,
    row: usize,
) -> Result<String, FeatureError> {
    check_key(key, schema).map_err(FeatureError::config)?;
    check_batch(schema, batch)?;
    if row >= batch.len() {
        return Err(FeatureError::config(format!(
            "row {row} out of range ({} rows)",
            batch.len()
        )));
    }
    let mut s = String::new();
    push_key(&mut s, key, schema.hs_width, batch, row);
    Ok(s)
}
