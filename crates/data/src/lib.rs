//! Declaration data layer: schema, readers (CSV, Parquet), validation with rejects, writers.
//!
//! Owns: what a valid declaration is, and turning files into validated [`Batch`]es.
//! Must not: know about features, models or scoring.

pub mod batch;
pub mod error;
pub mod schema;

pub use batch::Batch;
pub use error::{DataError, DataErrorKind};
pub use schema::{CategoricalKind, NumericKind, Schema, Selection};
