//! L2-regularised logistic regression on f32 feature matrices, with explicit, exportable
//! preprocessing.
//!
//! Owns: fitting ([`fit`]) and native scoring ([`LogisticModel::predict_proba`]) of a binary
//! logistic model whose preprocessing (signed log, mean imputation, standardisation) is stored
//! field by field so another crate can rebuild it as an ONNX graph.
//! Must not: read files, know about schemas, features or ONNX.
//!
//! ```
//! use ndarray::array;
//! // Feature 0 carries the signal, feature 1 is noise with a missing value.
//! let x = array![[0.0f32, 1.0], [1.0, f32::NAN], [2.0, 0.5], [3.0, 2.0], [4.0, 0.0], [5.0, 1.5]];
//! let y = [false, false, true, false, true, true];
//! let params = cr_linear::LogisticParams { l2: 0.1, ..Default::default() };
//! let model = cr_linear::fit(&params, x.view(), &y, None)?;
//! let p = model.predict_proba(x.view())?;
//! assert!(model.coef[0] > 0.0 && p[5] > p[0]);
//! # Ok::<(), cr_linear::LinearError>(())
//! ```
//!
//! # Objective
//! `minimise  Σᵢ wᵢ · logloss(yᵢ, β₀ + βᵀsᵢ)  +  (l2 / 2) · ‖β‖²`  (intercept β₀ not penalised),
//! where `sᵢ` is the preprocessed row and `wᵢ = sample_weightᵢ · (class_weight_pos if yᵢ)`.
//! This is linfa-logistic's objective (its `alpha` = `l2`) and scikit-learn's
//! `LogisticRegression(C = 1 / l2)` (`C · Σ logloss + ½‖β‖²` is the same objective times `C`).
//!
//! # Solvers
//! - Unweighted (`weight = None`, `class_weight_pos = 1`): `linfa_logistic::LogisticRegression`
//!   (argmin L-BFGS, More–Thuente line search) in f64.
//! - Weighted: linfa-logistic 0.8 has no sample weights, so [`lbfgs`] minimises the weighted
//!   objective above with our own L-BFGS (memory 10, Armijo backtracking, f64, gradients
//!   summed in fixed 4096-row blocks combined in order, so the result does not depend on the
//!   thread count). Same stopping rule as linfa: gradient norm < `gradient_tolerance`, or
//!   `max_iter` iterations.
//!
//! # Prediction (the contract an ONNX export must reproduce)
//! For each row `x` (f32, NaN = missing), all arithmetic in f32, features in index order:
//! 1. `v = x[j]`; if `log_transform[j]`: `v = sign(v) · ln(1 + |v|)` (computed as
//!    `(1 + |v|).ln()` then multiplied by `sign(v)`, with `sign(±0) = 0`; NaN stays NaN);
//! 2. if `v` is NaN: `v = impute[j]`;
//! 3. `s = (v − mean[j]) / scale[j]` (a division);
//! 4. `z = Σⱼ coef[j] · s` accumulated from `j = 0` upwards starting at 0, then `z = z + intercept`;
//! 5. `p = 1 / (1 + exp(−z))`.
//!
//! ONNX: `Sign, Abs, Add(1), Log, Mul` (log features) → `IsNaN, Where` → `Sub, Div` →
//! `MatMul, Add` → `Sigmoid`.

mod error;
pub mod lbfgs;
mod model;

pub use error::LinearError;
pub use model::{fit, LogisticModel, LogisticParams, Solver};

#[cfg(test)]
mod tests;
