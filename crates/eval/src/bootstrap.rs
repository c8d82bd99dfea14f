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
    /// Sample weights per estimator (at most 3).
    pub weights: Vec<&'a [f64]>,
}

/// Up to this many estimators per pass.
const MAX_EST: usize = 3;

/// One row in a model's score order, with everything a pass needs stored contiguously (24
/// bytes), so that a replicate streams memory sequentially except for the row's count.
#[derive(Clone, Copy)]
struct Packed {
    row: u32,
    /// bit 0: first row of a tie group; bit 1: positive label; bit 2 + e: in estimator e's
    /// sample (weight 1, or `wx` for the weighted estimator).
    flags: u8,
    rev: f64,
    /// Weight under the one estimator whose weights are not all 0/1 (IPW), else 0.
    wx: f64,
}

const NEW_GROUP: u8 = 1;
const POSITIVE: u8 = 2;

/// A model's rows in its order, packed.
pub(crate) struct PackedModel {
    rows: Vec<Packed>,
    /// The estimator whose weights live in `wx` (invariant: every other estimator's weights
    /// are 0 or 1, as `Prepared::weights` makes them).
    wx_e: Option<usize>,
}

impl PackedModel {
    #[inline]
    fn weight(&self, p: &Packed, e: usize) -> f64 {
        if p.flags & (4 << e) == 0 {
            0.0
        } else if Some(e) == self.wx_e {
            p.wx
        } else {
            1.0
        }
    }
}

pub(crate) fn pack(m: &ModelView, s: &Shared) -> PackedModel {
    let wx_e = s
        .weights
        .iter()
        .position(|w| w.iter().any(|&x| x != 0.0 && x != 1.0));
    debug_assert!(
        s.weights
            .iter()
            .enumerate()
            .all(|(e, w)| Some(e) == wx_e || w.iter().all(|&x| x == 0.0 || x == 1.0)),
        "at most one estimator may have weights other than 0/1"
    );
    let mut prev = f64::NAN;
    let rows = m
        .order
        .iter()
        .map(|&r| {
            let i = r as usize;
            let sc = m.scores[i];
            let mut flags = if sc != prev { NEW_GROUP } else { 0 };
            prev = sc;
            if s.y[i] {
                flags |= POSITIVE;
            }
            for (e, ws) in s.weights.iter().enumerate().take(MAX_EST) {
                if ws[i] > 0.0 {
                    flags |= 4 << e;
                }
            }
            let wx = wx_e.map_or(0.0, |e| s.weights[e][i]);
            Packed {
                row: r,
                flags,
                rev: s.rev[i],
                wx,
            }
        })
        .collect();
    PackedModel { rows, wx_e }
}

/// One pass over a packed model computing every estimator's budget sums and AUC.
pub(crate) fn model_stats(
    m: &PackedModel,
    ne: usize,
    ks: &[usize],
    counts: Option<&[u32]>,
) -> Vec<Stats> {
    debug_assert!(ne <= MAX_EST);
    let nk = ks.len();
    let mut kidx: Vec<usize> = (0..nk).collect();
    kidx.sort_by_key(|&i| ks[i]);
    // cumulative (sw, swy, swr) per estimator
    let mut cum = [[0.0f64; 3]; MAX_EST];
    let mut snap = vec![[[0.0f64; 3]; MAX_EST]; nk];
    let mut pos_above = [0.0; MAX_EST];
    let mut num = [0.0; MAX_EST];
    let mut w_neg = [0.0; MAX_EST];
    let mut pg = [0.0; MAX_EST];
    let mut ng = [0.0; MAX_EST];
    let mut taken = 0.0f64;
    let mut next = 0usize;
    let mut next_k = kidx.first().map_or(f64::INFINITY, |&i| ks[i] as f64);
    for p in &m.rows {
        if p.flags & NEW_GROUP != 0 {
            for e in 0..ne {
                num[e] += ng[e] * (pos_above[e] + 0.5 * pg[e]);
                pos_above[e] += pg[e];
                w_neg[e] += ng[e];
                pg[e] = 0.0;
                ng[e] = 0.0;
            }
        }
        let c = counts.map_or(1.0, |c| c[p.row as usize] as f64);
        if c == 0.0 {
            continue;
        }
        let y = p.flags & POSITIVE != 0;
        let yv = if y { 1.0 } else { 0.0 };
        while taken + c >= next_k {
            let frac = next_k - taken;
            for e in 0..ne {
                let w = m.weight(p, e) * frac;
                snap[kidx[next]][e] = [cum[e][0] + w, cum[e][1] + w * yv, cum[e][2] + w * p.rev];
            }
            next += 1;
            next_k = kidx.get(next).map_or(f64::INFINITY, |&i| ks[i] as f64);
        }
        for e in 0..ne {
            let w = m.weight(p, e) * c;
            if w > 0.0 {
                cum[e][0] += w;
                cum[e][1] += w * yv;
                cum[e][2] += w * p.rev;
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
    }
    while next < nk {
        snap[kidx[next]] = cum;
        next += 1;
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    (0..ne)
        .map(|e| Stats {
            precision: snap.iter().map(|x| div(x[e][1], x[e][0])).collect(),
            recall: snap.iter().map(|x| div(x[e][1], cum[e][1])).collect(),
            revenue_share: snap.iter().map(|x| div(x[e][2], cum[e][2])).collect(),
            auc: div(num[e], pos_above[e] * w_neg[e]),
        })
        .collect()
}

/// `reps[b][model][estimator]` for b in 0..reps.
pub(crate) fn paired_bootstrap(
    models: &[PackedModel],
    ne: usize,
    ks: &[usize],
    n: usize,
    reps: usize,
    seed: u64,
) -> Vec<Vec<Vec<Stats>>> {
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
                models
                    .iter()
                    .map(|m| model_stats(m, ne, ks, Some(counts)))
                    .collect()
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_row_straddling_k_counts_fractionally() {
        // order 0, 1, 2 (scores 0.9, 0.5, 0.1); labels 1, 0, 1; counts 1, 3, 0.
        let scores = [0.9, 0.5, 0.1];
        let order = [0u32, 1, 2];
        let w = [1.0, 1.0, 1.0];
        let s = Shared {
            y: &[true, false, true],
            rev: &[10.0, 0.0, 5.0],
            weights: vec![&w],
        };
        let m = pack(
            &ModelView {
                order: &order,
                scores: &scores,
            },
            &s,
        );
        let st = model_stats(&m, 1, &[2, 4], Some(&[1, 3, 0]));
        // k = 2: row 0 + one copy of row 1 -> 1 hit in 2; k = 4: 1 hit in 4.
        assert_eq!(st[0].precision, vec![0.5, 0.25]);
        assert_eq!(st[0].recall, vec![1.0, 1.0]);
        // AUC over the resample: positive (count 1) above 3 negatives -> 1.
        assert_eq!(st[0].auc, 1.0);
        let plain = model_stats(&m, 1, &[1, 2, 3], None);
        assert_eq!(plain[0].precision, vec![1.0, 0.5, 2.0 / 3.0]);
        assert_eq!(plain[0].revenue_share, vec![10.0 / 15.0, 10.0 / 15.0, 1.0]);
        assert_eq!(plain[0].auc, 0.5);
    }
}
