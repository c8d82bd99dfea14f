//! Writable row slots of a [`Batch`]: validation writes each accepted row in place, so a
//! recycled batch's `String`s are reused (no allocation per cell once warm), and disjoint
//! regions can be filled by different threads.
//!
//! Invariant: a slot of a row that turns out to be rejected holds leftovers; the reader
//! compacts the batch ([`Batch::compact`]) before handing it out.

use crate::batch::Batch;
use crate::schema::Selection;

/// Mutable views of rows `[start, start + len)` of every column of a batch.
pub(crate) struct Slots<'a> {
    pub lines: &'a mut [u64],
    pub ids: &'a mut [String],
    pub dates: &'a mut [i32],
    pub hs: &'a mut [u64],
    pub categorical: Vec<&'a mut [String]>,
    pub numeric: Vec<&'a mut [f32]>,
    pub label: &'a mut [Option<bool>],
    pub revenue: &'a mut [Option<f32>],
    pub inspected: &'a mut [bool],
    pub selection: &'a mut [Option<Selection>],
    pub propensity: &'a mut [Option<f64>],
}

/// Cut `v` into consecutive pieces of the given sizes (their sum must not exceed `v.len()`).
fn cut<'a, T>(mut v: &'a mut [T], sizes: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let at = n.min(v.len());
        let (head, tail) = std::mem::take(&mut v).split_at_mut(at);
        out.push(head);
        v = tail;
    }
    out
}

impl Batch {
    /// Make every per-row vector exactly `n` rows long (new rows hold defaults; existing
    /// `String`s keep their capacity for reuse).
    pub(crate) fn resize_rows(&mut self, n: usize) {
        self.lines.resize(n, 0);
        self.ids.resize_with(n, String::new);
        self.dates.resize(n, 0);
        self.hs.resize(n, 0);
        for c in &mut self.categorical {
            c.resize_with(n, String::new);
        }
        for c in &mut self.numeric {
            c.resize(n, 0.0);
        }
        self.label.resize(n, None);
        self.revenue.resize(n, None);
        self.inspected.resize(n, false);
        self.selection.resize(n, None);
        self.propensity.resize(n, None);
    }

    /// Consecutive slot regions of the given sizes, from row 0 (after [`Batch::resize_rows`]).
    pub(crate) fn slot_regions(&mut self, sizes: &[usize]) -> Vec<Slots<'_>> {
        let mut lines = cut(&mut self.lines, sizes).into_iter();
        let mut ids = cut(&mut self.ids, sizes).into_iter();
        let mut dates = cut(&mut self.dates, sizes).into_iter();
        let mut hs = cut(&mut self.hs, sizes).into_iter();
        let mut cats: Vec<_> = self
            .categorical
            .iter_mut()
            .map(|c| cut(c, sizes).into_iter())
            .collect();
        let mut nums: Vec<_> = self
            .numeric
            .iter_mut()
            .map(|c| cut(c, sizes).into_iter())
            .collect();
        let mut label = cut(&mut self.label, sizes).into_iter();
        let mut revenue = cut(&mut self.revenue, sizes).into_iter();
        let mut inspected = cut(&mut self.inspected, sizes).into_iter();
        let mut selection = cut(&mut self.selection, sizes).into_iter();
        let mut propensity = cut(&mut self.propensity, sizes).into_iter();
        let mut out = Vec::with_capacity(sizes.len());
        // Every `cut` yields exactly `sizes.len()` pieces, so the zips below never run short.
        for _ in sizes {
            let (
                Some(l),
                Some(i),
                Some(d),
                Some(h),
                Some(la),
                Some(r),
                Some(ins),
                Some(s),
                Some(p),
            ) = (
                lines.next(),
                ids.next(),
                dates.next(),
                hs.next(),
                label.next(),
                revenue.next(),
                inspected.next(),
                selection.next(),
                propensity.next(),
            )
            else {
                break;
            };
            out.push(Slots {
                lines: l,
                ids: i,
                dates: d,
                hs: h,
                categorical: cats.iter_mut().filter_map(Iterator::next).collect(),
                numeric: nums.iter_mut().filter_map(Iterator::next).collect(),
                label: la,
                revenue: r,
                inspected: ins,
                selection: s,
                propensity: p,
            });
        }
        out
    }

    /// Keep the rows listed in `keep` (ascending, distinct), in that order, and drop the rest.
    /// Rows move down by swapping, so the `String`s of dropped rows survive (at the end) only
    /// until the final truncation.
    pub(crate) fn compact(&mut self, keep: &[usize]) {
        let n = keep.len();
        let moves: Vec<(usize, usize)> = keep
            .iter()
            .enumerate()
            .filter(|(to, from)| *to != **from)
            .map(|(to, &from)| (from, to))
            .collect();
        if !moves.is_empty() {
            fn apply<T>(v: &mut [T], moves: &[(usize, usize)]) {
                for &(from, to) in moves {
                    v.swap(from, to);
                }
            }
            apply(&mut self.lines, &moves);
            apply(&mut self.ids, &moves);
            apply(&mut self.dates, &moves);
            apply(&mut self.hs, &moves);
            for c in &mut self.categorical {
                apply(c, &moves);
            }
            for c in &mut self.numeric {
                apply(c, &moves);
            }
            apply(&mut self.label, &moves);
            apply(&mut self.revenue, &moves);
            apply(&mut self.inspected, &moves);
            apply(&mut self.selection, &moves);
            apply(&mut self.propensity, &moves);
        }
        self.truncate_rows(n);
    }

    /// Drop every row from `n` on.
    pub(crate) fn truncate_rows(&mut self, n: usize) {
        self.lines.truncate(n);
        self.ids.truncate(n);
        self.dates.truncate(n);
        self.hs.truncate(n);
        for c in &mut self.categorical {
            c.truncate(n);
        }
        for c in &mut self.numeric {
            c.truncate(n);
        }
        self.label.truncate(n);
        self.revenue.truncate(n);
        self.inspected.truncate(n);
        self.selection.truncate(n);
        self.propensity.truncate(n);
    }

    /// Empty the batch for reuse: vectors keep their length and `String`s their capacity
    /// (the rows are overwritten before they are read again).
    pub(crate) fn reshape(&mut self, n_categorical: usize, n_numeric: usize, source: &str) {
        self.categorical.resize_with(n_categorical, Vec::new);
        self.numeric.resize_with(n_numeric, Vec::new);
        if self.source != source {
            self.source = source.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    #[test]
    fn regions_and_compaction() {
        let s = Schema::from_toml("name='t'\nid={column='i'}\ndate={column='d'}\nhs_code={column='h', width=6}\ncategorical=[{column='c'}]\n").unwrap();
        let mut b = Batch::empty(&s, "x");
        b.resize_rows(7);
        {
            let mut regions = b.slot_regions(&[3, 4]);
            assert_eq!(regions.len(), 2);
            for (k, r) in regions.iter_mut().enumerate() {
                for i in 0..r.ids.len() {
                    r.ids[i] = format!("{k}-{i}");
                    r.categorical[0][i] = format!("c{k}{i}");
                    r.lines[i] = (10 * k + i) as u64;
                }
            }
        }
        b.compact(&[0, 2, 3, 6]);
        assert_eq!(b.ids, vec!["0-0", "0-2", "1-0", "1-3"]);
        assert_eq!(b.categorical[0], vec!["c00", "c02", "c10", "c13"]);
        assert_eq!(b.lines, vec![0, 2, 10, 13]);
        b.check_lengths().unwrap();
    }
}
