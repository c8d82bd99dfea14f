//! Quantile binning of f32 features into u8 bins.
//!
//! Per feature, bin boundaries are found on a seeded row sample (at most
//! `bin_construct_sample` rows) with LightGBM's distinct-value aware greedy algorithm
//! (`GreedyFindBin`): a feature with at most `max_bin` distinct values gets one bin per value;
//! otherwise values holding at least `N / max_bin` samples get their own bin and the rest are
//! packed greedily into bins of about equal count.
//!
//! Bin `k` of a feature covers `(upper[k-1], upper[k]]`; the last non-missing bin has upper
//! bound `+inf`, and NaN goes to the extra *missing bin* with index `upper.len()`.
//! Every finite upper bound is an actual f32 value of the sample (the largest distinct value in
//! its bin, not a midpoint), so the split `x <= upper[k]` evaluated in f32 at prediction time
//! routes every training row exactly as the binned training did: the mapping below uses the
//! very same comparison.
//!
//! Storage: both a row-major `n_rows x n_features` u8 matrix (histogram construction reads
//! whole rows: LightGBM's "row-wise" mode, which its docs recommend for many rows and few
//! bins) and a column-major copy (data partitioning reads one feature of the rows of a leaf).

use ndarray::ArrayView2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::par::SyncPtr;

/// Bin boundaries of one feature.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BinMapper {
    /// Upper bounds of the non-missing bins, strictly increasing; the last is `+inf`.
    pub upper: Vec<f32>,
}

impl BinMapper {
    /// Number of non-missing bins (the missing bin has this index).
    #[inline]
    pub fn n_bins(&self) -> usize {
        self.upper.len()
    }

    /// Bin of a value (NaN -> missing bin).
    #[inline]
    pub fn bin(&self, x: f32) -> u8 {
        if x.is_nan() {
            self.upper.len() as u8
        } else {
            // first k with x <= upper[k]; exists because the last bound is +inf
            self.upper.partition_point(|&u| u < x) as u8
        }
    }

    /// Build from the non-NaN sample values of a feature (any order).
    pub fn from_sample(mut vals: Vec<f32>, max_bin: usize) -> Self {
        vals.sort_unstable_by(|a, b| a.total_cmp(b));
        // distinct values (-0.0 == 0.0 merge) with counts
        let mut distinct: Vec<f32> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        for &v in &vals {
            match distinct.last_mut() {
                Some(last) if *last == v => {
                    *last = v; // keep the larger representative (0.0 over -0.0)
                    if let Some(c) = counts.last_mut() {
                        *c += 1;
                    }
                }
                _ => {
                    distinct.push(v);
                    counts.push(1);
                }
            }
        }
        let mut upper = greedy_find_bin(&distinct, &counts, max_bin);
        // the last finite value may be +inf in data; the final bound is +inf regardless
        while upper.last().is_some_and(|u| *u == f32::INFINITY) {
            upper.pop();
        }
        upper.push(f32::INFINITY);
        BinMapper { upper }
    }
}

/// LightGBM's `GreedyFindBin`, returning the upper bounds of all bins but the last (the
/// caller appends `+inf`). Bounds are distinct values themselves.
fn greedy_find_bin(distinct: &[f32], counts: &[usize], max_bin: usize) -> Vec<f32> {
    let n = distinct.len();
    if n == 0 {
        return Vec::new();
    }
    if n <= max_bin {
        return distinct[..n - 1].to_vec();
    }
    let total: usize = counts.iter().sum();
    let mut mean_bin_size = total as f64 / max_bin as f64;
    let is_big: Vec<bool> = counts.iter().map(|&c| c as f64 >= mean_bin_size).collect();
    let mut rest_bin_cnt = max_bin as f64;
    let mut rest_sample_cnt = total as f64;
    for (i, &big) in is_big.iter().enumerate() {
        if big {
            rest_bin_cnt -= 1.0;
            rest_sample_cnt -= counts[i] as f64;
        }
    }
    mean_bin_size = rest_sample_cnt / rest_bin_cnt;
    let mut upper = Vec::with_capacity(max_bin);
    let mut cur = 0.0f64;
    for i in 0..n - 1 {
        if !is_big[i] {
            rest_sample_cnt -= counts[i] as f64;
        }
        cur += counts[i] as f64;
        if is_big[i]
            || cur >= mean_bin_size
            || (is_big[i + 1] && cur >= (mean_bin_size * 0.5).max(1.0))
        {
            upper.push(distinct[i]);
            cur = 0.0;
            if !is_big[i] {
                rest_bin_cnt -= 1.0;
                mean_bin_size = rest_sample_cnt / rest_bin_cnt;
            }
        }
        if upper.len() + 1 >= max_bin {
            break;
        }
    }
    upper
}

/// The binned training matrix.
#[derive(Debug)]
pub(crate) struct BinnedData {
    pub n_rows: usize,
    pub n_features: usize,
    /// `n_rows * n_features`, row `r` at `[r * n_features ..]`.
    pub row_major: Vec<u8>,
    /// `n_features * n_rows`, feature `f` at `[f * n_rows ..]`.
    pub col_major: Vec<u8>,
    pub mappers: Vec<BinMapper>,
    /// Offset of each feature's histogram (n_bins + 1 entries each, missing bin last).
    pub offsets: Vec<u32>,
    pub total_bins: usize,
    /// Whether the feature has any NaN in the training rows (diagnostics).
    #[allow(dead_code)]
    pub has_missing: Vec<bool>,
}

impl BinnedData {
    /// Bin a standard-layout (row-major) matrix. `seed` drives the row sample.
    pub fn build(x: ArrayView2<f32>, max_bin: usize, sample_rows: usize, seed: u64) -> Self {
        let (n_rows, n_features) = x.dim();
        let x = x.as_standard_layout();
        let flat: &[f32] = x.as_slice().unwrap_or(&[]);
        debug_assert_eq!(flat.len(), n_rows * n_features);

        // row sample (sorted for cache-friendly gathers)
        let sample: Vec<usize> = if n_rows > sample_rows {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut s = rand::seq::index::sample(&mut rng, n_rows, sample_rows).into_vec();
            s.sort_unstable();
            s
        } else {
            (0..n_rows).collect()
        };
        let mappers: Vec<BinMapper> = (0..n_features)
            .into_par_iter()
            .map(|f| {
                let vals: Vec<f32> = sample
                    .iter()
                    .map(|&r| flat[r * n_features + f])
                    .filter(|v| !v.is_nan())
                    .collect();
                BinMapper::from_sample(vals, max_bin)
            })
            .collect();

        let mut offsets = Vec::with_capacity(n_features);
        let mut total_bins = 0usize;
        for m in &mappers {
            offsets.push(total_bins as u32);
            total_bins += m.n_bins() + 1;
        }

        let mut row_major = vec![0u8; n_rows * n_features];
        let mut col_major = vec![0u8; n_rows * n_features];
        const CHUNK: usize = 4096;
        let col_ptr = SyncPtr(col_major.as_mut_ptr());
        let chunk_missing: Vec<Vec<bool>> = row_major
            .par_chunks_mut(CHUNK * n_features.max(1))
            .enumerate()
            .map(|(c, out)| {
                let r0 = c * CHUNK;
                let rows = out.len() / n_features.max(1);
                let mut miss = vec![false; n_features];
                for f in 0..n_features {
                    let m = &mappers[f];
                    for i in 0..rows {
                        let v = flat[(r0 + i) * n_features + f];
                        miss[f] |= v.is_nan();
                        let b = m.bin(v);
                        out[i * n_features + f] = b;
                        // SAFETY: chunks cover disjoint row ranges, so (f, r0 + i) is written by
                        // exactly one task; the index is < n_features * n_rows.
                        unsafe { *col_ptr.get().add(f * n_rows + r0 + i) = b };
                    }
                }
                miss
            })
            .collect();
        let mut has_missing = vec![false; n_features];
        for cm in &chunk_missing {
            for (h, &m) in has_missing.iter_mut().zip(cm) {
                *h |= m;
            }
        }
        BinnedData {
            n_rows,
            n_features,
            row_major,
            col_major,
            mappers,
            offsets,
            total_bins,
            has_missing,
        }
    }

    /// Column `f` of the column-major bins.
    #[inline]
    pub fn column(&self, f: usize) -> &[u8] {
        &self.col_major[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn few_distinct_values_get_own_bins_with_exact_bounds() {
        let vals = vec![3.0f32, 1.0, 2.0, 2.0, 1.0, 0.1, 0.1];
        let m = BinMapper::from_sample(vals, 255);
        assert_eq!(m.upper, vec![0.1, 1.0, 2.0, f32::INFINITY]);
        assert_eq!(m.bin(0.1), 0);
        assert_eq!(m.bin(0.10000001), 1);
        assert_eq!(m.bin(1.0), 1);
        assert_eq!(m.bin(2.5), 3);
        assert_eq!(m.bin(f32::NAN), 4);
        assert_eq!(m.bin(-1e30), 0);
        assert_eq!(m.bin(f32::INFINITY), 3);
    }

    #[test]
    fn many_values_respect_max_bin_and_roughly_equal_counts() {
        let vals: Vec<f32> = (0..10_000)
            .map(|i| (i as f32 * 0.37).sin() * 100.0)
            .collect();
        let m = BinMapper::from_sample(vals.clone(), 16);
        assert!(m.n_bins() <= 16 && m.n_bins() >= 14, "{}", m.n_bins());
        let mut counts = vec![0usize; m.n_bins()];
        for &v in &vals {
            counts[m.bin(v) as usize] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0);
        assert!(max < 10_000 / 16 * 2, "{counts:?}");
        // bounds are sample values: every bound is attained by some value in its bin
        for &u in &m.upper[..m.n_bins() - 1] {
            assert!(vals.contains(&u));
        }
    }

    #[test]
    fn big_count_value_gets_own_bin() {
        let mut vals: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        vals.extend(std::iter::repeat_n(500.0f32, 5000));
        let m = BinMapper::from_sample(vals, 10);
        let b = m.bin(500.0) as usize;
        assert_eq!(m.upper[b], 500.0);
        assert!(b == 0 || m.upper[b - 1] == 499.0);
    }

    #[test]
    fn build_layouts_agree() {
        let x = Array2::from_shape_fn((1000, 3), |(r, f)| {
            if (r + f) % 17 == 0 {
                f32::NAN
            } else {
                ((r * (f + 1)) % 37) as f32
            }
        });
        let b = BinnedData::build(x.view(), 255, 300, 7);
        for r in 0..1000 {
            for f in 0..3 {
                let v = b.row_major[r * 3 + f];
                assert_eq!(v, b.column(f)[r]);
                assert_eq!(v, b.mappers[f].bin(x[[r, f]]));
            }
        }
        assert_eq!(b.has_missing, vec![true, true, true]);
        assert_eq!(
            b.total_bins,
            b.mappers.iter().map(|m| m.n_bins() + 1).sum::<usize>()
        );
    }
}
