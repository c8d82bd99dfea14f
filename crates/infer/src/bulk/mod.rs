//! Bulk scoring of a file: read, validate, score and write every row of a CSV / Parquet
//! file with an ONNX model, memory flat whatever the file size, input order kept. The
//! pipeline behind `customs-risk score`, shared with the HTTP service and batch runners.
//!
//! Owns: the two scoring paths ([`score_file`] picks one by the model): our raw-field
//! models (`declarations.rs`: the data read ahead while the model compiles, chunk N+1 read
//! and validated while chunk N is scored and written) and foreign float-matrix models from
//! skl2onnx / onnxmltools (`foreign.rs`: named or numeric columns → [N, F]); the output
//! writers and the budget selection (`sink.rs`); duplicate ids settled after the last
//! chunk with sorted runs on disk ([`cr_data::DuplicateCheck::Deferred`],
//! [`cr_data::DeferredIds`]), the late duplicates removed from the output and merged in line
//! order into the rejects by [`cr_data::RejectSpool`] (both paths): the reject file is the
//! one the immediate rule writes.
//!
//! Must not: draw on a terminal (progress goes through [`Progress`]), print, or exit.
//!
//! Output: one row per accepted declaration: `id`, `score` (f64 of the f32 score; named
//! `expected_revenue` for a revenue model, [`cr_model::meta::Prediction::column`]),
//! `percentile` (of the score within the model's reference distribution, by the one rule of
//! [`cr_model::reference`]; NaN without one) and, with a
//! budget, `selected` (the top k = `cr_model::Budget::Rate(rate).k(rows)` scores, ties by file
//! order).
//!
//! ```no_run
//! use cr_infer::bulk::{score_file, BulkOptions, NoProgress};
//! let mut opts = BulkOptions::new("decl.csv", "scores.csv");
//! opts.budget = Some(0.05);
//! let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
//! let s = score_file("models/gbdt.onnx".as_ref(), &opts, &pool, &NoProgress)?;
//! println!("{} rows, {} rejected", s.rows, s.rejected);
//! # Ok::<(), cr_infer::bulk::BulkError>(())
//! ```

// A `BulkError` ends a whole run (one per file, never per row), so its size on the
// error path costs nothing measurable; boxing each source would only add noise.
#![allow(clippy::result_large_err)]

mod declarations;
mod error;
mod foreign;
mod select;
mod sink;

use std::path::{Path, PathBuf};
use std::time::Instant;

use cr_data::OnError;
use cr_model::Reference;

pub use error::BulkError;
pub use foreign::SAMPLE_ROWS;
pub use select::{select_file, SelectSummary};

use crate::{Engine, LoadOptions};

/// What to score and how. Build with [`BulkOptions::new`] and set the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOptions {
    /// Declarations to score: `.csv` / `.tsv` / `.txt`, or `.parquet` (our models only).
    pub data: PathBuf,
    /// Output table: `.csv` or `.parquet`. Removed again when the run fails.
    pub out: PathBuf,
    /// CSV delimiter; default `b','` (a `.tsv` file read with the default uses a tab).
    pub delimiter: u8,
    /// Rows per chunk (memory holds about three); default 16,384; 0 is treated as 1.
    pub batch_rows: usize,
    /// Inspection budget, a share of the scored rows in (0, 1]: adds the `selected` column.
    pub budget: Option<f64>,
    /// [`OnError::Fail`] (default): the first bad row is the error (no output is left);
    /// [`OnError::Skip`]: bad rows are left out and written to `rejects`.
    pub on_error: OnError,
    /// With [`OnError::Skip`]: the reject file (see `cr_data::RejectWriter`).
    pub rejects: Option<PathBuf>,
    /// Foreign models: the columns feeding the [N, F] input, in order (empty: the numeric
    /// columns of the first [`SAMPLE_ROWS`] data rows, which must be exactly F).
    pub features: Vec<String>,
    /// Foreign models with named inputs: `(input, column)` pairs feeding an input from a
    /// column of another name (default: the column named like the input).
    pub map: Vec<(String, String)>,
    /// Foreign models: the id column (default: the data row number, from 1).
    pub id_column: Option<String>,
    /// Engine for the model; default [`Engine::Auto`].
    pub engine: Engine,
    /// Threads of the model's own pool (0 = all cores); scores do not depend on it.
    pub threads: usize,
    /// Our models: file columns the model's schema does not know. Default
    /// [`cr_data::ExtraColumns::Ignore`] (named once through [`Progress::ignored_columns`]);
    /// `Refuse` makes them an error. Missing columns are an error either way.
    pub extra_columns: cr_data::ExtraColumns,
    /// Key of a model trained on pseudonymised columns (checked against the fingerprint
    /// the model records; see `cr_data::pseudonym`).
    pub pseudonym_key: Option<cr_data::PseudonymKey>,
}

impl BulkOptions {
    /// Defaults for everything but the two files.
    pub fn new(data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> BulkOptions {
        BulkOptions {
            data: data.into(),
            out: out.into(),
            delimiter: b',',
            batch_rows: 16_384,
            budget: None,
            on_error: OnError::Fail,
            rejects: None,
            features: Vec::new(),
            map: Vec::new(),
            id_column: None,
            engine: Engine::Auto,
            threads: 0,
            extra_columns: cr_data::ExtraColumns::Ignore,
            pseudonym_key: None,
        }
    }
}

/// Hears how a run goes; the default methods do nothing. Called from the scoring pool, one
/// call at a time.
pub trait Progress: Sync {
    /// `rows` more rows were scored and written (accepted rows; late duplicates are only
    /// removed at the end).
    fn rows(&self, _rows: u64) {}
    /// A foreign model's column mapping, decided before the first row is scored, e.g.
    /// `input "X" [N, 4] <- value, mass, quantity, tax_rate`.
    fn mapping(&self, _line: &str) {}
    /// Our models: the file's columns the schema does not know, left unread (see
    /// [`BulkOptions::extra_columns`]); called once, before the first row is scored.
    fn ignored_columns(&self, _names: &[String]) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkSummary {
    /// Rows written to the output.
    pub rows: u64,
    /// Rows rejected (late duplicate ids included).
    pub rejected: u64,
    /// The engine that scored.
    pub engine: Engine,
    /// With [`Engine::Auto`] and ONNX Runtime scoring: why the native engine was not used.
    pub native_refused: Option<String>,
    /// Foreign models: the column mapping (as given to [`Progress::mapping`]).
    pub mapping: Option<String>,
    /// Our models: the file's columns left unread (not in the model's schema).
    pub ignored_columns: Vec<String>,
    /// With a budget: the rows selected, `cr_model::Budget::Rate(rate).k(rows)`.
    pub selected: Option<u64>,
    /// Wall time from the start of [`score_file`] (model loading included).
    pub seconds: f64,
}

/// Score `opts.data` with the ONNX model at `model` into `opts.out` (and `opts.rejects`),
/// reading, validating and scoring on `pool`. Our models (customs-risk pipeline metadata)
/// take the raw declaration columns of their schema; any other model must have one float
/// input [N, F] (see [`BulkOptions::features`]). On error no output is left behind.
pub fn score_file(
    model: &Path,
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<BulkSummary, BulkError> {
    let t0 = Instant::now();
    let proto = cr_onnx::load_model(model)
        .map_err(|e| BulkError::other(format!("loading {}", model.display()), e))?;
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| BulkError::other(format!("creating {}", dir.display()), e))?;
    }
    let load = LoadOptions {
        engine: opts.engine,
        threads: opts.threads,
    };
    let mut summary = if crate::is_declaration_model(&proto) {
        let result = declarations::score(model, proto, &load, opts, pool, progress);
        if result.is_err() {
            // no partial output
            let _ = std::fs::remove_file(&opts.out);
        }
        result?
    } else {
        pool.install(|| foreign::score(model, &proto, &load, opts, pool, progress))?
    };
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// Percentile (0..=100) of `score` within `reference` (the one rule,
/// [`cr_model::Reference::percentile`], as the service uses); NaN without a reference.
pub fn percentile(reference: Option<&Reference>, score: f32) -> f64 {
    reference
        .and_then(|r| r.percentile(f64::from(score)))
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_the_reference_rule_and_nan_without_one() {
        let r = Reference::from_f32(&(0..=100).map(|i| i as f32 / 100.0).collect::<Vec<_>>())
            .unwrap()
            .unwrap();
        // the median of the 0..100 % grid is the 50th percentile (it was 50.5 when bulk
        // counted grid points <= score)
        assert_eq!(percentile(Some(&r), 0.5), 50.0);
        assert_eq!(percentile(Some(&r), -1.0), 0.0);
        assert_eq!(percentile(Some(&r), 2.0), 100.0);
        assert!(percentile(None, 0.5).is_nan());
    }
}
