//! Writing a validated [`Batch`] back to CSV or Parquet in the schema's layout, such that
//! reading it back with the same schema gives the same batch (except `lines`/`source`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int64Array, RecordBatch,
    StringArray,
};
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

pub(crate) fn io_err(
    path: &Path,
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> DataError {
    DataError::io_source(format!("{}: cannot {what}", path.display()), e)
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

/// Appends `v` exactly as `format!("{v}")` writes it: the shortest digits that read back to
/// `v` (the closest such; an exact tie goes to the larger magnitude, as std's Grisu/Dragon
/// do), never an exponent (`0.0000001`, `1000000000000000000000`), no `.0` on integers, `-0`,
/// `inf`, `-inf`, `NaN`. The digits come from zmij (Schubfach), several times faster than
/// `core::fmt`, which breaks exact ties to even instead: those are detected and moved up.
pub fn push_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if !v.is_finite() {
        let _ = write!(out, "{v}");
        return;
    }
    let mut buf = zmij::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
    // Fast path: zmij's fixed notation with a fraction is already std's layout; only an exact
    // tie could change the digits, and that needs `v`'s lowest set bit at 2^(k - 1), the
    // last digit being 10^k (see `is_tie_below`), with -k < the text's length. An exponent,
    // if any, is in the last five bytes ("e-308").
    let tail = &s[s.len().saturating_sub(5)..];
    let tie_possible = lowest_bit_exponent(v).is_some_and(|q| q + 1 > -(s.len() as i32));
    if !tie_possible && !tail.contains(&b'e') && !s.ends_with(b".0") {
        out.extend_from_slice(s);
        return;
    }
    // zmij writes [-]ddd.ddd or [-]d[.ddd]e±x: collect the significant digits and where the
    // point goes
    let (mantissa, exp) = match s.iter().position(|&b| b == b'e') {
        Some(e) => (&s[..e], &s[e + 1..]),
        None => (s, &b"0"[..]),
    };
    let mantissa = mantissa.strip_prefix(b"-").unwrap_or(mantissa);
    let (exp_neg, exp) = match exp.split_first() {
        Some((b'-', x)) => (true, x),
        Some((b'+', x)) => (false, x),
        _ => (false, exp),
    };
    let exp = exp
        .iter()
        .fold(0i32, |a, &b| a * 10 + i32::from(b.wrapping_sub(b'0')));
    let exp = if exp_neg { -exp } else { exp };
    let mut digits = [0u8; 24];
    let (mut n, mut int_digits, mut seen_point) = (0usize, 0i32, false);
    for &b in mantissa {
        if b == b'.' {
            seen_point = true;
        } else if n < digits.len() {
            if n == 0 && b == b'0' {
                // a leading zero ("0.00123"): the point moves instead
                if seen_point {
                    int_digits -= 1;
                }
                continue;
            }
            digits[n] = b;
            n += 1;
            if !seen_point {
                int_digits += 1;
            }
        }
    }
    while n > 0 && digits[n - 1] == b'0' {
        n -= 1;
    }
    // value = 0.d1d2..dn × 10^point
    let point = int_digits + exp;
    if n > 0 && digits[n - 1] % 2 == 0 && is_tie_below(v.abs(), &digits[..n], point - n as i32) {
        // the last digit is even (ties to even), so no carry
        digits[n - 1] += 1;
    }
    let digits = &digits[..n.max(1)];
    if n == 0 {
        // zero
        if v.is_sign_negative() {
            out.push(b'-');
        }
        out.push(b'0');
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(digits);
    } else if (point as usize) < digits.len() {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    } else {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
    }
}

/// Whether `v` (finite, > 0) is exactly halfway between `D × 10^k` and `(D + 1) × 10^k`,
/// `D` being the decimal `digits`: `v = (2D + 1) × 10^k / 2`. With `v = m' × 2^q` (`m'`
/// odd) that needs `q = k - 1` and `m' × 5^-k = 2D + 1` (k < 0) or `m' = (2D + 1) × 5^k`.
fn is_tie_below(v: f64, digits: &[u8], k: i32) -> bool {
    if lowest_bit_exponent(v) != Some(k - 1) {
        return false;
    }
    let m = odd_mantissa(v);
    let Some(d) = digits.iter().try_fold(0u128, |a, &b| {
        a.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    }) else {
        return false;
    };
    let (odd, rhs) = (u128::from(m), 2 * d + 1);
    let pow5 = |p: u32| (0..p).try_fold(1u128, |a, _| a.checked_mul(5));
    if k < 0 {
        pow5(k.unsigned_abs()).and_then(|p| odd.checked_mul(p)) == Some(rhs)
    } else {
        pow5(k as u32).and_then(|p| rhs.checked_mul(p)) == Some(odd)
    }
}

/// `v = m' × 2^q` with `m'` odd (finite `v`): `m'` (0 for zero).
fn odd_mantissa(v: f64) -> u64 {
    let bits = v.to_bits();
    let (biased, frac) = ((bits >> 52) & 0x7FF, bits & ((1 << 52) - 1));
    let m = if biased == 0 { frac } else { frac | 1 << 52 };
    if m == 0 {
        0
    } else {
        m >> m.trailing_zeros()
    }
}

/// `v = m' × 2^q` with `m'` odd (finite `v`): `q` (`None` for zero).
fn lowest_bit_exponent(v: f64) -> Option<i32> {
    let bits = v.to_bits();
    let (biased, frac) = (((bits >> 52) & 0x7FF) as i32, bits & ((1 << 52) - 1));
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, biased - 1075)
    };
    (m != 0).then(|| e + m.trailing_zeros() as i32)
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
        Ok(DateFormat {
            iso: format == "%Y-%m-%d",
            items,
        })
    }

    pub(crate) fn write(&self, days: i32, out: &mut String) -> Result<(), DataError> {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .ok_or_else(|| DataError::io("bad epoch"))?;
        let date = epoch
            .checked_add_signed(chrono::Duration::days(days as i64))
            .ok_or_else(|| {
                DataError::value(format!("date {days} days after 1970-01-01 is out of range"))
            })?;
        let r = if self.iso {
            use chrono::Datelike;
            write!(
                out,
                "{:04}-{:02}-{:02}",
                date.year(),
                date.month(),
                date.day()
            )
        } else {
            write!(out, "{}", date.format_with_items(self.items.iter()))
        };
        r.map_err(|_| {
            DataError::value(format!(
                "cannot format date {days} with the schema's format"
            ))
        })
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
///
/// The whole batch at once; [`BatchWriter`] writes a file batch by batch in flat memory
/// (the same bytes for the same rows, however they are cut into batches).
pub fn write_batch(path: &Path, schema: &Schema, batch: &Batch) -> Result<(), DataError> {
    let mut w = BatchWriter::create(path, schema)?;
    w.write(batch)?;
    w.finish()
}

/// Writes one CSV or Parquet file (by extension, as [`write_batch`]) from batches appended
/// in order: memory holds one batch (and, for Parquet, the row group being built), not the
/// file. Call [`BatchWriter::finish`]: a writer dropped without it leaves an incomplete file.
pub struct BatchWriter<'s> {
    path: std::path::PathBuf,
    schema: &'s Schema,
    rows: u64,
    inner: Inner,
}

// One writer per output file, never per row: the CSV variant's inline buffer costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Csv {
        w: csv::Writer<BufWriter<File>>,
        dates: DateFormat,
        cells: Vec<String>,
    },
    Parquet {
        w: Box<ArrowWriter<File>>,
        arrow_schema: Arc<ArrowSchema>,
        int_label: bool,
    },
}

impl<'s> BatchWriter<'s> {
    /// Create (truncate) `path` and write the header (CSV) or open the Parquet writer.
    pub fn create(path: &Path, schema: &'s Schema) -> Result<BatchWriter<'s>, DataError> {
        let inner = match FileFormat::of(path)? {
            FileFormat::Csv { tab } => csv_writer(path, schema, if tab { b'\t' } else { b',' })?,
            FileFormat::Parquet => parquet_writer(path, schema)?,
        };
        Ok(BatchWriter {
            path: path.to_path_buf(),
            schema,
            rows: 0,
            inner,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Append the rows of `batch` (laid out by the writer's schema).
    pub fn write(&mut self, batch: &Batch) -> Result<(), DataError> {
        let (path, schema) = (self.path.as_path(), self.schema);
        batch.check_lengths().map_err(|e| {
            DataError::value(format!("{}: inconsistent batch: {e}", path.display()))
        })?;
        if batch.categorical.len() != schema.categorical.len()
            || batch.numeric.len() != schema.numeric.len()
        {
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
        match &mut self.inner {
            Inner::Csv { w, dates, cells } => write_csv_rows(path, schema, batch, w, dates, cells)?,
            Inner::Parquet {
                w,
                arrow_schema,
                int_label,
            } => write_parquet_rows(path, schema, batch, w, arrow_schema, *int_label)?,
        }
        self.rows += batch.len() as u64;
        Ok(())
    }

    /// Flush and close the file (Parquet: its footer).
    pub fn finish(self) -> Result<(), DataError> {
        let path = self.path.as_path();
        match self.inner {
            Inner::Csv { mut w, .. } => w.flush().map_err(|e| io_err(path, "write", e)),
            Inner::Parquet { w, .. } => {
                w.close().map(|_| ()).map_err(|e| io_err(path, "finish", e))
            }
        }
    }
}

fn csv_writer(path: &Path, schema: &Schema, delimiter: u8) -> Result<Inner, DataError> {
    let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(BufWriter::with_capacity(1 << 18, file));
    let header = used_columns(schema);
    w.write_record(&header)
        .map_err(|e| io_err(path, "write", e))?;
    Ok(Inner::Csv {
        w,
        dates: DateFormat::new(&schema.date_format)?,
        cells: vec![String::new(); header.len()],
    })
}

fn write_csv_rows(
    path: &Path,
    schema: &Schema,
    batch: &Batch,
    w: &mut csv::Writer<BufWriter<File>>,
    dates: &DateFormat,
    cells: &mut [String],
) -> Result<(), DataError> {
    let width = schema.hs_width as usize;
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
        w.write_record(&*cells)
            .map_err(|e| io_err(path, "write", e))?;
    }
    Ok(())
}

fn parquet_writer(path: &Path, schema: &Schema) -> Result<Inner, DataError> {
    let names = used_columns(schema);
    let int_label = schema.label.as_ref().is_some_and(|l| {
        [label_text(l, Some(true)), label_text(l, Some(false))]
            .iter()
            .all(|s| s.parse::<i64>().is_ok())
    });
    let mut types = vec![DataType::Utf8, DataType::Date32, DataType::Utf8];
    types.extend(schema.categorical.iter().map(|_| DataType::Utf8));
    types.extend(schema.numeric.iter().map(|_| DataType::Float32));
    if schema.label.is_some() {
        types.push(if int_label {
            DataType::Int64
        } else {
            DataType::Utf8
        });
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
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let w = ArrowWriter::try_new(file, arrow_schema.clone(), Some(props))
        .map_err(|e| io_err(path, "write", e))?;
    Ok(Inner::Parquet {
        w: Box::new(w),
        arrow_schema,
        int_label,
    })
}

fn write_parquet_rows(
    path: &Path,
    schema: &Schema,
    batch: &Batch,
    w: &mut ArrowWriter<File>,
    arrow_schema: &Arc<ArrowSchema>,
    int_label: bool,
) -> Result<(), DataError> {
    let width = schema.hs_width as usize;
    let mut start = 0;
    while start < batch.len() {
        let end = (start + WRITE_SLICE).min(batch.len());
        let rows = start..end;
        let opt_str = |v: &[String]| -> ArrayRef {
            Arc::new(StringArray::from_iter(
                v[rows.clone()]
                    .iter()
                    .map(|s| (!s.is_empty()).then_some(s.as_str())),
            ))
        };
        let f32_col = |v: &[f32]| -> ArrayRef {
            Arc::new(Float32Array::from_iter(
                v[rows.clone()].iter().map(|x| (!x.is_nan()).then_some(*x)),
            ))
        };
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                batch.ids[rows.clone()].iter(),
            )),
            Arc::new(Date32Array::from_iter_values(
                batch.dates[rows.clone()].iter().copied(),
            )),
            Arc::new(StringArray::from_iter_values(
                batch.hs[rows.clone()]
                    .iter()
                    .map(|h| format!("{h:0width$}")),
            )),
        ];
        cols.extend(batch.categorical.iter().map(|c| opt_str(c)));
        cols.extend(batch.numeric.iter().map(|c| f32_col(c)));
        if let Some(l) = &schema.label {
            let v = &batch.label[rows.clone()];
            cols.push(if int_label {
                Arc::new(Int64Array::from_iter(v.iter().map(|x| {
                    x.and_then(|b| label_text(l, Some(b)).parse::<i64>().ok())
                })))
            } else {
                Arc::new(StringArray::from_iter(
                    v.iter().map(|x| x.map(|b| label_text(l, Some(b)))),
                ))
            });
        }
        if schema.revenue.is_some() {
            cols.push(Arc::new(Float32Array::from_iter(
                batch.revenue[rows.clone()].iter().copied(),
            )));
        }
        if schema.inspected.is_some() {
            cols.push(Arc::new(BooleanArray::from_iter(
                batch.inspected[rows.clone()].iter().map(|b| Some(*b)),
            )));
        }
        if schema.selection.is_some() {
            cols.push(Arc::new(StringArray::from_iter(
                batch.selection[rows.clone()]
                    .iter()
                    .map(|s| s.map(|s| s.as_str())),
            )));
        }
        if schema.propensity.is_some() {
            cols.push(Arc::new(Float64Array::from_iter(
                batch.propensity[rows.clone()].iter().copied(),
            )));
        }
        let rb = RecordBatch::try_new(arrow_schema.clone(), cols)
            .map_err(|e| io_err(path, "build Parquet batch", e))?;
        w.write(&rb).map_err(|e| io_err(path, "write", e))?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_text_round_trips() {
        for v in [
            0.1f32, 1.0, 3.4e38, 1e-40, 123456.79, 0.3333333, 6.0e7, -2.5,
        ] {
            let mut s = String::new();
            f32_text(v, &mut s);
            assert_eq!(s.parse::<f64>().unwrap() as f32, v, "{s}");
        }
    }

    /// `push_f64` writes what `format!("{}")` writes, on special values, powers of ten at
    /// every exponent, f32 values widened (the scores), percentiles and random bit patterns.
    #[test]
    fn push_f64_equals_std_display() {
        let mut vals: Vec<f64> = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.5,
            100.0,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e23,
            1e-5,
            1e-6,
            1e-7,
            123456789012345680.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.3,
            2.0 / 3.0,
        ];
        for e in -330..=310 {
            let p = format!("1e{e}").parse::<f64>().unwrap();
            vals.extend([
                p,
                -p,
                1.5 * p,
                9.999999999999999 * p,
                0.12345678901234567 * p,
            ]);
        }
        for below in 0..=101 {
            vals.push(100.0 * below as f64 / 101.0);
        }
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals.push(f64::from_bits(x));
            vals.push(f64::from(f32::from_bits(x as u32)));
            vals.push(f64::from(
                f32::from_bits((x >> 40) as u32 | 0x3C00_0000) % 1.0,
            ));
        }
        let mut out = Vec::new();
        for v in vals {
            out.clear();
            push_f64(&mut out, v);
            assert_eq!(
                std::str::from_utf8(&out).unwrap(),
                format!("{v}"),
                "bits {:#x}",
                v.to_bits()
            );
        }
    }

    #[test]
    fn date_formats() {
        let mut s = String::new();
        DateFormat::new("%d/%m/%Y")
            .unwrap()
            .write(18_628, &mut s)
            .unwrap();
        assert_eq!(s, "01/01/2021");
        assert!(DateFormat::new("%Q").is_err());
    }
}
