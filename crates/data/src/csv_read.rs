//! CSV source: header check, then rows as borrowed byte cells (no per-cell allocation except
//! the strings a [`crate::Batch`] keeps).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use csv::ByteRecord;

use crate::columns::ColumnMap;
use crate::error::{DataError, DataErrorKind};
use crate::read::Chunk;
use crate::reject::{Problem, Reject};
use crate::schema::Schema;
use crate::validate::{Cell, Row, Validator};

/// A reader that remembers where the line-terminator bytes (`\r`, `\n`) of the input are,
/// so that physical line numbers can be corrected.
///
/// The csv crate marks a record's start right after the previous record's first terminator
/// byte, so the `\n` of a CRLF and any blank lines that follow are counted into the *previous*
/// line (a CRLF file reports every row one line early). The true line of a record is the csv
/// crate's line plus the `\n`s in the run of terminator bytes at the record's start.
struct Tracked<R> {
    inner: R,
    offset: u64,
    /// (byte offset, is `\n`) of terminator bytes not yet behind the current record.
    terms: VecDeque<(u64, bool)>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for i in memchr::memchr2_iter(b'\r', b'\n', &buf[..n]) {
            self.terms.push_back((self.offset + i as u64, buf[i] == b'\n'));
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> Tracked<R> {
    /// The physical line of a record the csv crate places at `csv_line`, byte `start`.
    fn true_line(&mut self, csv_line: u64, start: u64) -> u64 {
        while self.terms.front().is_some_and(|&(o, _)| o < start) {
            self.terms.pop_front();
        }
        let run = (start..).zip(&self.terms).take_while(|(at, &(o, _))| *at == o);
        csv_line + run.filter(|(_, &(_, lf))| lf).count() as u64
    }
}

pub(crate) struct CsvSource {
    rdr: csv::Reader<Tracked<File>>,
    record: ByteRecord,
    validator: Validator,
    n_fields: usize,
}

struct CsvRow<'a>(&'a ByteRecord);

impl Row for CsvRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.0.get(idx) {
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Cell::Str(s),
                Err(_) => Cell::BadUtf8(b),
            },
            None => Cell::Absent,
        }
    }
    fn raw(&self) -> Vec<String> {
        self.0.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }
}

fn csv_error(source: &str, e: &csv::Error) -> DataError {
    let at = e.position().map(|p| format!(" (line {})", p.line())).unwrap_or_default();
    DataError::io(format!("{source}: cannot read CSV{at}: {e}"))
}

impl CsvSource {
    /// Open the file and check its header; returns the source and the header names.
    pub(crate) fn open(
        path: &Path,
        source: &str,
        schema: &Schema,
        delimiter: u8,
        require_label: bool,
    ) -> Result<(CsvSource, Vec<String>), DataError> {
        let file = File::open(path).map_err(|e| DataError::io(format!("{source}: cannot open: {e}")))?;
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(1 << 18)
            .from_reader(Tracked { inner: file, offset: 0, terms: VecDeque::new() });
        let header = rdr.byte_headers().map_err(|e| csv_error(source, &e))?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].trim_ascii().is_empty()) {
            return Err(DataError { kind: DataErrorKind::Empty, message: format!("{source}: file is empty: no header") });
        }
        let mut names = Vec::with_capacity(header.len());
        for (i, b) in header.iter().enumerate() {
            let b = if i == 0 { b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b) } else { b };
            let s = std::str::from_utf8(b).map_err(|_| {
                DataError::columns(format!("{source}: line 1: header field {} is not valid UTF-8", i + 1))
            })?;
            names.push(s.trim().to_string());
        }
        let map = ColumnMap::from_header(&names, schema, require_label, source)?;
        let n_fields = names.len();
        Ok((CsvSource { rdr, record: ByteRecord::new(), validator: Validator::new(schema, map), n_fields }, names))
    }

    /// Read rows into `chunk` until it is full; `Ok(false)` once the file is exhausted.
    pub(crate) fn fill(&mut self, chunk: &mut Chunk) -> Result<bool, DataError> {
        while !chunk.is_full() {
            let more = self.rdr.read_byte_record(&mut self.record).map_err(|e| csv_error(chunk.source, &e))?;
            if !more {
                return Ok(false);
            }
            let line = match self.record.position() {
                Some(p) => self.rdr.get_mut().true_line(p.line(), p.byte()),
                None => 0,
            };
            let reject = if self.record.len() != self.n_fields {
                let p = Problem::new(
                    None,
                    None,
                    "wrong number of fields",
                    format!("expected {} fields, found {}", self.n_fields, self.record.len()),
                );
                Some(Reject::from_problems(line, vec![p], CsvRow(&self.record).raw()))
            } else {
                self.validator.push(&CsvRow(&self.record), line, &mut chunk.batch)
            };
            chunk.record(reject)?;
        }
        Ok(true)
    }
}
