//! Fitting: medians, fold assignment, risk tables and out-of-fold training features.
//!
//! Out-of-fold scheme: the labelled training rows are shuffled with `ChaCha8Rng(seed)` and
//! dealt round-robin into `folds` folds (sizes differ by at most one). A labelled row in fold
//! `f` gets its risk features from tables built on the labelled rows of the other folds, with
//! that subset's own prior (so no row ever sees its own label, not even through the prior),
//! and the same `min_count` cut. Unlabelled training rows, and every row at scoring time, use
//! the final tables built on all labelled training rows. Counts on training rows are thus
//! about `(folds - 1) / folds` of the final counts.

use std::collections::BTreeMap;

use cr_data::{Batch, NumericKind, Schema};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::calc::{hs_prefix, median, push_key, smoothed_rate, unit_value, FxHashMap};
use crate::compiled::check_batch;
use crate::config::{key_name, risk_keys, KeyPart, PipelineConfig};
use crate::error::FeatureError;
use crate::pipeline::{FeatureDef, FittedPipeline, FORMAT_VERSION};
use crate::FeatureMatrix;

/// Fits the pipeline on `train` (all rows for the medians, labelled rows for the risk tables)
/// and returns it with the training feature matrix, whose labelled rows carry out-of-fold
/// risk features (see the module doc). Errors: invalid config or keys, a batch that does not
/// match `schema`, no labelled rows, fewer labelled rows than folds.
pub fn fit(
    schema: &Schema,
    train: &Batch,
    cfg: &PipelineConfig,
) -> Result<(FittedPipeline, FeatureMatrix), FeatureError> {
    cfg.check()?;
    check_batch(schema, train)?;
    let keys = risk_keys(schema, cfg)?;
    let labelled: Vec<usize> = (0..train.len())
        .filter(|&r| train.label[r].is_some())
        .collect();
    if labelled.is_empty() {
        return Err(FeatureError::NoLabels {
            file: train.source.clone(),
            rows: train.len(),
        });
    }
    let fit_err = |message: String| FeatureError::Fit {
        file: train.source.clone(),
        message,
    };
    if labelled.len() < cfg.folds {
        return Err(fit_err(format!(
            "{} labelled rows, fewer than folds = {}",
            labelled.len(),
            cfg.folds
        )));
    }
    if u32::try_from(labelled.len()).is_err() {
        return Err(fit_err(format!(
            "{} labelled rows: at most 2^32 - 1 supported",
            labelled.len()
        )));
    }
    let y: Vec<bool> = labelled
        .iter()
        .map(|&r| train.label[r] == Some(true))
        .collect();
    let folds = assign_folds(labelled.len(), cfg.folds, cfg.seed);
    let n_all = labelled.len() as u64;
    let pos_all = y.iter().filter(|&&b| b).count() as u64;
    let prior = pos_all as f64 / n_all as f64;
    let mut n_fold = vec![0u64; cfg.folds];
    let mut pos_fold = vec![0u64; cfg.folds];
    for (j, &f) in folds.iter().enumerate() {
        n_fold[usize::from(f)] += 1;
        pos_fold[usize::from(f)] += u64::from(y[j]);
    }
    // Prior of the rows outside each fold (non-empty: every fold holds <= ceil(n / K) < n rows).
    let fold_prior: Vec<f64> = (0..cfg.folds)
        .map(|f| (pos_all - pos_fold[f]) as f64 / (n_all - n_fold[f]) as f64)
        .collect();

    let mut features = Vec::new();
    for (index, col) in schema.numeric.iter().enumerate() {
        features.push(FeatureDef::Numeric {
            name: format!("num[{}]", col.name),
            index,
        });
    }
    if let (Some(v), Some(m)) = (
        schema.numeric_index(NumericKind::Value),
        schema.numeric_index(NumericKind::Mass),
    ) {
        features.push(FeatureDef::UnitValue {
            name: "unit_value".into(),
            value_index: v,
            mass_index: m,
        });
        features.push(fit_medians(schema, train, v, m));
    }
    for d in [2u8, 4] {
        if d <= schema.hs_width {
            features.push(FeatureDef::HsPrefix {
                name: format!("hs{d}"),
                digits: d,
            });
        }
    }
    features.push(FeatureDef::DayOfWeek {
        name: "day_of_week".into(),
    });
    features.push(FeatureDef::Month {
        name: "month".into(),
    });

    let ctx = KeyCtx {
        schema,
        train,
        labelled: &labelled,
        y: &y,
        folds: &folds,
        cfg,
        prior,
        fold_prior: &fold_prior,
    };
    let fitted: Vec<KeyFit> = keys.par_iter().map(|k| ctx.fit_key(k)).collect();
    let first_risk_col = features.len();
    for (key, kf) in keys.iter().zip(&fitted) {
        let kname = key_name(key, schema);
        features.push(FeatureDef::RiskRate {
            name: format!("risk_rate[{kname}]"),
            key: key.clone(),
            table: kf.rate.clone(),
            default: prior as f32,
        });
        features.push(FeatureDef::RiskCount {
            name: format!("risk_count[{kname}]"),
            key: key.clone(),
            table: kf.count.clone(),
            default: 0.0,
        });
    }
    let pipeline = FittedPipeline {
        format_version: FORMAT_VERSION,
        schema: schema.clone(),
        features,
        prior,
        n_labelled: n_all,
    };
    pipeline
        .validate()
        .map_err(|e| FeatureError::config(e.to_string()))?;
    let mut matrix = pipeline.compile()?.transform(train)?;
    let n_cols = matrix.n_cols;
    for (ki, kf) in fitted.iter().enumerate() {
        let (c_rate, c_count) = (first_risk_col + 2 * ki, first_risk_col + 2 * ki + 1);
        for (j, &row) in labelled.iter().enumerate() {
            matrix.data[row * n_cols + c_rate] = kf.oof_rate[j];
            matrix.data[row * n_cols + c_count] = kf.oof_count[j];
        }
    }
    Ok((pipeline, matrix))
}

/// Fold (0..k) of each of the `n` labelled training rows (in batch order) as used by [`fit`]:
/// the indices shuffled with `ChaCha8Rng::seed_from_u64(seed)`, then dealt round-robin.
/// `k` is clamped to 1..=255.
pub fn assign_folds(n: usize, k: usize, seed: u64) -> Vec<u8> {
    let k = k.clamp(1, 255);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut folds = vec![0u8; n];
    for (i, &j) in order.iter().enumerate() {
        folds[j] = (i % k) as u8; // k <= 255
    }
    folds
}

/// Unit-value medians by HS4, HS2 and overall, over the training rows whose unit value is
/// finite and > 0 (labels not used).
fn fit_medians(schema: &Schema, train: &Batch, v: usize, m: usize) -> FeatureDef {
    let w = schema.hs_width;
    let mut by4: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    let mut by2: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    let mut all = Vec::new();
    for r in 0..train.len() {
        let uv = unit_value(train.numeric[v][r], train.numeric[m][r]);
        if uv.is_finite() && uv > 0.0 {
            if w >= 4 {
                by4.entry(hs_prefix(train.hs[r], w, 4))
                    .or_default()
                    .push(uv);
            }
            by2.entry(hs_prefix(train.hs[r], w, 2))
                .or_default()
                .push(uv);
            all.push(uv);
        }
    }
    let table = |g: BTreeMap<u64, Vec<f32>>| -> BTreeMap<String, f32> {
        g.into_iter()
            .filter_map(|(k, mut vals)| median(&mut vals).map(|md| (k.to_string(), md)))
            .collect()
    };
    FeatureDef::RelUnitValue {
        name: "rel_unit_value".into(),
        value_index: v,
        mass_index: m,
        hs4_median: table(by4),
        hs2_median: table(by2),
        global_median: median(&mut all).unwrap_or(1.0),
    }
}

struct KeyCtx<'a> {
    schema: &'a Schema,
    train: &'a Batch,
    labelled: &'a [usize],
    y: &'a [bool],
    folds: &'a [u8],
    cfg: &'a PipelineConfig,
    prior: f64,
    fold_prior: &'a [f64],
}

struct KeyFit {
    rate: BTreeMap<String, f32>,
    count: BTreeMap<String, f32>,
    /// Out-of-fold values per labelled row (same order as `labelled`).
    oof_rate: Vec<f32>,
    oof_count: Vec<f32>,
}

impl KeyCtx<'_> {
    fn fit_key(&self, key: &[KeyPart]) -> KeyFit {
        let k = self.cfg.folds;
        let m = self.cfg.smoothing;
        let min = u64::from(self.cfg.min_count);
        // Intern the key strings of the labelled rows.
        let mut ids: FxHashMap<Box<str>, u32> = FxHashMap::default();
        let mut row_id = Vec::with_capacity(self.labelled.len());
        let mut buf = String::new();
        for &r in self.labelled {
            buf.clear();
            push_key(&mut buf, key, self.schema.hs_width, self.train, r);
            let id = match ids.get(buf.as_str()) {
                Some(&id) => id,
                None => {
                    let id = ids.len() as u32; // < labelled.len() <= u32::MAX (checked)
                    ids.insert(buf.as_str().into(), id);
                    id
                }
            };
            row_id.push(id as usize);
        }
        // Per key and fold counts.
        let mut n = vec![0u64; ids.len() * k];
        let mut pos = vec![0u64; ids.len() * k];
        for (j, &id) in row_id.iter().enumerate() {
            let f = usize::from(self.folds[j]);
            n[id * k + f] += 1;
            pos[id * k + f] += u64::from(self.y[j]);
        }
        let tot = |v: &[u64], id: usize| v[id * k..(id + 1) * k].iter().sum::<u64>();
        let n_tot: Vec<u64> = (0..ids.len()).map(|id| tot(&n, id)).collect();
        let pos_tot: Vec<u64> = (0..ids.len()).map(|id| tot(&pos, id)).collect();
        let mut rate = BTreeMap::new();
        let mut count = BTreeMap::new();
        for (s, &id) in &ids {
            let id = id as usize;
            if n_tot[id] >= min {
                rate.insert(
                    s.to_string(),
                    smoothed_rate(pos_tot[id], n_tot[id], m, self.prior),
                );
                count.insert(s.to_string(), n_tot[id] as f32);
            }
        }
        let mut oof_rate = Vec::with_capacity(row_id.len());
        let mut oof_count = Vec::with_capacity(row_id.len());
        for (j, &id) in row_id.iter().enumerate() {
            let f = usize::from(self.folds[j]);
            let n_out = n_tot[id] - n[id * k + f];
            let pos_out = pos_tot[id] - pos[id * k + f];
            if n_out >= min {
                oof_rate.push(smoothed_rate(pos_out, n_out, m, self.fold_prior[f]));
                oof_count.push(n_out as f32);
            } else {
                oof_rate.push(self.fold_prior[f] as f32);
                oof_count.push(0.0);
            }
        }
        KeyFit {
            rate,
            count,
            oof_rate,
            oof_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_balanced_and_seeded() {
        let a = assign_folds(103, 5, 7);
        assert_eq!(a, assign_folds(103, 5, 7));
        assert_ne!(a, assign_folds(103, 5, 8));
        for f in 0..5u8 {
            let c = a.iter().filter(|&&x| x == f).count();
            assert!(c == 20 || c == 21, "fold {f} has {c}");
        }
    }
}
