//! Gradient histograms: per feature and bin, the sums of gradients and hessians of the rows
//! of a leaf.
//!
//! Layout: one flat `[f64; 2]` (gradient, hessian) array per leaf; feature `f` owns
//! `offsets[f] .. offsets[f] + n_bins(f) + 1` (missing bin last). Counts are not stored: as in
//! LightGBM they are estimated from hessians when searching splits (exact for constant
//! hessians), while leaf counts come exactly from the data partition.
//!
//! Construction is row-wise over the row-major u8 bins: for each row of the leaf, load its
//! gradient pair once and add it to the bins of all features. Parallelism is two-dimensional:
//! rows are cut into *blocks* whose number depends only on the row count (so the order of the
//! float additions, and the result, never depends on the thread count; blocks are summed in
//! block order), and features are cut into *groups* (one per thread), which does not affect
//! summation order at all.

use rayon::prelude::*;

use crate::binning::BinnedData;

/// (sum of gradients, sum of hessians) of one bin.
pub(crate) type HistBin = [f64; 2];

/// Rows of one block per histogram: a leaf with `n` rows uses `clamp(n / BLOCK_ROWS, 1, MAX_BLOCKS)`
/// row blocks.
const BLOCK_ROWS: usize = 1 << 17;
const MAX_BLOCKS: usize = 16;

/// The rows whose histogram is built.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// Rows `0..n` (the root without bagging).
    All(usize),
    /// Sorted row indices.
    Idx(&'a [u32]),
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match self {
            Rows::All(n) => *n,
            Rows::Idx(i) => i.len(),
        }
    }
    fn slice(&self, lo: usize, hi: usize) -> Self {
        match self {
            Rows::All(_) => Rows::All(hi), // kernel reads rows lo..hi, see `RowRange`
            Rows::Idx(i) => Rows::Idx(&i[lo..hi]),
        }
    }
}

/// Reusable scratch space for multi-block histograms.
#[derive(Default)]
pub(crate) struct HistBuilder {
    scratch: Vec<HistBin>,
}

struct Task<'h, 'r> {
    hist: &'h mut [HistBin],
    rows: Rows<'r>,
    lo: usize,
    f0: usize,
    f1: usize,
}

impl HistBuilder {
    /// Build the histogram of `rows` into `out` (`out.len() == data.total_bins`).
    pub fn build(&mut self, data: &BinnedData, rows: Rows, gh: &[[f32; 2]], out: &mut [HistBin]) {
        let tb = data.total_bins;
        debug_assert_eq!(out.len(), tb);
        debug_assert_eq!(gh.len(), data.n_rows);
        let nf = data.n_features;
        let cnt = rows.len();
        let n_blocks = (cnt / BLOCK_ROWS).clamp(1, MAX_BLOCKS);
        let threads = rayon::current_num_threads().max(1);
        let n_groups = threads.min(nf.max(1));
        // feature group boundaries (do not influence the summation order)
        let bounds: Vec<usize> = (0..=n_groups).map(|g| g * nf / n_groups).collect();

        if self.scratch.len() < (n_blocks - 1) * tb {
            self.scratch.resize((n_blocks - 1) * tb, [0.0; 2]);
        }
        {
            let mut bufs: Vec<&mut [HistBin]> = Vec::with_capacity(n_blocks);
            bufs.push(&mut *out);
            let mut rest: &mut [HistBin] = &mut self.scratch[..(n_blocks - 1) * tb];
            for _ in 1..n_blocks {
                let (a, b) = rest.split_at_mut(tb);
                bufs.push(a);
                rest = b;
            }
            let mut tasks: Vec<Task> = Vec::with_capacity(n_blocks * n_groups);
            for (b, buf) in bufs.into_iter().enumerate() {
                let lo = b * cnt / n_blocks;
                let hi = (b + 1) * cnt / n_blocks;
                let block_rows = rows.slice(lo, hi);
                let mut rest: &mut [HistBin] = buf;
                let mut consumed = 0usize;
                for g in 0..n_groups {
                    let (f0, f1) = (bounds[g], bounds[g + 1]);
                    let end = if f1 < nf {
                        data.offsets[f1] as usize
                    } else {
                        tb
                    };
                    let (a, r) = rest.split_at_mut(end - consumed);
                    consumed = end;
                    rest = r;
                    tasks.push(Task {
                        hist: a,
                        rows: block_rows,
                        lo,
                        f0,
                        f1,
                    });
                }
            }
            tasks.into_par_iter().with_max_len(1).for_each(|t| {
                t.hist.fill([0.0; 2]);
                if t.f0 == t.f1 {
                    return;
                }
                let base = data.offsets[t.f0];
                let loc: Vec<u32> = data.offsets[t.f0..t.f1].iter().map(|&o| o - base).collect();
                match t.rows {
                    Rows::All(hi) => {
                        kernel_range(t.hist, t.lo, hi, &data.row_major, nf, t.f0, &loc, gh)
                    }
                    Rows::Idx(idx) => kernel_idx(t.hist, idx, &data.row_major, nf, t.f0, &loc, gh),
                }
            });
        }
        if n_blocks > 1 {
            // add blocks 1.. into block 0 in block order; parallel over bins only
            let scratch = &self.scratch;
            const CH: usize = 512;
            out.par_chunks_mut(CH).enumerate().for_each(|(c, o)| {
                let lo = c * CH;
                for b in 0..n_blocks - 1 {
                    let s = &scratch[b * tb + lo..b * tb + lo + o.len()];
                    for (x, y) in o.iter_mut().zip(s) {
                        x[0] += y[0];
                        x[1] += y[1];
                    }
                }
            });
        }
    }
}

/// `parent -= child`, turning a parent histogram into its other child's (LightGBM's
/// histogram subtraction trick).
pub(crate) fn subtract(parent: &mut [HistBin], child: &[HistBin]) {
    for (p, c) in parent.iter_mut().zip(child) {
        p[0] -= c[0];
        p[1] -= c[1];
    }
}

/// Histogram of rows `lo..hi` for features `f0..f0 + loc.len()`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn kernel_range(
    hist: &mut [HistBin],
    lo: usize,
    hi: usize,
    bins: &[u8],
    nf: usize,
    f0: usize,
    loc: &[u32],
    gh: &[[f32; 2]],
) {
    let nfg = loc.len();
    assert!(hi <= gh.len() && hi * nf <= bins.len() && f0 + nfg <= nf);
    for r in lo..hi {
        let [g, h] = gh[r];
        let (g, h) = (g as f64, h as f64);
        let row = &bins[r * nf + f0..r * nf + f0 + nfg];
        for (&o, &b) in loc.iter().zip(row) {
            let i = o as usize + b as usize;
            // SAFETY: `b <= n_bins(f)` by construction of the binned data, and
            // `loc[f] + n_bins(f) < hist.len()` by construction of the offsets.
            let e = unsafe { hist.get_unchecked_mut(i) };
            e[0] += g;
            e[1] += h;
        }
    }
}

/// Histogram of the rows in `idx` for features `f0..f0 + loc.len()`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn kernel_idx(
    hist: &mut [HistBin],
    idx: &[u32],
    bins: &[u8],
    nf: usize,
    f0: usize,
    loc: &[u32],
    gh: &[[f32; 2]],
) {
    let nfg = loc.len();
    let n_rows = gh.len();
    assert!(n_rows * nf <= bins.len() && f0 + nfg <= nf);
    let row_body = |r: usize, hist: &mut [HistBin]| {
        debug_assert!(r < n_rows);
        // SAFETY: row indices come from the data partition, which only holds `0..n_rows`.
        let [g, h] = unsafe { *gh.get_unchecked(r) };
        let (g, h) = (g as f64, h as f64);
        // SAFETY: as above, `r * nf + f0 + nfg <= n_rows * nf <= bins.len()`.
        let row = unsafe { bins.get_unchecked(r * nf + f0..r * nf + f0 + nfg) };
        for (&o, &b) in loc.iter().zip(row) {
            let i = o as usize + b as usize;
            // SAFETY: see `kernel_range`.
            let e = unsafe { hist.get_unchecked_mut(i) };
            e[0] += g;
            e[1] += h;
        }
    };
    // Rows of a leaf are scattered: prefetch the bins and gradients of the row PREFETCH
    // positions ahead (LightGBM does the same), the loop is otherwise bound by cache misses.
    let n = idx.len();
    let main = n.saturating_sub(PREFETCH);
    for i in 0..main {
        // SAFETY: i + PREFETCH < n.
        let ahead = unsafe { *idx.get_unchecked(i + PREFETCH) } as usize;
        prefetch(bins.as_ptr().wrapping_add(ahead * nf + f0));
        prefetch(gh.as_ptr().wrapping_add(ahead) as *const u8);
        // SAFETY: i < n.
        row_body(unsafe { *idx.get_unchecked(i) } as usize, hist);
    }
    for &r in &idx[main..] {
        row_body(r as usize, hist);
    }
}

/// How many rows ahead to prefetch in [`kernel_idx`].
const PREFETCH: usize = 16;

#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(data: &BinnedData, rows: &[u32], gh: &[[f32; 2]]) -> Vec<HistBin> {
        let mut h = vec![[0.0; 2]; data.total_bins];
        for &r in rows {
            for f in 0..data.n_features {
                let b = data.offsets[f] as usize
                    + data.row_major[r as usize * data.n_features + f] as usize;
                h[b][0] += gh[r as usize][0] as f64;
                h[b][1] += gh[r as usize][1] as f64;
            }
        }
        h
    }

    #[test]
    fn build_matches_naive_and_is_thread_independent() {
        let n = 300_000; // > 2 blocks
        let x = Array2::from_shape_fn((n, 5), |(r, f)| {
            if (r * 7 + f) % 31 == 0 {
                f32::NAN
            } else {
                ((r * (f + 3)) % 101) as f32
            }
        });
        let data = BinnedData::build(x.view(), 255, 50_000, 1);
        let gh: Vec<[f32; 2]> = (0..n)
            .map(|r| [((r % 13) as f32 - 6.0) * 0.1, 0.25 + (r % 3) as f32])
            .collect();
        let idx: Vec<u32> = (0..n as u32).filter(|r| r % 3 != 1).collect();
        let run = |threads: usize, rows: Rows| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            let mut out = vec![[0.0; 2]; data.total_bins];
            if let Ok(pool) = pool {
                pool.install(|| HistBuilder::default().build(&data, rows, &gh, &mut out));
            }
            out
        };
        let a = run(1, Rows::Idx(&idx));
        let b = run(2, Rows::Idx(&idx));
        let c = run(3, Rows::Idx(&idx));
        assert_eq!(a, b);
        assert_eq!(a, c);
        let reference = naive(&data, &idx, &gh);
        for (x, y) in a.iter().zip(&reference) {
            assert!((x[0] - y[0]).abs() < 1e-6 && (x[1] - y[1]).abs() < 1e-6);
        }
        let all: Vec<u32> = (0..n as u32).collect();
        let d = run(2, Rows::All(n));
        assert_eq!(d, run(1, Rows::Idx(&all)));
    }
}
