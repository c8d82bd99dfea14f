//! A validated, column-major batch of declarations.
//!
//! Invariants (checked by [`Batch::check_lengths`], upheld by every reader):
//! - every per-row vector has the same length (`len()`);
//! - categorical cells: the empty string `""` is the missing category, values are trimmed;
//! - numeric cells: `f32`, `NaN` means missing (only where the schema allows it), never ±inf;
//! - `hs` is the HS code as an integer (leading zeros implied by `Schema::hs_width`);
//! - `dates` are days since 1970-01-01 within the schema's bounds;
//! - `label` is `None` for declarations that carry no inspection outcome.

use serde::{Deserialize, Serialize};

use crate::schema::{Schema, Selection};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Where the rows came from (file path or "request"), for error messages.
    pub source: String,
    /// 1-based physical line (CSV, header is line 1) or 1-based record number (Parquet, JSON)
    /// of each row.
    pub lines: Vec<u64>,
    pub ids: Vec<String>,
    pub dates: Vec<i32>,
    pub hs: Vec<u64>,
    /// One vector per `schema.categorical`, in schema order.
    pub categorical: Vec<Vec<String>>,
    /// One vector per `schema.numeric`, in schema order.
    pub numeric: Vec<Vec<f32>>,
    pub label: Vec<Option<bool>>,
    /// Revenue (extra duty) recovered; `None` where absent or not inspected.
    pub revenue: Vec<Option<f32>>,
    /// Whether the declaration was inspected. Without an inspection column: `label.is_some()`.
    pub inspected: Vec<bool>,
    pub selection: Vec<Option<Selection>>,
    pub propensity: Vec<Option<f64>>,
}

impl Batch {
    /// An empty batch shaped for `schema`.
    pub fn empty(schema: &Schema, source: impl Into<String>) -> Batch {
        Batch {
            source: source.into(),
            categorical: vec![Vec::new(); schema.categorical.len()],
            numeric: vec![Vec::new(); schema.numeric.len()],
            ..Batch::default()
        }
    }

    /// An empty batch shaped for `schema`, with room for `rows` rows in every vector.
    pub fn with_capacity(schema: &Schema, source: impl Into<String>, rows: usize) -> Batch {
        Batch {
            source: source.into(),
            lines: Vec::with_capacity(rows),
            ids: Vec::with_capacity(rows),
            dates: Vec::with_capacity(rows),
            hs: Vec::with_capacity(rows),
            categorical: (0..schema.categorical.len())
                .map(|_| Vec::with_capacity(rows))
                .collect(),
            numeric: (0..schema.numeric.len())
                .map(|_| Vec::with_capacity(rows))
                .collect(),
            label: Vec::with_capacity(rows),
            revenue: Vec::with_capacity(rows),
            inspected: Vec::with_capacity(rows),
            selection: Vec::with_capacity(rows),
            propensity: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Panics never; returns a description of the first inconsistency.
    pub fn check_lengths(&self) -> Result<(), String> {
        let n = self.len();
        let mut bad = Vec::new();
        for (name, len) in [
            ("lines", self.lines.len()),
            ("dates", self.dates.len()),
            ("hs", self.hs.len()),
            ("label", self.label.len()),
            ("revenue", self.revenue.len()),
            ("inspected", self.inspected.len()),
            ("selection", self.selection.len()),
            ("propensity", self.propensity.len()),
        ] {
            if len != n {
                bad.push(format!("{name} has {len} rows, ids {n}"));
            }
        }
        for (i, c) in self.categorical.iter().enumerate() {
            if c.len() != n {
                bad.push(format!("categorical[{i}] has {} rows, ids {n}", c.len()));
            }
        }
        for (i, c) in self.numeric.iter().enumerate() {
            if c.len() != n {
                bad.push(format!("numeric[{i}] has {} rows, ids {n}", c.len()));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }

    /// Append all rows of `other` (same schema) to `self`.
    pub fn extend(&mut self, other: Batch) {
        self.lines.extend(other.lines);
        self.ids.extend(other.ids);
        self.dates.extend(other.dates);
        self.hs.extend(other.hs);
        if self.categorical.len() < other.categorical.len() {
            self.categorical.resize(other.categorical.len(), Vec::new());
        }
        for (a, b) in self.categorical.iter_mut().zip(other.categorical) {
            a.extend(b);
        }
        if self.numeric.len() < other.numeric.len() {
            self.numeric.resize(other.numeric.len(), Vec::new());
        }
        for (a, b) in self.numeric.iter_mut().zip(other.numeric) {
            a.extend(b);
        }
        self.label.extend(other.label);
        self.revenue.extend(other.revenue);
        self.inspected.extend(other.inspected);
        self.selection.extend(other.selection);
        self.propensity.extend(other.propensity);
    }

    /// The rows at `idx`, in that order (a row may repeat).
    pub fn take(&self, idx: &[usize]) -> Batch {
        fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
            idx.iter().map(|&i| v[i].clone()).collect()
        }
        Batch {
            source: self.source.clone(),
            lines: pick(&self.lines, idx),
            ids: pick(&self.ids, idx),
            dates: pick(&self.dates, idx),
            hs: pick(&self.hs, idx),
            categorical: self.categorical.iter().map(|c| pick(c, idx)).collect(),
            numeric: self.numeric.iter().map(|c| pick(c, idx)).collect(),
            label: pick(&self.label, idx),
            revenue: pick(&self.revenue, idx),
            inspected: pick(&self.inspected, idx),
            selection: pick(&self.selection, idx),
            propensity: pick(&self.propensity, idx),
        }
    }

    /// HS code left-padded to the schema width, e.g. 71080 -> "071080".
    pub fn hs_string(&self, row: usize, width: u8) -> String {
        format!("{:0width$}", self.hs[row], width = width as usize)
    }
}
