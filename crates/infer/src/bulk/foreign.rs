//! Scoring foreign models (skl2onnx / onnxmltools exports) from a CSV file: one float input
//! [N, F] fed from named columns, or one `[N, 1]` input per column (e.g. a scikit-learn
//! `ColumnTransformer` pipeline converted by skl2onnx), each fed from the file column of the
//! same name or the one [`BulkOptions::map`] names, typed by the input's declared element
//! type: `string` (the cell as it is), `float` / `double` (the number rules below), `int64`
//! (an integer, not empty). Named-input models run on ONNX Runtime.
//!
//! Rows are checked and rejected as for our models ([`BulkOptions::on_error`],
//! [`BulkOptions::rejects`], the same [`Reject`] records and reject file): with `fail` the
//! first bad row stops the run, naming file, line, column, value and why, and no output is
//! left; with `skip` the row is left out of the output and written to the rejects. A row is
//! rejected for
//! - a wrong number of fields;
//! - a feature cell that is not a finite number within the f32 range (invalid UTF-8, text,
//!   `NaN`, `inf`, `1e39`);
//! - with an id column: an empty id, or an id seen on an earlier row (accepted or not;
//!   "duplicate id (first seen on line N)"). Duplicates are found after the last block
//!   with bounded memory (sorted runs on disk, [`cr_data::DeferredIds`]) and merged into
//!   the rejects by [`cr_data::RejectSpool`], as for our models: the reject file and the
//!   output are those of an immediate check (rejects in line order, a duplicate listed
//!   with the row's other problems, a duplicate never a "no score" row), and with `fail`
//!   the error is the first bad row;
//! - a score that is not a finite number: the model could not score the row (e.g. a
//!   scikit-learn scaler + logistic regression given a missing value).
//!
//! An empty feature cell is a missing value and goes to the model as NaN, which is how
//! skl2onnx / onnxmltools models take missing values (tree ensembles send NaN down each
//! node's missing-value branch) and what pandas gives the model in Python. Numbers are parsed
//! as f64 and rounded to f32, as `df.astype(np.float32)` does.
//!
//! Default mapping (no [`BulkOptions::features`]): the columns (other than the id column)
//! whose non-empty cells in the first [`SAMPLE_ROWS`] data rows all parse as finite numbers,
//! with at least one non-empty cell, in file order; they must be exactly F. The mapping goes
//! to [`Progress::mapping`].
//!
//! Memory: one block of rows, the sorted run of the duplicate check (16 MB) and, with a
//! budget, 4 bytes per scored row; ids, duplicate runs and rejects wait on disk.

use std::path::Path;

use cr_data::{
    join_duplicate, DeferredIds, Found, LateDuplicate, OnError, Problem, Reject, RejectSpool,
    RejectWriter,
};

use super::sink::{with_ext, Sink};
use super::{BulkError, BulkOptions, BulkSummary, Progress};
use crate::{InputColumn, InputKind, LoadOptions, Model};
use cr_onnx::ElemType;

/// Data rows read to decide which columns are numeric (default mapping).
pub const SAMPLE_ROWS: usize = 1000;

/// Scores the file into `opts.out` (with a budget, the selection too; `pool` writes it).
/// On error no output is left behind.
pub(super) fn score(
    model_path: &Path,
    proto: &cr_onnx::proto::ModelProto,
    load: &LoadOptions,
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<BulkSummary, BulkError> {
    let model = Model::from_proto(proto, load).map_err(|source| BulkError::Load {
        path: model_path.to_path_buf(),
        source,
    })?;
    let sink = Sink::create(
        &opts.out,
        opts.budget,
        cr_model::meta::Prediction::Risk.column(),
    )?;
    let mut out = Out {
        sink,
        rejects: Rejects::None,
        ids: None,
        scored: 0,
        rejected: 0,
    };
    match score_rows(&model, opts, progress, &mut out) {
        Ok((mapping, dups)) => {
            let selected = out.sink.finish(&opts.out, pool, None, &dups)?;
            Ok(BulkSummary {
                rows: out.scored,
                rejected: out.rejected,
                engine: model.engine_used(),
                native_refused: model.native_refused().map(str::to_string),
                mapping: Some(mapping),
                ignored_columns: Vec::new(),
                selected,
                seconds: 0.0,
            })
        }
        Err(e) => {
            out.sink.discard(&opts.out);
            if let Rejects::Spool(s) = out.rejects {
                s.discard();
            }
            Err(e)
        }
    }
}

/// The CSV reader of `path` (header read by the caller; rows of any width).
fn reader(path: &Path, delimiter: u8) -> Result<csv::Reader<std::fs::File>, BulkError> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| BulkError::other(format!("opening {}", path.display()), e))
}

fn read_error(path: &Path, e: csv::Error) -> BulkError {
    let at = e
        .position()
        .map(|p| format!(": line {}", p.line()))
        .unwrap_or_default();
    BulkError::other(format!("{}{at}", path.display()), e)
}

/// A feature cell: empty -> NaN (missing); else a finite number within the f32 range.
fn feature(cell: &[u8]) -> Result<f32, (&'static str, &'static str)> {
    let text = std::str::from_utf8(cell)
        .map_err(|_| ("invalid UTF-8", "invalid UTF-8"))?
        .trim();
    if text.is_empty() {
        return Ok(f32::NAN);
    }
    match text.parse::<f64>() {
        Ok(v) if !v.is_finite() => Err(("not finite", "NaN and infinite values are not accepted")),
        Ok(v) if v.abs() > f64::from(f32::MAX) => {
            Err(("overflows f32", "too large for a 32-bit float"))
        }
        Ok(v) => Ok(v as f32),
        Err(_) => Err(("not a number", "not a number")),
    }
}

/// A cell of a named input of type `t`: numbers as [`feature`] reads them (`x`'s value);
/// `int64` and `string` cells also go to `texts` (`x` gets NaN, or the integer for messages).
fn named_cell(
    cell: &[u8],
    t: ElemType,
    texts: &mut Vec<String>,
) -> Result<f32, (&'static str, &'static str)> {
    match t {
        ElemType::F32 | ElemType::F64 => {
            let v = feature(cell)?;
            texts.push(String::new());
            Ok(v)
        }
        ElemType::I64 => {
            let text = std::str::from_utf8(cell)
                .map_err(|_| ("invalid UTF-8", "invalid UTF-8"))?
                .trim();
            if text.is_empty() {
                return Err((
                    "missing value",
                    "empty (the model's int64 input takes no missing values)",
                ));
            }
            let v: i64 = text.parse().map_err(|_| {
                (
                    "not an integer",
                    "not an integer (the model's input is int64)",
                )
            })?;
            texts.push(text.to_string());
            Ok(v as f32)
        }
        ElemType::Str => {
            let text = std::str::from_utf8(cell).map_err(|_| ("invalid UTF-8", "invalid UTF-8"))?;
            texts.push(text.to_string());
            Ok(f32::NAN)
        }
    }
}

/// The accepted rows (row-major `x` and `texts`, one value per input) as one column per
/// named input, typed for the model.
fn named_columns(
    types: &[(String, ElemType)],
    x: &[f32],
    texts: &[String],
) -> Vec<(String, InputColumn)> {
    let f = types.len();
    let n = x.len().checked_div(f).unwrap_or(0);
    types
        .iter()
        .enumerate()
        .map(|(k, (name, t))| {
            let col = match t {
                ElemType::F32 | ElemType::F64 => {
                    InputColumn::F32((0..n).map(|r| x[r * f + k]).collect())
                }
                ElemType::I64 => InputColumn::I64(
                    (0..n)
                        .map(|r| texts[r * f + k].parse().unwrap_or_default())
                        .collect(),
                ),
                ElemType::Str => {
                    InputColumn::Str((0..n).map(|r| texts[r * f + k].clone()).collect())
                }
            };
            (name.clone(), col)
        })
        .collect()
}

/// The columns (other than `id_col`) that look numeric in the first [`SAMPLE_ROWS`] data
/// rows: every non-empty cell parses as a finite number, and at least one is non-empty. Rows
/// of the wrong width are not looked at (they are rejected when scored).
fn numeric_columns(
    path: &Path,
    delimiter: u8,
    width: usize,
    id_col: Option<usize>,
) -> Result<(Vec<usize>, usize), BulkError> {
    let mut rdr = reader(path, delimiter)?;
    let (mut seen, mut numeric) = (vec![false; width], vec![true; width]);
    let mut rec = csv::ByteRecord::new();
    let mut rows = 0;
    while rows < SAMPLE_ROWS
        && rdr
            .read_byte_record(&mut rec)
            .map_err(|e| read_error(path, e))?
    {
        rows += 1;
        if rec.len() != width {
            continue;
        }
        for (i, cell) in rec.iter().enumerate() {
            // invalid UTF-8 is a non-empty cell that is not a number
            if !std::str::from_utf8(cell).is_ok_and(|s| s.trim().is_empty()) {
                seen[i] = true;
                numeric[i] &= feature(cell).is_ok();
            }
        }
    }
    if rows == 0 {
        return Err(BulkError::Invalid(format!("{}: no data rows to find the numeric columns in; name the model's columns with --features a,b,c", path.display())));
    }
    Ok((
        (0..width)
            .filter(|&i| Some(i) != id_col && seen[i] && numeric[i])
            .collect(),
        rows,
    ))
}

/// Which file columns feed the model, in order.
fn mapping(
    opts: &BulkOptions,
    header: &[String],
    n_features: usize,
    id_col: Option<usize>,
    delimiter: u8,
) -> Result<(Vec<usize>, String), BulkError> {
    let path = &opts.data;
    let find = |name: &str| header.iter().position(|h| h == name);
    if opts.features.is_empty() {
        let (numeric, rows) = numeric_columns(path, delimiter, header.len(), id_col)?;
        if numeric.is_empty() || (n_features != 0 && numeric.len() != n_features) {
            return Err(BulkError::Invalid(format!(
                "{}: the model takes {n_features} features but the first {rows} data rows show {} numeric columns ({}); \
                 name the model's columns, in its order, with --features a,b,c",
                path.display(),
                numeric.len(),
                numeric.iter().map(|&i| header[i].as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok((
            numeric,
            format!(" (the numeric columns of the first {rows} data rows)"),
        ))
    } else {
        let mut missing = Vec::new();
        let idx: Vec<usize> = opts
            .features
            .iter()
            .filter_map(|f| {
                find(f).or_else(|| {
                    missing.push(f.clone());
                    None
                })
            })
            .collect();
        if !missing.is_empty() {
            return Err(BulkError::Invalid(format!(
                "{}: no column named {}",
                path.display(),
                missing.join(", ")
            )));
        }
        if n_features != 0 && idx.len() != n_features {
            return Err(BulkError::Invalid(format!(
                "--features names {} columns but the model takes {n_features}",
                idx.len()
            )));
        }
        Ok((idx, String::new()))
    }
}

/// A rejected row as the block check made it, before duplicates are known.
struct Pending {
    reject: Reject,
    /// Rejected because the model gave no score (its cells were fine).
    no_score: bool,
}

/// The duplicates `dups` (line order) as rejects: their cells read from the file again.
fn late_duplicates(
    path: &Path,
    delimiter: u8,
    dups: &[Found],
    header: &[String],
    id_col: usize,
) -> Result<Vec<LateDuplicate>, BulkError> {
    let lines: Vec<u64> = dups.iter().map(|d| d.line).collect();
    let recs = records_at(path, delimiter, &lines)?;
    Ok(dups
        .iter()
        .zip(&recs)
        .map(|(d, rec)| {
            let id = String::from_utf8_lossy(rec.get(id_col).unwrap_or_default());
            LateDuplicate::new(d, &header[id_col], id.trim(), raw(rec))
        })
        .collect())
}

/// The records starting on `lines` (ascending) of the CSV file at `path`, read again as the
/// scoring pass read it (header skipped, rows of any width).
fn records_at(
    path: &Path,
    delimiter: u8,
    lines: &[u64],
) -> Result<Vec<csv::ByteRecord>, BulkError> {
    let mut rdr = reader(path, delimiter)?;
    let mut out = Vec::with_capacity(lines.len());
    let mut rec = csv::ByteRecord::new();
    let mut want = lines.iter().peekable();
    while let Some(&&line) = want.peek() {
        if !rdr
            .read_byte_record(&mut rec)
            .map_err(|e| read_error(path, e))?
        {
            return Err(BulkError::Invalid(format!(
                "{}: line {line} is gone (was the file changed while it was scored?)",
                path.display()
            )));
        }
        let at = rec.position().map_or(0, csv::Position::line);
        if at == line {
            out.push(rec.clone());
            want.next();
        } else if at > line {
            return Err(BulkError::Invalid(format!(
                "{}: no record starts on line {line} (was the file changed while it was scored?)",
                path.display()
            )));
        }
    }
    Ok(out)
}

/// The file column of each named input: the column of the same name, or the one
/// `opts.map` gives it. Missing columns are one error naming each.
fn named_mapping(
    opts: &BulkOptions,
    header: &[String],
    inputs: &[(String, ElemType)],
) -> Result<Vec<usize>, BulkError> {
    let path = &opts.data;
    if !opts.features.is_empty() {
        return Err(BulkError::Invalid(
            "--features is for models with one float matrix input; this model has named inputs \
             (fed from the columns of the same name, or --map input=column)"
                .into(),
        ));
    }
    if let Some((input, _)) = opts
        .map
        .iter()
        .find(|(i, _)| !inputs.iter().any(|(n, _)| n == i))
    {
        return Err(BulkError::Invalid(format!(
            "--map {input}=...: the model has no input {input:?} (its inputs: {})",
            inputs
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut missing = Vec::new();
    let cols: Vec<usize> = inputs
        .iter()
        .filter_map(|(name, t)| {
            let col = opts
                .map
                .iter()
                .find(|(i, _)| i == name)
                .map_or(name.as_str(), |(_, c)| c.as_str());
            let found = header.iter().position(|h| h == col);
            if found.is_none() {
                missing.push(format!(
                    "{col:?} (for the model's {} input {name:?})",
                    t.as_str()
                ));
            }
            found
        })
        .collect();
    if !missing.is_empty() {
        return Err(BulkError::Invalid(format!(
            "{}: no column {}; name the column of an input with --map input=column",
            path.display(),
            missing.join(", ")
        )));
    }
    Ok(cols)
}

/// One block of rows read from the file.
struct Block {
    recs: Vec<csv::ByteRecord>,
    /// Rows read into `recs`.
    len: usize,
}

/// Where rejected rows go: nowhere, the reject file (no id column: no duplicates to
/// merge), or the spool until the duplicates are known.
enum Rejects {
    None,
    File(RejectWriter),
    Spool(RejectSpool),
}

impl Rejects {
    /// Rows of one block, in line order.
    fn write(&mut self, rejects: Vec<Pending>) -> Result<(), BulkError> {
        match self {
            Rejects::None => Ok(()),
            Rejects::File(w) => {
                Ok(w.write(&rejects.into_iter().map(|p| p.reject).collect::<Vec<_>>())?)
            }
            Rejects::Spool(s) => Ok(rejects.iter().try_for_each(|p| {
                if p.no_score {
                    s.push_unscored(&p.reject)
                } else {
                    s.push(std::slice::from_ref(&p.reject))
                }
            })?),
        }
    }
}

/// Where scored rows go, and what has been written.
struct Out {
    sink: Sink,
    rejects: Rejects,
    /// With an id column: every row with a valid id (key, line, output ordinal).
    ids: Option<DeferredIds>,
    /// Rows written to the sink.
    scored: u64,
    rejected: u64,
}

/// Check, score and write every row; returns the mapping (as given to `progress`) and the
/// output ordinals of the late duplicates (ascending), which [`Sink::finish`] leaves out.
fn score_rows(
    model: &Model,
    opts: &BulkOptions,
    progress: &dyn Progress,
    out: &mut Out,
) -> Result<(String, Vec<u64>), BulkError> {
    let path = &opts.data;
    if cr_data::FileFormat::of(path)? == cr_data::FileFormat::Parquet {
        return Err(BulkError::Invalid(format!(
            "{}: foreign models are scored from CSV files (convert the Parquet file, or train a customs-risk model)",
            path.display()
        )));
    }
    let delimiter = opts.delimiter;
    let mut rdr = reader(path, delimiter)?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| BulkError::other(format!("{}: no header", path.display()), e))?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                s.trim_start_matches('\u{feff}')
            } else {
                s
            }
            .to_string()
        })
        .collect();
    let id_col = match &opts.id_column {
        Some(c) => Some(header.iter().position(|h| h == c).ok_or_else(|| {
            BulkError::Invalid(format!(
                "--id-column {c:?} is not a column of {}",
                path.display()
            ))
        })?),
        None => None,
    };
    let (cols, types, mapping) = match model.input_kind().clone() {
        InputKind::Matrix {
            n_features,
            input_name,
        } => {
            if !opts.map.is_empty() {
                return Err(BulkError::Invalid(
                    "--map is for models with named inputs; this one takes one float matrix \
                     (name its columns with --features a,b,c)"
                        .into(),
                ));
            }
            let (cols, how) = mapping(opts, &header, n_features, id_col, delimiter)?;
            let mapping = format!(
                "input {input_name:?} [N, {}]{how} <- {}",
                cols.len(),
                cols.iter()
                    .map(|&i| header[i].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (cols, None, mapping)
        }
        InputKind::NamedColumns(inputs) => {
            let cols = named_mapping(opts, &header, &inputs)?;
            let mapping = inputs
                .iter()
                .zip(&cols)
                .map(|((n, t), &c)| format!("input {n:?} ({}) <- {}", t.as_str(), header[c]))
                .collect::<Vec<_>>()
                .join(", ");
            (cols, Some(inputs), mapping)
        }
    };
    progress.mapping(&mapping);
    let fail = opts.on_error == OnError::Fail;
    let source = path.display().to_string();
    if let Some(p) = &opts.rejects {
        let w = RejectWriter::create(p, &source)?;
        out.rejects = match id_col {
            None => Rejects::File(w),
            Some(_) => Rejects::Spool(RejectSpool::create(
                with_ext(&opts.out, ".rejects.tmp"),
                w,
                &header,
            )?),
        };
    }
    out.ids = id_col.map(|_| DeferredIds::new(cr_data::DEFAULT_RUN_ENTRIES, None, &source));
    let rows = Rows {
        header: &header,
        cols: &cols,
        types: types.as_deref(),
        id_col,
        source: &source,
        path,
        delimiter,
    };
    let mut block = Block {
        recs: vec![csv::ByteRecord::new(); opts.batch_rows.max(1)],
        len: 0,
    };
    let mut data_rows = 0u64;
    loop {
        block.len = 0;
        while block.len < block.recs.len()
            && rdr
                .read_byte_record(&mut block.recs[block.len])
                .map_err(|e| read_error(path, e))?
        {
            block.len += 1;
        }
        if block.len == 0 {
            break;
        }
        let scored = rows.score_block(model, &block, data_rows, fail, out)?;
        progress.rows(scored);
        data_rows += block.len as u64;
    }
    let dups = match (&mut out.ids, id_col) {
        (Some(log), Some(c)) => {
            let dups = log.finish()?;
            if fail {
                if let Some(d) = dups.first() {
                    let late = late_duplicates(path, delimiter, &[*d], &header, c)?;
                    return Err(BulkError::Invalid(late[0].reject.describe(&source)));
                }
            }
            if let Rejects::Spool(s) = std::mem::replace(&mut out.rejects, Rejects::None) {
                let late = match late_duplicates(path, delimiter, &dups, &header, c) {
                    Ok(l) => l,
                    Err(e) => {
                        s.discard();
                        return Err(e);
                    }
                };
                s.finish(&late)?;
            }
            dups
        }
        _ => Vec::new(),
    };
    if let Rejects::File(w) = std::mem::replace(&mut out.rejects, Rejects::None) {
        w.finish()?;
    }
    // accepted rows found to be duplicates: out of the output
    let late: Vec<u64> = dups.iter().filter_map(|d| d.ordinal).collect();
    out.scored -= late.len() as u64;
    out.rejected += late.len() as u64;
    Ok((mapping, late))
}

/// How file rows become model rows.
struct Rows<'a> {
    header: &'a [String],
    cols: &'a [usize],
    /// Named-input models: each input's name and element type (same order as `cols`).
    types: Option<&'a [(String, ElemType)]>,
    id_col: Option<usize>,
    source: &'a str,
    path: &'a Path,
    delimiter: u8,
}

fn raw(rec: &csv::ByteRecord) -> Vec<String> {
    rec.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

impl Rows<'_> {
    /// Check one row: its features go to `x` and its id is returned, or the row's problems;
    /// with the key of its id when the id is valid (to be logged for duplicates).
    fn check(
        &self,
        rec: &csv::ByteRecord,
        row_number: u64,
        line: u64,
        x: &mut Vec<f32>,
        texts: &mut Vec<String>,
    ) -> (Option<u128>, Result<String, Box<Pending>>) {
        if rec.len() != self.header.len() {
            let p = Problem::new(
                None,
                None,
                "wrong number of fields",
                format!("expected {} fields, found {}", self.header.len(), rec.len()),
            );
            return (
                None,
                Err(Box::new(Pending {
                    reject: Reject::from_problems(line, vec![p], raw(rec)),
                    no_score: false,
                })),
            );
        }
        let mut key = None;
        let mut problems: Vec<(usize, Problem)> = Vec::new();
        let (start, start_texts) = (x.len(), texts.len());
        for (k, &c) in self.cols.iter().enumerate() {
            let cell = rec.get(c).unwrap_or_default();
            let parsed = match self.types.map(|t| t[k].1) {
                None => feature(cell),
                Some(t) => named_cell(cell, t, texts),
            };
            match parsed {
                Ok(v) => x.push(v),
                Err((category, reason)) => {
                    problems.push((
                        c,
                        Problem::new(
                            Some(&self.header[c]),
                            Some(&String::from_utf8_lossy(cell)),
                            category,
                            reason,
                        ),
                    ));
                }
            }
        }
        let id = match self.id_col {
            None => row_number.to_string(),
            Some(c) => {
                let cell = String::from_utf8_lossy(rec.get(c).unwrap_or_default()).into_owned();
                let name = Some(self.header[c].as_str());
                if std::str::from_utf8(rec.get(c).unwrap_or_default()).is_err() {
                    problems.push((
                        c,
                        Problem::new(name, Some(&cell), "invalid UTF-8", "invalid UTF-8"),
                    ));
                } else if cell.trim().is_empty() {
                    problems.push((
                        c,
                        Problem::new(
                            name,
                            Some(&cell),
                            "missing value",
                            "empty (missing values are not allowed in this column)",
                        ),
                    ));
                } else {
                    key = Some(cr_data::id_key(cell.trim()));
                }
                cell.trim().to_string()
            }
        };
        if problems.is_empty() {
            (key, Ok(id))
        } else {
            x.truncate(start);
            texts.truncate(start_texts);
            problems.sort_by_key(|p| p.0);
            (
                key,
                Err(Box::new(Pending {
                    reject: Reject::from_problems(
                        line,
                        problems.into_iter().map(|p| p.1).collect(),
                        raw(rec),
                    ),
                    no_score: false,
                })),
            )
        }
    }

    /// Check, score and write one block (`before`: data rows of earlier blocks); returns the
    /// rows written. With `fail`, the first rejected row (by line) is the error.
    fn score_block(
        &self,
        model: &Model,
        block: &Block,
        before: u64,
        fail: bool,
        out: &mut Out,
    ) -> Result<u64, BulkError> {
        let f = self.cols.len();
        let mut texts = Vec::new();
        let (mut x, mut ids, mut at) = (
            Vec::with_capacity(block.len * f),
            Vec::with_capacity(block.len),
            Vec::with_capacity(block.len),
        );
        let mut rejects = Vec::new();
        // (id key, line, index among the accepted rows)
        let mut keys: Vec<(u128, u64, Option<usize>)> = Vec::new();
        for (i, rec) in block.recs[..block.len].iter().enumerate() {
            let line = rec.position().map_or(0, csv::Position::line);
            let (key, checked) = self.check(rec, before + i as u64 + 1, line, &mut x, &mut texts);
            if let Some(k) = key {
                keys.push((k, line, checked.is_ok().then_some(ids.len())));
            }
            match checked {
                Ok(id) => {
                    ids.push(id);
                    at.push(i);
                }
                Err(r) => {
                    rejects.push(*r);
                    if fail {
                        // score the rows before it: one of them may fail first
                        break;
                    }
                }
            }
        }
        let scores = match self.types {
            None => model.score_matrix(&x, ids.len())?,
            Some(types) => model.score_columns(&named_columns(types, &x, &texts), ids.len())?,
        };
        // rows the model gave no score
        let mut keep = vec![true; ids.len()];
        for (j, s) in scores.iter().enumerate() {
            if s.is_finite() {
                continue;
            }
            keep[j] = false;
            let rec = &block.recs[at[j]];
            // empty number cells (string and int64 inputs hold NaN in `x`)
            let number = |k: usize| {
                self.types
                    .is_none_or(|t| matches!(t[k].1, ElemType::F32 | ElemType::F64))
            };
            let empty: Vec<&str> = self
                .cols
                .iter()
                .enumerate()
                .zip(&x[j * f..(j + 1) * f])
                .filter(|((k, _), v)| v.is_nan() && number(*k))
                .map(|((_, &c), _)| self.header[c].as_str())
                .collect();
            let reason = if empty.is_empty() {
                format!("the model's score is {s}")
            } else {
                format!(
                    "the model's score is {s} (missing values in {}: the model does not take them)",
                    empty.join(", ")
                )
            };
            let column = empty.first().copied();
            let p = Problem::new(column, column.map(|_| ""), "no score", reason);
            let reject = Reject::from_problems(
                rec.position().map_or(0, csv::Position::line),
                vec![p],
                raw(rec),
            );
            rejects.push(Pending {
                reject,
                no_score: true,
            });
        }
        rejects.sort_by_key(|r| r.reject.line);
        if let Some(log) = &mut out.ids {
            // output ordinal of each accepted row that is written
            let mut ordinal = Vec::with_capacity(keep.len());
            let mut next = out.scored;
            for &k in &keep {
                ordinal.push(next);
                next += u64::from(k);
            }
            for &(key, line, accepted) in &keys {
                log.log(key, line, accepted.filter(|&j| keep[j]).map(|j| ordinal[j]))?;
            }
        }
        if fail {
            if let Some(first) = rejects.first() {
                return Err(self.first_error(first, out));
            }
        }
        out.rejected += rejects.len() as u64;
        out.rejects.write(rejects)?;
        let (ids, scores): (Vec<String>, Vec<f32>) = ids
            .into_iter()
            .zip(scores)
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| p)
            .unzip();
        out.scored += ids.len() as u64;
        out.sink.push(&ids, &scores, None)?;
        Ok(ids.len() as u64)
    }

    /// With `fail`: the error for `first`, the first row of this block rejected by its cells
    /// or its score, unless a duplicate id comes before it (or on its row).
    fn first_error(&self, first: &Pending, out: &mut Out) -> BulkError {
        let (Some(log), Some(c)) = (&mut out.ids, self.id_col) else {
            return BulkError::Invalid(first.reject.describe(self.source));
        };
        let dups = match log.finish() {
            Ok(d) => d,
            Err(e) => return e.into(),
        };
        let Some(d) = dups.first().filter(|d| d.line <= first.reject.line) else {
            return BulkError::Invalid(first.reject.describe(self.source));
        };
        let late = match late_duplicates(self.path, self.delimiter, &[*d], self.header, c) {
            Ok(l) => l,
            Err(e) => return e,
        };
        let reject = if d.line == first.reject.line {
            join_duplicate(&first.reject, first.no_score, &late[0], self.header)
        } else {
            late[0].reject.clone()
        };
        BulkError::Invalid(reject.describe(self.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_by_their_first_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.csv");
        std::fs::write(&p, "id,x\na,1\n\"b\nb\",2\nc\nd,4\n").unwrap();
        let recs = records_at(&p, b',', &[3, 5, 6]).unwrap();
        let got: Vec<Vec<&[u8]>> = recs.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(
            got,
            vec![vec![&b"b\nb"[..], b"2"], vec![b"c"], vec![b"d", b"4"]]
        );
        assert!(
            records_at(&p, b',', &[4]).is_err(),
            "line 4 is inside a record"
        );
        assert!(records_at(&p, b',', &[9]).is_err());
    }
}
