//! Deterministic parallel helpers.
//!
//! Floating-point sums are computed over fixed-size chunks (independent of the number of rayon
//! threads) and the per-chunk partial sums are combined sequentially in chunk order, so results
//! are bit-identical whatever the thread count.

use rayon::prelude::*;

/// Rows per chunk for deterministic parallel sums.
pub(crate) const SUM_CHUNK: usize = 1 << 14;

/// Sum `f(i)` (a pair) over `0..n` deterministically.
pub(crate) fn chunked_sum2<F>(n: usize, f: F) -> (f64, f64)
where
    F: Fn(usize) -> (f64, f64) + Sync,
{
    let n_chunks = n.div_ceil(SUM_CHUNK);
    let parts: Vec<(f64, f64)> = (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let lo = c * SUM_CHUNK;
            let hi = (lo + SUM_CHUNK).min(n);
            let mut a = 0.0f64;
            let mut b = 0.0f64;
            for i in lo..hi {
                let (x, y) = f(i);
                a += x;
                b += y;
            }
            (a, b)
        })
        .collect();
    parts
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y))
}

/// A raw pointer that may be shared between rayon tasks that write *disjoint* elements.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);

impl<T> SyncPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    #[inline]
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: users only write disjoint indices from different tasks (documented at each use).
unsafe impl<T: Send> Send for SyncPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SyncPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_sum_is_thread_independent() {
        let n = 100_003;
        let f = |i: usize| ((i as f64).sin() * 1e-3, 1.0 / (1.0 + i as f64));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map(|p| p.install(|| chunked_sum2(n, f)));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .map(|p| p.install(|| chunked_sum2(n, f)));
        let (one, two) = (one.ok(), two.ok());
        assert!(one.is_some());
        assert_eq!(
            one.map(|(a, b)| (a.to_bits(), b.to_bits())),
            two.map(|(a, b)| (a.to_bits(), b.to_bits()))
        );
    }
}
