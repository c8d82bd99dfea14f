//! Writing a validated [`Batch`] back to CSV or Parquet in the schema's layout, such that
//! reading it back with the same schema gives the same batch (except `lines`/`source`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use chrono::format::Item;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::batch::Batch;
use crate::columns::used_columns;
use crate::error::DataError;
use crate::read::FileFormat;
use crate::schema::{LabelColumn, Schema};

/// Rows per Parquet record batch when writing.
const WRITE_SLICE: usize = 65_536;

pub(crate) fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> DataError {
    DataError::io(format!("{}: cannot {what}: {e}", path.display()))
}

/// Shortest text of an `f32` that reads back (as f64, then cast to f32) to the same value.
pub(crate) fn f32_text(v: f32, out: &mut String) {
    let start = out.len();
    let _ = write!(out, "{v}");
    let back = out[start..].parse::<f64>().map(|x| x as f32);
    if back != Ok(v) {
        out.truncate(start);
        let _ = write!(out, "{}", v as f64);
    }
}

/// Compiled date format.
pub(crate) struct DateFormat {
    iso: bool,
    items: Vec<Item<'static>>,
}

impl DateFormat {
    pub(crate) fn new(format: &str) -> Result<DateFormat, DataError> {
        let items = chrono::format::StrftimeItems::new(format)
            .parse_to_owned()
            .map_err(|e| DataError::schema(format!("bad date format {format:?}: {e}")))?;
        Ok(DateFormat { iso: format == "%Y-%m-%d", items })
    }

    pub(crate) fn write(&self, days: i32, out: &mut String) -> Result<(), DataError> {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| DataError::io("bad epoch"))?;
        let date = epoch
            .checked_add_signed(chrono::Duration::days(days as i64))
            .ok_or_else(|| DataError::value(format!("date {days} days after 1970-01-01 is out of range")))?;
        let r = if self.iso {
            use chrono::Datelike;
            write!(out, "{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
        } else {
            write!(out, "{}", date.format_with_items(self.items.iter()))
        };
        r.map_err(|_| DataError::value(format!("cannot format date {days} with the schema's format")))
    }
}

fn label_text(l: &LabelColumn, v: Option<bool>) -> &str {
    match v {
        Some(true) => l.positive.first().map_or("1", String::as_str),
        Some(false) => l.negative.first().map_or("0", String::as_str),
        None => "",
    }
}

/// Write a batch with the schema's columns (ignored ones excluded) under their original
/// names: CSV (`.csv`, `.txt`, `.tsv`) or Parquet (`.parquet`, `.pq`) by extension.
/// CSV: dates in the schema's format, HS codes left-padded to the schema width, NaN and
/// `None` as empty cells, labels as the first positive / negative value, `inspected` as 1/0.
/// Parquet: Date32 dates, Utf8 ids / HS codes / categoricals (empty -> null), Float32
/// numerics and revenue (NaN -> null), Int64 label when its values are integers (else Utf8),
/// Boolean inspected, Utf8 selection, Float64 propensity.
pub fn write_batch(path: &Path, schema: &Schema, batch: &Batch) -> Result<(), DataError> {
    batch.check_lengths().map_err(|e| DataError::value(format!("{}: inconsistent batch: {e}", path.display())))?;
    if batch.categorical.len() != schema.categorical.len() || batch.numeric.len() != schema.numeric.len() {
        return Err(DataError::value(format!(
            "{}: batch has {} categorical / {} numeric columns, schema {:?} has {} / {}",
            path.display(),
            batch.categorical.len(),
            batch.numeric.len(),
            schema.name,
            schema.categorical.len(),
            schema.numeric.len()
        )));
    }
    match FileFormat::of(path)? {
        FileFormat::Csv { tab } => write_csv(path, schema, batch, if tab { b'\t' } else { b',' }),
        FileFormat::Parquet => write_parquet(path, schema, batch),
    }
}

fn write_csv(path: &Path, schema: &Schema, batch: &Batch, delimiter: u8) -> Result<(), DataError> {
    let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
    let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(BufWriter::with_capacity(1 << 18, file));
    let header = used_columns(schema);
    w.write_record(&header).map_err(|e| io_err(path, "write", e))?;
    let dates = DateFormat::new(&schema.date_format)?;
    let width = schema.hs_width as usize;
    let mut cells: Vec<String> = vec![String::new(); header.len()];
    for r in 0..batch.len() {
        for c in cells.iter_mut() {
            c.clear();
        }
        let mut k = 0;
        let mut next = || {
            k += 1;
            k - 1
        };
        cells[next()].push_str(&batch.ids[r]);
        dates.write(batch.dates[r], &mut cells[next()])?;
        let _ = write!(cells[next()], "{:0width$}", batch.hs[r]);
        for col in &batch.categorical {
            cells[next()].push_str(&col[r]);
        }
        for col in &batch.numeric {
            let i = next();
            if !col[r].is_nan() {
                f32_text(col[r], &mut cells[i]);
            }
        }
        if let Some(l) = &schema.label {
            cells[next()].push_str(label_text(l, batch.label[r]));
        }
        if schema.revenue.is_some() {
            let i = next();
            if let Some(v) = batch.revenue[r] {
                f32_text(v, &mut cells[i]);
            }
        }
        if schema.inspected.is_some() {
            cells[next()].push_str(if batch.inspected[r] { "1" } else { "0" });
        }
        if schema.selection.is_some() {
            cells[next()].push_str(batch.selection[r].map_or("", |s| s.as_str()));
        }
        if schema.propensity.is_some() {
            let i = next();
            if let Some(p) = batch.propensity[r] {
                let _ = write!(cells[i], "{p}");
            }
        }
        w.write_record(&cells).map_err(|e| io_err(path, "write", e))?;
    }
    w.flush().map_err(|e| io_err(path, "write", e))
}

fn write_parquet(path: &Path, schema: &Schema, batch: &Batch) -> Result<(), DataError> {
    let names = used_columns(schema);
    let int_label = schema
        .label
        .as_ref()
        .is_some_and(|l| [label_text(l, Some(true)), label_text(l, Some(false))].iter().all(|s| s.parse::<i64>().is_ok()));
    let mut types = vec![DataType::Utf8, DataType::Date32, DataType::Utf8];
    types.extend(schema.categorical.iter().map(|_| DataType::Utf8));
    types.extend(schema.numeric.iter().map(|_| DataType::Float32));
    if schema.label.is_some() {
        types.push(if int_label { DataType::Int64 } else { DataType::Utf8 });
    }
    if schema.revenue.is_some() {
        types.push(DataType::Float32);
    }
    if schema.inspected.is_some() {
        types.push(DataType::Boolean);
    }
    if schema.selection.is_some() {
        types.push(DataType::Utf8);
    }
    if schema.propensity.is_some() {
        types.push(DataType::Float64);
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&types)
        .enumerate()
        .map(|(i, (n, t))| Field::new(*n, t.clone(), i > 2))
        .collect();
    let arrow_schema = Arc::new(ArrowSchema::new(fields));
    let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(file, arrow_schema.clone(), Some(props)).map_err(|e| io_err(path, "write", e))?;
    let width = schema.hs_width as usize;
    let mut start = 0;
    while start < batch.len() || (start == 0 && batch.is_empty()) {
        let end = (start + WRITE_SLICE).min(batch.len());
        let rows = start..end;
        let opt_str = |v: &[String]| -> ArrayRef {
            Arc::new(StringArray::from_iter(v[rows.clone()].iter().map(|s| (!s.is_empty()).then_some(s.as_str()))))
        };
        let f32_col = |v: &[f32]| -> ArrayRef {
            Arc::new(Float32Array::from_iter(v[rows.clone()].iter().map(|x| (!x.is_nan()).then_some(*x))))
        };
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(batch.ids[rows.clone()].iter())),
            Arc::new(Date32Array::from_iter_values(batch.dates[rows.clone()].iter().copied())),
            Arc::new(StringArray::from_iter_values(batch.hs[rows.clone()].iter().map(|h| format!("{h:0width$}")))),
        ];
        cols.extend(batch.categorical.iter().map(|c| opt_str(c)));
        cols.extend(batch.numeric.iter().map(|c| f32_col(c)));
        if let Some(l) = &schema.label {
            let v = &batch.label[rows.clone()];
            cols.push(if int_label {
                Arc::new(Int64Array::from_iter(v.iter().map(|x| x.and_then(|b| label_text(l, Some(b)).parse::<i64>().ok()))))
            } else {
                Arc::new(StringArray::from_iter(v.iter().map(|x| x.map(|b| label_text(l, Some(b))))))
            });
        }
        if schema.revenue.is_some() {
            cols.push(Arc::new(Float32Array::from_iter(batch.revenue[rows.clone()].iter().copied())));
        }
        if schema.inspected.is_some() {
            cols.push(Arc::new(BooleanArray::from_iter(batch.inspected[rows.clone()].iter().map(|b| Some(*b)))));
        }
        if schema.selection.is_some() {
            cols.push(Arc::new(StringArray::from_iter(batch.selection[rows.clone()].iter().map(|s| s.map(|s| s.as_str())))));
        }
        if schema.propensity.is_some() {
            cols.push(Arc::new(Float64Array::from_iter(batch.propensity[rows.clone()].iter().copied())));
        }
        let rb = RecordBatch::try_new(arrow_schema.clone(), cols).map_err(|e| io_err(path, "build Parquet batch", e))?;
        w.write(&rb).map_err(|e| io_err(path, "write", e))?;
        if end == batch.len() {
            break;
        }
        start = end;
    }
    w.close().map_err(|e| io_err(path, "finish", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_text_round_trips() {
        for v in [0.1f32, 1.0, 3.4e38, 1e-40, 123456.79, 0.3333333, 6.0e7, -2.5] {
            let mut s = String::new();
            f32_text(v, &mut s);
            assert_eq!(s.parse::<f64>().unwrap() as f32, v, "{s}");
        }
    }

    #[test]
    fn date_formats() {
        let mut s = String::new();
        DateFormat::new("%d/%m/%Y").unwrap().write(18_628, &mut s).unwrap();
        assert_eq!(s, "01/01/2021");
        assert!(DateFormat::new("%Q").is_err());
    }
}
