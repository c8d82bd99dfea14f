//! Generic streaming table writer (scores, reports) and the reject file writer.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchReader, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::read::FileFormat;
use crate::reject::Reject;
use crate::write::io_err;

/// Type of a [`TableWriter`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColType {
    Str,
    F64,
    I64,
    Bool,
}

/// Values of one column for one [`TableWriter::write_rows`] call.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Str(Vec<String>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// Borrowed values of one column (see [`TableWriter::write_columns`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnRef<'a> {
    Str(&'a [String]),
    F64(&'a [f64]),
    I64(&'a [i64]),
    Bool(&'a [bool]),
}

impl ColumnRef<'_> {
    pub fn len(&self) -> usize {
        match self {
            ColumnRef::Str(v) => v.len(),
            ColumnRef::F64(v) => v.len(),
            ColumnRef::I64(v) => v.len(),
            ColumnRef::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn col_type(&self) -> ColType {
        match self {
            ColumnRef::Str(_) => ColType::Str,
            ColumnRef::F64(_) => ColType::F64,
            ColumnRef::I64(_) => ColType::I64,
            ColumnRef::Bool(_) => ColType::Bool,
        }
    }
}

impl Column {
    /// A borrowed view.
    pub fn as_ref(&self) -> ColumnRef<'_> {
        match self {
            Column::Str(v) => ColumnRef::Str(v),
            Column::F64(v) => ColumnRef::F64(v),
            Column::I64(v) => ColumnRef::I64(v),
            Column::Bool(v) => ColumnRef::Bool(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn col_type(&self) -> ColType {
        match self {
            Column::Str(_) => ColType::Str,
            Column::F64(_) => ColType::F64,
            Column::I64(_) => ColType::I64,
            Column::Bool(_) => ColType::Bool,
        }
    }
}

enum Sink {
    Csv { w: BufWriter<File>, delimiter: u8 },
    Parquet(Box<ArrowWriter<File>>, SchemaRef),
}

/// Parquet settings of score tables: Snappy, row groups of at most 131,072 rows.
fn table_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(1 << 17)
        .build()
}

/// Rows formatted per parallel task when writing CSV.
const FORMAT_BLOCK: usize = 4096;

/// Append a CSV field as the csv crate writes it: quoted (with doubled quotes) only when it
/// holds the delimiter, a quote, `\r` or `\n`.
pub(crate) fn push_csv_field(out: &mut Vec<u8>, field: &[u8], delimiter: u8) {
    if field
        .iter()
        .any(|&b| b == delimiter || b == b'"' || b == b'\r' || b == b'\n')
    {
        out.push(b'"');
        for &b in field {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field);
    }
}

/// One CSV row of `cols` at `r`: NaN as an empty cell, floats in shortest round-trip form.
fn push_csv_row(out: &mut Vec<u8>, cols: &[ColumnRef], r: usize, delimiter: u8) {
    for (j, col) in cols.iter().enumerate() {
        if j > 0 {
            out.push(delimiter);
        }
        // Writing to a Vec cannot fail.
        let _ = match col {
            ColumnRef::Str(v) => {
                push_csv_field(out, v[r].as_bytes(), delimiter);
                Ok(())
            }
            ColumnRef::F64(v) if v[r].is_nan() => Ok(()),
            ColumnRef::F64(v) => {
                crate::write::push_f64(out, v[r]);
                Ok(())
            }
            ColumnRef::I64(v) => write!(out, "{}", v[r]),
            ColumnRef::Bool(v) => {
                out.extend_from_slice(if v[r] { b"true" } else { b"false" });
                Ok(())
            }
        };
    }
    out.push(b'\n');
}

/// Streaming writer of a typed table, CSV or Parquet by extension. CSV: header row, NaN as
/// an empty cell, booleans as `true`/`false`, floats in shortest round-trip form. Parquet:
/// Utf8 / Float64 (NaN -> null) / Int64 / Boolean columns, one record batch per
/// `write_rows` call (row groups of up to 131,072 rows, so the writer's buffer stays small),
/// Snappy compressed.
///
/// Call [`TableWriter::finish`]: a Parquet file is not readable without its footer.
pub struct TableWriter {
    sink: Sink,
    columns: Vec<(String, ColType)>,
    path: PathBuf,
    rows: u64,
}

impl TableWriter {
    pub fn create(path: &Path, columns: &[(&str, ColType)]) -> Result<TableWriter, DataError> {
        if columns.is_empty() {
            return Err(DataError::value(format!(
                "{}: a table needs at least one column",
                path.display()
            )));
        }
        let format = FileFormat::of(path)?;
        let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
        let sink = match format {
            FileFormat::Csv { tab } => {
                let delimiter = if tab { b'\t' } else { b',' };
                let mut w = BufWriter::with_capacity(1 << 18, file);
                let mut header = Vec::new();
                for (j, (n, _)) in columns.iter().enumerate() {
                    if j > 0 {
                        header.push(delimiter);
                    }
                    push_csv_field(&mut header, n.as_bytes(), delimiter);
                }
                header.push(b'\n');
                w.write_all(&header).map_err(|e| io_err(path, "write", e))?;
                Sink::Csv { w, delimiter }
            }
            FileFormat::Parquet => {
                let fields: Vec<Field> = columns
                    .iter()
                    .map(|(n, t)| {
                        let dt = match t {
                            ColType::Str => DataType::Utf8,
                            ColType::F64 => DataType::Float64,
                            ColType::I64 => DataType::Int64,
                            ColType::Bool => DataType::Boolean,
                        };
                        Field::new(*n, dt, *t == ColType::F64)
                    })
                    .collect();
                let schema: SchemaRef = Arc::new(ArrowSchema::new(fields));
                let props = table_properties();
                let w = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| io_err(path, "create", e))?;
                Sink::Parquet(Box::new(w), schema)
            }
        };
        Ok(TableWriter {
            sink,
            columns: columns.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Append rows: one [`Column`] per declared column, in order, of equal lengths and the
    /// declared types.
    pub fn write_rows(&mut self, cols: &[Column]) -> Result<(), DataError> {
        let refs: Vec<ColumnRef> = cols.iter().map(Column::as_ref).collect();
        self.write_columns(&refs)
    }

    /// [`TableWriter::write_rows`] from borrowed columns. CSV rows are formatted in parallel
    /// (rayon, the current pool) and written in order.
    pub fn write_columns(&mut self, cols: &[ColumnRef]) -> Result<(), DataError> {
        let p = self.path.display();
        if cols.len() != self.columns.len() {
            return Err(DataError::value(format!(
                "{p}: {} columns given, table has {}",
                cols.len(),
                self.columns.len()
            )));
        }
        let n = cols.first().map_or(0, ColumnRef::len);
        for (c, (name, t)) in cols.iter().zip(&self.columns) {
            if c.col_type() != *t {
                return Err(DataError::value(format!(
                    "{p}: column {name:?} is {t:?}, given {:?}",
                    c.col_type()
                )));
            }
            if c.len() != n {
                return Err(DataError::value(format!(
                    "{p}: column {name:?} has {} rows, expected {n}",
                    c.len()
                )));
            }
        }
        match &mut self.sink {
            Sink::Csv { w, delimiter } => {
                let d = *delimiter;
                let blocks: Vec<Vec<u8>> = (0..n.div_ceil(FORMAT_BLOCK))
                    .into_par_iter()
                    .map(|b| {
                        let rows = b * FORMAT_BLOCK..n.min((b + 1) * FORMAT_BLOCK);
                        let mut out = Vec::with_capacity(rows.len() * 16 * cols.len());
                        for r in rows {
                            push_csv_row(&mut out, cols, r, d);
                        }
                        out
                    })
                    .collect();
                for b in blocks {
                    w.write_all(&b)
                        .map_err(|e| io_err(&self.path, "write", e))?;
                }
            }
            Sink::Parquet(w, schema) => {
                let arrays: Vec<ArrayRef> = cols
                    .iter()
                    .map(|c| -> ArrayRef {
                        match c {
                            ColumnRef::Str(v) => Arc::new(StringArray::from_iter_values(v.iter())),
                            ColumnRef::F64(v) => Arc::new(Float64Array::from_iter(
                                v.iter().map(|x| (!x.is_nan()).then_some(*x)),
                            )),
                            ColumnRef::I64(v) => Arc::new(Int64Array::from(v.to_vec())),
                            ColumnRef::Bool(v) => Arc::new(BooleanArray::from(v.to_vec())),
                        }
                    })
                    .collect();
                let rb = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| io_err(&self.path, "build batch", e))?;
                w.write(&rb).map_err(|e| io_err(&self.path, "write", e))?;
            }
        }
        self.rows += n as u64;
        Ok(())
    }

    /// Flush and close the file (writes the Parquet footer).
    pub fn finish(self) -> Result<(), DataError> {
        match self.sink {
            Sink::Csv { mut w, .. } => w.flush().map_err(|e| io_err(&self.path, "write", e)),
            Sink::Parquet(w, _) => w
                .close()
                .map(|_| ())
                .map_err(|e| io_err(&self.path, "finish", e)),
        }
    }
}

/// Remove data rows from a table file written by [`TableWriter`] (CSV or Parquet, by
/// extension): `drop` holds 0-based row numbers (ascending; the CSV header is not a row).
/// The file is rewritten through a temporary file beside it, then renamed. Returns the rows
/// kept.
pub fn remove_table_rows(path: &Path, drop: &[u64]) -> Result<u64, DataError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.rewrite"));
    let kept = match rewrite_without(path, &tmp, drop) {
        Ok(k) => k,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, "replace", e))?;
    Ok(kept)
}

fn rewrite_without(path: &Path, tmp: &Path, drop: &[u64]) -> Result<u64, DataError> {
    let mut drop = drop.iter().peekable();
    let mut kept = 0u64;
    let mut row = 0u64;
    let mut keep_row = |row: u64| {
        while drop.peek().is_some_and(|&&d| d < row) {
            drop.next();
        }
        drop.peek() != Some(&&row)
    };
    match FileFormat::of(path)? {
        FileFormat::Csv { tab } => {
            let delimiter = if tab { b'\t' } else { b',' };
            let mut rdr = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .has_headers(false)
                .flexible(true)
                .from_path(path)
                .map_err(|e| io_err(path, "open", e))?;
            let mut w = BufWriter::with_capacity(
                1 << 18,
                File::create(tmp).map_err(|e| io_err(tmp, "create", e))?,
            );
            let mut rec = csv::ByteRecord::new();
            let mut line = Vec::new();
            let mut header = true;
            while rdr
                .read_byte_record(&mut rec)
                .map_err(|e| io_err(path, "read", e))?
            {
                if !std::mem::take(&mut header) {
                    row += 1;
                    if !keep_row(row - 1) {
                        continue;
                    }
                    kept += 1;
                }
                line.clear();
                for (j, f) in rec.iter().enumerate() {
                    if j > 0 {
                        line.push(delimiter);
                    }
                    push_csv_field(&mut line, f, delimiter);
                }
                line.push(b'\n');
                w.write_all(&line).map_err(|e| io_err(tmp, "write", e))?;
            }
            w.flush().map_err(|e| io_err(tmp, "write", e))?;
        }
        FileFormat::Parquet => {
            let f = File::open(path).map_err(|e| io_err(path, "open", e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.with_batch_size(1 << 16).build())
                .map_err(|e| io_err(path, "read", e))?;
            let schema = reader.schema();
            let props = table_properties();
            let out = File::create(tmp).map_err(|e| io_err(tmp, "create", e))?;
            let mut w = ArrowWriter::try_new(out, schema, Some(props))
                .map_err(|e| io_err(tmp, "create", e))?;
            for rb in reader {
                let rb = rb.map_err(|e| io_err(path, "read", e))?;
                let mask: BooleanArray = (0..rb.num_rows())
                    .map(|i| Some(keep_row(row + i as u64)))
                    .collect();
                row += rb.num_rows() as u64;
                let rb = arrow::compute::filter_record_batch(&rb, &mask)
                    .map_err(|e| io_err(path, "filter", e))?;
                kept += rb.num_rows() as u64;
                w.write(&rb).map_err(|e| io_err(tmp, "write", e))?;
            }
            w.close().map_err(|e| io_err(tmp, "finish", e))?;
        }
    }
    Ok(kept)
}

/// Header of a reject file.
pub const REJECT_COLUMNS: [&str; 7] = [
    "file", "line", "column", "value", "category", "reason", "raw",
];

/// Streaming writer of a reject file: CSV, comma-separated, header
/// `file,line,column,value,category,reason,raw`, **one row per bad cell**: a rejected row
/// with three bad cells gives three rows with the same `file`, `line` and `raw` (a
/// row-level problem, e.g. a wrong number of fields, has empty `column` and `value`). So
/// `groupby("column")` counts bad cells per column and the distinct `(file, line)` pairs are
/// the rejected rows. `line` is defined in [`crate::read`] (the same row has the same line
/// in a CSV file and its Parquet conversion). `category` is the value-free reason used for
/// counting (`"below minimum"`), `reason` the full one. `raw` is the rejected row's original
/// cells re-encoded as one CSV line ([`Reject::raw_line`]), so a CSV reader (pandas, Excel,
/// the csv crate) sees a regular table, and parsing `raw` again gives the original fields.
pub struct RejectWriter {
    w: csv::Writer<BufWriter<File>>,
    path: PathBuf,
    source: String,
}

impl RejectWriter {
    /// A reject file at `path` for rows of the input file `source` (its `file` column).
    pub fn create(path: &Path, source: &str) -> Result<RejectWriter, DataError> {
        let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
        let mut w = csv::WriterBuilder::new().from_writer(BufWriter::new(file));
        w.write_record(REJECT_COLUMNS)
            .map_err(|e| io_err(path, "write", e))?;
        Ok(RejectWriter {
            w,
            path: path.to_path_buf(),
            source: source.to_string(),
        })
    }

    /// Rows written from now on come from the input file `source`.
    pub fn set_source(&mut self, source: &str) {
        self.source = source.to_string();
    }

    pub fn write(&mut self, rejects: &[Reject]) -> Result<(), DataError> {
        for r in rejects {
            let line = r.line.to_string();
            let raw = r.raw_line();
            let mut put =
                |column: Option<&str>, value: Option<&str>, category: &str, reason: &str| {
                    let rec = [
                        self.source.as_str(),
                        line.as_str(),
                        column.unwrap_or(""),
                        value.unwrap_or(""),
                        category,
                        reason,
                        &raw,
                    ];
                    self.w
                        .write_record(rec)
                        .map_err(|e| io_err(&self.path, "write", e))
                };
            if r.problems.is_empty() {
                put(r.column.as_deref(), r.value.as_deref(), "", &r.reason)?;
            }
            for p in &r.problems {
                put(
                    p.column.as_deref(),
                    p.value.as_deref(),
                    &p.category,
                    &p.reason,
                )?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), DataError> {
        self.w.flush().map_err(|e| io_err(&self.path, "write", e))
    }
}

/// Write rejects to a CSV file (see [`RejectWriter`]).
pub fn write_rejects(path: &Path, source: &str, rejects: &[Reject]) -> Result<(), DataError> {
    let mut w = RejectWriter::create(path, source)?;
    w.write(rejects)?;
    w.finish()
}
