//! Paired bootstrap kernel.
//!
//! A replicate draws n rows with replacement from the n rows (multinomial counts c_i), the
//! same draw for every model. Each model's top-k is taken over the resampled rows in its own
//! score order (a row drawn c times fills c slots; a row straddling the k-th slot counts
//! fractionally), and each estimator's sums use weights c_i·w_i. Replicate b uses
//! `ChaCha8Rng::seed_from_u64(seed)` on stream b, and replicates are collected in order, so
//! results do not depend on the number of threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Statistics of one model under one estimator (NaN where undefined).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stats {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub revenue_share: Vec<f64>,
    pub auc: f64,
}

pub(crate) struct ModelView<'a> {
    pub order: &'a [u32],
    pub scores: &'a [f64],
}

pub(crate) struct Shared<'a> {
    pub y: &'a [bool],
    pub rev: &'a [f64],
    /// Sample weights per estimator.
    pub weights: Vec<&'a [f64]>,
    /// Budget sizes (any order).
    pub ks: &'a [usize],
}

/// One pass over `m.order` computing every estimator's budget sums and AUC.
pub(crate) fn model_stats(m: &ModelView, s: &Shared, counts: Option<&[u32]>) -> Vec<Stats> {
    let ne = s.weights.len();
    let nk = s.ks.len();
    let mut kidx: Vec<usize> = (0..nk).collect();
    kidx.sort_by_key(|&i| s.ks[i]);
    // cumulative (sw, swy, swr) per estimator
    let mut cum = vec![[0.0f64; 3]; ne];
    let mut snap = vec![vec![[0.0f64; 3]; nk]; ne];
    let mut pos_above = vec![0.0; ne];
    let mut num = vec![0.0; ne];
    let mut w_neg = vec![0.0; ne];
    let mut pg = vec![0.0; ne];
    let mut ng = vec![0.0; ne];
    let mut taken = 0.0f64;
    let mut next = 0usize;
    let order = m.order;
    let mut start = 0;
    while start < order.len() {
        let v = m.scores[order[start] as usize];
        let mut end = start;
        while end < order.len() && m.scores[order[end] as usize] == v {
            let r = order[end] as usize;
            end += 1;
            let c = counts.map_or(1.0, |c| c[r] as f64);
            if c == 0.0 {
                continue;
            }
            let y = s.y[r];
            let yv = if y { 1.0 } else { 0.0 };
            let rv = s.rev[r];
            while next < nk && taken + c >= s.ks[kidx[next]] as f64 {
                let frac = s.ks[kidx[next]] as f64 - taken;
                for e in 0..ne {
                    let w = s.weights[e][r] * frac;
                    snap[e][kidx[next]] = [cum[e][0] + w, cum[e][1] + w * yv, cum[e][2] + w * rv];
                }
                next += 1;
            }
            for e in 0..ne {
                let w = s.weights[e][r] * c;
                if w > 0.0 {
                    cum[e][0] += w;
                    cum[e][1] += w * yv;
                    cum[e][2] += w * rv;
                    if y {
                        pg[e] += w;
                    } else {
                        ng[e] += w;
                    }
                }
            }
            taken += c;
        }
        for e in 0..ne {
            num[e] += ng[e] * (pos_above[e] + 0.5 * pg[e]);
            pos_above[e] += pg[e];
            w_neg[e] += ng[e];
            pg[e] = 0.0;
            ng[e] = 0.0;
        }
        start = end;
    }
    while next < nk {
        for e in 0..ne {
            snap[e][kidx[next]] = cum[e];
        }
        next += 1;
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    (0..ne)
        .map(|e| Stats {
            precision: snap[e].iter().map(|x| div(x[1], x[0])).collect(),
            recall: snap[e].iter().map(|x| div(x[1], cum[e][1])).collect(),
            revenue_share: snap[e].iter().map(|x| div(x[2], cum[e][2])).collect(),
            auc: div(num[e], pos_above[e] * w_neg[e]),
        })
        .collect()
}

/// `reps[b][model][estimator]` for b in 0..reps.
pub(crate) fn paired_bootstrap(models: &[ModelView], s: &Shared, n: usize, reps: usize, seed: u64) -> Vec<Vec<Vec<Stats>>> {
    if n == 0 {
        return Vec::new();
    }
    (0..reps)
        .into_par_iter()
        .map_init(
            || vec![0u32; n],
            |counts, b| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(b as u64);
                counts.fill(0);
                let n32 = n as u32;
                for _ in 0..n {
                    counts[rng.random_range(0..n32) as usize] += 1;
                }
                models.iter().map(|m| model_stats(m, s, Some(counts))).collect()
            },
        )
        .collect()
}
