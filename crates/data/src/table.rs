//! Generic streaming table writer (scores, reports) and the reject file writer.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
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

impl Column {
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
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Parquet(Box<ArrowWriter<File>>, SchemaRef),
}

/// Streaming writer of a typed table, CSV or Parquet by extension. CSV: header row, NaN as
/// an empty cell, booleans as `true`/`false`, floats in shortest round-trip form. Parquet:
/// Utf8 / Float64 (NaN -> null) / Int64 / Boolean columns, one record batch per
/// `write_rows` call (row groups of up to 1M rows), Snappy compressed.
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
            return Err(DataError::value(format!("{}: a table needs at least one column", path.display())));
        }
        let format = FileFormat::of(path)?;
        let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
        let sink = match format {
            FileFormat::Csv { tab } => {
                let mut w = csv::WriterBuilder::new()
                    .delimiter(if tab { b'\t' } else { b',' })
                    .from_writer(BufWriter::with_capacity(1 << 18, file));
                w.write_record(columns.iter().map(|(n, _)| *n)).map_err(|e| io_err(path, "write", e))?;
                Sink::Csv(Box::new(w))
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
                let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
                let w = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| io_err(path, "create", e))?;
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
        let p = self.path.display();
        if cols.len() != self.columns.len() {
            return Err(DataError::value(format!("{p}: {} columns given, table has {}", cols.len(), self.columns.len())));
        }
        let n = cols.first().map_or(0, Column::len);
        for (c, (name, t)) in cols.iter().zip(&self.columns) {
            if c.col_type() != *t {
                return Err(DataError::value(format!("{p}: column {name:?} is {t:?}, given {:?}", c.col_type())));
            }
            if c.len() != n {
                return Err(DataError::value(format!("{p}: column {name:?} has {} rows, expected {n}", c.len())));
            }
        }
        match &mut self.sink {
            Sink::Csv(w) => {
                let mut cells = vec![String::new(); cols.len()];
                for r in 0..n {
                    for (cell, col) in cells.iter_mut().zip(cols) {
                        cell.clear();
                        let _ = match col {
                            Column::Str(v) => {
                                cell.push_str(&v[r]);
                                Ok(())
                            }
                            Column::F64(v) if v[r].is_nan() => Ok(()),
                            Column::F64(v) => write!(cell, "{}", v[r]),
                            Column::I64(v) => write!(cell, "{}", v[r]),
                            Column::Bool(v) => write!(cell, "{}", v[r]),
                        };
                    }
                    w.write_record(&cells).map_err(|e| io_err(&self.path, "write", e))?;
                }
            }
            Sink::Parquet(w, schema) => {
                let arrays: Vec<ArrayRef> = cols
                    .iter()
                    .map(|c| -> ArrayRef {
                        match c {
                            Column::Str(v) => Arc::new(StringArray::from_iter_values(v.iter())),
                            Column::F64(v) => Arc::new(Float64Array::from_iter(v.iter().map(|x| (!x.is_nan()).then_some(*x)))),
                            Column::I64(v) => Arc::new(Int64Array::from(v.clone())),
                            Column::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
                        }
                    })
                    .collect();
                let rb = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| io_err(&self.path, "build batch", e))?;
                w.write(&rb).map_err(|e| io_err(&self.path, "write", e))?;
            }
        }
        self.rows += n as u64;
        Ok(())
    }

    /// Flush and close the file (writes the Parquet footer).
    pub fn finish(self) -> Result<(), DataError> {
        match self.sink {
            Sink::Csv(mut w) => w.flush().map_err(|e| io_err(&self.path, "write", e)),
            Sink::Parquet(w, _) => w.close().map(|_| ()).map_err(|e| io_err(&self.path, "finish", e)),
        }
    }
}

/// Streaming writer of a reject file (CSV): `line,column,value,reason,raw`, then each
/// reject's original cells as further fields (rows have varying widths).
pub struct RejectWriter {
    w: csv::Writer<BufWriter<File>>,
    path: PathBuf,
}

impl RejectWriter {
    pub fn create(path: &Path) -> Result<RejectWriter, DataError> {
        let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(BufWriter::new(file));
        w.write_record(["line", "column", "value", "reason", "raw"]).map_err(|e| io_err(path, "write", e))?;
        Ok(RejectWriter { w, path: path.to_path_buf() })
    }

    pub fn write(&mut self, rejects: &[Reject]) -> Result<(), DataError> {
        for r in rejects {
            let mut rec: Vec<&str> = Vec::with_capacity(4 + r.raw.len());
            let line = r.line.to_string();
            rec.push(&line);
            rec.push(r.column.as_deref().unwrap_or(""));
            rec.push(r.value.as_deref().unwrap_or(""));
            rec.push(&r.reason);
            rec.extend(r.raw.iter().map(String::as_str));
            self.w.write_record(&rec).map_err(|e| io_err(&self.path, "write", e))?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), DataError> {
        self.w.flush().map_err(|e| io_err(&self.path, "write", e))
    }
}

/// Write rejects to a CSV file (see [`RejectWriter`]).
pub fn write_rejects(path: &Path, rejects: &[Reject]) -> Result<(), DataError> {
    let mut w = RejectWriter::create(path)?;
    w.write(rejects)?;
    w.finish()
}
