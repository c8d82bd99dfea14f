//! Where scored rows go: the output table directly, or with a budget an id spool beside it
//! and the scores in memory (4 bytes a row), the table being written at the end with the
//! selection. Shared by our models and foreign ones.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use cr_data::{ColType, ColumnRef, TableWriter};

use cr_model::Reference;

use super::{percentile, BulkError};

/// Where scored rows go: the output table directly, or (with a budget) an id file beside it,
/// since selection needs every score first. Only the scores stay in memory (4 bytes a row).
pub(crate) enum Sink {
    Table(TableWriter),
    Budget {
        ids: IdSpool,
        scores: Scores,
        rate: f64,
        column: &'static str,
    },
}

/// Scores in blocks of 2^20 (no reallocation peak while the vector grows).
#[derive(Default)]
pub(crate) struct Scores {
    blocks: Vec<Vec<f32>>,
    len: usize,
}

const SCORE_BLOCK: usize = 1 << 20;

impl Scores {
    fn extend(&mut self, mut s: &[f32]) {
        while !s.is_empty() {
            if self.blocks.last().is_none_or(|b| b.len() == SCORE_BLOCK) {
                self.blocks.push(Vec::with_capacity(SCORE_BLOCK));
            }
            let Some(b) = self.blocks.last_mut() else {
                return;
            };
            let take = (SCORE_BLOCK - b.len()).min(s.len());
            b.extend_from_slice(&s[..take]);
            s = &s[take..];
            self.len += take;
        }
    }
    fn len(&self) -> usize {
        self.len
    }
    fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        self.blocks.iter().flatten().copied()
    }
}

/// Ids of the scored rows in a binary temporary file (u32 length + bytes each), read back
/// once for the budgeted output.
pub(crate) struct IdSpool {
    path: PathBuf,
    w: BufWriter<std::fs::File>,
}

impl IdSpool {
    fn create(path: PathBuf) -> Result<IdSpool, BulkError> {
        let f = std::fs::File::create(&path)
            .map_err(|e| BulkError::other(format!("creating {}", path.display()), e))?;
        Ok(IdSpool {
            path,
            w: BufWriter::with_capacity(1 << 18, f),
        })
    }

    fn push(&mut self, id: &str) -> Result<(), BulkError> {
        let len =
            u32::try_from(id.len()).map_err(|e| BulkError::other("an id longer than 4 GB", e))?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(id.as_bytes())?;
        Ok(())
    }

    /// Close for writing; returns a reader of the ids in order.
    fn into_reader(self) -> Result<(PathBuf, BufReader<std::fs::File>), BulkError> {
        let f = self.w.into_inner().map_err(|e| e.into_error())?;
        drop(f);
        let f = std::fs::File::open(&self.path)
            .map_err(|e| BulkError::other(format!("reading {}", self.path.display()), e))?;
        Ok((self.path, BufReader::with_capacity(1 << 18, f)))
    }
}

fn next_id(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<String, BulkError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .map_err(|e| BulkError::other("temporary id file is short", e))?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf)
        .map_err(|e| BulkError::other("temporary id file is short", e))?;
    String::from_utf8(std::mem::take(buf))
        .map_err(|e| BulkError::other("temporary id file is corrupt", e))
}

/// The output columns: `id`, the score under `score` (the prediction's column name,
/// [`cr_model::meta::Prediction::column`]), `percentile`, and with a budget `selected`.
fn out_cols(score: &'static str, budget: bool) -> Vec<(&'static str, ColType)> {
    let mut c = vec![
        ("id", ColType::Str),
        (score, ColType::F64),
        ("percentile", ColType::F64),
    ];
    if budget {
        c.push(("selected", ColType::Bool));
    }
    c
}

/// `base` with `ext` appended to its file name (`out.csv` -> `out.csv.ids.tmp`).
pub(crate) fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

impl Sink {
    /// `column`: the name of the score column (`score`, or `expected_revenue` for a revenue
    /// model: [`cr_model::meta::Prediction::column`]).
    pub(crate) fn create(
        out: &Path,
        budget: Option<f64>,
        column: &'static str,
    ) -> Result<Sink, BulkError> {
        Ok(match budget {
            Some(rate) => Sink::Budget {
                ids: IdSpool::create(with_ext(out, ".ids.tmp"))?,
                scores: Scores::default(),
                rate,
                column,
            },
            None => Sink::Table(TableWriter::create(out, &out_cols(column, false))?),
        })
    }

    /// Write scored rows (`reference` `None`: percentiles are NaN).
    pub(crate) fn push(
        &mut self,
        ids: &[String],
        scores: &[f32],
        reference: Option<&Reference>,
    ) -> Result<(), BulkError> {
        match self {
            Sink::Table(w) => {
                let (sc, pct) = score_columns(scores, reference);
                w.write_columns(&[
                    ColumnRef::Str(ids),
                    ColumnRef::F64(&sc),
                    ColumnRef::F64(&pct),
                ])?;
            }
            Sink::Budget {
                ids: spool,
                scores: kept,
                ..
            } => {
                for id in ids {
                    spool.push(id)?;
                }
                kept.extend(scores);
            }
        }
        Ok(())
    }

    /// After an error: remove what this sink wrote (the output table or the temporary ids).
    pub(crate) fn discard(self, out: &Path) {
        let _ = std::fs::remove_file(match &self {
            Sink::Table(_) => out,
            Sink::Budget { ids, .. } => &ids.path,
        });
    }

    /// Close the output: the table, less the rows at accepted-row ordinals `dups` (ascending;
    /// late duplicate ids), or with a budget the whole output written from the spooled ids
    /// with the selection. The temporary id file is removed either way. Returns the number
    /// of rows selected (with a budget).
    pub(crate) fn finish(
        self,
        out: &Path,
        pool: &rayon::ThreadPool,
        reference: Option<&Reference>,
        dups: &[u64],
    ) -> Result<Option<u64>, BulkError> {
        match self {
            Sink::Table(w) => {
                w.finish()?;
                if !dups.is_empty() {
                    cr_data::remove_table_rows(out, dups).map_err(|e| {
                        BulkError::other(
                            format!("removing duplicate ids from {}", out.display()),
                            e,
                        )
                    })?;
                }
                Ok(None)
            }
            Sink::Budget {
                ids,
                scores,
                rate,
                column,
            } => {
                let (tmp, ids) = ids.into_reader()?;
                let written = pool.install(|| {
                    write_with_selection(ids, out, &scores, reference, rate, dups, column)
                });
                let _ = std::fs::remove_file(&tmp);
                written.map(|k| Some(k as u64))
            }
        }
    }
}

/// Scores as f64 and their percentiles (NaN without a reference).
fn score_columns(scores: &[f32], reference: Option<&Reference>) -> (Vec<f64>, Vec<f64>) {
    let sc = scores.iter().map(|&s| f64::from(s)).collect();
    let pct = scores.iter().map(|&s| percentile(reference, s)).collect();
    (sc, pct)
}

/// Order-preserving key of an f32 under `total_cmp`.
fn order_key(s: f32) -> u32 {
    let b = s.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The rows not in `skip` (ascending ordinals): (ordinal, score).
fn live<'a>(scores: &'a Scores, skip: &'a [u64]) -> impl Iterator<Item = (usize, f32)> + 'a {
    let mut s = skip.iter().peekable();
    scores.iter().enumerate().filter(move |(i, _)| {
        while s.peek().is_some_and(|&&d| d < *i as u64) {
            s.next();
        }
        s.peek() != Some(&&(*i as u64))
    })
}

/// The selection rule of a budget: the top `k` scores, ties by file order. Returns the
/// order key of the k-th highest score and how many rows at exactly that key are selected
/// (the first ones in file order). Two histogram passes over 16-bit halves of the keys; no
/// copy of the scores.
fn threshold(scores: &Scores, skip: &[u64], k: usize) -> Option<(u32, usize)> {
    if k == 0 {
        return None;
    }
    let mut hist = vec![0usize; 1 << 16];
    for (_, s) in live(scores, skip) {
        hist[(order_key(s) >> 16) as usize] += 1;
    }
    // from the top: the bucket holding the k-th highest key
    let (mut above, mut hi) = (0usize, None);
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= k {
            hi = Some(b as u32);
            break;
        }
        above += hist[b];
    }
    let hi = hi?; // fewer than k rows: every row is selected (see below)
    hist.iter_mut().for_each(|h| *h = 0);
    for (_, s) in live(scores, skip) {
        let key = order_key(s);
        if key >> 16 == hi {
            hist[(key & 0xFFFF) as usize] += 1;
        }
    }
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= k {
            return Some(((hi << 16) | b as u32, k - above));
        }
        above += hist[b];
    }
    None
}

/// Second pass of a budgeted run: rows in file order (ids from `ids`, scores in memory,
/// duplicates in `skip` left out), with `selected` true for the top k scores (ties by file
/// order). Returns the number selected.
fn write_with_selection(
    mut ids: impl Read,
    out: &Path,
    scores: &Scores,
    reference: Option<&Reference>,
    rate: f64,
    skip: &[u64],
    column: &'static str,
) -> Result<usize, BulkError> {
    let n = scores.len() - skip.len();
    let k = cr_model::Budget::Rate(rate).k(n);
    let cut = if k >= n {
        None
    } else {
        threshold(scores, skip, k)
    };
    let mut ties_left = cut.map_or(0, |(_, t)| t);
    let mut w = TableWriter::create(out, &out_cols(column, true))?;
    let (mut id_block, mut sc_block, mut sel) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut s = skip.iter().peekable();
    for (i, score) in scores.iter().enumerate() {
        let id = next_id(&mut ids, &mut buf)?;
        if s.peek() == Some(&&(i as u64)) {
            s.next();
            continue;
        }
        let selected = match cut {
            None => k >= n,
            Some((t, _)) => {
                let key = order_key(score);
                key > t
                    || (key == t && ties_left > 0 && {
                        ties_left -= 1;
                        true
                    })
            }
        };
        id_block.push(id);
        sc_block.push(score);
        sel.push(selected);
        if id_block.len() == 65_536 {
            let (sc, pct) = score_columns(&sc_block, reference);
            w.write_columns(&[
                ColumnRef::Str(&id_block),
                ColumnRef::F64(&sc),
                ColumnRef::F64(&pct),
                ColumnRef::Bool(&sel),
            ])?;
            id_block.clear();
            sc_block.clear();
            sel.clear();
        }
    }
    if !id_block.is_empty() {
        let (sc, pct) = score_columns(&sc_block, reference);
        w.write_columns(&[
            ColumnRef::Str(&id_block),
            ColumnRef::F64(&sc),
            ColumnRef::F64(&pct),
            ColumnRef::Bool(&sel),
        ])?;
    }
    w.finish()?;
    Ok(k.min(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule by its definition: sort by score (descending, `total_cmp`), ties by file
    /// order, take k.
    fn blocks(scores: &[f32]) -> Scores {
        let mut s = Scores::default();
        // uneven pieces, as chunks arrive
        for piece in scores.chunks(37) {
            s.extend(piece);
        }
        s
    }

    fn by_sorting(scores: &[f32], skip: &[u64], k: usize) -> Vec<bool> {
        let mut order: Vec<usize> = (0..scores.len())
            .filter(|i| !skip.contains(&(*i as u64)))
            .collect();
        order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
        let mut sel = vec![false; scores.len()];
        for &i in order.iter().take(k) {
            sel[i] = true;
        }
        (0..scores.len())
            .filter(|i| !skip.contains(&(*i as u64)))
            .map(|i| sel[i])
            .collect()
    }

    fn by_threshold(scores: &[f32], skip: &[u64], k: usize) -> Vec<bool> {
        let scores = &blocks(scores);
        assert_eq!(scores.iter().collect::<Vec<_>>().len(), scores.len());
        let n = scores.len() - skip.len();
        let cut = if k >= n {
            None
        } else {
            threshold(scores, skip, k)
        };
        let mut ties = cut.map_or(0, |c| c.1);
        live(scores, skip)
            .map(|(_, s)| match cut {
                None => k >= n,
                Some((t, _)) => {
                    let key = order_key(s);
                    key > t
                        || (key == t && ties > 0 && {
                            ties -= 1;
                            true
                        })
                }
            })
            .collect()
    }

    #[test]
    fn threshold_selection_equals_sorting() {
        let mut x: u64 = 42;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        for n in [0usize, 1, 2, 7, 100, 1000] {
            // few distinct values (many ties), tiny differences in the low bits, and -0.0 / 0.0
            let scores: Vec<f32> = (0..n)
                .map(|_| match next() % 4 {
                    0 => (next() % 5) as f32 / 4.0,
                    1 => f32::from_bits(0x3F00_0000 + (next() % 3) as u32),
                    2 => {
                        if next() % 2 == 0 {
                            0.0
                        } else {
                            -0.0
                        }
                    }
                    _ => (next() % 1000) as f32 / 1000.0,
                })
                .collect();
            let skip: Vec<u64> = (0..n as u64).filter(|_| next() % 10 == 0).collect();
            for k in [
                0,
                1,
                2,
                n / 20,
                n / 2,
                n.saturating_sub(skip.len() + 1),
                n,
                n + 5,
            ] {
                assert_eq!(
                    by_threshold(&scores, &skip, k),
                    by_sorting(&scores, &skip, k),
                    "n {n} k {k}"
                );
            }
        }
    }

    #[test]
    fn score_blocks_keep_order_across_blocks() {
        let v: Vec<f32> = (0..2 * SCORE_BLOCK + 12_345).map(|i| i as f32).collect();
        let mut s = Scores::default();
        for piece in v.chunks(300_001) {
            s.extend(piece);
        }
        assert_eq!(s.len(), v.len());
        assert_eq!(s.blocks.len(), 3);
        assert!(s.iter().eq(v.iter().copied()));
    }

    #[test]
    fn id_spool_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let mut s = IdSpool::create(d.path().join("ids")).unwrap();
        let ids = ["a", "", "x,\"y\"\nz", "ü"];
        for id in ids {
            s.push(id).unwrap();
        }
        let (_, mut r) = s.into_reader().unwrap();
        let mut buf = Vec::new();
        for id in ids {
            assert_eq!(next_id(&mut r, &mut buf).unwrap(), id);
        }
        assert!(next_id(&mut r, &mut buf).is_err());
    }
}
