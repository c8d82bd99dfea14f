//! Precomputed-table TreeSHAP (the idea of FastTreeSHAP v2, Yang 2021: move the part of the
//! path-dependent game that does not depend on the row into per-leaf tables built once per
//! model), exact in f64.
//!
//! # The identity
//!
//! Fix a tree and a leaf of value `v` whose root path splits on the `d` distinct features `F`.
//! For feature `k ∈ F`, `z_k` is the product of the path's cover fractions
//! `cover(child) / cover(node)` at its splits on `k`, and `o_k ∈ {0, 1}` says whether the row
//! takes the path's direction at all of them. The leaf's share of the path-dependent game is
//! `v(S) = v Π_{j∈S} o_j Π_{j∈F∖S} z_j`, whose Shapley value for `k` is
//!
//! `φ_k = v (o_k − z_k) Σ_{S ⊆ F∖k} w_d(|S|) Π_{j∈S} o_j Π_{j∈F∖k∖S} z_j`,
//! `w_d(s) = s! (d−1−s)! / d!`.
//!
//! With `O = {j : o_j = 1}` (the row's *pattern*) only `S ⊆ O` survive. Writing
//! `Z(O) = Π_{j∈F∖O} z_j` and, for `B ⊆ F` with `|B| < d`,
//! `V(B) = v Σ_{s=0}^{|B|} w_d(s) e_{|B|−s}(z_B)` (`e_m` = the elementary symmetric polynomial
//! of the `z` of `B`):
//!
//! - `k ∉ O`: `φ_k = −Z(O) V(O)` (the same for every such `k`);
//! - `k ∈ O`: `φ_k = (1 − z_k) Z(O) V(O ∖ k)`.
//!
//! `V` depends on the model only: it is tabulated for all `2^d` subsets of each leaf's
//! features (`O(2^d d)` once). Per row, each internal node's decision is taken once (a bit
//! set for trees of at most 64 internal nodes); per leaf, `O` is one masked test per feature
//! (or one test per path step for larger trees), then `d` table reads: `O(L D)` per tree
//! instead of Algorithm 2's `O(L D²)`. No division
//! anywhere, so covers of 0 (a reference sample that misses a node) need no special case:
//! a leaf with `Z(O) = 0` adds nothing, as in the recursion.
//!
//! # Memory bound
//!
//! The tables hold `Σ_leaves 2^{d_leaf}` f64. Trees get tables in model order while the total
//! stays within [`DEFAULT_TABLE_ENTRIES`] (2^24 entries = 128 MiB) and no leaf has more than
//! [`MAX_LEAF_FEATURES`] distinct path features; the remaining trees use the recursion
//! ([`super::tree`]), which needs no tables. Which trees get tables depends on the model and
//! the limit only, never on the rows or the thread count.

use crate::tree::compile::gmode;

use super::tree::SNode;

/// Default bound on the table entries of one explainer (f64 each: 128 MiB).
pub const DEFAULT_TABLE_ENTRIES: usize = 1 << 24;
/// Leaves with more distinct path features than this are never tabulated.
pub const MAX_LEAF_FEATURES: usize = 24;

/// One step of a leaf's root path.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Index into the tree's internal-node list (its decision for the row).
    internal: u32,
    /// The path goes to the first child here.
    first: bool,
    /// Bit of the split's feature among the leaf's distinct features.
    bit: u8,
}

#[derive(Debug, Clone)]
struct Leaf {
    /// `steps[s0..s1]`.
    s0: u32,
    s1: u32,
    /// Distinct features `feats[f0..f0 + d]`, their `z` in `zs[f0..f0 + d]`.
    f0: u32,
    d: u8,
    /// `V` of this leaf: `table[t0..t0 + 2^d]`, indexed by the subset's bit mask.
    t0: usize,
}

/// The tables of one tree.
#[derive(Debug, Clone)]
pub(crate) struct FastTree {
    /// Compiled node indices of the internal nodes.
    internal: Vec<u32>,
    leaves: Vec<Leaf>,
    steps: Vec<Step>,
    feats: Vec<u32>,
    zs: Vec<f64>,
    /// `1 - z` of each feature in `zs`.
    one_minus_z: Vec<f64>,
    /// Trees of at most 64 internal nodes: per feature in `feats`, the bit set of the path's
    /// internal nodes splitting on it, and of those the ones whose first child the path
    /// takes; the row's pattern is then one test per feature on the bit set of its decisions.
    masks: Vec<(u64, u64)>,
    table: Vec<f64>,
}

/// Table entries [`FastTree::build`] would need for the tree at `root`, or `None` when a
/// leaf has more than [`MAX_LEAF_FEATURES`] distinct path features.
pub(crate) fn table_entries(nodes: &[SNode], root: u32) -> Option<usize> {
    let mut total = 0usize;
    let mut ok = true;
    walk(nodes, root, &mut Vec::new(), &mut |path, _| {
        let mut f: Vec<u32> = path.iter().map(|&(n, _)| nodes[n as usize].read).collect();
        f.sort_unstable();
        f.dedup();
        if f.len() > MAX_LEAF_FEATURES {
            ok = false;
        } else {
            total = total.saturating_add(1 << f.len());
        }
    });
    ok.then_some(total)
}

/// A root path: (internal node, went to its first child).
type Path = Vec<(u32, bool)>;

/// Depth-first walk calling `leaf(path, leaf_node)`.
fn walk(nodes: &[SNode], i: u32, path: &mut Path, leaf: &mut dyn FnMut(&Path, u32)) {
    let n = &nodes[i as usize];
    if n.mode == gmode::LEAF {
        leaf(path, i);
        return;
    }
    path.push((i, true));
    walk(nodes, n.first, path, leaf);
    path.pop();
    path.push((i, false));
    walk(nodes, n.first + 1, path, leaf);
    path.pop();
}

impl FastTree {
    /// Tables of the tree at `root` (not a single leaf); `scale` multiplies leaf values.
    pub(crate) fn build(nodes: &[SNode], root: u32, scale: f64) -> FastTree {
        let mut ft = FastTree {
            internal: Vec::new(),
            leaves: Vec::new(),
            steps: Vec::new(),
            feats: Vec::new(),
            zs: Vec::new(),
            one_minus_z: Vec::new(),
            masks: Vec::new(),
            table: Vec::new(),
        };
        let mut local = std::collections::HashMap::new();
        let mut leaves = Vec::new();
        walk(nodes, root, &mut Vec::new(), &mut |path, l| {
            leaves.push((path.to_vec(), l))
        });
        for (path, l) in leaves {
            let s0 = ft.steps.len() as u32;
            let f0 = ft.feats.len();
            for &(n, first) in &path {
                let sn = &nodes[n as usize];
                let next = local.len() as u32;
                let internal = *local.entry(n).or_insert(next);
                if internal == next {
                    ft.internal.push(n);
                }
                let frac = if first { sn.w_first } else { 1.0 - sn.w_first };
                let bit = match ft.feats[f0..].iter().position(|&f| f == sn.read) {
                    Some(b) => {
                        ft.zs[f0 + b] *= frac;
                        b
                    }
                    None => {
                        ft.feats.push(sn.read);
                        ft.zs.push(frac);
                        ft.feats.len() - f0 - 1
                    }
                };
                ft.steps.push(Step {
                    internal,
                    first,
                    bit: bit as u8,
                });
            }
            let d = ft.feats.len() - f0;
            let t0 = ft.table.len();
            ft.table.resize(t0 + (1usize << d), 0.0);
            let v = nodes[l as usize].value * scale;
            fill_table(&ft.zs[f0..], v, &mut ft.table[t0..]);
            ft.leaves.push(Leaf {
                s0,
                s1: ft.steps.len() as u32,
                f0: f0 as u32,
                d: d as u8,
                t0,
            });
        }
        ft.one_minus_z = ft.zs.iter().map(|z| 1.0 - z).collect();
        if ft.internal.len() <= 64 {
            ft.masks = vec![(0, 0); ft.feats.len()];
            for lf in &ft.leaves {
                for st in &ft.steps[lf.s0 as usize..lf.s1 as usize] {
                    let m = &mut ft.masks[lf.f0 as usize + usize::from(st.bit)];
                    m.0 |= 1 << st.internal;
                    m.1 |= u64::from(st.first) << st.internal;
                }
            }
        }
        ft
    }

    /// Table entries of this tree.
    pub(crate) fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Internal nodes (the length of the decision buffer [`Self::row`] needs).
    pub(crate) fn n_internal(&self) -> usize {
        self.internal.len()
    }

    /// Add this tree's contributions for row `x` into `phi`; `dec` is scratch of at least
    /// [`Self::n_internal`] entries.
    #[inline]
    pub(crate) fn row(&self, nodes: &[SNode], x: &[f32], phi: &mut [f64], dec: &mut [bool]) {
        if !self.masks.is_empty() {
            let mut bits = 0u64;
            for (i, &n) in self.internal.iter().enumerate() {
                bits |= u64::from(nodes[n as usize].goes_first(x)) << i;
            }
            for lf in &self.leaves {
                let d = lf.d as usize;
                let f0 = lf.f0 as usize;
                // the row's pattern O and Z(O), branch-free
                let mut o = 0u32;
                let mut zo = 1.0;
                for (k, (&(m, w), &z)) in self.masks[f0..f0 + d]
                    .iter()
                    .zip(&self.zs[f0..f0 + d])
                    .enumerate()
                {
                    let ok = (bits ^ w) & m == 0;
                    o |= u32::from(ok) << k;
                    zo *= if ok { 1.0 } else { z };
                }
                self.leaf(lf, o, zo, phi);
            }
            return;
        }
        for (d, &n) in dec.iter_mut().zip(&self.internal) {
            *d = nodes[n as usize].goes_first(x);
        }
        for lf in &self.leaves {
            let d = lf.d as usize;
            // the row's pattern O, branch-free (the decisions are data, not predictable)
            let mut o: u32 = (1u32 << d) - 1;
            for s in &self.steps[lf.s0 as usize..lf.s1 as usize] {
                o &= !(u32::from(dec[s.internal as usize] != s.first) << s.bit);
            }
            let f0 = lf.f0 as usize;
            let mut zo = 1.0;
            for (k, &z) in self.zs[f0..f0 + d].iter().enumerate() {
                zo *= if o >> k & 1 != 0 { 1.0 } else { z };
            }
            self.leaf(lf, o, zo, phi);
        }
    }

    /// One leaf's contributions given the row's pattern `o` and `zo` = Z(O).
    #[inline(always)]
    fn leaf(&self, lf: &Leaf, o: u32, zo: f64, phi: &mut [f64]) {
        if zo == 0.0 {
            return;
        }
        let d = lf.d as usize;
        let f0 = lf.f0 as usize;
        let om = &self.one_minus_z[f0..f0 + d];
        let feats = &self.feats[f0..f0 + d];
        let t = &self.table[lf.t0..lf.t0 + (1usize << d)];
        let off = -(zo * t[o as usize]); // unused when O is full: then every k is in O
        for k in 0..d {
            let bit = 1u32 << k;
            let inc = om[k] * zo * t[(o ^ bit) as usize];
            phi[feats[k] as usize] += if o & bit != 0 { inc } else { off };
        }
    }
}

/// `table[B] = v Σ_{s=0}^{|B|} w_d(s) e_{|B|−s}(z_B)` for every `B ⊊ F` (`table[F]` = 0).
fn fill_table(z: &[f64], v: f64, table: &mut [f64]) {
    let d = z.len();
    // w_d(s) = s! (d-1-s)! / d! = 1 / (d * C(d-1, s))
    let mut w = vec![0.0; d];
    let mut c = 1.0f64; // C(d-1, s)
    for (s, ws) in w.iter_mut().enumerate() {
        *ws = 1.0 / (d as f64 * c);
        c = c * (d - 1 - s) as f64 / (s + 1) as f64;
    }
    // depth-first over include/exclude of each feature; e[level] = e(z of the chosen set)
    let mut e: Vec<Vec<f64>> = (0..=d).map(|_| vec![0.0; d + 1]).collect();
    e[0][0] = 1.0;
    #[allow(clippy::too_many_arguments)]
    fn rec(
        i: usize,
        mask: usize,
        m: usize,
        z: &[f64],
        w: &[f64],
        v: f64,
        e: &mut [Vec<f64>],
        table: &mut [f64],
    ) {
        let d = z.len();
        if i == d {
            if m < d {
                let ec = &e[i];
                let mut s = 0.0;
                for (k, &wk) in w.iter().enumerate().take(m + 1) {
                    s += wk * ec[m - k];
                }
                table[mask] = v * s;
            }
            return;
        }
        // exclude feature i: e unchanged
        let (lo, hi) = e.split_at_mut(i + 1);
        hi[0][..=m].copy_from_slice(&lo[i][..=m]);
        rec(i + 1, mask, m, z, w, v, e, table);
        // include feature i: e * (1 + z_i t)
        let (lo, hi) = e.split_at_mut(i + 1);
        let (src, dst) = (&lo[i], &mut hi[0]);
        dst[0] = src[0];
        for k in 1..=m {
            dst[k] = src[k] + z[i] * src[k - 1];
        }
        dst[m + 1] = z[i] * src[m];
        rec(i + 1, mask | (1 << i), m + 1, z, w, v, e, table);
    }
    rec(0, 0, 0, z, &w, v, &mut e, table);
}
