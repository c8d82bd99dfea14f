//! CSV source: header check, then chunks in two stages.
//!
//! 1. Sequential: [`Splitter`] cuts the bytes into records (no field parsing) and the records
//!    into sub-chunks of [`SUB_ROWS`].
//! 2. Parallel (rayon, in the caller's pool): each sub-chunk is parsed with the csv crate and
//!    validated into its own region of the chunk's [`Batch`] (rows written in place, so a
//!    recycled batch's strings are reused).
//!
//! Then, sequentially and in file order: the duplicate-id rule, the compaction of the batch
//! (rejected rows leave gaps) and the merge of the rejects. Sub-chunk boundaries do not
//! depend on the thread count, so neither does anything in the output.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use csv::ByteRecord;
use rayon::prelude::*;

use crate::columns::ColumnMap;
use crate::csv_split::{RawChunk, RawSub, Splitter};
use crate::domain::{Domains, Unseen};
use crate::error::{DataError, DataErrorKind};
use crate::ids::IdCheck;
use crate::read::{Chunk, ExtraColumns, OnError};
use crate::reject::{Problem, Reject};
use crate::schema::Schema;
use crate::slots::Slots;
use crate::validate::{Cell, Checker, Row, Rules};

/// Records per parallel task.
pub(crate) const SUB_ROWS: usize = 2048;

/// A parsed record; `text` is the whole record as UTF-8 when it is valid, so that cells are
/// sliced from it without checking each one again.
struct CsvRow<'a> {
    rec: &'a ByteRecord,
    text: Option<&'a str>,
}

impl<'a> CsvRow<'a> {
    fn new(rec: &'a ByteRecord) -> CsvRow<'a> {
        CsvRow {
            rec,
            text: std::str::from_utf8(rec.as_slice()).ok(),
        }
    }
}

impl Row for CsvRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        // A field between char boundaries of valid UTF-8 is valid UTF-8; a field whose bytes
        // split a character (possible only around a delimiter) is checked on its own.
        if let (Some(text), Some(r)) = (self.text, self.rec.range(idx)) {
            if let Some(s) = text.get(r) {
                return Cell::Str(s);
            }
        }
        match self.rec.get(idx) {
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Cell::Str(s),
                Err(_) => Cell::BadUtf8(b),
            },
            None => Cell::Absent,
        }
    }
    fn raw(&self) -> Vec<String> {
        self.rec
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

fn read_error(source: &str, e: std::io::Error) -> DataError {
    DataError::io_source(format!("{source}: cannot read CSV"), e)
}

fn parser(delimiter: u8, bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// A row with a valid id, for the duplicate-id rule.
struct IdSeen {
    key: u128,
    line: u64,
    /// Row index in the sub-chunk's region (kept rows) or index in its rejects.
    at: At,
    /// The record's bytes within the chunk (to rebuild the raw cells of a late reject).
    rec: (usize, usize),
}

#[derive(Clone, Copy)]
enum At {
    Kept(usize),
    Rejected(usize),
}

/// What one sub-chunk produced.
#[derive(Default)]
struct SubOut {
    kept: usize,
    rejects: Vec<Reject>,
    ids: Vec<IdSeen>,
    unseen: Vec<Unseen>,
}

pub(crate) struct CsvSource {
    split: Splitter<File>,
    rules: Rules,
    n_fields: usize,
    delimiter: u8,
}

impl CsvSource {
    /// Open the file and check its header; returns the source and the header names.
    pub(crate) fn open(
        path: &Path,
        source: &str,
        schema: &Schema,
        delimiter: u8,
        require_label: bool,
        extra: ExtraColumns,
        domains: Arc<Domains>,
    ) -> Result<(CsvSource, Vec<String>), DataError> {
        let file = File::open(path)
            .map_err(|e| DataError::io_source(format!("{source}: cannot open"), e))?;
        let mut split = Splitter::new(file, delimiter);
        let empty = || {
            DataError::new(
                DataErrorKind::Empty,
                format!("{source}: file is empty: no header"),
            )
        };
        let chunk = split
            .next_chunk(1, 1)
            .map_err(|e| read_error(source, e))?
            .ok_or_else(empty)?;
        let sub = chunk.subs.first().ok_or_else(empty)?;
        let mut header = ByteRecord::new();
        let mut rdr = parser(delimiter, &chunk.data[sub.start..sub.end]);
        if !rdr
            .read_byte_record(&mut header)
            .map_err(|e| DataError::io_source(format!("{source}: cannot read CSV header"), e))?
        {
            return Err(empty());
        }
        if header.is_empty() || (header.len() == 1 && header[0].trim_ascii().is_empty()) {
            return Err(empty());
        }
        let mut names = Vec::with_capacity(header.len());
        for (i, b) in header.iter().enumerate() {
            let b = if i == 0 {
                b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
            } else {
                b
            };
            let s = std::str::from_utf8(b).map_err(|_| {
                DataError::columns(format!(
                    "{source}: line 1: header field {} is not valid UTF-8",
                    i + 1
                ))
            })?;
            names.push(s.trim().to_string());
        }
        let map = ColumnMap::from_header(&names, schema, require_label, extra, source)?;
        let n_fields = names.len();
        Ok((
            CsvSource {
                split,
                rules: Rules {
                    schema: schema.clone(),
                    map,
                    domains,
                },
                n_fields,
                delimiter,
            },
            names,
        ))
    }

    /// Read the next chunk of records into `chunk`; `Ok(false)` once the file is exhausted.
    pub(crate) fn fill(&mut self, chunk: &mut Chunk, ids: &mut IdCheck) -> Result<bool, DataError> {
        let Some(raw) = self
            .split
            .next_chunk(chunk.max_rows, SUB_ROWS)
            .map_err(|e| read_error(chunk.source, e))?
        else {
            chunk.batch.truncate_rows(0);
            return Ok(false);
        };
        chunk.rows = raw.rows;
        let sizes: Vec<usize> = raw.subs.iter().map(|s| s.rows).collect();
        chunk.batch.resize_rows(raw.rows);
        let (rules, n_fields, delimiter) = (&self.rules, self.n_fields, self.delimiter);
        let mut outs: Vec<SubOut> = {
            let regions = chunk.batch.slot_regions(&sizes);
            let work: Vec<(Slots, &RawSub)> = regions.into_iter().zip(&raw.subs).collect();
            work.into_par_iter()
                .map(|(mut slots, sub)| {
                    parse_sub(rules, n_fields, delimiter, &raw.data, sub, &mut slots)
                })
                .collect()
        };
        let more = raw.rows == chunk.max_rows;
        let result = self.finish_chunk(chunk, &raw, &mut outs, ids);
        self.split.recycle(raw.data);
        result.map(|()| more)
    }

    /// The sequential part after the parallel stage: duplicate ids in file order, then the
    /// batch is compacted and the rejects merged.
    fn finish_chunk(
        &self,
        chunk: &mut Chunk,
        raw: &RawChunk,
        outs: &mut [SubOut],
        ids: &mut IdCheck,
    ) -> Result<(), DataError> {
        let mut late: Vec<Reject> = Vec::new();
        let mut dropped: Vec<usize> = Vec::new();
        let mut region = 0usize;
        let mut kept_before = chunk.accepted_before;
        for (out, sub) in outs.iter_mut().zip(&raw.subs) {
            for seen in &out.ids {
                if ids.is_immediate() {
                    let Some(first) = ids.first_seen(seen.key, seen.line) else {
                        continue;
                    };
                    match seen.at {
                        At::Kept(i) => {
                            let row = region + i;
                            dropped.push(row);
                            let p = self.rules.duplicate(&chunk.batch.ids[row], first);
                            late.push(Reject::from_problems(
                                seen.line,
                                vec![p],
                                self.raw_cells(&raw.data[seen.rec.0..seen.rec.1]),
                            ));
                        }
                        At::Rejected(j) => {
                            let r = &mut out.rejects[j];
                            let id = r
                                .raw
                                .get(self.rules.map.id)
                                .map(|s| s.trim().to_string())
                                .unwrap_or_default();
                            let mut problems = std::mem::take(&mut r.problems);
                            problems.insert(0, self.rules.duplicate(&id, first));
                            *r =
                                Reject::from_problems(r.line, problems, std::mem::take(&mut r.raw));
                        }
                    }
                } else {
                    let ordinal = match seen.at {
                        At::Kept(i) => Some(kept_before + i as u64),
                        At::Rejected(_) => None,
                    };
                    ids.log(seen.key, seen.line, ordinal)?;
                }
            }
            kept_before += out.kept as u64;
            region += sub.rows;
        }
        dropped.sort_unstable();
        let mut rejects: Vec<Reject> = outs
            .iter_mut()
            .flat_map(|o| std::mem::take(&mut o.rejects))
            .collect();
        if !late.is_empty() {
            rejects.extend(late);
            rejects.sort_by_key(|r| r.line);
        }
        if chunk.on_error == OnError::Fail {
            if let Some(r) = rejects.first() {
                return Err(DataError::value(r.describe(chunk.source)));
            }
        }
        // Rows to keep: each region's prefix of kept rows, minus late duplicates.
        let all_kept =
            dropped.is_empty() && outs.iter().zip(&raw.subs).all(|(o, s)| o.kept == s.rows);
        if all_kept {
            chunk.batch.truncate_rows(raw.rows);
        } else {
            let mut keep = Vec::with_capacity(raw.rows);
            let mut start = 0usize;
            let mut d = dropped.iter().peekable();
            for (o, s) in outs.iter().zip(&raw.subs) {
                for row in start..start + o.kept {
                    if d.peek() == Some(&&row) {
                        d.next();
                    } else {
                        keep.push(row);
                    }
                }
                start += s.rows;
            }
            chunk.batch.compact(&keep);
        }
        chunk.rejects = rejects;
        for o in outs.iter() {
            for (acc, u) in chunk.unseen.iter_mut().zip(&o.unseen) {
                acc.merge(u);
            }
        }
        Ok(())
    }

    /// The cells of one record, as in a reject's `raw`.
    fn raw_cells(&self, bytes: &[u8]) -> Vec<String> {
        let mut rec = ByteRecord::new();
        match parser(self.delimiter, bytes).read_byte_record(&mut rec) {
            Ok(true) => CsvRow::new(&rec).raw(),
            _ => Vec::new(),
        }
    }

    /// The raw cells and the (trimmed) id of the records at `lines` (ascending), by reading
    /// the file again.
    pub(crate) fn raw_at(
        &self,
        path: &Path,
        source: &str,
        lines: &[u64],
    ) -> Result<Vec<(Vec<String>, String)>, DataError> {
        let file = File::open(path)
            .map_err(|e| DataError::io_source(format!("{source}: cannot open"), e))?;
        let mut split = Splitter::new(file, self.delimiter);
        let mut out: Vec<(Vec<String>, String)> = Vec::with_capacity(lines.len());
        let mut want = lines.iter().peekable();
        let mut rec = ByteRecord::new();
        // The header is a record too: lines start at the first data record.
        let mut header = true;
        while want.peek().is_some() {
            let Some(ch) = split
                .next_chunk(1 << 16, 1 << 16)
                .map_err(|e| read_error(source, e))?
            else {
                break;
            };
            for sub in &ch.subs {
                let bytes = &ch.data[sub.start..sub.end];
                let mut rdr = parser(self.delimiter, bytes);
                let mut track = LineTracker::new(bytes, sub.line);
                loop {
                    let at = rdr.position().byte() as usize;
                    if !matches!(rdr.read_byte_record(&mut rec), Ok(true)) {
                        break;
                    }
                    let line = track.line_of(at);
                    if std::mem::take(&mut header) {
                        continue;
                    }
                    while want.peek().is_some_and(|&&l| l < line) {
                        want.next();
                        out.push((Vec::new(), String::new()));
                    }
                    if want.peek() == Some(&&line) {
                        want.next();
                        let raw = CsvRow::new(&rec).raw();
                        let id = raw
                            .get(self.rules.map.id)
                            .map(|s| s.trim().to_string())
                            .unwrap_or_default();
                        out.push((raw, id));
                    }
                }
            }
            split.recycle(ch.data);
        }
        out.resize_with(lines.len(), || (Vec::new(), String::new()));
        Ok(out)
    }
}

/// Physical lines of the records of one sub-chunk: one pass over its `\n` bytes.
struct LineTracker<'a> {
    bytes: &'a [u8],
    line: u64,
    newlines: memchr::Memchr<'a>,
    next_nl: Option<usize>,
}

impl<'a> LineTracker<'a> {
    fn new(bytes: &'a [u8], first_line: u64) -> LineTracker<'a> {
        let mut newlines = memchr::memchr_iter(b'\n', bytes);
        let next_nl = newlines.next();
        LineTracker {
            bytes,
            line: first_line,
            newlines,
            next_nl,
        }
    }

    /// The first byte and line of the record the csv crate starts reading at byte `at`
    /// (right after the previous record's first terminator byte): it begins after any
    /// further `\r` / `\n`. Calls come in increasing `at`.
    fn first_byte_and_line(&mut self, at: usize) -> (usize, u64) {
        let mut s = at;
        while s < self.bytes.len() && (self.bytes[s] == b'\r' || self.bytes[s] == b'\n') {
            s += 1;
        }
        while self.next_nl.is_some_and(|p| p < s) {
            self.line += 1;
            self.next_nl = self.newlines.next();
        }
        (s, self.line)
    }

    fn line_of(&mut self, at: usize) -> u64 {
        self.first_byte_and_line(at).1
    }
}

/// A record without quotes, split at the delimiter by the fast path.
struct SplitRow<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
    /// Field byte ranges within `bytes`.
    fields: &'a [(usize, usize)],
}

impl Row for SplitRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        let Some(&(a, b)) = self.fields.get(idx) else {
            return Cell::Absent;
        };
        if let Some(s) = self.text.and_then(|t| t.get(a..b)) {
            return Cell::Str(s);
        }
        match std::str::from_utf8(&self.bytes[a..b]) {
            Ok(s) => Cell::Str(s),
            Err(_) => Cell::BadUtf8(&self.bytes[a..b]),
        }
    }
    fn raw(&self) -> Vec<String> {
        self.fields
            .iter()
            .map(|&(a, b)| String::from_utf8_lossy(&self.bytes[a..b]).into_owned())
            .collect()
    }
}

/// Validation of the records of one sub-chunk, in order.
struct SubState<'r, 's, 'b> {
    rules: &'r Rules,
    n_fields: usize,
    slots: &'s mut Slots<'b>,
    checker: Checker,
    out: SubOut,
}

impl SubState<'_, '_, '_> {
    fn record<R: Row>(&mut self, row: &R, fields: usize, line: u64, rec: (usize, usize)) {
        let out = &mut self.out;
        let (key, reject) = if fields != self.n_fields {
            let p = Problem::new(
                None,
                None,
                "wrong number of fields",
                format!("expected {} fields, found {fields}", self.n_fields),
            );
            (None, Some(Reject::from_problems(line, vec![p], row.raw())))
        } else {
            let key = self
                .checker
                .check(self.rules, row, line, self.slots, out.kept);
            if self.checker.problems.is_empty() {
                (key, None)
            } else {
                (
                    key,
                    Some(Reject::from_problems(
                        line,
                        std::mem::take(&mut self.checker.problems),
                        row.raw(),
                    )),
                )
            }
        };
        let at = match reject {
            None => {
                out.kept += 1;
                At::Kept(out.kept - 1)
            }
            Some(r) => {
                out.rejects.push(r);
                At::Rejected(out.rejects.len() - 1)
            }
        };
        if let Some(key) = key {
            out.ids.push(IdSeen { key, line, at, rec });
        }
    }
}

/// Parse and validate one sub-chunk into its slots. A sub-chunk without any quote byte (the
/// usual case) is split with memchr: records end at `\r` / `\n`, fields at the delimiter,
/// exactly as the csv crate reads such bytes; otherwise the csv crate parses it.
fn parse_sub(
    rules: &Rules,
    n_fields: usize,
    delimiter: u8,
    data: &[u8],
    sub: &RawSub,
    slots: &mut Slots,
) -> SubOut {
    let bytes = &data[sub.start..sub.end];
    let st = SubState {
        rules,
        n_fields,
        slots,
        checker: Checker::new(&rules.schema),
        out: SubOut {
            kept: 0,
            rejects: Vec::new(),
            ids: Vec::with_capacity(sub.rows),
            unseen: Vec::new(),
        },
    };
    if memchr::memchr(b'"', bytes).is_none() {
        return parse_plain(st, bytes, sub, delimiter);
    }
    parse_csv(st, bytes, sub, delimiter)
}

/// The fast path of [`parse_sub`] (no quote byte in `bytes`).
fn parse_plain(mut st: SubState, bytes: &[u8], sub: &RawSub, delimiter: u8) -> SubOut {
    {
        let mut fields: Vec<(usize, usize)> = Vec::with_capacity(st.n_fields + 1);
        let (mut pos, mut line) = (0usize, sub.line);
        for _ in 0..sub.rows {
            while pos < bytes.len() && (bytes[pos] == b'\r' || bytes[pos] == b'\n') {
                line += u64::from(bytes[pos] == b'\n');
                pos += 1;
            }
            let start = pos;
            let end =
                memchr::memchr2(b'\r', b'\n', &bytes[start..]).map_or(bytes.len(), |k| start + k);
            let rec = &bytes[start..end];
            fields.clear();
            let mut a = 0usize;
            for d in memchr::memchr_iter(delimiter, rec) {
                fields.push((a, d));
                a = d + 1;
            }
            fields.push((a, rec.len()));
            let row = SplitRow {
                bytes: rec,
                text: std::str::from_utf8(rec).ok(),
                fields: &fields,
            };
            // the range holds the first terminator byte, as the csv crate's position does
            let rec_end = if end < bytes.len() { end + 1 } else { end };
            st.record(
                &row,
                fields.len(),
                line,
                (sub.start + start, sub.start + rec_end),
            );
            pos = end;
        }
    }
    st.out.unseen = std::mem::take(&mut st.checker.unseen);
    st.out
}

/// [`parse_sub`] with the csv crate.
fn parse_csv(mut st: SubState, bytes: &[u8], sub: &RawSub, delimiter: u8) -> SubOut {
    let mut rdr = parser(delimiter, bytes);
    let mut rec = ByteRecord::new();
    let mut track = LineTracker::new(bytes, sub.line);
    for _ in 0..sub.rows {
        let at = rdr.position().byte() as usize;
        // Reading from a byte slice cannot fail, and the splitter counted these records.
        if !matches!(rdr.read_byte_record(&mut rec), Ok(true)) {
            break;
        }
        let (first, line) = track.first_byte_and_line(at);
        let rec_range = (
            sub.start + first,
            sub.start + rdr.position().byte() as usize,
        );
        st.record(&CsvRow::new(&rec), rec.len(), line, rec_range);
    }
    st.out.unseen = std::mem::take(&mut st.checker.unseen);
    st.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;

    /// The memchr fast path and the csv crate agree on quote-free bytes: records, fields,
    /// lines, rejects and id entries.
    #[test]
    fn plain_path_equals_csv_path() {
        let schema = Schema::from_toml(
            "name='t'\nid={column='i'}\ndate={column='d'}\nhs_code={column='h', width=6}\n\
             categorical=[{column='c'}]\nnumeric=[{column='n', allow_missing=true}]\n",
        )
        .unwrap();
        let names: Vec<String> = ["i", "d", "h", "c", "n"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rules = Rules {
            map: ColumnMap::from_header(&names, &schema, false, ExtraColumns::Refuse, "t").unwrap(),
            schema: schema.clone(),
            domains: Domains::new(&schema, None, false).unwrap(),
        };
        let cells: [&[u8]; 8] = [
            b"A1",
            b"2020-01-01",
            b"010101",
            b" x ",
            b"1.5",
            b"",
            b"\xC3",
            b"\xA9z",
        ];
        let seps: [&[u8]; 5] = [b",", b",", b",", b"\r\n", b"\n\r\n"];
        let mut x: u64 = 7;
        let mut next = |m: usize| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % m as u64) as usize
        };
        for _ in 0..200 {
            let mut bytes = Vec::new();
            for _ in 0..next(60) {
                bytes.extend_from_slice(cells[next(cells.len())]);
                bytes.extend_from_slice(seps[next(seps.len())]);
            }
            let mut split = Splitter::new(&bytes[..], b',');
            while let Some(ch) = split.next_chunk(1000, 5).unwrap() {
                for sub in &ch.subs {
                    let run = |plain: bool| {
                        let mut b = Batch::empty(&schema, "t");
                        b.resize_rows(sub.rows);
                        let out = {
                            let mut regions = b.slot_regions(&[sub.rows]);
                            let st = SubState {
                                rules: &rules,
                                n_fields: 5,
                                slots: &mut regions[0],
                                checker: Checker::new(&schema),
                                out: SubOut::default(),
                            };
                            let part = &ch.data[sub.start..sub.end];
                            if plain {
                                parse_plain(st, part, sub, b',')
                            } else {
                                parse_csv(st, part, sub, b',')
                            }
                        };
                        b.truncate_rows(out.kept);
                        let ids: Vec<(u128, u64, String, (usize, usize))> = out
                            .ids
                            .iter()
                            .map(|i| {
                                (
                                    i.key,
                                    i.line,
                                    match i.at {
                                        At::Kept(k) => format!("k{k}"),
                                        At::Rejected(r) => format!("r{r}"),
                                    },
                                    i.rec,
                                )
                            })
                            .collect();
                        format!("{:?}", (out.kept, &out.rejects, ids, b))
                    };
                    assert_eq!(
                        run(true),
                        run(false),
                        "{:?}",
                        String::from_utf8_lossy(&ch.data[sub.start..sub.end])
                    );
                }
            }
        }
    }
}
