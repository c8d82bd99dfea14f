//! Parquet source: arrow record batches, each column viewed as one of a few canonical arrays,
//! then the same cell validation as CSV. Line numbers are 1-based record numbers.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::columns::{used_columns, ColumnMap};
use crate::domain::Domains;
use crate::error::{DataError, DataErrorKind};
use crate::ids::IdCheck;
use crate::read::{Chunk, ExtraColumns, OnError};
use crate::reject::Reject;
use crate::schema::{ymd_from_days, Schema};
use crate::validate::{Cell, Checker, Row, Rules};

/// A column in canonical form.
enum Col {
    Str(StringArray),
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
    Date(Date32Array),
    Bool(BooleanArray),
    Null,
}

impl Col {
    fn cell(&self, row: usize) -> Cell<'_> {
        macro_rules! get {
            ($a:expr, $variant:ident) => {
                if $a.is_null(row) {
                    Cell::Null
                } else {
                    Cell::$variant($a.value(row))
                }
            };
        }
        match self {
            Col::Str(a) => get!(a, Str),
            Col::Int(a) => get!(a, Int),
            Col::UInt(a) => get!(a, UInt),
            Col::Float(a) => get!(a, Float),
            Col::Date(a) => get!(a, Date),
            Col::Bool(a) => get!(a, Bool),
            Col::Null => Cell::Null,
        }
    }
}

/// Whether a Parquet/arrow column type can be read (before any cast).
fn supported(dt: &DataType) -> bool {
    use DataType::*;
    match dt {
        Utf8
        | LargeUtf8
        | Utf8View
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Date32
        | Date64
        | Timestamp(_, _)
        | Boolean
        | Null => true,
        Dictionary(_, v) => supported(v),
        _ => false,
    }
}

fn to_col(a: &ArrayRef, name: &str, source: &str) -> Result<Col, DataError> {
    use DataType::*;
    let fail = |e: String| DataError::format(format!("{source}: column {name:?}: {e}"));
    let canon = |to: &DataType| cast(a.as_ref(), to).map_err(|e| fail(e.to_string()));
    fn down<T: Clone + 'static>(a: &ArrayRef) -> Option<T> {
        a.as_any().downcast_ref::<T>().cloned()
    }
    let wrong = || fail("unexpected array type".to_string());
    Ok(match a.data_type() {
        Utf8 => Col::Str(down(a).ok_or_else(wrong)?),
        LargeUtf8 | Utf8View => Col::Str(down(&canon(&Utf8)?).ok_or_else(wrong)?),
        Int64 => Col::Int(down(a).ok_or_else(wrong)?),
        Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 => {
            Col::Int(down(&canon(&Int64)?).ok_or_else(wrong)?)
        }
        UInt64 => Col::UInt(down(a).ok_or_else(wrong)?),
        Float64 => Col::Float(down(a).ok_or_else(wrong)?),
        Float16 | Float32 => Col::Float(down(&canon(&Float64)?).ok_or_else(wrong)?),
        Date32 => Col::Date(down(a).ok_or_else(wrong)?),
        Date64 | Timestamp(_, _) => Col::Date(down(&canon(&Date32)?).ok_or_else(wrong)?),
        Boolean => Col::Bool(down(a).ok_or_else(wrong)?),
        Null => Col::Null,
        Dictionary(_, v) => {
            let values: ArrayRef = canon(v)?;
            return to_col(&values, name, source);
        }
        other => return Err(fail(format!("unsupported type {other}"))),
    })
}

struct PqRow<'a> {
    cols: &'a [Col],
    row: usize,
}

impl Row for PqRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        self.cols
            .get(idx)
            .map_or(Cell::Absent, |c| c.cell(self.row))
    }
    fn raw(&self) -> Vec<String> {
        self.cols
            .iter()
            .map(|c| match c.cell(self.row) {
                Cell::Date(d) => ymd_from_days(d),
                other => other.display().unwrap_or_default(),
            })
            .collect()
    }
}

pub(crate) struct ParquetSource {
    reader: ParquetRecordBatchReader,
    rules: Rules,
    checker: Checker,
    /// Indexes of the projected fields (to read the file again for late duplicates).
    keep: Vec<usize>,
    /// Projected column names (for messages).
    names: Vec<String>,
    /// Current record batch in canonical form and the next row in it.
    current: Vec<Col>,
    current_rows: usize,
    next_row: usize,
    /// Records consumed so far (the next record's number is this + 1).
    records: u64,
}

impl ParquetSource {
    pub(crate) fn open(
        path: &Path,
        source: &str,
        schema: &Schema,
        batch_rows: usize,
        require_label: bool,
        extra: ExtraColumns,
        domains: Arc<Domains>,
    ) -> Result<(ParquetSource, Vec<String>), DataError> {
        let file = File::open(path)
            .map_err(|e| DataError::io_source(format!("{source}: cannot open"), e))?;
        let len = file
            .metadata()
            .map_err(|e| DataError::io_source(format!("{source}: cannot read file metadata"), e))?
            .len();
        if len == 0 {
            return Err(DataError::new(
                DataErrorKind::Empty,
                format!("{source}: file is empty"),
            ));
        }
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            DataError::io_source(format!("{source}: not a readable Parquet file"), e)
        })?;
        let fields = builder.schema().fields().clone();
        let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        // Check names (unknown + missing in one error) on the full field list.
        ColumnMap::from_header(&names, schema, require_label, extra, source)?;
        let used = used_columns(schema);
        let keep: Vec<usize> = (0..names.len())
            .filter(|&i| used.contains(&names[i].as_str()))
            .collect();
        let mut bad_types = Vec::new();
        for &i in &keep {
            if !supported(fields[i].data_type()) {
                bad_types.push(format!("{:?} ({})", names[i], fields[i].data_type()));
            }
        }
        if !bad_types.is_empty() {
            return Err(DataError::format(format!(
                "{source}: unsupported Parquet column types: {} (expected text, integer, float, date or boolean)",
                bad_types.join(", ")
            )));
        }
        let projected: Vec<String> = keep.iter().map(|&i| names[i].clone()).collect();
        let map = ColumnMap::from_header(&projected, schema, require_label, extra, source)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), keep.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| DataError::io_source(format!("{source}: cannot read Parquet"), e))?;
        let src = ParquetSource {
            reader,
            rules: Rules {
                schema: schema.clone(),
                map,
                domains,
            },
            checker: Checker::new(schema),
            keep,
            names: projected,
            current: Vec::new(),
            current_rows: 0,
            next_row: 0,
            records: 0,
        };
        Ok((src, names))
    }

    fn load(&mut self, rb: RecordBatch, source: &str) -> Result<(), DataError> {
        if rb.num_columns() != self.names.len() {
            return Err(DataError::io(format!(
                "{source}: Parquet batch has {} columns, expected {}",
                rb.num_columns(),
                self.names.len()
            )));
        }
        let cols: Vec<Col> = rb
            .columns()
            .iter()
            .zip(&self.names)
            .map(|(a, n)| to_col(a, n, source))
            .collect::<Result<_, _>>()?;
        self.current = cols;
        self.current_rows = rb.num_rows();
        self.next_row = 0;
        Ok(())
    }

    /// Read rows into `chunk` until it is full; `Ok(false)` once the file is exhausted.
    pub(crate) fn fill(&mut self, chunk: &mut Chunk, ids: &mut IdCheck) -> Result<bool, DataError> {
        let mut kept = 0usize;
        let result = self.fill_rows(chunk, ids, &mut kept);
        chunk.batch.truncate_rows(kept);
        result
    }

    fn fill_rows(
        &mut self,
        chunk: &mut Chunk,
        ids: &mut IdCheck,
        kept: &mut usize,
    ) -> Result<bool, DataError> {
        chunk.batch.truncate_rows(0);
        while chunk.rows < chunk.max_rows {
            if self.next_row >= self.current_rows {
                match self.reader.next() {
                    None => return Ok(false),
                    Some(Err(e)) => {
                        return Err(DataError::io_source(
                            format!(
                                "{}: cannot read Parquet after record {}",
                                chunk.source, self.records
                            ),
                            e,
                        ))
                    }
                    Some(Ok(rb)) => {
                        self.load(rb, chunk.source)?;
                        continue;
                    }
                }
            }
            // Rows of the current record batch that fit in the chunk, into fresh slots.
            let take = (self.current_rows - self.next_row).min(chunk.max_rows - chunk.rows);
            chunk.batch.resize_rows(*kept + take);
            let mut regions = chunk.batch.slot_regions(&[*kept + take]);
            let Some(slots) = regions.first_mut() else {
                break;
            };
            for _ in 0..take {
                self.records += 1;
                // the line the record has in a CSV export with a header (see crate::read)
                let line = self.records + 1;
                let row = PqRow {
                    cols: &self.current,
                    row: self.next_row,
                };
                self.next_row += 1;
                chunk.rows += 1;
                let key = self.checker.check(&self.rules, &row, line, slots, *kept);
                if let Some(k) = key {
                    if let Some(first) = ids.first_seen(k, line) {
                        self.checker
                            .problems
                            .insert(0, self.rules.duplicate(&slots.ids[*kept], first));
                    }
                }
                let accepted = self.checker.problems.is_empty();
                if let Some(k) = key {
                    ids.log(
                        k,
                        line,
                        accepted.then_some(chunk.accepted_before + *kept as u64),
                    )?;
                }
                if accepted {
                    *kept += 1;
                } else {
                    let r = Reject::from_problems(
                        line,
                        std::mem::take(&mut self.checker.problems),
                        row.raw(),
                    );
                    if chunk.on_error == OnError::Fail {
                        return Err(DataError::value(r.describe(chunk.source)));
                    }
                    chunk.rejects.push(r);
                }
            }
            drop(regions);
            chunk.batch.truncate_rows(*kept);
            for (acc, u) in chunk.unseen.iter_mut().zip(&mut self.checker.unseen) {
                acc.merge(u);
                *u = Default::default();
            }
        }
        Ok(true)
    }

    /// The raw cells and the (trimmed) id of the records on `lines` (ascending; record `n`
    /// is line `n + 1`), by reading the file again.
    pub(crate) fn raw_at(
        &self,
        path: &Path,
        source: &str,
        lines: &[u64],
    ) -> Result<Vec<(Vec<String>, String)>, DataError> {
        let file = File::open(path)
            .map_err(|e| DataError::io_source(format!("{source}: cannot open"), e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            DataError::io_source(format!("{source}: not a readable Parquet file"), e)
        })?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), self.keep.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(1 << 16)
            .build()
            .map_err(|e| DataError::io_source(format!("{source}: cannot read Parquet"), e))?;
        let mut out = Vec::with_capacity(lines.len());
        let mut want = lines.iter().peekable();
        let mut record = 0u64;
        for rb in reader {
            if want.peek().is_none() {
                break;
            }
            let rb = rb.map_err(|e| {
                DataError::io_source(
                    format!("{source}: cannot read Parquet after record {record}"),
                    e,
                )
            })?;
            let cols: Vec<Col> = rb
                .columns()
                .iter()
                .zip(&self.names)
                .map(|(a, n)| to_col(a, n, source))
                .collect::<Result<_, _>>()?;
            // lines of this record batch: first ..= record (+1 for the header line)
            let first = record + 2;
            record += rb.num_rows() as u64;
            let last = record + 1;
            while let Some(&&line) = want.peek() {
                if line > last {
                    break;
                }
                want.next();
                if line < first {
                    out.push((Vec::new(), String::new()));
                    continue;
                }
                let row = PqRow {
                    cols: &cols,
                    row: (line - first) as usize,
                };
                let id = row
                    .cell(self.rules.map.id)
                    .display()
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                out.push((row.raw(), id));
            }
        }
        out.resize_with(lines.len(), || (Vec::new(), String::new()));
        Ok(out)
    }
}
