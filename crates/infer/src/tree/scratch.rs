//! Per-thread scratch of [`super::CompiledEnsemble`]'s scoring loop, kept between calls.
//!
//! A call needs a block of re-laid-out rows, for the bit-vector kernels one 64-byte test
//! mask per (distinct test, 64 rows) — about 1 MB for 100 trees of 63 leaves — and a few
//! small vectors. Allocating and zeroing that on every call dominated small calls (one
//! declaration per HTTP request, 512-row blocks), so each thread keeps one [`Scratch`],
//! grown to the largest need seen and never cleared: the kernels write every entry they read
//! for the rows of the call before reading it (see `SimdLayout::load`, `fill_block`), and
//! entries past the call's rows only reach results that are discarded. A scratch larger
//! than [`KEEP_BYTES`] is dropped after the call, so a thread holds at most that much.
//!
//! Safe under rayon: the scratch is thread-local (never shared), and a nested call on the
//! same thread (the scratch already borrowed) or a call during thread teardown gets a
//! fresh one instead of panicking.

use std::cell::RefCell;

use super::eval::Score;
use super::simd::BlockBuf;

/// Most bytes of scratch a thread keeps between calls.
pub(crate) const KEEP_BYTES: usize = 4 << 20;

/// Buffers of one scoring call (contents are stale between calls: callers fill what they
/// read).
#[derive(Default)]
pub(crate) struct Scratch {
    /// Feature-major block and test masks of the bit-vector kernels.
    pub block: BlockBuf,
    /// Row-major re-laid-out block of the lock-step scalar kernel.
    pub rows: Vec<f32>,
    /// Per-row score slots.
    pub scores: Vec<Score>,
    /// One output row.
    pub z: Vec<f32>,
}

impl Scratch {
    fn bytes(&self) -> usize {
        self.block.bytes()
            + self.rows.capacity() * size_of::<f32>()
            + self.scores.capacity() * size_of::<Score>()
            + self.z.capacity() * size_of::<f32>()
    }
}

/// Grow `v` to at least `n` entries (new entries `fill`); never shrinks.
pub(crate) fn grow<T: Clone>(v: &mut Vec<T>, n: usize, fill: T) {
    if v.len() < n {
        v.resize(n, fill);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Run `f` with this thread's scratch, or with a fresh one where it is already in use
/// (re-entrant call) or gone (thread teardown). `f` is called exactly once.
pub(crate) fn with_scratch<R>(mut f: impl FnMut(&mut Scratch) -> R) -> R {
    let kept = SCRATCH.try_with(|cell| {
        let mut s = cell.try_borrow_mut().ok()?;
        let r = f(&mut s);
        if s.bytes() > KEEP_BYTES {
            *s = Scratch::default();
        }
        Some(r)
    });
    match kept {
        Ok(Some(r)) => r,
        _ => f(&mut Scratch::default()),
    }
}

/// Bytes this thread's scratch holds now (tests).
#[cfg(test)]
pub(crate) fn held_bytes() -> usize {
    SCRATCH
        .try_with(|c| c.try_borrow().map(|s| s.bytes()).unwrap_or(0))
        .unwrap_or(0)
}
