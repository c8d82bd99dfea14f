//! CSV source: header check, then rows as borrowed byte cells (no per-cell allocation except
//! the strings a [`crate::Batch`] keeps).

use std::fs::File;
use std::path::Path;

use csv::ByteRecord;

use crate::columns::ColumnMap;
use crate::error::{DataError, DataErrorKind};
use crate::read::Chunk;
use crate::reject::{Problem, Reject};
use crate::schema::Schema;
use crate::validate::{Cell, Row, Validator};

pub(crate) struct CsvSource {
    rdr: csv::Reader<File>,
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
            .from_reader(file);
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
            let line = self.record.position().map_or(0, |p| p.line());
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
