//! `cr-gbdt`: histogram gradient-boosted decision trees (LightGBM-style), written for
//! customs risk targeting.
//!
//! **Owns:** quantile binning of f32 feature matrices, leaf-wise tree growth on gradient
//! histograms, the objectives (binary log loss, L2, Tweedie), validation metrics and early
//! stopping, the [`GbdtModel`] type (flat trees, documented for ONNX export), prediction and
//! feature importance.
//!
//! **Must not:** read or write files, touch the network, or depend on `cr-data`: it learns
//! from in-memory feature matrices only. Serialization is serde/JSON of [`GbdtModel`]; ONNX
//! export lives in `cr-train`/`cr-onnx`.
//!
//! Module map (LightGBM's split): [`objective`] knows the loss and produces gradients;
//! `learner` (tree learner) sees only gradients/hessians and binned features; `boosting` runs
//! the rounds. Results are deterministic given the seed and independent of the thread count.
//!
//! ```
//! use cr_gbdt::{train, GbdtParams, Objective};
//! use ndarray::Array2;
//!
//! let x = Array2::from_shape_fn((400, 2), |(r, c)| ((r * (c + 3)) % 17) as f32);
//! let y: Vec<f32> = (0..400).map(|r| if (r * 3) % 17 > 9 { 1.0 } else { 0.0 }).collect();
//! let params = GbdtParams::new().num_trees(20).num_leaves(7).min_data_in_leaf(5);
//! let model = train(&params, x.view(), &y, None, None, None).unwrap();
//! let p = model.predict_proba(x.view()).unwrap();
//! assert_eq!(p.len(), 400);
//! assert!(matches!(model.objective, Objective::Binary { .. }));
//! ```

mod binning;
mod boosting;
mod error;
mod histogram;
mod learner;
pub mod metric;
mod model;
pub mod objective;
mod par;
mod params;
mod partition;
mod split;
pub mod tree;

pub use boosting::{train, Progress};
pub use error::GbdtError;
pub use metric::{auc, EvalMetric};
pub use model::{GbdtModel, ImportanceType, TrainStats};
pub use objective::{sigmoid, Objective};
pub use params::{GbdtParams, ValidGbdtParams};
pub use tree::Tree;
