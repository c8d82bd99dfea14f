//! Streaming readers: [`open`] a CSV or Parquet file and iterate validated [`ReadChunk`]s.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::csv_read::CsvSource;
use crate::error::DataError;
use crate::parquet_read::ParquetSource;
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
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { batch_rows: 65_536, delimiter: b',', on_error: OnError::Fail, require_label: false }
    }
}

/// Up to `batch_rows` consecutive rows of a file: the accepted ones and the rejected ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadChunk {
    pub batch: Batch,
    pub rejects: Vec<Reject>,
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
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
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

/// Rows being gathered into one chunk; applies [`OnError`].
pub(crate) struct Chunk<'a> {
    pub batch: Batch,
    pub rejects: Vec<Reject>,
    /// Rows read into this chunk (accepted + rejected).
    pub rows: usize,
    pub max_rows: usize,
    pub on_error: OnError,
    pub source: &'a str,
}

impl Chunk<'_> {
    pub(crate) fn is_full(&self) -> bool {
        self.rows >= self.max_rows
    }

    /// Count a row that was either accepted (`None`) or rejected.
    pub(crate) fn record(&mut self, reject: Option<Reject>) -> Result<(), DataError> {
        self.rows += 1;
        if let Some(r) = reject {
            if self.on_error == OnError::Fail {
                return Err(DataError::value(r.describe(self.source)));
            }
            self.rejects.push(r);
        }
        Ok(())
    }
}

enum Source {
    Csv(Box<CsvSource>),
    Parquet(Box<ParquetSource>),
}

/// Iterator of validated chunks of a file. Memory is bounded by one chunk plus 24 bytes per
/// id seen (ids must be unique within the file). After an `Err` the iterator ends; the rows
/// of the chunk that failed count in `rows_read` but not in `accepted` / `rejected`.
pub struct Reader {
    source: Source,
    name: String,
    columns: Vec<String>,
    schema: Schema,
    opts: ReadOptions,
    rows_read: u64,
    accepted: u64,
    rejected: u64,
    done: bool,
}

/// Open a CSV or Parquet file (by extension) for validated reading. Checks the header (or
/// Parquet fields) against the schema at once: unknown and missing columns are one error.
pub fn open(path: &Path, schema: &Schema, opts: &ReadOptions) -> Result<Reader, DataError> {
    let name = path.display().to_string();
    let (source, columns) = match FileFormat::of(path)? {
        FileFormat::Csv { tab } => {
            let delimiter = if tab && opts.delimiter == b',' { b'\t' } else { opts.delimiter };
            let (s, cols) = CsvSource::open(path, &name, schema, delimiter, opts.require_label)?;
            (Source::Csv(Box::new(s)), cols)
        }
        FileFormat::Parquet => {
            let (s, cols) = ParquetSource::open(path, &name, schema, opts.batch_rows.max(1), opts.require_label)?;
            (Source::Parquet(Box::new(s)), cols)
        }
    };
    Ok(Reader {
        source,
        name,
        columns,
        schema: schema.clone(),
        opts: opts.clone(),
        rows_read: 0,
        accepted: 0,
        rejected: 0,
        done: false,
    })
}

/// Read a whole file into one batch (convenience; with [`OnError::Skip`] all rejects are kept).
pub fn read_all(path: &Path, schema: &Schema, opts: &ReadOptions) -> Result<(Batch, Vec<Reject>), DataError> {
    let mut reader = open(path, schema, opts)?;
    let mut batch = Batch::empty(schema, reader.source());
    let mut rejects = Vec::new();
    for chunk in &mut reader {
        let chunk = chunk?;
        batch.extend(chunk.batch);
        rejects.extend(chunk.rejects);
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
}

impl Iterator for Reader {
    type Item = Result<ReadChunk, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut chunk = Chunk {
            batch: Batch::with_capacity(&self.schema, self.name.as_str(), self.opts.batch_rows.clamp(1, 1 << 20)),
            rejects: Vec::new(),
            rows: 0,
            max_rows: self.opts.batch_rows.max(1),
            on_error: self.opts.on_error,
            source: &self.name,
        };
        let more = match &mut self.source {
            Source::Csv(s) => s.fill(&mut chunk),
            Source::Parquet(s) => s.fill(&mut chunk),
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
                Some(Ok(ReadChunk { batch: chunk.batch, rejects: chunk.rejects }))
            }
        }
    }
}

impl std::iter::FusedIterator for Reader {}
