//! The boosting loop: gradients from the objective, one tree per round from the learner,
//! score updates, validation metric, early stopping, progress callback.
//!
//! Randomness: one master `seed` feeds a ChaCha8 generator from which three seeds are drawn,
//! in order, for the binning row sample, bagging and per-tree feature sampling.

use std::time::Instant;

use ndarray::ArrayView2;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::binning::BinnedData;
use crate::error::GbdtError;
use crate::learner::{LearnerConfig, TreeLearner};
use crate::metric::EvalMetric;
use crate::model::{GbdtModel, TrainStats};
use crate::objective::Objective;
use crate::par::SyncPtr;
use crate::params::{GbdtParams, ValidGbdtParams};
use crate::split::SplitParams;
use crate::tree::Tree;

/// Progress report passed to the training callback after every round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Round just finished, 1-based.
    pub round: usize,
    /// Rounds requested (`num_trees`).
    pub total_rounds: usize,
    /// Objective's default metric on the training set (weighted log loss / MSE / tweedie
    /// negative log-likelihood).
    pub train_loss: f64,
    /// Validation metric after this round (`None` without a validation set).
    pub valid_metric: Option<f64>,
    /// Which metric `valid_metric` is.
    pub metric: EvalMetric,
    /// Best validation round so far (1-based).
    pub best_round: Option<usize>,
}

fn run_in<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn check_labels(obj: &Objective, y: &[f32], set: &'static str) -> Result<(), GbdtError> {
    for (row, &v) in y.iter().enumerate() {
        if let Err(reason) = obj.check_label(v) {
            return Err(GbdtError::InvalidLabel {
                set,
                row,
                value: v,
                reason,
            });
        }
    }
    Ok(())
}

/// Train a model.
///
/// * `x`: `n_rows x n_features` f32 features, NaN = missing (any memory layout);
/// * `y`: labels (0/1 for binary, >= 0 for tweedie);
/// * `weight`: optional non-negative sample weights;
/// * `valid`: optional validation features and labels, used for the metric reported in
///   [`Progress`] and for early stopping;
/// * `callback`: called after every round.
///
/// Deterministic: the same inputs, parameters and seed give a bit-identical model whatever the
/// number of threads.
pub fn train(
    params: &GbdtParams,
    x: ArrayView2<f32>,
    y: &[f32],
    weight: Option<&[f32]>,
    valid: Option<(ArrayView2<f32>, &[f32])>,
    callback: Option<&mut dyn FnMut(&Progress)>,
) -> Result<GbdtModel, GbdtError> {
    let vp = params.check()?;
    let pool = if vp.num_threads > 0 {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(vp.num_threads)
                .build()
                .map_err(|e| GbdtError::ThreadPool(e.to_string()))?,
        )
    } else {
        None
    };
    train_valid(&vp, x, y, weight, valid, callback, pool.as_ref())
}

fn train_valid(
    vp: &ValidGbdtParams,
    x: ArrayView2<f32>,
    y: &[f32],
    weight: Option<&[f32]>,
    valid: Option<(ArrayView2<f32>, &[f32])>,
    mut callback: Option<&mut dyn FnMut(&Progress)>,
    pool: Option<&rayon::ThreadPool>,
) -> Result<GbdtModel, GbdtError> {
    let t_start = Instant::now();
    let mut stats = TrainStats::default();
    let (n, nf) = x.dim();
    if n == 0 {
        return Err(GbdtError::Empty {
            what: "training rows",
        });
    }
    if nf == 0 {
        return Err(GbdtError::Empty {
            what: "feature columns",
        });
    }
    if n >= u32::MAX as usize {
        return Err(GbdtError::Shape {
            what: "training rows (max u32::MAX - 1)",
            expected: u32::MAX as usize - 1,
            got: n,
        });
    }
    if y.len() != n {
        return Err(GbdtError::Shape {
            what: "labels",
            expected: n,
            got: y.len(),
        });
    }
    if !vp.monotone_constraints.is_empty() && vp.monotone_constraints.len() != nf {
        return Err(GbdtError::Shape {
            what: "monotone_constraints (one per feature)",
            expected: nf,
            got: vp.monotone_constraints.len(),
        });
    }
    let obj = vp.objective;
    check_labels(&obj, y, "training")?;
    if let Some(w) = weight {
        if w.len() != n {
            return Err(GbdtError::Shape {
                what: "weights",
                expected: n,
                got: w.len(),
            });
        }
        if let Some((row, &value)) = w
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(GbdtError::InvalidWeight { row, value });
        }
    }
    if let Some((vx, vy)) = valid {
        if vx.ncols() != nf {
            return Err(GbdtError::Shape {
                what: "validation columns",
                expected: nf,
                got: vx.ncols(),
            });
        }
        if vy.len() != vx.nrows() {
            return Err(GbdtError::Shape {
                what: "validation labels",
                expected: vx.nrows(),
                got: vy.len(),
            });
        }
        check_labels(&obj, vy, "validation")?;
    }
    // effective weights: sample weight x label weight (scale_pos_weight)
    let needs_w = weight.is_some() || (0..n).any(|i| obj.label_weight(y[i]) != 1.0);
    let w_eff: Option<Vec<f32>> = needs_w.then(|| {
        (0..n)
            .map(|i| weight.map_or(1.0, |w| w[i]) * obj.label_weight(y[i]))
            .collect()
    });
    let w_eff = w_eff.as_deref();
    let base_score = obj.init_score(y, w_eff)?;

    let mut master = ChaCha8Rng::seed_from_u64(vp.seed);
    let bin_seed = master.next_u64();
    let mut bag_rng = ChaCha8Rng::seed_from_u64(master.next_u64());
    let mut feat_rng = ChaCha8Rng::seed_from_u64(master.next_u64());

    let data = run_in(pool, || {
        BinnedData::build(x, vp.max_bin, vp.bin_construct_sample, bin_seed)
    });
    stats.total_bins = data.total_bins;
    stats.binning_s = t_start.elapsed().as_secs_f64();

    let cfg = LearnerConfig {
        max_leaves: vp.num_leaves,
        max_depth: (vp.max_depth > 0).then_some(vp.max_depth as usize),
        split: SplitParams {
            min_data_in_leaf: vp.min_data_in_leaf,
            min_sum_hessian: vp.min_sum_hessian_in_leaf,
            lambda_l1: vp.lambda_l1,
            lambda_l2: vp.lambda_l2,
            min_gain_to_split: vp.min_gain_to_split,
        },
        monotone: vp.monotone_constraints.clone(),
    };
    let mut learner = TreeLearner::new(cfg, &data);
    let mut scores = vec![base_score; n];
    let mut gh = vec![[0.0f32; 2]; n];
    let valid_owned: Option<ndarray::Array2<f32>> = valid.and_then(|(vx, _)| {
        (!vx.is_standard_layout()).then(|| vx.as_standard_layout().into_owned())
    });
    let valid_flat: Option<&[f32]> = match (valid, valid_owned.as_ref()) {
        (_, Some(o)) => o.as_slice(),
        (Some((vx, _)), None) => vx.to_slice(),
        _ => None,
    };
    let mut valid_scores = valid.map(|(vx, _)| vec![base_score; vx.nrows()]);
    let metric = vp.metric();
    let train_metric = EvalMetric::default_for(&obj);
    let mut bag: Option<Vec<u32>> = None;
    let mut oob: Vec<u32> = Vec::new();
    let mut trees: Vec<Tree> = Vec::with_capacity(vp.num_trees);
    let mut best: Option<(usize, f64)> = None;
    let lr = vp.learning_rate;

    for round in 0..vp.num_trees {
        let t0 = Instant::now();
        if vp.bagging() && round % vp.bagging_freq == 0 {
            let k = ((n as f64 * vp.bagging_fraction).round() as usize).clamp(1, n);
            let (b, o) = sample_bag(n, k, &mut bag_rng);
            bag = Some(b);
            oob = o;
        }
        let allowed: Vec<bool> = if vp.feature_fraction < 1.0 {
            let k = ((nf as f64 * vp.feature_fraction).round() as usize).clamp(1, nf);
            let mut a = vec![false; nf];
            for f in rand::seq::index::sample(&mut feat_rng, nf, k) {
                a[f] = true;
            }
            a
        } else {
            vec![true; nf]
        };
        let t1 = Instant::now();
        run_in(pool, || obj.gradients(y, w_eff, &scores, &mut gh));
        let t2 = Instant::now();
        stats.gradients_s += (t2 - t1).as_secs_f64();
        stats.other_s += (t1 - t0).as_secs_f64();

        let grown = run_in(pool, || learner.grow(&data, &gh, bag.as_deref(), &allowed));
        let t3 = Instant::now();
        let mut tree = grown.tree;
        for v in tree
            .leaf_value
            .iter_mut()
            .chain(tree.internal_value.iter_mut())
        {
            *v *= lr;
        }
        // training scores: in-bag rows through the partition, out-of-bag rows through the tree
        run_in(pool, || {
            let ptr = SyncPtr(scores.as_mut_ptr());
            let idx = learner.indices();
            grown
                .leaf_ranges
                .par_iter()
                .zip(&tree.leaf_value)
                .for_each(|(&(b, c), &v)| {
                    let p = ptr;
                    for &r in &idx[b..b + c] {
                        // SAFETY: every row index appears in exactly one leaf range and is < n.
                        unsafe { *p.get().add(r as usize) += v };
                    }
                });
            if bag.is_some() {
                let ptr = SyncPtr(scores.as_mut_ptr());
                oob.par_chunks(4096).for_each(|rows| {
                    let p = ptr;
                    for &r in rows {
                        let leaf = binned_leaf(&tree, &grown.threshold_bin, &data, r as usize);
                        // SAFETY: out-of-bag rows are distinct and < n.
                        unsafe { *p.get().add(r as usize) += tree.leaf_value[leaf] };
                    }
                });
            }
            if let (Some(flat), Some(vs)) = (valid_flat, valid_scores.as_mut()) {
                vs.par_chunks_mut(1024).enumerate().for_each(|(c, o)| {
                    for (i, s) in o.iter_mut().enumerate() {
                        let r = c * 1024 + i;
                        *s += tree.predict_row(&flat[r * nf..(r + 1) * nf]);
                    }
                });
            }
        });
        trees.push(tree);

        let valid_metric = match (valid, valid_scores.as_ref()) {
            (Some((_, vy)), Some(vs)) => Some(run_in(pool, || metric.eval(&obj, vy, vs, None))),
            _ => None,
        };
        if let Some(m) = valid_metric {
            let better = best.is_none_or(|(_, b)| {
                if metric.higher_is_better() {
                    m > b
                } else {
                    m < b
                }
            });
            if better {
                best = Some((round, m));
            }
        }
        if let Some(cb) = callback.as_mut() {
            let train_loss = run_in(pool, || train_metric.eval(&obj, y, &scores, w_eff));
            cb(&Progress {
                round: round + 1,
                total_rounds: vp.num_trees,
                train_loss,
                valid_metric,
                metric,
                best_round: best.map(|(r, _)| r + 1),
            });
        }
        stats.other_s += t3.elapsed().as_secs_f64();
        stats.rounds = round + 1;
        if let Some((br, _)) = best {
            if vp.early_stopping_rounds > 0 && round - br >= vp.early_stopping_rounds {
                break;
            }
        }
    }
    if let Some((br, _)) = best {
        trees.truncate(br + 1);
    }
    stats.histogram_s = learner.times.histogram;
    stats.split_s = learner.times.split;
    stats.partition_s = learner.times.partition;
    stats.total_s = t_start.elapsed().as_secs_f64();
    Ok(GbdtModel {
        objective: obj,
        base_score,
        n_features: nf,
        feature_names: (0..nf).map(|i| format!("f{i}")).collect(),
        trees,
        best_iteration: best.map(|(r, _)| r + 1),
        best_score: best.map(|(_, m)| m),
        params: vp.raw().clone(),
        train_stats: stats,
    })
}

/// Leaf of training row `r` using the binned data (same routing as the f32 thresholds).
fn binned_leaf(tree: &Tree, threshold_bin: &[u8], data: &BinnedData, r: usize) -> usize {
    if tree.split_feature.is_empty() {
        return 0;
    }
    let mut node = 0i32;
    while node >= 0 {
        let i = node as usize;
        let f = tree.split_feature[i] as usize;
        let b = data.col_major[f * data.n_rows + r];
        let left = if b as usize == data.mappers[f].n_bins() {
            tree.default_left[i]
        } else {
            b <= threshold_bin[i]
        };
        node = if left {
            tree.left_child[i]
        } else {
            tree.right_child[i]
        };
    }
    !node as usize
}

/// Exactly `k` of `n` rows without replacement (selection sampling, Knuth's algorithm S);
/// returns (in-bag, out-of-bag), both sorted.
fn sample_bag(n: usize, k: usize, rng: &mut ChaCha8Rng) -> (Vec<u32>, Vec<u32>) {
    let mut bag = Vec::with_capacity(k);
    let mut oob = Vec::with_capacity(n - k);
    let mut need = k;
    for i in 0..n {
        let left = n - i;
        if need > 0 && (rng.random::<u64>() % left as u64) < need as u64 {
            bag.push(i as u32);
            need -= 1;
        } else {
            oob.push(i as u32);
        }
    }
    (bag, oob)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn bag_has_exact_size_and_is_seeded() {
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        let (x, ox) = sample_bag(1000, 314, &mut a);
        let (y, _) = sample_bag(1000, 314, &mut b);
        assert_eq!(x.len(), 314);
        assert_eq!(ox.len(), 686);
        assert_eq!(x, y);
        assert!(x.windows(2).all(|w| w[0] < w[1]));
    }
}
