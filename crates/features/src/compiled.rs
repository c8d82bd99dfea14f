//! Applying a fitted pipeline: [`CompiledPipeline`], the lookup form of a [`FittedPipeline`].
//!
//! Semantics are exactly those of the string definitions in [`crate::FeatureDef`]: every key
//! is looked up by its full key string (single-categorical keys by the cell itself, others
//! by a per-thread reusable buffer, so no allocation per row). Tables are hash maps with a
//! fixed hasher, used only for lookups.

use cr_data::{Batch, Schema};
use rayon::prelude::*;

use crate::calc::{
    day_of_week, hs_prefix, month, parse_canonical_decimal, push_key, rel_unit_value, unit_value, FxHashMap, POW10,
};
use crate::config::KeyPart;
use crate::error::FeatureError;
use crate::pipeline::{FeatureDef, FittedPipeline};
use crate::FeatureMatrix;

/// Rows per parallel work item (output is written in place, so results never depend on it).
const CHUNK_ROWS: usize = 2048;

struct CompiledKey {
    parts: Vec<KeyPart>,
    /// `Some(c)` when the key is the single categorical column `c` (looked up without copying).
    single_cat: Option<usize>,
    /// Key string -> slot.
    slots: FxHashMap<Box<str>, u32>,
}

enum Op {
    Numeric(usize),
    UnitValue { v: usize, m: usize },
    RelUnitValue { v: usize, m: usize, hs4: FxHashMap<u64, f32>, hs2: FxHashMap<u64, f32>, global: f32 },
    HsPrefix(u8),
    DayOfWeek,
    Month,
    /// `values[slot]`, NaN where the def's table lacks the key (tables hold finite values).
    Lookup { key: usize, values: Vec<f32>, default: f32 },
}

/// A validated fitted pipeline turned into lookup tables. `Send + Sync`; build once with
/// [`FittedPipeline::compile`], then [`CompiledPipeline::transform`] any number of batches.
pub struct CompiledPipeline {
    schema: Schema,
    names: Vec<String>,
    keys: Vec<CompiledKey>,
    ops: Vec<Op>,
}

/// Checks a batch against a schema: vector lengths, column counts, HS codes below
/// `10^hs_width`.
pub(crate) fn check_batch(schema: &Schema, batch: &Batch) -> Result<(), FeatureError> {
    let shape = |message: String| FeatureError::Shape {
        file: batch.source.clone(),
        schema: schema.name.clone(),
        message,
    };
    batch.check_lengths().map_err(shape)?;
    if batch.categorical.len() != schema.categorical.len() {
        return Err(shape(format!(
            "{} categorical columns, schema has {}",
            batch.categorical.len(),
            schema.categorical.len()
        )));
    }
    if batch.numeric.len() != schema.numeric.len() {
        return Err(shape(format!("{} numeric columns, schema has {}", batch.numeric.len(), schema.numeric.len())));
    }
    let limit = POW10[usize::from(schema.hs_width).min(12)];
    if let Some(row) = batch.hs.iter().position(|&h| h >= limit) {
        return Err(FeatureError::Data {
            file: batch.source.clone(),
            line: batch.lines.get(row).copied().unwrap_or(row as u64 + 1),
            column: schema.hs_code.clone(),
            message: format!("HS code {} has more than {} digits", batch.hs[row], schema.hs_width),
        });
    }
    Ok(())
}

fn median_map(t: &std::collections::BTreeMap<String, f32>) -> FxHashMap<u64, f32> {
    // Keys were validated as canonical decimals; a failed parse cannot happen here.
    t.iter().filter_map(|(k, &v)| parse_canonical_decimal(k).map(|k| (k, v))).collect()
}

impl CompiledPipeline {
    pub(crate) fn new(p: &FittedPipeline) -> Result<Self, FeatureError> {
        p.validate()?;
        let mut keys: Vec<CompiledKey> = Vec::new();
        // Pass 1: distinct keys and the union of their table keys -> slots.
        for f in &p.features {
            if let FeatureDef::RiskRate { key, table, .. } | FeatureDef::RiskCount { key, table, .. } = f {
                let ki = match keys.iter().position(|k| &k.parts == key) {
                    Some(i) => i,
                    None => {
                        let single_cat = match key.as_slice() {
                            [KeyPart::Categorical(c)] => Some(*c),
                            _ => None,
                        };
                        keys.push(CompiledKey { parts: key.clone(), single_cat, slots: FxHashMap::default() });
                        keys.len() - 1
                    }
                };
                let slots = &mut keys[ki].slots;
                for k in table.keys() {
                    if !slots.contains_key(k.as_str()) {
                        let next = u32::try_from(slots.len())
                            .map_err(|_| FeatureError::format("more than 2^32 keys in one risk table"))?;
                        slots.insert(k.as_str().into(), next);
                    }
                }
            }
        }
        // Pass 2: ops.
        let mut ops = Vec::with_capacity(p.features.len());
        for f in &p.features {
            ops.push(match f {
                FeatureDef::Numeric { index, .. } => Op::Numeric(*index),
                FeatureDef::UnitValue { value_index, mass_index, .. } => {
                    Op::UnitValue { v: *value_index, m: *mass_index }
                }
                FeatureDef::RelUnitValue { value_index, mass_index, hs4_median, hs2_median, global_median, .. } => {
                    Op::RelUnitValue {
                        v: *value_index,
                        m: *mass_index,
                        hs4: median_map(hs4_median),
                        hs2: median_map(hs2_median),
                        global: *global_median,
                    }
                }
                FeatureDef::HsPrefix { digits, .. } => Op::HsPrefix(*digits),
                FeatureDef::DayOfWeek { .. } => Op::DayOfWeek,
                FeatureDef::Month { .. } => Op::Month,
                FeatureDef::RiskRate { key, table, default, .. } | FeatureDef::RiskCount { key, table, default, .. } => {
                    let ki = keys.iter().position(|k| &k.parts == key).ok_or_else(|| FeatureError::format("key lost"))?;
                    let mut values = vec![f32::NAN; keys[ki].slots.len()];
                    for (k, &v) in table {
                        if let Some(&s) = keys[ki].slots.get(k.as_str()) {
                            values[s as usize] = v;
                        }
                    }
                    Op::Lookup { key: ki, values, default: *default }
                }
            });
        }
        Ok(CompiledPipeline { schema: p.schema.clone(), names: p.feature_names(), keys, ops })
    }

    /// Output column names, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// The schema the pipeline was fitted for.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Features of every row of `batch`, row-major, computed in parallel over row chunks
    /// (identical output for any thread count).
    pub fn transform(&self, batch: &Batch) -> Result<FeatureMatrix, FeatureError> {
        check_batch(&self.schema, batch)?;
        let n_rows = batch.len();
        let n_cols = self.ops.len();
        let mut data = vec![0f32; n_rows * n_cols];
        if n_cols > 0 {
            data.par_chunks_mut(CHUNK_ROWS * n_cols).enumerate().for_each(|(c, out)| {
                self.fill_rows(batch, c * CHUNK_ROWS, out);
            });
        }
        Ok(FeatureMatrix { n_rows, n_cols, data, names: self.names.clone() })
    }

    /// Writes rows `start..start + out.len() / n_cols` into `out`.
    fn fill_rows(&self, batch: &Batch, start: usize, out: &mut [f32]) {
        let n_cols = self.ops.len();
        let width = self.schema.hs_width;
        let mut buf = String::with_capacity(64);
        let mut slots: Vec<Option<u32>> = vec![None; self.keys.len()];
        for (k, row_out) in out.chunks_exact_mut(n_cols).enumerate() {
            let row = start + k;
            for (slot, key) in slots.iter_mut().zip(&self.keys) {
                *slot = match key.single_cat {
                    Some(c) => key.slots.get(batch.categorical[c][row].as_str()).copied(),
                    None => {
                        buf.clear();
                        push_key(&mut buf, &key.parts, width, batch, row);
                        key.slots.get(buf.as_str()).copied()
                    }
                };
            }
            for (o, op) in row_out.iter_mut().zip(&self.ops) {
                *o = match op {
                    Op::Numeric(i) => batch.numeric[*i][row],
                    Op::UnitValue { v, m } => unit_value(batch.numeric[*v][row], batch.numeric[*m][row]),
                    Op::RelUnitValue { v, m, hs4, hs2, global } => {
                        let uv = unit_value(batch.numeric[*v][row], batch.numeric[*m][row]);
                        let hs = batch.hs[row];
                        let med = hs4
                            .get(&hs_prefix(hs, width, 4))
                            .or_else(|| hs2.get(&hs_prefix(hs, width, 2)))
                            .copied()
                            .unwrap_or(*global);
                        rel_unit_value(uv, med)
                    }
                    Op::HsPrefix(d) => hs_prefix(batch.hs[row], width, *d) as f32,
                    Op::DayOfWeek => day_of_week(batch.dates[row]),
                    Op::Month => month(batch.dates[row]),
                    Op::Lookup { key, values, default } => match slots[*key] {
                        Some(s) => {
                            let v = values[s as usize];
                            if v.is_nan() {
                                *default
                            } else {
                                v
                            }
                        }
                        None => *default,
                    },
                };
            }
        }
    }
}
