//! Bit-vector evaluation of fast-layout trees with up to 64 leaves (QuickScorer-style, node
//! order), vectorised with x86_64 AVX-512 / AVX2 chosen at run time; the lock-step scalar
//! traversal of [`super::eval`] is the reference and the fallback.
//!
//! Each tree's leaves are numbered left to right (the condition-true child first); a row's
//! candidate leaves are a 64-bit word (leaf `p` at bit `63 - p`), all ones at the start.
//! Every internal node is tested for every row, and where the row goes to the second child
//! the node clears the leaves of its first subtree. The leftmost leaf left is
//! the one traversal reaches (the tests on the path clear everything left of it; no test can
//! clear it, as it is in no first subtree of a node whose test sends the row right of it:
//! the path's nodes send the row towards it, and for a node off the path the leaf lies
//! outside its subtree altogether). So the result is `leading_zeros` of the word, with no
//! data-dependent branch or gather: contiguous loads and compares over many rows at once.
//!
//! Input: the block re-laid out feature-major, `buf[f * BLOCK + r]` for the columns
//! `[x_0..x_{M-1}, 0.0, -x_0..-x_{M-1}]` of the scalar kernel (`f` is a node's `feat`). Every
//! test is the scalar kernel's `!(v <= thr)` (`_CMP_NLE_UQ`: NaN goes right) on the same f32
//! values, so leaves, and f32 sums taken in tree order, are identical to the scalar kernel's.
//!
//! Forms of the word:
//! - portable (`Kernel::Bitvec`, tests only by default): two u32 halves per row, every node
//!   tested by its own compare;
//! - AVX-512 and AVX2: each distinct test (column, threshold) of the whole ensemble is
//!   computed once per block into a 64-byte mask per 64 rows ([`SimdLayout::load`]; boosted
//!   trees share most thresholds), and the words are eight byte planes (leaf `p` at bit
//!   `7 - p % 8` of plane `p / 8`; 64 rows per AVX-512 vector, 32 per AVX2 vector), so a node
//!   costs one (AVX-512 ternary logic) or two (AVX2 or + and) ops per vector of rows and per
//!   plane its first subtree touches (one or two for most nodes). Tests on the negated
//!   columns are computed as `!(x >= -t)` on the original ones: no negated copy is made.

#![allow(clippy::needless_range_loop)]
// kernels index several per-vector arrays by one lane
// The AVX-512 tables (byte planes, shared tests) are unused on other targets.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::compile::{Node, TreeInfo};
use super::eval::BLOCK;

/// Most leaves a tree may have for this layout.
pub(crate) const MAX_LEAVES: usize = 64;
/// 64-row chunks of a block (one 64-byte test mask each).
const CHUNKS: usize = BLOCK / 64;
const _: () = assert!(BLOCK.is_multiple_of(64) && CHUNKS >= 2);

/// Which evaluation kernel a [`super::CompiledEnsemble`] uses for the fast layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Lock-step traversal (`eval::fast_group`), row-major buffer.
    Scalar,
    /// This module's bit-vector method, portable code (what the compiler vectorises).
    Bitvec,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU supports. `CR_INFER_KERNEL=scalar|bitvec|avx2|avx512`
    /// overrides the choice (benchmarks; ignored where unsupported).
    pub(crate) fn detect() -> Kernel {
        let wanted = match std::env::var("CR_INFER_KERNEL").as_deref() {
            Ok("scalar") => Some(Kernel::Scalar),
            Ok("bitvec") => Some(Kernel::Bitvec),
            #[cfg(target_arch = "x86_64")]
            Ok("avx2") => Some(Kernel::Avx2),
            #[cfg(target_arch = "x86_64")]
            Ok("avx512") => Some(Kernel::Avx512),
            _ => None,
        };
        if let Some(k) = wanted.filter(|k| k.supported()) {
            return k;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if Kernel::Avx512.supported() {
                return Kernel::Avx512;
            }
            if Kernel::Avx2.supported() {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// Whether this CPU can run `self`.
    pub(crate) fn supported(self) -> bool {
        match self {
            Kernel::Scalar | Kernel::Bitvec => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
            }
        }
    }
}

/// One internal node: buffer offset of its column (`feat * BLOCK`), threshold, and the
/// complement of the leaves of its first subtree (high and low halves of the 64-bit leaf
/// word; and-ed into a row's word where the row goes right).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct QsNode {
    off: u32,
    thr: f32,
    hi: u32,
    lo: u32,
    /// Index of this node's test (column, threshold) in [`SimdLayout::tests`].
    test: u32,
}

/// One byte of one node's first-subtree leaves, for the AVX-512 kernel: leaf `p` is bit
/// `7 - p % 8` of byte plane `p / 8`; `keep` is the complement of the node's leaves there.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct ByteEntry {
    /// Offset of the node's test outcomes in [`BlockBuf::masks`] (`test * CHUNKS`).
    at: u32,
    keep: u8,
}

/// One tree: its nodes are `qs[at[0]..at[3]]`, those clearing high-half leaves only
/// first (`..at[1]`), then low-half only (`..at[2]`), then both; its byte entries for plane
/// `b` are `bytes[planes[b]..planes[b + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QsTree {
    at: [usize; 4],
    planes: [usize; 9],
    /// Absolute node index of leaf `p` (entries past the last leaf repeat it).
    leaf_node: [u32; MAX_LEAVES],
    /// `Node::value` of leaf `p`.
    leaf_value: [f32; MAX_LEAVES],
}

/// A fast-layout ensemble in bit-vector form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SimdLayout {
    qs: Vec<QsNode>,
    bytes: Vec<ByteEntry>,
    /// Distinct tests (column offset, threshold) of all trees: the AVX-512 kernel computes
    /// each once per block (boosted trees share most thresholds: LightGBM bins them). The
    /// first `n_le` are `!(x <= t)` on a column `x` of the original features; the others are
    /// the tests on negated columns, `!(-x <= t')`, stored as `!(x >= -t')` (the same for
    /// every f32 `x` and `t'`, NaN included: negation is exact and reverses the order), so
    /// the AVX-512 kernel needs no negated copy.
    tests: Vec<(u32, f32)>,
    n_le: usize,
    trees: Vec<QsTree>,
    /// Buffer columns (`2M + 1`).
    width: usize,
}

/// Leaves of the subtree at `i` numbered from `*pos` on, first child first; the first-subtree
/// leaf range of every internal node into `ranges`. `None` past [`MAX_LEAVES`] leaves or if
/// the tree is deeper than that (not a tree of this size).
fn number_leaves(
    nodes: &[Node],
    i: usize,
    depth: usize,
    pos: &mut usize,
    leaf_node: &mut [u32; MAX_LEAVES],
    ranges: &mut Vec<(usize, usize, usize)>,
) -> Option<()> {
    let n = nodes.get(i)?;
    if n.child as usize == i {
        *leaf_node.get_mut(*pos)? = i as u32;
        *pos += 1;
        return Some(());
    }
    if depth >= MAX_LEAVES {
        return None;
    }
    let a = *pos;
    number_leaves(nodes, n.child as usize, depth + 1, pos, leaf_node, ranges)?;
    ranges.push((i, a, *pos));
    number_leaves(
        nodes,
        n.child as usize + 1,
        depth + 1,
        pos,
        leaf_node,
        ranges,
    )
}

impl SimdLayout {
    /// Build from a compiled fast layout; `None` where a tree has more than [`MAX_LEAVES`]
    /// leaves or the rows are too wide for 32-bit buffer offsets.
    pub(crate) fn new(
        nodes: &[Node],
        trees: &[TreeInfo],
        min_features: usize,
    ) -> Option<SimdLayout> {
        let width = 2 * min_features + 1;
        if width.checked_mul(BLOCK)? >= i32::MAX as usize {
            return None;
        }
        let mut qs = Vec::new();
        let mut bytes = Vec::new();
        let mut tests = Vec::new();
        let mut test_ids = std::collections::BTreeMap::new();
        let mut out = Vec::with_capacity(trees.len());
        let mut ranges = Vec::new();
        for t in trees {
            let mut leaf_node = [0u32; MAX_LEAVES];
            let mut pos = 0;
            ranges.clear();
            number_leaves(
                nodes,
                t.root as usize,
                0,
                &mut pos,
                &mut leaf_node,
                &mut ranges,
            )?;
            let last = leaf_node[pos - 1];
            leaf_node[pos..].fill(last);
            let mut leaf_value = [0f32; MAX_LEAVES];
            for (v, &i) in leaf_value.iter_mut().zip(&leaf_node) {
                *v = nodes[i as usize].value;
            }
            let mut by_half: [Vec<QsNode>; 3] = Default::default();
            let mut by_plane: [Vec<ByteEntry>; 8] = Default::default();
            for &(i, a, b) in &ranges {
                let n = nodes[i];
                if n.feat as usize >= width {
                    return None;
                }
                let (mut hi, mut lo) = (0u32, 0u32);
                for p in a..b {
                    if p < 32 {
                        hi |= 1 << (31 - p);
                    } else {
                        lo |= 1 << (63 - p);
                    }
                }
                let off = n.feat * BLOCK as u32;
                let test = *test_ids.entry((off, n.thr.to_bits())).or_insert_with(|| {
                    tests.push((off, n.thr));
                    tests.len() as u32 - 1
                });
                let q = QsNode {
                    off,
                    thr: n.thr,
                    hi: !hi,
                    lo: !lo,
                    test,
                };
                by_half[usize::from(hi == 0) + 2 * usize::from(hi != 0 && lo != 0)].push(q);
                for (plane, list) in by_plane.iter_mut().enumerate() {
                    let bits = (a.max(8 * plane)..b.min(8 * plane + 8))
                        .fold(0u8, |m, p| m | 1 << (7 - (p - 8 * plane)));
                    if bits != 0 {
                        list.push(ByteEntry {
                            at: test,
                            keep: !bits,
                        });
                    }
                }
            }
            let mut planes = [bytes.len(); 9];
            for (k, v) in by_plane.iter().enumerate() {
                bytes.extend_from_slice(v);
                planes[k + 1] = bytes.len();
            }
            let mut at = [qs.len(); 4];
            for (k, v) in by_half.iter().enumerate() {
                qs.extend_from_slice(v);
                at[k + 1] = qs.len();
            }
            out.push(QsTree {
                at,
                planes,
                leaf_node,
                leaf_value,
            });
        }
        if tests.len() >= (u32::MAX as usize) / CHUNKS {
            return None;
        }
        // Order tests as documented at `tests`: (negated?, column, threshold bits).
        let m = min_features as u32;
        let key = |&(off, thr): &(u32, f32)| {
            let f = off / BLOCK as u32;
            if f > m {
                (1u8, (f - m - 1) * BLOCK as u32, (-thr).to_bits())
            } else {
                (0u8, off, thr.to_bits())
            }
        };
        let mut order: Vec<u32> = (0..tests.len() as u32).collect();
        order.sort_by_key(|&j| key(&tests[j as usize]));
        let mut new_id = vec![0u32; tests.len()];
        for (k, &j) in order.iter().enumerate() {
            new_id[j as usize] = k as u32;
        }
        qs.iter_mut().for_each(|q| q.test = new_id[q.test as usize]);
        bytes
            .iter_mut()
            .for_each(|e| e.at = new_id[e.at as usize] * CHUNKS as u32);
        let n_le = order
            .iter()
            .filter(|&&j| key(&tests[j as usize]).0 == 0)
            .count();
        let tests = order
            .iter()
            .map(|&j| {
                let (_, off, t) = key(&tests[j as usize]);
                (off, f32::from_bits(t))
            })
            .collect();
        Some(SimdLayout {
            qs,
            bytes,
            tests,
            n_le,
            trees: out,
            width,
        })
    }

    /// Buffer length the kernels need (`width * BLOCK`).
    pub(crate) fn buf_len(&self) -> usize {
        self.width * BLOCK
    }

    /// Scratch for one block.
    #[cfg(test)]
    pub(crate) fn block_buf(&self) -> BlockBuf {
        let mut b = BlockBuf::default();
        b.fit(self);
        b
    }

    /// Load the `len` rows of `xb` (row stride `nf`) into `b` for `kernel`: the feature-major
    /// copy and, for AVX-512, every test's outcome on every row.
    pub(crate) fn load(&self, kernel: Kernel, xb: &[f32], nf: usize, len: usize, b: &mut BlockBuf) {
        #[cfg(target_arch = "x86_64")]
        if matches!(kernel, Kernel::Avx512 | Kernel::Avx2) {
            let m = (self.width - 1) / 2;
            assert!(
                b.xs().len() >= self.buf_len()
                    && b.masks.len() >= self.tests.len() * CHUNKS
                    && len <= BLOCK
            );
            fill_columns(xb, nf, m, len, b.xs_mut());
            let (x, masks) = b.split();
            // SAFETY: the kernel's features are present (the caller checked
            // `Kernel::supported`); every test's offset is `feat * BLOCK` with `feat < width`
            // (checked in `new`), chunks stay below BLOCK, so loads stay inside `b.x`; mask
            // stores inside `b.masks` (asserted).
            unsafe {
                if kernel == Kernel::Avx512 {
                    self.tests_avx512(x, len.div_ceil(64), masks)
                } else {
                    self.tests_avx2(x, len.div_ceil(64), masks)
                }
            }
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = kernel;
        self.fill(xb, nf, len, b.xs_mut());
    }

    /// `masks[j * CHUNKS + c]` byte `i` = 0xFF where test `j` sends row `64c + i` right.
    ///
    /// # Safety
    /// avx512f and avx512bw must be available; bounds as stated at the call in [`Self::load`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn tests_avx512(&self, x: &[f32], chunks: usize, masks: &mut [Line]) {
        use std::arch::x86_64::*;
        let (xp, mp) = (x.as_ptr(), masks.as_mut_ptr());
        for (j, &(off, thr)) in self.tests.iter().enumerate().take(self.n_le) {
            let t = _mm512_set1_ps(thr);
            for c in 0..chunks {
                let col = xp.add(off as usize + 64 * c);
                let m = |q: usize| {
                    u64::from(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(
                        _mm512_loadu_ps(col.add(16 * q)),
                        t,
                    ))
                };
                let k = m(0) | m(1) << 16 | m(2) << 32 | m(3) << 48;
                _mm512_store_si512(mp.add(j * CHUNKS + c) as *mut __m512i, _mm512_movm_epi8(k));
            }
        }
        for (j, &(off, thr)) in self.tests.iter().enumerate().skip(self.n_le) {
            let t = _mm512_set1_ps(thr);
            for c in 0..chunks {
                let col = xp.add(off as usize + 64 * c);
                let m = |q: usize| {
                    u64::from(_mm512_cmp_ps_mask::<_CMP_NGE_UQ>(
                        _mm512_loadu_ps(col.add(16 * q)),
                        t,
                    ))
                };
                let k = m(0) | m(1) << 16 | m(2) << 32 | m(3) << 48;
                _mm512_store_si512(mp.add(j * CHUNKS + c) as *mut __m512i, _mm512_movm_epi8(k));
            }
        }
    }

    /// [`Self::tests_avx512`] with AVX2, complemented: byte `i` = 0xFF where test `j` sends
    /// row `64c + i` left (saves a not in [`Self::avx2`]).
    ///
    /// # Safety
    /// avx2 must be available; bounds as stated at the call in [`Self::load`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn tests_avx2(&self, x: &[f32], chunks: usize, masks: &mut [Line]) {
        use std::arch::x86_64::*;
        // 32 rows of dword masks -> 32 bytes in row order (packs work per 128-bit lane)
        #[inline(always)]
        unsafe fn pack(m: [__m256; 4]) -> __m256i {
            let c = |v: __m256| _mm256_castps_si256(v);
            let w = _mm256_packs_epi16(
                _mm256_packs_epi32(c(m[0]), c(m[1])),
                _mm256_packs_epi32(c(m[2]), c(m[3])),
            );
            _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        }
        let (xp, mp) = (x.as_ptr(), masks.as_mut_ptr() as *mut __m256i);
        for (j, &(off, thr)) in self.tests.iter().enumerate() {
            let t = _mm256_set1_ps(thr);
            let le = j < self.n_le;
            for h in 0..2 * chunks {
                let col = xp.add(off as usize + 32 * h);
                let m = |q: usize| {
                    let v = _mm256_loadu_ps(col.add(8 * q));
                    if le {
                        _mm256_cmp_ps::<_CMP_LE_OQ>(v, t)
                    } else {
                        _mm256_cmp_ps::<_CMP_GE_OQ>(v, t)
                    }
                };
                _mm256_store_si256(mp.add(j * 2 * CHUNKS + h), pack([m(0), m(1), m(2), m(3)]));
            }
        }
    }

    /// Fill `buf` (feature-major, [`Self::buf_len`]) with the `len` rows of `xb` (row stride
    /// `nf`, at least `M` features); rows `len..` up to the next multiple of 16 are zeroed.
    pub(crate) fn fill(&self, xb: &[f32], nf: usize, len: usize, buf: &mut [f32]) {
        let m = (self.width - 1) / 2;
        let padded = len.next_multiple_of(16).min(BLOCK);
        for f in 0..m {
            let col = &mut buf[f * BLOCK..f * BLOCK + padded];
            for (d, row) in col[..len].iter_mut().zip(xb.chunks_exact(nf)) {
                *d = row[f];
            }
            col[len..].fill(0.0);
        }
        buf[m * BLOCK..(m + 1) * BLOCK].fill(0.0);
        for f in 0..m {
            let (src, dst) = buf.split_at_mut((m + 1 + f) * BLOCK);
            for (d, s) in dst[..padded]
                .iter_mut()
                .zip(&src[f * BLOCK..f * BLOCK + padded])
            {
                *d = -*s;
            }
        }
    }

    /// Leaf (absolute node index) of each of the `len` rows of `buf` in tree `t` (`kernel`
    /// must be supported and not [`Kernel::Scalar`]); with `sum`, add the leaf values to
    /// `sum[..len]` instead. Entries past `len` up to the next multiple of 16 are scratch.
    pub(crate) fn eval_tree(
        &self,
        kernel: Kernel,
        t: usize,
        b: &BlockBuf,
        len: usize,
        out: &mut Out<'_>,
    ) {
        let tree = &self.trees[t];
        let buf = b.xs();
        assert!(
            buf.len() >= self.buf_len()
                && len <= BLOCK
                && b.masks.len() >= self.tests.len() * CHUNKS
        );
        // The kernels index without checks: every node offset is `feat * BLOCK` with
        // `feat < width` (checked in `new`), rows stay below the next multiple of 16 of
        // `len`, at most BLOCK, so loads stay below `width * BLOCK <= buf.len()`.
        match kernel {
            Kernel::Scalar | Kernel::Bitvec => self.eval_portable(tree, buf, len, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                // SAFETY: avx512f/bw present (the caller checked `Kernel::supported`); the
                // kernel reads masks `test * CHUNKS + c` for c < chunks <= CHUNKS (asserted
                // above) and writes rows below 64 * chunks <= BLOCK.
                unsafe {
                    match len.div_ceil(64) {
                        0 | 1 => self.avx512::<1>(tree, &b.masks, out),
                        2 => self.avx512::<2>(tree, &b.masks, out),
                        _ => self.avx512::<CHUNKS>(tree, &b.masks, out),
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                // SAFETY: avx2 present; as for AVX-512.
                unsafe {
                    match len.div_ceil(64) {
                        0 | 1 => self.avx2::<1>(tree, &b.masks, out),
                        2 => self.avx2::<2>(tree, &b.masks, out),
                        _ => self.avx2::<CHUNKS>(tree, &b.masks, out),
                    }
                }
            }
        }
    }

    fn nodes(&self, tree: &QsTree, k: usize) -> &[QsNode] {
        &self.qs[tree.at[k]..tree.at[k + 1]]
    }

    /// Portable version (also the model the SIMD kernels are tested against).
    fn eval_portable(&self, tree: &QsTree, buf: &[f32], len: usize, out: &mut Out<'_>) {
        let mut hi = [u32::MAX; BLOCK];
        let mut lo = [u32::MAX; BLOCK];
        for half in 0..3 {
            for q in self.nodes(tree, half) {
                let col = &buf[q.off as usize..q.off as usize + len];
                #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN goes right, as in eval
                for ((h, l), &v) in hi.iter_mut().zip(lo.iter_mut()).zip(col) {
                    let right = 0u32.wrapping_sub(u32::from(!(v <= q.thr)));
                    *h &= q.hi | !right;
                    *l &= q.lo | !right;
                }
            }
        }
        for r in 0..len {
            let p = ((u64::from(hi[r]) << 32 | u64::from(lo[r])).leading_zeros() as usize)
                .min(MAX_LEAVES - 1);
            match out {
                Out::Leaves(o) => o[r] = tree.leaf_node[p],
                Out::Sum(s) => s[r] += tree.leaf_value[p],
            }
        }
    }

    /// AVX-512 kernel: rows `0..64 * C` of the block, leaf words as eight byte planes (64
    /// rows per vector; a node touches one or two planes), test outcomes from
    /// [`Self::tests_avx512`].
    ///
    /// # Safety
    /// avx512f and avx512bw must be available; `C <= CHUNKS`, `masks` as made by
    /// [`Self::load`] for this block; writes rows `0..64 * C` of `out`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512<const C: usize>(&self, tree: &QsTree, masks: &[Line], out: &mut Out<'_>) {
        use std::arch::x86_64::*;
        let mp = masks.as_ptr() as *const __m512i;
        let ones = _mm512_set1_epi32(-1);
        let mut planes = [[ones; C]; 8];
        for (b, plane) in planes.iter_mut().enumerate() {
            for e in &self.bytes[tree.planes[b]..tree.planes[b + 1]] {
                let keep = _mm512_set1_epi8(e.keep as i8);
                let m = mp.add(e.at as usize);
                for c in 0..C {
                    // plane & (!right | keep)
                    plane[c] = _mm512_ternarylogic_epi32::<0xB0>(
                        plane[c],
                        _mm512_load_si512(m.add(c)),
                        keep,
                    );
                }
            }
        }
        let c4 = _mm512_set1_epi8(4);
        let low4 = _mm512_set1_epi8(0x0F);
        // leading zeros of a nibble, per 128-bit lane
        let lz4 = _mm512_broadcast_i32x4(_mm_setr_epi8(
            4, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0,
        ));
        let c32 = _mm512_set1_epi32(32);
        for c in 0..C {
            // first non-empty plane and its byte
            let mut v = planes[7][c];
            let mut base = _mm512_set1_epi8(56);
            for b in (0..7).rev() {
                let nz = _mm512_test_epi8_mask(planes[b][c], planes[b][c]);
                v = _mm512_mask_mov_epi8(v, nz, planes[b][c]);
                base = _mm512_mask_mov_epi8(base, nz, _mm512_set1_epi8(8 * b as i8));
            }
            let hi4 = _mm512_and_si512(_mm512_srli_epi16::<4>(v), low4);
            let lz_hi = _mm512_shuffle_epi8(lz4, hi4);
            let lz_lo = _mm512_add_epi8(_mm512_shuffle_epi8(lz4, _mm512_and_si512(v, low4)), c4);
            let lz = _mm512_mask_mov_epi8(lz_lo, _mm512_test_epi8_mask(hi4, hi4), lz_hi);
            let p8 = _mm512_min_epu8(_mm512_add_epi8(base, lz), _mm512_set1_epi8(63));
            for q in 0..4 {
                let p = _mm512_cvtepu8_epi32(match q {
                    0 => _mm512_extracti32x4_epi32::<0>(p8),
                    1 => _mm512_extracti32x4_epi32::<1>(p8),
                    2 => _mm512_extracti32x4_epi32::<2>(p8),
                    _ => _mm512_extracti32x4_epi32::<3>(p8),
                });
                let upper = _mm512_test_epi32_mask(p, c32);
                let r = 64 * c + 16 * q;
                match out {
                    Out::Leaves(o) => {
                        let t = tree.leaf_node.as_ptr() as *const __m512i;
                        let a = _mm512_permutex2var_epi32(
                            _mm512_loadu_si512(t),
                            p,
                            _mm512_loadu_si512(t.add(1)),
                        );
                        let b = _mm512_permutex2var_epi32(
                            _mm512_loadu_si512(t.add(2)),
                            p,
                            _mm512_loadu_si512(t.add(3)),
                        );
                        _mm512_storeu_si512(
                            o.as_mut_ptr().add(r) as *mut __m512i,
                            _mm512_mask_mov_epi32(a, upper, b),
                        );
                    }
                    Out::Sum(s) => {
                        let t = tree.leaf_value.as_ptr();
                        let a = _mm512_permutex2var_ps(
                            _mm512_loadu_ps(t),
                            p,
                            _mm512_loadu_ps(t.add(16)),
                        );
                        let b = _mm512_permutex2var_ps(
                            _mm512_loadu_ps(t.add(32)),
                            p,
                            _mm512_loadu_ps(t.add(48)),
                        );
                        let d = s.as_mut_ptr().add(r);
                        _mm512_storeu_ps(
                            d,
                            _mm512_add_ps(_mm512_loadu_ps(d), _mm512_mask_mov_ps(a, upper, b)),
                        );
                    }
                }
            }
        }
    }

    /// AVX2 kernel: [`Self::avx512`]'s byte planes, 32 rows per vector.
    ///
    /// # Safety
    /// avx2 must be available; `C <= CHUNKS`, `masks` as made by [`Self::load`] for this
    /// block; writes rows `0..64 * C` of `out`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2<const C: usize>(&self, tree: &QsTree, masks: &[Line], out: &mut Out<'_>) {
        use std::arch::x86_64::*;
        let mp = masks.as_ptr() as *const __m256i;
        let ones = _mm256_set1_epi32(-1);
        let zero = _mm256_setzero_si256();
        let mut planes = [[[ones; 2]; C]; 8];
        for (b, plane) in planes.iter_mut().enumerate() {
            for e in &self.bytes[tree.planes[b]..tree.planes[b + 1]] {
                let keep = _mm256_set1_epi8(e.keep as i8);
                let m = mp.add(2 * e.at as usize);
                for c in 0..C {
                    for h in 0..2 {
                        // plane & (left | keep)
                        let left = _mm256_load_si256(m.add(2 * c + h));
                        plane[c][h] = _mm256_and_si256(plane[c][h], _mm256_or_si256(left, keep));
                    }
                }
            }
        }
        let c4 = _mm256_set1_epi8(4);
        let low4 = _mm256_set1_epi8(0x0F);
        let lz4 = _mm256_setr_epi8(
            4, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0,
            0, 0, 0,
        );
        for c in 0..C {
            for h in 0..2 {
                let mut v = planes[7][c][h];
                let mut base = _mm256_set1_epi8(56);
                for b in (0..7).rev() {
                    let empty = _mm256_cmpeq_epi8(planes[b][c][h], zero);
                    v = _mm256_blendv_epi8(planes[b][c][h], v, empty);
                    base = _mm256_blendv_epi8(_mm256_set1_epi8(8 * b as i8), base, empty);
                }
                let hi4 = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low4);
                let lz_hi = _mm256_shuffle_epi8(lz4, hi4);
                let lz_lo =
                    _mm256_add_epi8(_mm256_shuffle_epi8(lz4, _mm256_and_si256(v, low4)), c4);
                let lz = _mm256_blendv_epi8(lz_hi, lz_lo, _mm256_cmpeq_epi8(hi4, zero));
                let p8 = _mm256_min_epu8(_mm256_add_epi8(base, lz), _mm256_set1_epi8(63));
                let p16 = [
                    _mm256_castsi256_si128(p8),
                    _mm256_extracti128_si256::<1>(p8),
                ];
                for q in 0..4 {
                    let bytes = if q % 2 == 0 {
                        p16[q / 2]
                    } else {
                        _mm_srli_si128::<8>(p16[q / 2])
                    };
                    let p = _mm256_cvtepu8_epi32(bytes);
                    let r = 64 * c + 32 * h + 8 * q;
                    match out {
                        Out::Leaves(o) => {
                            let l = _mm256_i32gather_epi32::<4>(
                                tree.leaf_node.as_ptr() as *const i32,
                                p,
                            );
                            _mm256_storeu_si256(o.as_mut_ptr().add(r) as *mut __m256i, l);
                        }
                        Out::Sum(s) => {
                            let l = _mm256_i32gather_ps::<4>(tree.leaf_value.as_ptr(), p);
                            let d = s.as_mut_ptr().add(r);
                            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), l));
                        }
                    }
                }
            }
        }
    }
}

/// `x[f * BLOCK + r] = xb[r * nf + f]` for `f < m`, `r < len`; rows `len..` up to the next
/// multiple of 64 are zeroed, and so is the constant column `m` up to there (no internal
/// node tests it; zeroed as it is in the portable layout, since `x` is reused).
fn fill_columns(xb: &[f32], nf: usize, m: usize, len: usize, x: &mut [f32]) {
    let padded = len.next_multiple_of(64).min(BLOCK);
    for (r, row) in xb.chunks_exact(nf).take(len).enumerate() {
        for (f, &v) in row[..m].iter().enumerate() {
            x[f * BLOCK + r] = v;
        }
    }
    for f in 0..m {
        x[f * BLOCK + len..f * BLOCK + padded].fill(0.0);
    }
    x[m * BLOCK..m * BLOCK + padded].fill(0.0);
}

/// One block's rows for the bit-vector kernels (see [`SimdLayout::load`]). Reused across
/// calls and ensembles (`super::scratch`): [`SimdLayout::load`] writes every entry the
/// kernels read for the block's rows, so stale contents never reach a result.
#[derive(Default)]
pub(crate) struct BlockBuf {
    /// The feature-major block, on a 64-byte boundary so that every column chunk the
    /// kernels load (`feat * BLOCK + 16k` floats) is one aligned cache line.
    x: Vec<F32Line>,
    masks: Vec<Line>,
}

/// 16 f32 on a 64-byte boundary.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct F32Line([f32; 16]);

impl BlockBuf {
    /// Grow (never shrink) to what `layout` needs; new entries are zero.
    pub(crate) fn fit(&mut self, layout: &SimdLayout) {
        super::scratch::grow(
            &mut self.x,
            layout.buf_len().div_ceil(16),
            F32Line([0.0; 16]),
        );
        super::scratch::grow(&mut self.masks, layout.tests.len() * CHUNKS, Line([0; 64]));
    }

    /// Heap bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.x.capacity() * size_of::<F32Line>() + self.masks.capacity() * size_of::<Line>()
    }

    /// The block as plain floats.
    fn xs(&self) -> &[f32] {
        // SAFETY: `F32Line` is `repr(C)` around `[f32; 16]` (size 64, no padding), so the
        // vector's storage is `16 * len` initialised, suitably aligned f32s.
        unsafe { std::slice::from_raw_parts(self.x.as_ptr().cast::<f32>(), 16 * self.x.len()) }
    }

    fn xs_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `xs`; the slice borrows `self.x` mutably.
        unsafe {
            std::slice::from_raw_parts_mut(self.x.as_mut_ptr().cast::<f32>(), 16 * self.x.len())
        }
    }

    /// The block as floats and the masks, borrowed together.
    #[cfg(target_arch = "x86_64")]
    fn split(&mut self) -> (&[f32], &mut [Line]) {
        // SAFETY: as in `xs`; `x` and `masks` are distinct vectors.
        let x =
            unsafe { std::slice::from_raw_parts(self.x.as_ptr().cast::<f32>(), 16 * self.x.len()) };
        (x, &mut self.masks)
    }
}

/// 64 bytes on a 64-byte boundary (one test's outcome on 64 rows).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

/// Where [`SimdLayout::eval_tree`] writes: leaf node indices, or running f32 sums of leaf
/// values (in tree order, one `+=` per tree, as ORT's `TreeAggregatorSum`).
pub(crate) enum Out<'a> {
    Leaves(&'a mut [u32; BLOCK]),
    Sum(&'a mut [f32; BLOCK]),
}
