//! Batch evaluation of a [`CompiledEnsemble`] and ONNX Runtime's finalisation rules.
//!
//! Rows are processed in blocks of [`BLOCK`]; within a block, trees are the outer loop (a
//! tree's nodes stay in L1). Fast-layout ensembles whose trees have at most 64 leaves use the
//! bit-vector kernels of [`super::simd`] (AVX-512 / AVX2, picked at run time) for calls of
//! at least [`SIMD_MIN_ROWS`] rows; otherwise rows advance [`GROUP`] at a time in lock-step
//! through the trees (independent dependency chains, no data-dependent branches in the fast
//! kernel). Each row's leaf values are summed in f32 in tree order, exactly as ORT's
//! `TreeAggregatorSum` does, whichever kernel finds the leaves. Buffers come from the
//! calling thread's [`super::scratch`], so small calls allocate and zero nothing.

use super::compile::{gmode, CompiledEnsemble, Node, Payload, INDEX_MASK, MISSING_BIT};
use super::scratch::{grow, Scratch};
use super::simd::{BlockBuf, Kernel, Out, SimdLayout};
use super::spec::{Aggregate, Head, PostTransform};
use crate::error::InferError;
use crate::math::{ort_logistic, ort_probit, ort_softmax, ort_softmax_zero};

/// Rows per block (the unit of cache blocking; also the granularity of parallel tasks'
/// inner loop).
pub(crate) const BLOCK: usize = 256;
/// Rows advanced together through one tree.
const GROUP: usize = 16;
/// Fewest rows scored with the bit-vector (SIMD) kernels.
const SIMD_MIN_ROWS: usize = 16;

/// ORT's `ScoreValue`: a running value and whether any leaf contributed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Score {
    pub v: f32,
    pub has: bool,
}

impl Score {
    #[inline]
    fn val(self) -> f32 {
        if self.has {
            self.v
        } else {
            0.0
        }
    }
}

impl CompiledEnsemble {
    /// Number of output columns (ORT's `[N, n_targets_or_classes]` scores/probabilities).
    pub fn n_outputs(&self) -> usize {
        self.n_slots
    }

    /// Smallest number of input features the trees read (max feature id + 1).
    pub fn min_features(&self) -> usize {
        self.min_features
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The op this was compiled from (`TreeEnsembleClassifier`, ...).
    pub fn op(&self) -> &str {
        &self.op
    }

    /// Use `kernel` for the fast layout; `false` (and no change) where the CPU or the layout
    /// does not support it.
    #[cfg(test)]
    pub(crate) fn set_kernel(&mut self, kernel: Kernel) -> bool {
        if !kernel.supported() || (kernel != Kernel::Scalar && self.simd.is_none()) {
            return false;
        }
        self.kernel = kernel;
        true
    }

    /// Whether the branch-free kernel is used (all splits are `<`, `<=`, `>`, `>=`).
    pub fn is_fast_layout(&self) -> bool {
        self.modes.is_empty()
    }

    fn check(
        &self,
        x: &[f32],
        n_features: usize,
        n_rows: usize,
        out_len: usize,
        want: usize,
    ) -> Result<(), InferError> {
        if n_features < self.min_features {
            return Err(InferError::Input {
                name: "X".into(),
                why: format!(
                    "{} reads feature {} but rows have {n_features} features",
                    self.op,
                    self.min_features - 1
                ),
            });
        }
        if x.len() != n_rows * n_features {
            return Err(InferError::Input {
                name: "X".into(),
                why: format!(
                    "{} values for {n_rows} rows x {n_features} features",
                    x.len()
                ),
            });
        }
        if out_len != want {
            return Err(InferError::Input {
                name: "output".into(),
                why: format!("buffer of {out_len}, need {want}"),
            });
        }
        Ok(())
    }

    /// ORT's output matrix `Z` (`n_rows x n_outputs()`, row-major) for row-major `x`
    /// (`n_rows x n_features`). Sequential; parallelise over row ranges outside.
    pub fn predict(
        &self,
        x: &[f32],
        n_features: usize,
        n_rows: usize,
        out: &mut [f32],
    ) -> Result<(), InferError> {
        self.check(x, n_features, n_rows, out.len(), n_rows * self.n_slots)?;
        self.run(x, n_features, n_rows, |r, z| {
            out[r * self.n_slots..(r + 1) * self.n_slots].copy_from_slice(z)
        });
        Ok(())
    }

    /// Column `column` of `Z` only (e.g. 1 = positive-class probability of a binary classifier).
    pub fn predict_column(
        &self,
        x: &[f32],
        n_features: usize,
        n_rows: usize,
        column: usize,
        out: &mut [f32],
    ) -> Result<(), InferError> {
        self.check(x, n_features, n_rows, out.len(), n_rows)?;
        if column >= self.n_slots {
            return Err(InferError::Input {
                name: "column".into(),
                why: format!("{column} >= {} outputs", self.n_slots),
            });
        }
        self.run(x, n_features, n_rows, |r, z| out[r] = z[column]);
        Ok(())
    }

    fn run(&self, x: &[f32], nf: usize, n_rows: usize, mut emit: impl FnMut(usize, &[f32])) {
        super::scratch::with_scratch(|s| self.run_with(s, x, nf, n_rows, &mut emit));
    }

    /// [`Self::run`] with the buffers of `scratch` (grown here as needed; whatever they hold
    /// is overwritten before it is read).
    fn run_with(
        &self,
        scratch: &mut Scratch,
        x: &[f32],
        nf: usize,
        n_rows: usize,
        emit: &mut impl FnMut(usize, &[f32]),
    ) {
        let Scratch {
            block: sbuf,
            rows: buf,
            scores,
            z,
        } = scratch;
        let max_len = BLOCK.min(n_rows);
        grow(z, self.n_slots.max(2), 0.0);
        let score_rows = if matches!(self.payload, Payload::Multi { .. }) {
            max_len
        } else {
            1
        };
        grow(scores, score_rows * self.n_slots.max(2), Score::default());
        let mut acc = [0.0f32; BLOCK];
        let mut has = [false; BLOCK];
        let mut leaves = [0u32; BLOCK];
        // Below SIMD_MIN_ROWS rows the bit-vector kernels' fixed cost per 64-row chunk (every
        // node of every tree) exceeds the scalar walk's.
        let simd = self
            .simd
            .as_ref()
            .filter(|_| self.kernel != Kernel::Scalar && n_rows >= SIMD_MIN_ROWS);
        if let Some(s) = simd {
            sbuf.fit(s);
        } else if self.modes.is_empty() {
            grow(buf, max_len * (2 * self.min_features + 1), 0.0);
        }
        let mut start = 0;
        while start < n_rows {
            let len = BLOCK.min(n_rows - start);
            let xb = &x[start * nf..(start + len) * nf];
            if let Some(s) = simd {
                s.load(self.kernel, xb, nf, len, sbuf);
            } else if self.modes.is_empty() {
                self.fill_block(xb, nf, len, buf);
            }
            let simd_b = simd.map(|s| (s, &*sbuf));
            match &self.payload {
                Payload::Single { slot } => {
                    let init = match self.aggregate {
                        Aggregate::Sum | Aggregate::Average => 0.0,
                        Aggregate::Min | Aggregate::Max => 0.0,
                    };
                    acc[..len].fill(init);
                    has[..len].fill(false);
                    let sum = matches!(self.aggregate, Aggregate::Sum | Aggregate::Average);
                    for t in 0..self.trees.len() {
                        if let (Some((s, b)), true) = (simd_b, sum) {
                            s.eval_tree(self.kernel, t, b, len, &mut Out::Sum(&mut acc));
                            continue;
                        }
                        self.leaves(simd_b, t, xb, nf, buf, len, &mut leaves);
                        match self.aggregate {
                            Aggregate::Sum | Aggregate::Average => {
                                for r in 0..len {
                                    acc[r] += self.nodes[leaves[r] as usize].value;
                                }
                            }
                            Aggregate::Min => {
                                for r in 0..len {
                                    let v = self.nodes[leaves[r] as usize].value;
                                    if !has[r] || v < acc[r] {
                                        acc[r] = v;
                                    }
                                    has[r] = true;
                                }
                            }
                            Aggregate::Max => {
                                for r in 0..len {
                                    let v = self.nodes[leaves[r] as usize].value;
                                    if !has[r] || v > acc[r] {
                                        acc[r] = v;
                                    }
                                    has[r] = true;
                                }
                            }
                        }
                    }
                    let any_tree = !self.trees.is_empty();
                    for (r, &v) in acc[..len].iter().enumerate() {
                        let s = Score { v, has: any_tree };
                        match self.head {
                            Head::Regressor { n_targets: 1 } => {
                                z[0] = self.finalize_regressor1(s);
                            }
                            _ => {
                                let row = &mut scores[..self.n_slots];
                                row.fill(Score::default());
                                row[*slot] = s;
                                self.finalize(row, z);
                            }
                        }
                        emit(start + r, &z[..self.n_slots]);
                    }
                }
                Payload::Multi { offsets, weights } => {
                    let ns = self.n_slots;
                    scores[..len * ns].fill(Score::default());
                    for t in 0..self.trees.len() {
                        self.leaves(simd_b, t, xb, nf, buf, len, &mut leaves);
                        for r in 0..len {
                            let k = self.nodes[leaves[r] as usize].value.to_bits() as usize;
                            let row = &mut scores[r * ns..(r + 1) * ns];
                            for &(slot, w) in &weights[offsets[k] as usize..offsets[k + 1] as usize]
                            {
                                let sc = &mut row[slot as usize];
                                match self.aggregate {
                                    Aggregate::Sum | Aggregate::Average => sc.v += w,
                                    Aggregate::Min => {
                                        if !sc.has || w < sc.v {
                                            sc.v = w
                                        }
                                    }
                                    Aggregate::Max => {
                                        if !sc.has || w > sc.v {
                                            sc.v = w
                                        }
                                    }
                                }
                                sc.has = true;
                            }
                        }
                    }
                    for r in 0..len {
                        let row = &mut scores[r * ns..(r + 1) * ns];
                        self.finalize(row, z);
                        emit(start + r, &z[..ns]);
                    }
                }
            }
            start += len;
        }
    }

    /// Leaf index of each of the `len` rows of the block in tree `ti` (`xb`: raw rows for the
    /// general kernel, `buf`: re-laid-out rows for the fast kernels, feature-major where
    /// `simd` is given).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn leaves(
        &self,
        simd: Option<(&SimdLayout, &BlockBuf)>,
        ti: usize,
        xb: &[f32],
        nf: usize,
        buf: &[f32],
        len: usize,
        out: &mut [u32; BLOCK],
    ) {
        if let Some((s, b)) = simd {
            s.eval_tree(self.kernel, ti, b, len, &mut Out::Leaves(out));
            return;
        }
        let t = &self.trees[ti];
        if !self.modes.is_empty() {
            for r in 0..len {
                out[r] = general_leaf(&self.nodes, &self.modes, t.root, &xb[r * nf..(r + 1) * nf]);
            }
            return;
        }
        let w = 2 * self.min_features + 1;
        let mut g = 0;
        while g + GROUP <= len {
            out[g..g + GROUP].copy_from_slice(&fast_group(&self.nodes, t, buf, w, g));
            g += GROUP;
        }
        for r in g..len {
            out[r] = fast_one(&self.nodes, t.root, &buf[r * w..(r + 1) * w]);
        }
    }

    /// Leaf node index of every (row, tree), row-major, through the same block loop and
    /// buffers as [`Self::predict`] (tests compare kernels with it).
    #[cfg(test)]
    pub(crate) fn leaf_matrix(&self, x: &[f32], nf: usize, n_rows: usize) -> Vec<u32> {
        let nt = self.trees.len();
        let simd = self.simd.as_ref().filter(|_| self.kernel != Kernel::Scalar);
        let mut sbuf = simd.map(SimdLayout::block_buf);
        let mut buf = vec![0.0f32; BLOCK * (2 * self.min_features + 1)];
        let mut leaves = [0u32; BLOCK];
        let mut out = vec![0u32; n_rows * nt];
        for start in (0..n_rows).step_by(BLOCK) {
            let len = BLOCK.min(n_rows - start);
            let xb = &x[start * nf..(start + len) * nf];
            match (simd, sbuf.as_mut()) {
                (Some(s), Some(b)) => s.load(self.kernel, xb, nf, len, b),
                _ if self.modes.is_empty() => self.fill_block(xb, nf, len, &mut buf),
                _ => {}
            }
            for t in 0..nt {
                self.leaves(simd.zip(sbuf.as_ref()), t, xb, nf, &buf, len, &mut leaves);
                for r in 0..len {
                    out[(start + r) * nt + t] = leaves[r];
                }
            }
        }
        out
    }

    /// Rows of the block re-laid out for the fast kernel: `[x_0..x_{M-1}, 0, -x_0..-x_{M-1}]`.
    fn fill_block(&self, xb: &[f32], nf: usize, len: usize, buf: &mut [f32]) {
        let m = self.min_features;
        let w = 2 * m + 1;
        for r in 0..len {
            let src = &xb[r * nf..r * nf + m];
            let dst = &mut buf[r * w..(r + 1) * w];
            dst[..m].copy_from_slice(src);
            dst[m] = 0.0;
            for (d, s) in dst[m + 1..].iter_mut().zip(src) {
                *d = -*s;
            }
        }
    }

    /// ORT `FinalizeScores1` for single-target regressors.
    fn finalize_regressor1(&self, s: Score) -> f32 {
        let origin = if self.base_values.len() == 1 {
            self.base_values[0]
        } else {
            0.0
        };
        let v = match self.aggregate {
            Aggregate::Sum => s.v + origin,
            Aggregate::Average => s.v / self.trees.len() as f32 + origin,
            Aggregate::Min | Aggregate::Max => {
                if s.has {
                    s.v + origin
                } else {
                    origin
                }
            }
        };
        if self.post == PostTransform::Probit {
            ort_probit(v)
        } else {
            v
        }
    }

    /// ORT `FinalizeScores` (N outputs) of the regressor / classifier aggregators, writing
    /// the `Z` row; entries ORT leaves unwritten are NaN.
    pub(crate) fn finalize(&self, p: &mut [Score], z: &mut [f32]) {
        let ns = self.n_slots;
        let base = &self.base_values;
        match self.head {
            Head::Regressor { n_targets: 1 } => {
                z[0] = self.finalize_regressor1(p[0]);
            }
            Head::Regressor { .. } => {
                let use_base = base.len() == ns;
                let n_trees = self.trees.len() as f32;
                for (j, s) in p.iter_mut().enumerate() {
                    match self.aggregate {
                        Aggregate::Sum => {
                            if use_base {
                                s.v += base[j]
                            }
                        }
                        Aggregate::Average => {
                            s.v = if use_base {
                                s.v / n_trees + base[j]
                            } else {
                                s.v / n_trees
                            };
                        }
                        Aggregate::Min | Aggregate::Max => {
                            let mut val = if use_base { base[j] } else { 0.0 };
                            val += if s.has { s.v } else { 0.0 };
                            s.v = val;
                        }
                    }
                }
                write_scores_n(p, self.post, z);
            }
            Head::Classifier {
                n_classes,
                binary_case,
                all_positive,
            } => {
                if n_classes > 2 {
                    for (k, b) in base.iter().enumerate() {
                        if !p[k].has {
                            p[k] = Score { v: *b, has: true };
                        } else {
                            p[k].v += b;
                        }
                    }
                    write_scores_n(p, self.post, z);
                    return;
                }
                let mut wa: i32 = -1;
                let mut size = 2;
                match base.len() {
                    2 => {
                        if p[1].has {
                            p[1].v = base[1] + p[0].v;
                            p[0].v = -p[1].v;
                            p[1].has = true;
                        } else {
                            p[1].v += base[1];
                            p[0].v += base[0];
                        }
                    }
                    1 => {
                        p[0].v += base[0];
                        if !p[1].has {
                            size = 1;
                        }
                    }
                    0 => {
                        wa = 3;
                        if !p[1].has {
                            size = 1;
                        }
                    }
                    _ => {}
                }
                if binary_case {
                    let pos = if size == 2 && p[1].has {
                        p[1].v
                    } else if p[0].has {
                        p[0].v
                    } else {
                        0.0
                    };
                    wa = if all_positive {
                        if pos > 0.5 {
                            0
                        } else {
                            1
                        }
                    } else if pos > 0.0 {
                        2
                    } else {
                        3
                    };
                }
                if size == 2 {
                    write_scores_n(&mut p[..2], self.post, z);
                    return;
                }
                // One score column (ORT 1.31 `write_scores`, binary branch, checked against
                // onnxruntime): LOGISTIC gives [logistic(-s), logistic(s)]; otherwise
                // [1 - s, s] (all weights >= 0) or [-s, s]. (PROBIT: column 1 undefined; such
                // models are refused at compile time, this only guards rows without scores.)
                let s0 = p[0].val();
                if self.post == PostTransform::Probit {
                    z[0] = ort_probit(s0);
                    z[1] = f32::NAN;
                    return;
                }
                match wa {
                    0..=3 if self.post == PostTransform::Logistic => {
                        z[0] = ort_logistic(-s0);
                        z[1] = ort_logistic(s0);
                    }
                    0 | 1 => {
                        z[0] = 1.0 - s0;
                        z[1] = s0;
                    }
                    2 | 3 => {
                        z[0] = -s0;
                        z[1] = s0;
                    }
                    _ => {
                        z[0] = s0;
                        z[1] = f32::NAN; // ORT leaves this column unwritten
                    }
                }
            }
        }
    }
}

/// ORT `write_scores` for two or more values.
fn write_scores_n(p: &mut [Score], post: PostTransform, z: &mut [f32]) {
    let n = p.len();
    for (o, s) in z[..n].iter_mut().zip(p.iter()) {
        *o = s.val();
    }
    match post {
        PostTransform::None => {}
        PostTransform::Probit => z[..n].iter_mut().for_each(|v| *v = ort_probit(*v)),
        PostTransform::Logistic => z[..n].iter_mut().for_each(|v| *v = ort_logistic(*v)),
        PostTransform::Softmax => ort_softmax(&mut z[..n]),
        PostTransform::SoftmaxZero => ort_softmax_zero(&mut z[..n]),
    }
}

/// Advance `GROUP` rows (starting at row `g` of the re-laid-out block `buf`, row width `w`)
/// through one tree in lock-step, branch-free: `idx = child + !(v <= thr)`.
#[inline(always)]
fn fast_group(
    nodes: &[Node],
    t: &super::compile::TreeInfo,
    buf: &[f32],
    w: usize,
    g: usize,
) -> [u32; GROUP] {
    let mut idx = [t.root; GROUP];
    let mut off = [0usize; GROUP];
    for (k, o) in off.iter_mut().enumerate() {
        *o = (g + k) * w;
    }
    assert!(buf.len() >= (g + GROUP) * w);
    #[inline(always)]
    // `!(v <= thr)`: NaN goes right (the compiler maps missing values to that side)
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn step(nodes: &[Node], buf: &[f32], i: u32, o: usize) -> u32 {
        // SAFETY: `compile` guarantees every child index is < nodes.len() and every `feat`
        // is < 2M+1 = w (the re-laid-out row width); the assert above guarantees the
        // group's rows lie inside `buf`, so `o + feat < buf.len()`.
        let n = unsafe { *nodes.get_unchecked(i as usize) };
        let v = unsafe { *buf.get_unchecked(o + n.feat as usize) };
        n.child + (!(v <= n.thr)) as u32
    }
    for _ in 0..t.min_depth {
        for k in 0..GROUP {
            idx[k] = step(nodes, buf, idx[k], off[k]);
        }
    }
    for _ in t.min_depth..t.max_depth {
        let mut moved = false;
        for k in 0..GROUP {
            let n = step(nodes, buf, idx[k], off[k]);
            moved |= n != idx[k];
            idx[k] = n;
        }
        if !moved {
            break;
        }
    }
    idx
}

/// One re-laid-out row through one tree with the fast layout (tail rows of a block).
#[inline]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN goes right, as in `step`
fn fast_one(nodes: &[Node], root: u32, row: &[f32]) -> u32 {
    let mut i = root;
    loop {
        let n = nodes[i as usize];
        let next = n.child + (!(row[n.feat as usize] <= n.thr)) as u32;
        if next == i {
            return i;
        }
        i = next;
    }
}

/// One row through one tree with per-node modes (ORT's mixed-mode loop).
fn general_leaf(nodes: &[Node], modes: &[u8], root: u32, row: &[f32]) -> u32 {
    let mut i = root as usize;
    loop {
        let m = modes[i];
        if m == gmode::LEAF {
            return i as u32;
        }
        let n = nodes[i];
        let v = row[n.feat as usize];
        let t = n.thr;
        let c = match m {
            gmode::LEQ => v <= t,
            gmode::LT => v < t,
            gmode::GTE => v >= t,
            gmode::GT => v > t,
            gmode::EQ => v == t,
            _ => v != t,
        };
        let go_true = c || (n.child & MISSING_BIT != 0 && v.is_nan());
        i = ((n.child & INDEX_MASK) + (!go_true) as u32) as usize;
    }
}
