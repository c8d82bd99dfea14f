//! `cr-features`: the fitted feature pipeline, from validated [`cr_data::Batch`] rows to an
//! f32 feature matrix.
//!
//! Owns: feature definitions ([`FeatureDef`]), fitting them on training rows ([`fit`]), with
//! out-of-fold categorical risk profiles for the training rows, their JSON form
//! ([`FittedPipeline::to_json`] / [`FittedPipeline::from_json`]) and applying them fast
//! ([`CompiledPipeline::transform`]), and the reasons on raw fields that per-feature
//! contributions add up to, worded from the pipeline's tables ([`ReasonGroups`]).
//!
//! Must not: know any model, read or write files, or use an operation an ONNX graph cannot
//! reproduce bit-exactly. Every feature is a table lookup (string key -> f32), string
//! concatenation, int64 division/modulo, `Cast(int64 -> string)`, an f32 `+ - * /`, a
//! comparison or a NaN test, with its order of operations documented in [`calc`] and on each
//! [`FeatureDef`] variant. No log/exp/pow.
//!
//! Output columns, in order (names in brackets):
//! 1. each schema numeric column as-is (`num[<column>]`);
//! 2. `unit_value` and `rel_unit_value` (when the schema has a value and a mass column);
//! 3. `hs2`, `hs4` (HS chapter and heading as f32; `hs4` only when the code has >= 4 digits);
//! 4. `day_of_week` (0 = Monday) and `month` (1..=12);
//! 5. for every risk key (each categorical column, HS6, HS4, HS2, then the pairs):
//!    `risk_rate[<key>]` and `risk_count[<key>]`.
//!
//! ```no_run
//! # fn demo(schema: &cr_data::Schema, train: &cr_data::Batch, score: &cr_data::Batch)
//! # -> Result<(), cr_features::FeatureError> {
//! use cr_features::{fit, FittedPipeline, PipelineConfig};
//! let (pipeline, train_x) = fit(schema, train, &PipelineConfig::default())?;
//! let json = pipeline.to_json();
//! let compiled = FittedPipeline::from_json(&json)?.compile()?;
//! let x = compiled.transform(score)?; // row-major f32, x.names == train_x.names
//! # Ok(()) }
//! ```

pub mod calc;
mod compiled;
mod config;
mod error;
mod fit;
mod lookup;
mod pipeline;
mod reasons;
mod vocab;

pub use compiled::CompiledPipeline;
pub use config::{KeyPart, PipelineConfig};
pub use error::FeatureError;
pub use fit::{assign_folds, fit};
pub use pipeline::{key_string, FeatureDef, FittedPipeline, FORMAT_VERSION};
pub use reasons::{Reason, ReasonGroups};

/// A dense row-major f32 matrix: `data[row * n_cols + col]`, with column names.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    pub n_rows: usize,
    pub n_cols: usize,
    pub data: Vec<f32>,
    pub names: Vec<String>,
}

impl FeatureMatrix {
    /// The features of one row (panics if `row >= n_rows`).
    pub fn row(&self, row: usize) -> &[f32] {
        &self.data[row * self.n_cols..(row + 1) * self.n_cols]
    }

    /// The value at (`row`, `col`), `None` out of range.
    pub fn get(&self, row: usize, col: usize) -> Option<f32> {
        if row < self.n_rows && col < self.n_cols {
            self.data.get(row * self.n_cols + col).copied()
        } else {
            None
        }
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// A copy of column `col` (empty if out of range).
    pub fn column(&self, col: usize) -> Vec<f32> {
        if col >= self.n_cols {
            return Vec::new();
        }
        self.data
            .iter()
            .skip(col)
            .step_by(self.n_cols)
            .copied()
            .collect()
    }

    /// Bitwise equality of the data (NaN equal to NaN of the same bits) and names.
    pub fn bit_eq(&self, other: &FeatureMatrix) -> bool {
        self.n_rows == other.n_rows
            && self.n_cols == other.n_cols
            && self.names == other.names
            && self
                .data
                .iter()
                .zip(&other.data)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}
