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
//! # Solver
//! [`lbfgs`] (memory 10, Armijo backtracking, f64) minimises the objective divided by the
//! total weight `Σ wᵢ`, as scikit-learn's `lbfgs` solver does, with scikit-learn's stopping
//! rules: largest gradient component ≤ `gradient_tolerance` (its `tol`, default 1e-4), or a
//! relative cost decrease ≤ 64·ε (SciPy's `ftol` as scikit-learn sets it), or `max_iter`
//! (default 100) iterations. Cost and gradient come from one pass over the rows, summed in
//! fixed 4096-row blocks combined in order, so the result does not depend on the thread
//! count. The fitted model records iterations, the final gradient and why the solver stopped
//! ([`FitReport`]).
//!
//! **Where linfa-logistic does not serve** (it fitted the unweighted models before): it has no
//! sample weights; its stopping rule is the Euclidean norm of the *summed* gradient, so
//! `1e-4` means a mean gradient of `1e-4 / n` — with tens of thousands of rows that is far
//! tighter than scikit-learn's and fits run to the iteration cap; it evaluates cost and
//! gradient in separate single-threaded passes; it reports neither iterations nor
//! convergence. Where it serves: as the independent reference our tests fit against
//! (`tests.rs`, same optimum within 1e-4).
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
pub use lbfgs::Stop;
pub use model::{fit, FitReport, LogisticModel, LogisticParams};

#[cfg(test)]
mod tests;
