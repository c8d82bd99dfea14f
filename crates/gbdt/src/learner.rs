//! Leaf-wise (best-first) tree growth on gradient histograms.
//!
//! The learner sees only per-row `(gradient, hessian)` pairs, the binned features and the
//! in-bag row set; it knows nothing about labels or the loss.
//!
//! Loop: the root histogram is built and its best split found; then, until `num_leaves` is
//! reached or no leaf has a positive-gain split, the leaf with the largest gain is split:
//! its rows are stably partitioned, the histogram of the *smaller* child is built from its
//! rows and the larger child's is obtained by subtraction from the parent's (LightGBM), and
//! the best splits of both children are searched. Ties between leaves go to the lowest leaf
//! index. Children that cannot be split (too few rows/hessian, depth limit, or the leaf
//! budget is exhausted) get no histogram.

use std::time::Instant;

use crate::binning::BinnedData;
use crate::histogram::{subtract, HistBin, HistBuilder, Rows};
use crate::par::chunked_sum2;
use crate::partition::partition;
use crate::split::{
    bounded_output, find_best_split, Bounds, FeatureSlot, SplitInfo, SplitParams, Stats,
};
use crate::tree::Tree;

/// Tree-shape parameters.
#[derive(Clone, Debug)]
pub(crate) struct LearnerConfig {
    pub max_leaves: usize,
    /// `None` = unlimited.
    pub max_depth: Option<usize>,
    pub split: SplitParams,
    /// Monotone direction per feature (−1, 0, +1); empty = unconstrained.
    pub monotone: Vec<i8>,
}

/// Seconds spent per phase, accumulated over trees.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LearnerTimes {
    pub histogram: f64,
    pub split: f64,
    pub partition: f64,
}

struct Leaf {
    begin: usize,
    count: usize,
    stats: Stats,
    depth: usize,
    hist: Option<usize>,
    best: Option<SplitInfo>,
    /// Output range allowed by monotone constraints above this leaf.
    bounds: Bounds,
    /// Internal node whose child this leaf is (-1 for the root) and on which side.
    parent: i32,
    is_left: bool,
}

/// A grown tree (leaf values *not* yet shrunk) plus what the booster needs to update scores.
pub(crate) struct Grown {
    pub tree: Tree,
    /// Threshold bin of each internal node (left = bins `<= bin`, missing per default_left).
    pub threshold_bin: Vec<u8>,
    /// `(begin, count)` of each leaf's rows in [`TreeLearner::indices`].
    pub leaf_ranges: Vec<(usize, usize)>,
}

/// Reusable state of the tree learner (histogram pool, partition buffers).
pub(crate) struct TreeLearner {
    cfg: LearnerConfig,
    pool: Vec<Vec<HistBin>>,
    free: Vec<usize>,
    builder: HistBuilder,
    indices: Vec<u32>,
    tmp: Vec<u32>,
    slots: Vec<FeatureSlot>,
    pub times: LearnerTimes,
}

impl TreeLearner {
    pub fn new(cfg: LearnerConfig, data: &BinnedData) -> Self {
        let slots = data
            .mappers
            .iter()
            .zip(&data.offsets)
            .map(|(m, &o)| FeatureSlot {
                offset: o as usize,
                n_bins: m.n_bins(),
            })
            .collect();
        TreeLearner {
            cfg,
            pool: Vec::new(),
            free: Vec::new(),
            builder: HistBuilder::default(),
            indices: vec![0; data.n_rows],
            tmp: vec![0; data.n_rows],
            slots,
            times: LearnerTimes::default(),
        }
    }

    /// Row indices, grouped by leaf after [`TreeLearner::grow`] (see [`Grown::leaf_ranges`]).
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    fn alloc(&mut self, total_bins: usize) -> usize {
        match self.free.pop() {
            Some(s) => s,
            None => {
                self.pool.push(vec![[0.0; 2]; total_bins]);
                self.pool.len() - 1
            }
        }
    }

    fn splittable(&self, leaf: &Leaf) -> bool {
        let p = &self.cfg.split;
        leaf.count >= 2 * p.min_data_in_leaf
            && leaf.stats.h >= 2.0 * p.min_sum_hessian
            && self.cfg.max_depth.is_none_or(|d| leaf.depth < d)
    }

    /// Grow one tree. `bag`: sorted in-bag rows (`None` = all rows); `allowed`: features this
    /// tree may split on.
    pub fn grow(
        &mut self,
        data: &BinnedData,
        gh: &[[f32; 2]],
        bag: Option<&[u32]>,
        allowed: &[bool],
    ) -> Grown {
        let tb = data.total_bins;
        let n_in = bag.map_or(data.n_rows, |b| b.len());
        match bag {
            Some(b) => self.indices[..n_in].copy_from_slice(b),
            None => {
                for (i, v) in self.indices.iter_mut().enumerate() {
                    *v = i as u32;
                }
            }
        }
        let idx = &self.indices[..n_in];
        let (g, h) = chunked_sum2(n_in, |i| {
            let r = idx[i] as usize;
            (gh[r][0] as f64, gh[r][1] as f64)
        });
        let mut leaves = vec![Leaf {
            begin: 0,
            count: n_in,
            stats: Stats { g, h, n: n_in },
            depth: 0,
            hist: None,
            best: None,
            bounds: Bounds::NONE,
            parent: -1,
            is_left: false,
        }];
        let mut tree = Tree::default();
        let mut threshold_bin = Vec::new();
        let p = self.cfg.split;

        if self.splittable(&leaves[0]) && self.cfg.max_leaves > 1 {
            let slot = self.alloc(tb);
            let t0 = Instant::now();
            let rows = if bag.is_none() {
                Rows::All(n_in)
            } else {
                Rows::Idx(&self.indices[..n_in])
            };
            self.builder.build(data, rows, gh, &mut self.pool[slot]);
            let t1 = Instant::now();
            leaves[0].best = find_best_split(
                &self.pool[slot],
                &self.slots,
                allowed,
                leaves[0].stats,
                &p,
                &self.cfg.monotone,
                Bounds::NONE,
            );
            self.times.histogram += (t1 - t0).as_secs_f64();
            self.times.split += t1.elapsed().as_secs_f64();
            leaves[0].hist = Some(slot);
        }

        while leaves.len() < self.cfg.max_leaves {
            // best leaf: largest gain, lowest index on ties
            let mut pick: Option<(usize, f64)> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(b) = &l.best {
                    if pick.is_none_or(|(_, g)| b.gain > g) {
                        pick = Some((i, b.gain));
                    }
                }
            }
            let Some((li, _)) = pick else { break };
            let Some(s) = leaves[li].best.take() else {
                break;
            };
            let (begin, count, depth) = (leaves[li].begin, leaves[li].count, leaves[li].depth);

            // partition rows
            let t0 = Instant::now();
            let nb = data.mappers[s.feature].n_bins();
            let mut lut = [false; 256];
            for (b, v) in lut.iter_mut().enumerate() {
                *v = if b == nb {
                    s.default_left
                } else {
                    b <= s.bin as usize
                };
            }
            let nl = partition(
                &mut self.indices[begin..begin + count],
                &mut self.tmp,
                data.column(s.feature),
                &lut,
            );
            self.times.partition += t0.elapsed().as_secs_f64();

            // record the internal node
            let node = tree.split_feature.len() as i32;
            let new_leaf = leaves.len();
            let parent_stats = leaves[li].stats;
            let parent_bounds = leaves[li].bounds;
            let mono = self.cfg.monotone.get(s.feature).copied().unwrap_or(0);
            let (left_bounds, right_bounds) = parent_bounds.split(
                mono,
                bounded_output(s.left, parent_bounds, &p),
                bounded_output(s.right, parent_bounds, &p),
            );
            tree.split_feature.push(s.feature as u32);
            tree.threshold
                .push(data.mappers[s.feature].upper[s.bin as usize]);
            tree.default_left.push(s.default_left);
            tree.left_child.push(!(li as i32));
            tree.right_child.push(!(new_leaf as i32));
            tree.split_gain.push(s.gain);
            tree.internal_value
                .push(bounded_output(parent_stats, parent_bounds, &p));
            tree.internal_count.push(count as u32);
            tree.internal_hessian.push(parent_stats.h);
            threshold_bin.push(s.bin);
            let (pn, pl) = (leaves[li].parent, leaves[li].is_left);
            if pn >= 0 {
                if pl {
                    tree.left_child[pn as usize] = node;
                } else {
                    tree.right_child[pn as usize] = node;
                }
            }

            let parent_hist = leaves[li].hist.take();
            let left = Leaf {
                begin,
                count: nl,
                stats: Stats {
                    g: s.left.g,
                    h: s.left.h,
                    n: nl,
                },
                depth: depth + 1,
                hist: None,
                best: None,
                bounds: left_bounds,
                parent: node,
                is_left: true,
            };
            let right = Leaf {
                begin: begin + nl,
                count: count - nl,
                stats: Stats {
                    g: s.right.g,
                    h: s.right.h,
                    n: count - nl,
                },
                depth: depth + 1,
                hist: None,
                best: None,
                bounds: right_bounds,
                parent: node,
                is_left: false,
            };
            let more = leaves.len() + 1 < self.cfg.max_leaves;
            let can_l = more && self.splittable(&left);
            let can_r = more && self.splittable(&right);
            leaves[li] = left;
            leaves.push(right);

            match parent_hist {
                Some(ps) if can_l || can_r => {
                    let (small, large) = if nl <= count - nl {
                        (li, new_leaf)
                    } else {
                        (new_leaf, li)
                    };
                    let ss = self.alloc(tb);
                    let t0 = Instant::now();
                    let (sb, sc) = (leaves[small].begin, leaves[small].count);
                    let mut small_hist = std::mem::take(&mut self.pool[ss]);
                    self.builder.build(
                        data,
                        Rows::Idx(&self.indices[sb..sb + sc]),
                        gh,
                        &mut small_hist,
                    );
                    subtract(&mut self.pool[ps], &small_hist);
                    self.pool[ss] = small_hist;
                    leaves[small].hist = Some(ss);
                    leaves[large].hist = Some(ps);
                    let t1 = Instant::now();
                    self.times.histogram += (t1 - t0).as_secs_f64();
                    for (ci, can) in [(li, can_l), (new_leaf, can_r)] {
                        if can {
                            if let Some(slot) = leaves[ci].hist {
                                leaves[ci].best = find_best_split(
                                    &self.pool[slot],
                                    &self.slots,
                                    allowed,
                                    leaves[ci].stats,
                                    &p,
                                    &self.cfg.monotone,
                                    leaves[ci].bounds,
                                );
                            }
                        }
                        if leaves[ci].best.is_none() {
                            if let Some(slot) = leaves[ci].hist.take() {
                                self.free.push(slot);
                            }
                        }
                    }
                    self.times.split += t1.elapsed().as_secs_f64();
                }
                Some(ps) => self.free.push(ps),
                None => {}
            }
        }
        // release remaining histograms
        for l in leaves.iter_mut() {
            if let Some(s) = l.hist.take() {
                self.free.push(s);
            }
        }
        for l in &leaves {
            tree.leaf_value.push(bounded_output(l.stats, l.bounds, &p));
            tree.leaf_count.push(l.count as u32);
            tree.leaf_hessian.push(l.stats.h);
        }
        let leaf_ranges = leaves.iter().map(|l| (l.begin, l.count)).collect();
        Grown {
            tree,
            threshold_bin,
            leaf_ranges,
        }
    }
}
