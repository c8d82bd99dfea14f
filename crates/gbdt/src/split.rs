//! Split finding on gradient histograms.
//!
//! For a leaf with gradient sum `G`, hessian sum `H`, regularisation `λ1` (L1) and `λ2` (L2),
//! the optimal leaf value and its loss reduction (second-order Taylor expansion, XGBoost paper
//! eq. 5-7, LightGBM `GetLeafGain`) are
//!
//! ```text
//! T(G)  = sign(G) * max(|G| - λ1, 0)
//! w*    = -T(G) / (H + λ2)
//! gain  = T(G)^2 / (H + λ2)
//! ```
//!
//! A split into left/right children is scored `gain(L) + gain(R) - gain(parent)` and accepted
//! only if that exceeds `min_gain_to_split`, each child holds at least `min_data_in_leaf` rows
//! and `min_sum_hessian_in_leaf` hessian.
//!
//! For every feature, thresholds are scanned over the non-missing bins (left = bins `<= k`),
//! twice: missing bin sent right, then sent left (the learned *default direction*). When the
//! leaf has no missing values only the first scan runs and the default direction is set
//! to the child with more rows. Ties keep the first candidate in the order (feature asc,
//! threshold asc, missing-right before missing-left), so results are deterministic.
//!
//! # Monotone constraints (LightGBM's `monotone_constraints_method = basic`)
//! Every leaf carries output bounds `[min, max]` (root: unbounded). While a leaf is bounded or
//! the feature is constrained, a candidate's child outputs are clamped to the leaf's bounds and
//! scored by the gain of that output, `−(2·T(G)·w + (H + λ2)·w²)` (which equals the
//! unconstrained gain at `w = w*`); on a feature with direction `+1` a candidate whose left
//! output exceeds its right output is rejected (`−1`: the reverse). After such a split the
//! children's bounds meet at the midpoint of their outputs (left `max`, right `min` for `+1`),
//! so every leaf to the right of the threshold stays above every leaf to its left.
//! (LightGBM `BasicLeafConstraints`, `FeatureHistogram::GetSplitGains`.)

use rayon::prelude::*;

use crate::histogram::HistBin;

/// Regularisation and constraints used by split finding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitParams {
    pub min_data_in_leaf: usize,
    pub min_sum_hessian: f64,
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_gain_to_split: f64,
}

/// Gradient statistics of a set of rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Stats {
    pub g: f64,
    pub h: f64,
    pub n: usize,
}

#[inline]
fn threshold_l1(g: f64, l1: f64) -> f64 {
    let r = (g.abs() - l1).max(0.0);
    if g >= 0.0 {
        r
    } else {
        -r
    }
}

/// Optimal leaf value `-T(G)/(H+λ2)` (without shrinkage).
#[inline]
pub(crate) fn leaf_output(g: f64, h: f64, p: &SplitParams) -> f64 {
    let d = h + p.lambda_l2;
    if d > 0.0 {
        -threshold_l1(g, p.lambda_l1) / d
    } else {
        0.0
    }
}

/// Loss reduction of a leaf, `T(G)^2/(H+λ2)`.
#[inline]
pub(crate) fn leaf_gain(g: f64, h: f64, p: &SplitParams) -> f64 {
    let d = h + p.lambda_l2;
    if d > 0.0 {
        let t = threshold_l1(g, p.lambda_l1);
        t * t / d
    } else {
        0.0
    }
}

/// Allowed range of a leaf's output (before shrinkage).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bounds {
    pub min: f64,
    pub max: f64,
}

impl Bounds {
    pub const NONE: Bounds = Bounds {
        min: f64::NEG_INFINITY,
        max: f64::INFINITY,
    };

    #[inline]
    pub fn clamp(self, v: f64) -> f64 {
        v.max(self.min).min(self.max)
    }

    #[inline]
    fn is_bounded(self) -> bool {
        self.min > f64::NEG_INFINITY || self.max < f64::INFINITY
    }

    /// Children's bounds after a split with (clamped) outputs `left`, `right` on a feature
    /// with monotone direction `mono`.
    pub fn split(self, mono: i8, left: f64, right: f64) -> (Bounds, Bounds) {
        let mid = 0.5 * (left + right);
        let (mut l, mut r) = (self, self);
        if mono > 0 {
            l.max = l.max.min(mid);
            r.min = r.min.max(mid);
        } else if mono < 0 {
            l.min = l.min.max(mid);
            r.max = r.max.min(mid);
        }
        (l, r)
    }
}

/// Loss reduction of a leaf whose output is `w`: `−(2·T(G)·w + (H + λ2)·w²)`.
#[inline]
fn gain_given_output(g: f64, h: f64, w: f64, p: &SplitParams) -> f64 {
    -(2.0 * threshold_l1(g, p.lambda_l1) * w + (h + p.lambda_l2) * w * w)
}

/// Leaf output clamped to `bounds`.
#[inline]
pub(crate) fn bounded_output(s: Stats, bounds: Bounds, p: &SplitParams) -> f64 {
    bounds.clamp(leaf_output(s.g, s.h, p))
}

/// A candidate split of a leaf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SplitInfo {
    pub feature: usize,
    /// Left child = non-missing bins `<= bin`.
    pub bin: u8,
    /// Whether the missing bin goes left.
    pub default_left: bool,
    /// `gain(L) + gain(R) - gain(parent)`.
    pub gain: f64,
    /// Left statistics; `n` is the hessian-based estimate (the partition gives the exact count).
    pub left: Stats,
    pub right: Stats,
}

/// Per-feature histogram geometry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FeatureSlot {
    pub offset: usize,
    /// Non-missing bins; the missing bin is at `offset + n_bins`.
    pub n_bins: usize,
}

/// Best split of one feature, or `None` if no candidate satisfies the constraints. `mono`:
/// the feature's monotone direction (−1, 0, +1); `bounds`: the leaf's output range.
pub(crate) fn best_split_feature(
    feature: usize,
    hist: &[HistBin],
    total: Stats,
    p: &SplitParams,
    mono: i8,
    bounds: Bounds,
) -> Option<SplitInfo> {
    let nb = hist.len().checked_sub(1)?;
    if total.h <= 0.0 || total.n == 0 {
        return None;
    }
    let cnt_factor = total.n as f64 / total.h;
    let est = |h: f64| (h * cnt_factor).round().max(0.0) as usize;
    let miss = hist[nb];
    let miss_n = est(miss[1]);
    let has_missing = miss[1] > 0.0 || miss[0] != 0.0;
    let constrained = mono != 0 || bounds.is_bounded();
    let parent_gain = if constrained {
        gain_given_output(total.g, total.h, bounded_output(total, bounds, p), p)
    } else {
        leaf_gain(total.g, total.h, p)
    };
    let min_shift = parent_gain + p.min_gain_to_split;
    let min_n = p.min_data_in_leaf;

    let mut best: Option<SplitInfo> = None;
    let mut best_gain = f64::NEG_INFINITY;
    let mut consider =
        |left: Stats, bin: usize, default_left: bool, best: &mut Option<SplitInfo>| {
            let right = Stats {
                g: total.g - left.g,
                h: total.h - left.h,
                n: total.n.saturating_sub(left.n),
            };
            if left.n < min_n
                || right.n < min_n
                || left.h < p.min_sum_hessian
                || right.h < p.min_sum_hessian
            {
                return;
            }
            let gain = if constrained {
                let lo = bounded_output(left, bounds, p);
                let ro = bounded_output(right, bounds, p);
                if (mono > 0 && lo > ro) || (mono < 0 && lo < ro) {
                    return;
                }
                gain_given_output(left.g, left.h, lo, p)
                    + gain_given_output(right.g, right.h, ro, p)
            } else {
                leaf_gain(left.g, left.h, p) + leaf_gain(right.g, right.h, p)
            };
            if gain > min_shift && gain > best_gain {
                best_gain = gain;
                *best = Some(SplitInfo {
                    feature,
                    bin: bin as u8,
                    default_left,
                    gain: gain - parent_gain,
                    left,
                    right,
                });
            }
        };

    let mut acc = Stats::default();
    for (k, b) in hist[..nb].iter().enumerate() {
        acc.g += b[0];
        acc.h += b[1];
        acc.n += est(b[1]);
        // missing goes right
        if k + 1 < nb || has_missing {
            consider(acc, k, false, &mut best);
        }
        // missing goes left (needs something non-missing on the right)
        if has_missing && k + 1 < nb {
            let l = Stats {
                g: acc.g + miss[0],
                h: acc.h + miss[1],
                n: acc.n + miss_n,
            };
            consider(l, k, true, &mut best);
        }
    }
    if let Some(s) = best.as_mut() {
        if !has_missing {
            s.default_left = s.left.n >= s.right.n;
        }
    }
    best
}

/// Best split over the allowed features (parallel over features, reduced in feature order).
/// `monotone`: direction per feature (empty = none); `bounds`: the leaf's output range.
pub(crate) fn find_best_split(
    hist: &[HistBin],
    slots: &[FeatureSlot],
    allowed: &[bool],
    total: Stats,
    p: &SplitParams,
    monotone: &[i8],
    bounds: Bounds,
) -> Option<SplitInfo> {
    let per_feature: Vec<Option<SplitInfo>> = slots
        .par_iter()
        .enumerate()
        .with_min_len(4)
        .map(|(f, s)| {
            if !allowed[f] || s.n_bins + 1 < 2 {
                return None;
            }
            let mono = monotone.get(f).copied().unwrap_or(0);
            best_split_feature(
                f,
                &hist[s.offset..s.offset + s.n_bins + 1],
                total,
                p,
                mono,
                bounds,
            )
        })
        .collect();
    let mut best: Option<SplitInfo> = None;
    for s in per_feature.into_iter().flatten() {
        if best.is_none_or(|b| s.gain > b.gain) {
            best = Some(s);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Brute force from first principles: for every feature, every distinct non-missing value
    /// `t` as threshold (`x <= t` left) and both missing directions, sum G and H over the rows
    /// directly and score `G_L^2/(H_L+λ) + G_R^2/(H_R+λ) - G^2/(H+λ)` (λ1 = 0).
    #[allow(clippy::type_complexity)]
    fn brute_force(
        x: &[Vec<Option<u8>>],
        g: &[f64],
        h: &[f64],
        lambda: f64,
        min_n: usize,
    ) -> Option<(f64, usize, u8, bool)> {
        let n = g.len();
        let score = |gs: f64, hs: f64| gs * gs / (hs + lambda);
        let (gt, ht) = (g.iter().sum::<f64>(), h.iter().sum::<f64>());
        let mut best: Option<(f64, usize, u8, bool)> = None;
        for (f, col) in x.iter().enumerate() {
            let any_missing = col.iter().any(|v| v.is_none());
            for t in 0u8..=255 {
                for default_left in [false, true] {
                    if default_left && !any_missing {
                        continue;
                    }
                    let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
                    for r in 0..n {
                        let left = match col[r] {
                            Some(v) => v <= t,
                            None => default_left,
                        };
                        if left {
                            gl += g[r];
                            hl += h[r];
                            nl += 1;
                        }
                    }
                    if nl < min_n || n - nl < min_n {
                        continue;
                    }
                    let gain = score(gl, hl) + score(gt - gl, ht - hl) - score(gt, ht);
                    if best.is_none_or(|b| gain > b.0 + 1e-9) {
                        best = Some((gain, f, t, default_left));
                    }
                }
            }
        }
        best
    }

    #[test]
    fn matches_brute_force_enumeration() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for case in 0..40 {
            let n = 60 + case * 3;
            let nf = 3;
            let nbins = [5usize, 9, 2];
            // feature values as bin ids (None = missing), with some missing in feature 1 and 2
            let x: Vec<Vec<Option<u8>>> = (0..nf)
                .map(|f| {
                    (0..n)
                        .map(|_| {
                            if f > 0 && rng.random::<f64>() < 0.2 {
                                None
                            } else {
                                Some(rng.random_range(0..nbins[f]) as u8)
                            }
                        })
                        .collect()
                })
                .collect();
            let g: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            // constant hessians make the count estimate exact (as in L2 regression)
            let h: Vec<f64> = vec![1.0; n];
            let lambda = [0.0, 1.0][case % 2];
            let min_n = [1usize, 5][case % 2];
            let p = SplitParams {
                min_data_in_leaf: min_n,
                min_sum_hessian: 0.0,
                lambda_l1: 0.0,
                lambda_l2: lambda,
                min_gain_to_split: 0.0,
            };
            let mut hist = Vec::new();
            let mut slots = Vec::new();
            for f in 0..nf {
                let off = hist.len();
                hist.extend(std::iter::repeat_n([0.0f64; 2], nbins[f] + 1));
                for r in 0..n {
                    let b = x[f][r].map_or(nbins[f], |v| v as usize);
                    hist[off + b][0] += g[r];
                    hist[off + b][1] += h[r];
                }
                slots.push(FeatureSlot {
                    offset: off,
                    n_bins: nbins[f],
                });
            }
            let total = Stats {
                g: g.iter().sum(),
                h: h.iter().sum(),
                n,
            };
            let ours = find_best_split(&hist, &slots, &[true; 3], total, &p, &[], Bounds::NONE);
            let bf = brute_force(&x, &g, &h, lambda, min_n);
            match (ours, bf) {
                (Some(s), Some((gain, f, t, dl))) => {
                    assert!((s.gain - gain).abs() < 1e-9, "case {case}: {s:?} vs {gain}");
                    assert!((s.gain - gain).abs() < 1e-9, "case {case}");
                    // the chosen split, re-scored from the rows, attains the brute-force optimum
                    let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
                    for r in 0..n {
                        if x[s.feature][r].map_or(s.default_left, |v| v <= s.bin) {
                            gl += g[r];
                            hl += h[r];
                            nl += 1;
                        }
                    }
                    let (gt, ht) = (total.g, total.h);
                    let sc = |a: f64, b: f64| a * a / (b + lambda);
                    let direct = sc(gl, hl) + sc(gt - gl, ht - hl) - sc(gt, ht);
                    assert!(
                        (direct - gain).abs() < 1e-9 && nl >= min_n && n - nl >= min_n,
                        "case {case}"
                    );
                    let _ = (f, t, dl);
                }
                (None, None) => {}
                (a, b) => panic!("case {case}: ours {a:?} brute force {b:?}"),
            }
        }
    }

    #[test]
    fn leaf_output_minimises_second_order_objective() {
        let p = SplitParams {
            min_data_in_leaf: 1,
            min_sum_hessian: 0.0,
            lambda_l1: 0.5,
            lambda_l2: 2.0,
            min_gain_to_split: 0.0,
        };
        for &(g, h) in &[(3.0, 4.0), (-0.2, 1.0), (-5.0, 0.5)] {
            let obj = |w: f64| g * w + 0.5 * (h + p.lambda_l2) * w * w + p.lambda_l1 * w.abs();
            let w = leaf_output(g, h, &p);
            assert!(obj(w) <= obj(w + 1e-4) && obj(w) <= obj(w - 1e-4));
            // gain == -2 * min objective
            assert!((leaf_gain(g, h, &p) + 2.0 * obj(w)).abs() < 1e-9);
        }
    }
}
