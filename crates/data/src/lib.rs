//! Declaration data layer: schema, readers (CSV, Parquet), validation with rejects, writers.
//!
//! Owns: what a valid declaration is, and turning files (or JSON records) into validated
//! [`Batch`]es, with every rejected row reported by line, column, value and reason; writing
//! batches, score tables and reject files.
//! Must not: know about features, models or scoring.
//!
//! CSV chunks are split sequentially and parsed + validated in parallel on the caller's
//! rayon pool; the output never depends on the thread count. The duplicate-id rule runs
//! immediately (an in-memory set) or deferred ([`DuplicateCheck::Deferred`]: sorted runs on
//! disk, flat memory, duplicates reported by [`Reader::finish_duplicates`]); with the
//! deferred rule the rejects wait in a [`RejectSpool`] and the late duplicates are merged into
//! them in line order, so the reject file is the one the immediate rule writes.
//!
//! ```no_run
//! use std::path::Path;
//! use cr_data::{open, OnError, ReadOptions, Schema};
//!
//! let schema = Schema::from_path(Path::new("data/schemas/kcs.toml"))?;
//! let opts = ReadOptions { on_error: OnError::Skip, ..ReadOptions::default() };
//! let mut reader = open(Path::new("train.csv"), &schema, &opts)?;
//! for chunk in &mut reader {
//!     let chunk = chunk?;
//!     println!("{} rows ok, {} rejected", chunk.batch.len(), chunk.rejects.len());
//! }
//! println!("{} rows read", reader.rows_read());
//! # Ok::<(), cr_data::DataError>(())
//! ```

pub mod batch;
mod columns;
mod csv_read;
mod csv_split;
pub mod domain;
pub mod error;
mod ids;
mod json;
mod parquet_read;
pub mod pseudonym;
pub mod read;
pub mod reject;
pub mod report;
pub mod schema;
mod slots;
mod spool;
pub mod table;
mod validate;
pub mod write;

pub use batch::Batch;
pub use domain::{check_pseudonym_key, Unseen};
pub use error::{DataError, DataErrorKind};
pub use ids::{id_key, DeferredIds, DuplicateCheck, Found, DEFAULT_RUN_ENTRIES};
pub use json::{batch_from_json, batch_from_json_keyed};
pub use pseudonym::PseudonymKey;
pub use read::{
    open, read_all, ExtraColumns, FileFormat, LateDuplicate, OnError, ReadChunk, ReadOptions,
    Reader,
};
pub use reject::{Problem, Reject};
pub use report::{validate_file, ValidationReport};
pub use schema::{Case, CategoricalKind, HsLonger, NumericKind, Schema, Selection};
pub use spool::{join_duplicate, RejectSpool};
pub use table::{
    remove_table_rows, write_rejects, ColType, Column, ColumnRef, RejectWriter, TableWriter,
};
pub use write::{write_batch, BatchWriter};
