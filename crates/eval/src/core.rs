//! Sorting and the weighted single-pass kernels every metric is built on.
//!
//! Rows are ordered once by score descending, ties by row index ascending
//! ([`sort_order`]). Every metric is then a linear pass over that order. Kernels take a
//! per-row weight closure: weight 0 means "not in the sample" (the row still counts as an
//! inspection slot for top-k budgets, which are defined over all rows).

use rayon::slice::ParallelSliceMut;

use crate::error::EvalError;

/// Check that every score is finite; NaN and ±∞ are errors.
pub(crate) fn check_scores(scores: &[f64]) -> Result<(), EvalError> {
    match scores.iter().position(|s| !s.is_finite()) {
        Some(row) => Err(EvalError::BadScore {
            row,
            value: scores[row],
        }),
        None => Ok(()),
    }
}

/// Row indices ordered by score descending, then by row index ascending. `-0.0 == 0.0`.
pub(crate) fn sort_order(scores: &[f64]) -> Result<Vec<u32>, EvalError> {
    check_scores(scores)?;
    if scores.len() > u32::MAX as usize {
        return Err(EvalError::Config(format!(
            "{} rows is more than the supported {}",
            scores.len(),
            u32::MAX
        )));
    }
    // Sort (key, index) pairs: the key maps a finite f64 to a u64 whose ascending order is the
    // score's descending order (-0.0 is first turned into 0.0 so the two tie).
    let mut keyed: Vec<(u64, u32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let bits = (s + 0.0).to_bits();
            let asc = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            (!asc, i as u32)
        })
        .collect();
    if keyed.len() > 50_000 {
        keyed.par_sort_unstable();
    } else {
        keyed.sort_unstable();
    }
    let order: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
    Ok(order)
}

/// Call `f` on each maximal run of equal scores in `order` (descending).
#[inline]
pub(crate) fn for_each_tie_group(order: &[u32], scores: &[f64], mut f: impl FnMut(&[u32])) {
    let mut s = 0;
    while s < order.len() {
        let v = scores[order[s] as usize];
        let mut e = s + 1;
        while e < order.len() && scores[order[e] as usize] == v {
            e += 1;
        }
        f(&order[s..e]);
        s = e;
    }
}

/// Weighted AUC and DeLong placement values over the rows of `order` with weight > 0.
#[derive(Debug, Clone)]
pub(crate) struct Placements {
    /// Weighted Mann–Whitney AUC (midrank ties); NaN when a class is missing.
    pub auc: f64,
    pub n_pos: usize,
    pub n_neg: usize,
    pub w_pos: f64,
    pub w_neg: f64,
    /// (row, placement) for positives: weighted share of negatives scored below (+½ tied).
    pub pos: Vec<(u32, f64)>,
    /// (row, placement) for negatives: weighted share of positives scored above (+½ tied).
    pub neg: Vec<(u32, f64)>,
}

/// Weighted AUC only (no placements): Σ_groups n_g·(P_above + ½·p_g) / (W₁·W₀), counting
/// pairs (positive above negative). Returns (auc or NaN, n_pos, n_neg, w_pos, w_neg).
pub(crate) fn auc_weighted(
    order: &[u32],
    scores: &[f64],
    y: impl Fn(usize) -> bool,
    w: impl Fn(usize) -> f64,
) -> (f64, usize, usize, f64, f64) {
    let (mut pos_above, mut num, mut w_neg) = (0.0, 0.0, 0.0);
    let (mut n_pos, mut n_neg) = (0usize, 0usize);
    for_each_tie_group(order, scores, |g| {
        let (mut pg, mut ng) = (0.0, 0.0);
        for &r in g {
            let r = r as usize;
            let wi = w(r);
            if wi > 0.0 {
                if y(r) {
                    pg += wi;
                    n_pos += 1;
                } else {
                    ng += wi;
                    n_neg += 1;
                }
            }
        }
        num += ng * (pos_above + 0.5 * pg);
        pos_above += pg;
        w_neg += ng;
    });
    let w_pos = pos_above;
    let auc = if w_pos > 0.0 && w_neg > 0.0 {
        num / (w_pos * w_neg)
    } else {
        f64::NAN
    };
    (auc, n_pos, n_neg, w_pos, w_neg)
}

/// AUC with placement values (for DeLong variances).
pub(crate) fn placements(
    order: &[u32],
    scores: &[f64],
    y: impl Fn(usize) -> bool,
    w: impl Fn(usize) -> f64,
) -> Placements {
    let (mut w_pos, mut w_neg) = (0.0, 0.0);
    for &r in order {
        let r = r as usize;
        let wi = w(r);
        if wi > 0.0 {
            if y(r) {
                w_pos += wi;
            } else {
                w_neg += wi;
            }
        }
    }
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    let (mut pos_above, mut neg_seen, mut num) = (0.0, 0.0, 0.0);
    for_each_tie_group(order, scores, |g| {
        let (mut pg, mut ng) = (0.0, 0.0);
        for &r in g {
            let wi = w(r as usize);
            if wi > 0.0 {
                if y(r as usize) {
                    pg += wi;
                } else {
                    ng += wi;
                }
            }
        }
        neg_seen += ng;
        let neg_below = (w_neg - neg_seen).max(0.0);
        let v10 = if w_neg > 0.0 {
            (neg_below + 0.5 * ng) / w_neg
        } else {
            f64::NAN
        };
        let v01 = if w_pos > 0.0 {
            (pos_above + 0.5 * pg) / w_pos
        } else {
            f64::NAN
        };
        for &r in g {
            if w(r as usize) > 0.0 {
                if y(r as usize) {
                    pos.push((r, v10));
                } else {
                    neg.push((r, v01));
                }
            }
        }
        num += ng * (pos_above + 0.5 * pg);
        pos_above += pg;
    });
    let auc = if w_pos > 0.0 && w_neg > 0.0 {
        num / (w_pos * w_neg)
    } else {
        f64::NAN
    };
    Placements {
        auc,
        n_pos: pos.len(),
        n_neg: neg.len(),
        w_pos,
        w_neg,
        pos,
        neg,
    }
}

/// Sklearn's average precision: Σ over distinct thresholds (descending) of
/// (R_t − R_{t−1})·P_t, with weighted counts. NaN when there is no positive weight.
pub(crate) fn average_precision_weighted(
    order: &[u32],
    scores: &[f64],
    y: impl Fn(usize) -> bool,
    w: impl Fn(usize) -> f64,
) -> f64 {
    let (mut tp, mut fp, mut acc) = (0.0, 0.0, 0.0);
    for_each_tie_group(order, scores, |g| {
        let (mut pg, mut ng) = (0.0, 0.0);
        for &r in g {
            let wi = w(r as usize);
            if wi > 0.0 {
                if y(r as usize) {
                    pg += wi;
                } else {
                    ng += wi;
                }
            }
        }
        tp += pg;
        fp += ng;
        if pg > 0.0 {
            acc += pg * (tp / (tp + fp));
        }
    });
    if tp > 0.0 {
        acc / tp
    } else {
        f64::NAN
    }
}

/// Cumulative sums over the first k rows of `order` (all rows count towards k; sums are
/// over sample rows, weight > 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Acc {
    /// Sample rows.
    pub n: usize,
    /// Sample positives.
    pub n_pos: usize,
    pub sw: f64,
    pub swy: f64,
    pub sw2: f64,
    pub sw2y: f64,
    pub swr: f64,
    pub sw2r2: f64,
}

impl Acc {
    #[inline]
    pub fn add(&mut self, wi: f64, yi: bool, ri: f64) {
        if wi <= 0.0 {
            return;
        }
        let w2 = wi * wi;
        self.n += 1;
        self.sw += wi;
        self.sw2 += w2;
        self.swr += wi * ri;
        self.sw2r2 += w2 * ri * ri;
        if yi {
            self.n_pos += 1;
            self.swy += wi;
            self.sw2y += w2;
        }
    }
}

/// Snapshots of [`Acc`] after the first `k` rows of `order`, for each k in `ks` (any order;
/// results returned in the same order as `ks`), plus the total over all of `order`.
pub(crate) fn prefix_snapshots(
    order: &[u32],
    ks: &[usize],
    y: impl Fn(usize) -> bool,
    r: impl Fn(usize) -> f64,
    w: impl Fn(usize) -> f64,
) -> (Vec<Acc>, Acc) {
    let mut idx: Vec<usize> = (0..ks.len()).collect();
    idx.sort_by_key(|&i| ks[i]);
    let mut out = vec![Acc::default(); ks.len()];
    let mut acc = Acc::default();
    let mut next = 0;
    for (pos, &row) in order.iter().enumerate() {
        while next < idx.len() && ks[idx[next]] <= pos {
            out[idx[next]] = acc;
            next += 1;
        }
        let row = row as usize;
        let wi = w(row);
        if wi > 0.0 {
            acc.add(wi, y(row), r(row));
        }
    }
    while next < idx.len() {
        out[idx[next]] = acc;
        next += 1;
    }
    (out, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_score_desc_then_index() {
        let s = [0.5, 0.9, 0.5, -0.0, 0.0, 0.9];
        let o = sort_order(&s).unwrap();
        assert_eq!(o, vec![1, 5, 0, 2, 3, 4]);
        assert!(matches!(
            sort_order(&[0.1, f64::NAN]),
            Err(EvalError::BadScore { row: 1, .. })
        ));
    }

    #[test]
    fn hand_auc_with_ties() {
        // pos: 0.8, 0.5 ; neg: 0.5, 0.2. Pairs: (0.8>0.5)=1, (0.8>0.2)=1, (0.5=0.5)=½, (0.5>0.2)=1 -> 3.5/4
        let s = [0.8, 0.5, 0.5, 0.2];
        let y = [true, true, false, false];
        let o = sort_order(&s).unwrap();
        let (auc, ..) = auc_weighted(&o, &s, |i| y[i], |_| 1.0);
        assert_eq!(auc, 0.875);
        let p = placements(&o, &s, |i| y[i], |_| 1.0);
        assert_eq!(p.auc, 0.875);
        // V10 of 0.8 = 1, of 0.5 = (1 + ½)/2 ; V01 of neg 0.5 = (1 + ½)/2, of 0.2 = 1.
        assert_eq!(p.pos, vec![(0, 1.0), (1, 0.75)]);
        assert_eq!(p.neg, vec![(2, 0.75), (3, 1.0)]);
    }
}
