//! Streaming readers: [`open`] a CSV or Parquet file and iterate validated [`ReadChunk`]s.
//!
//! **Line numbers** (in rejects, [`crate::Batch::lines`] and duplicate messages) are the
//! same for CSV and Parquet: the line a row has in the file written as CSV with a header.
//! The header is line 1 and the first data row is line 2. In a CSV file it is the physical
//! line where the record starts (a quoted field with line breaks makes later records start
//! further down); in a Parquet file record `n` (1-based) is line `n + 1`. So a CSV file and
//! its Parquet conversion name the same row by the same number wherever no cell holds a
//! line break. (JSON records of the HTTP service are numbered 1, 2, ... in their array.)

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::csv_read::CsvSource;
use crate::domain::{Domains, Unseen};
use crate::error::DataError;
use crate::ids::{DuplicateCheck, IdCheck};
use crate::parquet_read::ParquetSource;
use crate::pseudonym::PseudonymKey;
use crate::reject::Reject;
use crate::schema::Schema;

/// What to do with a row that fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop at the first bad row with an error naming file, line, column, value and reason.
    #[default]
    Fail,
    /// Leave bad rows out of the batch and report them in [`ReadChunk::rejects`].
    Skip,
}

/// What to do with file columns the schema neither uses nor lists in `ignore`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraColumns {
    /// An error listing them (with the missing columns), default.
    #[default]
    Refuse,
    /// Leave them unread; [`Reader::ignored_columns`] names them. Missing columns stay an
    /// error.
    Ignore,
}

/// How to read a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// Rows per chunk (accepted + rejected), default 65,536. 0 is treated as 1.
    pub batch_rows: usize,
    /// CSV field delimiter, default `b','`. A `.tsv` file read with the default uses a tab.
    pub delimiter: u8,
    /// Default [`OnError::Fail`].
    pub on_error: OnError,
    /// Require the label column (training data); default false (scoring data).
    pub require_label: bool,
    /// How the duplicate-id rule is applied; default [`DuplicateCheck::Immediate`]. With
    /// [`DuplicateCheck::Deferred`] memory stays flat whatever the file size, and duplicates
    /// come from [`Reader::finish_duplicates`] after the last chunk.
    #[serde(default)]
    pub duplicates: DuplicateCheck,
    /// Columns the schema does not know; default [`ExtraColumns::Refuse`].
    #[serde(default)]
    pub extra_columns: ExtraColumns,
    /// Reject cells outside a categorical column's declared `values` / `pattern` (default
    /// false: they are kept and counted in [`ReadChunk::unseen`]).
    #[serde(default)]
    pub strict_categories: bool,
    /// The key of the schema's `pseudonymise = true` columns (required when there are any;
    /// see [`crate::pseudonym`]). Never serialized.
    #[serde(skip)]
    pub pseudonym_key: Option<PseudonymKey>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_rows: 65_536,
            delimiter: b',',
            on_error: OnError::Fail,
            require_label: false,
            duplicates: DuplicateCheck::Immediate,
            extra_columns: ExtraColumns::Refuse,
            strict_categories: false,
            pseudonym_key: None,
        }
    }
}

/// Up to `batch_rows` consecutive rows of a file: the accepted ones and the rejected ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadChunk {
    pub batch: Batch,
    pub rejects: Vec<Reject>,
    /// Per categorical column (schema order): cells outside the declared domain that were
    /// kept (always empty counts with `strict_categories`, where they are rejects).
    pub unseen: Vec<Unseen>,
}

/// File formats [`open`] understands, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.csv`, `.txt`, `.tsv` (tab-delimited by default).
    Csv { tab: bool },
    /// `.parquet`, `.pq`.
    Parquet,
}

impl FileFormat {
    /// The format of `path` by its (case-insensitive) extension.
    pub fn of(path: &Path) -> Result<FileFormat, DataError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "csv" | "txt" => Ok(FileFormat::Csv { tab: false }),
            "tsv" => Ok(FileFormat::Csv { tab: true }),
            "parquet" | "pq" => Ok(FileFormat::Parquet),
            _ => Err(DataError::format(format!(
                "{}: unsupported file extension {ext:?} (expected .csv, .tsv, .txt, .parquet or .pq)",
                path.display()
            ))),
        }
    }
}

/// A row found to be a duplicate id after the last chunk (deferred check; see
/// [`Reader::finish_duplicates`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LateDuplicate {
    /// The row's position among the accepted rows of the whole file (0-based: the index in
    /// the concatenation of every chunk's batch); `None` for a row rejected for another
    /// reason (already in a chunk's rejects, whose reason does not mention the duplicate).
    pub ordinal: Option<u64>,
    /// Line where the id first appeared (see the module doc).
    pub first_line: u64,
    /// The row as a reject: its line, the id column and value, reason
    /// `"duplicate id (first seen on line N)"` (as the immediate check words it) and its cells.
    pub reject: Reject,
}

impl LateDuplicate {
    /// The duplicate-id reject of the row `found` (its line, first line and output ordinal)
    /// whose id column `id_column` holds `id` (trimmed), `raw` its cells; worded as the
    /// immediate check words it.
    pub fn new(found: &crate::Found, id_column: &str, id: &str, raw: Vec<String>) -> LateDuplicate {
        let problem = crate::reject::Problem::new(
            Some(id_column),
            Some(id),
            "duplicate id",
            format!("duplicate id (first seen on line {})", found.first_line),
        );
        LateDuplicate {
            ordinal: found.ordinal,
            first_line: found.first_line,
            reject: Reject::from_problems(found.line, vec![problem], raw),
        }
    }
}

/// One chunk being filled by a source.
pub(crate) struct Chunk<'a> {
    pub batch: Batch,
    pub rejects: Vec<Reject>,
    /// Unseen categories per categorical column.
    pub unseen: Vec<Unseen>,
    /// Rows read into this chunk (accepted + rejected).
    pub rows: usize,
    pub max_rows: usize,
    pub on_error: OnError,
    pub source: &'a str,
    /// Rows accepted in earlier chunks (ordinals for the deferred duplicate check).
    pub accepted_before: u64,
}

enum Source {
    Csv(Box<CsvSource>),
    Parquet(Box<ParquetSource>),
}

/// Iterator of validated chunks of a file. Memory is bounded by a few chunks plus, with the
/// default immediate duplicate check, about 40 bytes per distinct id (ids must be unique
/// within the file); with [`DuplicateCheck::Deferred`], by a fixed-size run of ids. After an
/// `Err` the iterator ends; the rows of the chunk that failed count in `rows_read` but not in
/// `accepted` / `rejected`.
///
/// CSV chunks are parsed and validated in parallel on the current rayon pool (call the
/// iterator inside `pool.install` to choose the threads); the output does not depend on the
/// number of threads.
pub struct Reader {
    source: Source,
    name: String,
    path: PathBuf,
    columns: Vec<String>,
    schema: Schema,
    opts: ReadOptions,
    ids: IdCheck,
    spare: Vec<Batch>,
    rows_read: u64,
    accepted: u64,
    rejected: u64,
    done: bool,
}

/// Open a CSV or Parquet file (by extension) for validated reading. Checks the header (or
/// Parquet fields) against the schema at once: unknown and missing columns are one error.
pub fn open(path: &Path, schema: &Schema, opts: &ReadOptions) -> Result<Reader, DataError> {
    let name = path.display().to_string();
    let domains = Domains::new(schema, opts.pseudonym_key.as_ref(), opts.strict_categories)?;
    let (source, columns) = match FileFormat::of(path)? {
        FileFormat::Csv { tab } => {
            let delimiter = if tab && opts.delimiter == b',' {
                b'\t'
            } else {
                opts.delimiter
            };
            let (s, cols) = CsvSource::open(
                path,
                &name,
                schema,
                delimiter,
                opts.require_label,
                opts.extra_columns,
                domains,
            )?;
            (Source::Csv(Box::new(s)), cols)
        }
        FileFormat::Parquet => {
            let (s, cols) = ParquetSource::open(
                path,
                &name,
                schema,
                opts.batch_rows.max(1),
                opts.require_label,
                opts.extra_columns,
                domains,
            )?;
            (Source::Parquet(Box::new(s)), cols)
        }
    };
    Ok(Reader {
        source,
        ids: IdCheck::new(&opts.duplicates, &name),
        name,
        path: path.to_path_buf(),
        columns,
        schema: schema.clone(),
        opts: opts.clone(),
        spare: Vec::new(),
        rows_read: 0,
        accepted: 0,
        rejected: 0,
        done: false,
    })
}

/// Read a whole file into one batch (convenience; with [`OnError::Skip`] all rejects are kept,
/// in line order, late duplicates of a deferred check included).
pub fn read_all(
    path: &Path,
    schema: &Schema,
    opts: &ReadOptions,
) -> Result<(Batch, Vec<Reject>), DataError> {
    let mut reader = open(path, schema, opts)?;
    let mut batch = Batch::empty(schema, reader.source());
    let mut rejects = Vec::new();
    for chunk in &mut reader {
        let chunk = chunk?;
        batch.extend(chunk.batch);
        rejects.extend(chunk.rejects);
    }
    let late = reader.finish_duplicates()?;
    if !late.is_empty() {
        let drop: std::collections::BTreeSet<u64> = late.iter().filter_map(|d| d.ordinal).collect();
        let keep: Vec<usize> = (0..batch.len())
            .filter(|&i| !drop.contains(&(i as u64)))
            .collect();
        batch.compact(&keep);
        rejects.extend(
            late.into_iter()
                .filter(|d| d.ordinal.is_some())
                .map(|d| d.reject),
        );
        rejects.sort_by_key(|r| r.line);
    }
    Ok((batch, rejects))
}

impl Reader {
    /// Data rows read so far (accepted + rejected; the header is not a row).
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }
    /// Rows accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }
    /// Rows rejected so far (with [`OnError::Skip`]).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
    /// The file name used in messages and in [`Batch::source`].
    pub fn source(&self) -> &str {
        &self.name
    }
    /// The file's column names, in file order (CSV header / Parquet fields).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    /// The order of a row's problems in its reject (the schema's columns, id first): what
    /// [`crate::RejectSpool`] sorts a late duplicate into a rejected row's problems by.
    pub fn problem_order(&self) -> Vec<String> {
        self.schema
            .all_columns()
            .into_iter()
            .map(str::to_string)
            .collect()
    }
    /// The file's columns the schema does not know, in file order: left unread with
    /// [`ExtraColumns::Ignore`] (with [`ExtraColumns::Refuse`] they are an error, so none).
    pub fn ignored_columns(&self) -> Vec<&str> {
        let known = self.schema.all_columns();
        self.columns
            .iter()
            .map(String::as_str)
            .filter(|c| !known.contains(c))
            .collect()
    }

    /// Hand back a batch you are done with: the next chunk reuses its memory, its strings
    /// included, instead of allocating (optional; keeps one).
    pub fn recycle(&mut self, batch: Batch) {
        if self.spare.is_empty() {
            self.spare.push(batch);
        }
    }

    /// With [`DuplicateCheck::Deferred`]: call once after the last chunk. Returns every row
    /// whose id appeared on an earlier row, in line order (empty with the immediate check,
    /// which rejected them in their chunks). Rows counted as accepted are then counted as
    /// rejected. The cells of the duplicates are read from the file again.
    ///
    /// With [`OnError::Fail`], a duplicate is an error naming its line and the line where
    /// the id first appeared.
    pub fn finish_duplicates(&mut self) -> Result<Vec<LateDuplicate>, DataError> {
        let found = self.ids.finish()?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let lines: Vec<u64> = found.iter().map(|f| f.line).collect();
        let raws = match &self.source {
            Source::Csv(s) => s.raw_at(&self.path, &self.name, &lines)?,
            Source::Parquet(s) => s.raw_at(&self.path, &self.name, &lines)?,
        };
        let mut out = Vec::with_capacity(found.len());
        for (f, (raw, id)) in found.into_iter().zip(raws) {
            let late = LateDuplicate::new(&f, &self.schema.id, &id, raw);
            if self.opts.on_error == OnError::Fail {
                return Err(DataError::value(late.reject.describe(&self.name)));
            }
            if f.ordinal.is_some() {
                self.accepted -= 1;
                self.rejected += 1;
            }
            out.push(late);
        }
        Ok(out)
    }
}

impl Iterator for Reader {
    type Item = Result<ReadChunk, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut batch = self.spare.pop().unwrap_or_default();
        batch.reshape(
            self.schema.categorical.len(),
            self.schema.numeric.len(),
            &self.name,
        );
        let mut chunk = Chunk {
            batch,
            rejects: Vec::new(),
            unseen: vec![Unseen::default(); self.schema.categorical.len()],
            rows: 0,
            max_rows: self.opts.batch_rows.max(1),
            on_error: self.opts.on_error,
            source: &self.name,
            accepted_before: self.accepted,
        };
        let more = match &mut self.source {
            Source::Csv(s) => s.fill(&mut chunk, &mut self.ids),
            Source::Parquet(s) => s.fill(&mut chunk, &mut self.ids),
        };
        self.rows_read += chunk.rows as u64;
        if more.is_ok() {
            self.rejected += chunk.rejects.len() as u64;
            self.accepted += chunk.batch.len() as u64;
        }
        match more {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(more) => {
                self.done = !more;
                if chunk.rows == 0 {
                    self.done = true;
                    return None;
                }
                Some(Ok(ReadChunk {
                    batch: chunk.batch,
                    rejects: chunk.rejects,
                    unseen: chunk.unseen,
                }))
            }
        }
    }
}

impl std::iter::FusedIterator for Reader {}
