//! Stable partition of a leaf's row indices into left and right children.
//!
//! The result (lefts in their original order, then rights in their original order) is unique,
//! so parallel chunking cannot change it.

use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// Stable-partition `idx` by `go_left[col[row]]`; returns the number of left rows.
/// `tmp` must be at least as long as `idx`.
pub(crate) fn partition(
    idx: &mut [u32],
    tmp: &mut [u32],
    col: &[u8],
    go_left: &[bool; 256],
) -> usize {
    let n = idx.len();
    let tmp = &mut tmp[..n];
    // pass 1: per chunk, lefts at the front of its tmp region, rights at the back (reversed)
    let left_counts: Vec<usize> = idx
        .par_chunks(CHUNK)
        .zip(tmp.par_chunks_mut(CHUNK))
        .map(|(src, dst)| split_chunk(src, dst, col, go_left))
        .collect();
    let total_left: usize = left_counts.iter().sum();
    // pass 2: copy every chunk's lefts and rights to their final places
    let (left_dst, right_dst) = idx.split_at_mut(total_left);
    let mut lefts: Vec<&mut [u32]> = Vec::with_capacity(left_counts.len());
    let mut rights: Vec<&mut [u32]> = Vec::with_capacity(left_counts.len());
    let (mut ld, mut rd) = (left_dst, right_dst);
    for (c, &nl) in left_counts.iter().enumerate() {
        let len = CHUNK.min(n - c * CHUNK);
        let (a, b) = ld.split_at_mut(nl);
        lefts.push(a);
        ld = b;
        let (a, b) = rd.split_at_mut(len - nl);
        rights.push(a);
        rd = b;
    }
    tmp.par_chunks(CHUNK)
        .zip(lefts)
        .zip(rights)
        .for_each(|((src, l), r)| {
            let nl = l.len();
            l.copy_from_slice(&src[..nl]);
            for (d, s) in r.iter_mut().zip(src[nl..].iter().rev()) {
                *d = *s;
            }
        });
    total_left
}

/// Branchless stable split of one chunk; returns the number of lefts.
#[inline(never)]
fn split_chunk(src: &[u32], dst: &mut [u32], col: &[u8], go_left: &[bool; 256]) -> usize {
    let n = src.len();
    if n == 0 {
        return 0;
    }
    let mut l = 0usize;
    let mut r = n; // rights fill dst[r-1], dst[r-2], ...
    for &i in src {
        let go = go_left[col[i as usize] as usize] as usize;
        // Both writes are in bounds: l + (n - r) < n, so l <= r - 1 < n. A write that is not
        // kept lands in a slot that a later iteration overwrites with its final value (or it
        // is the same slot and value as the kept write).
        dst[l] = i;
        dst[r - 1] = i;
        l += go;
        r -= 1 - go;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_partition_matches_filter() {
        for &n in &[0usize, 1, 5, 1000, 40_000, 70_001] {
            let col: Vec<u8> = (0..n.max(1) * 2)
                .map(|i| ((i * 7919) % 251) as u8)
                .collect();
            let idx: Vec<u32> = (0..(n * 2) as u32).filter(|r| r % 2 == 0).collect();
            let mut lut = [false; 256];
            for (b, v) in lut.iter_mut().enumerate() {
                *v = b % 3 == 0 || b > 200;
            }
            let mut work = idx.clone();
            let mut tmp = vec![0u32; work.len()];
            let nl = partition(&mut work, &mut tmp, &col, &lut);
            let expect_l: Vec<u32> = idx
                .iter()
                .copied()
                .filter(|&i| lut[col[i as usize] as usize])
                .collect();
            let expect_r: Vec<u32> = idx
                .iter()
                .copied()
                .filter(|&i| !lut[col[i as usize] as usize])
                .collect();
            assert_eq!(nl, expect_l.len());
            assert_eq!(&work[..nl], &expect_l[..]);
            assert_eq!(&work[nl..], &expect_r[..]);
        }
    }
}
