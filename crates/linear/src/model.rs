//! Parameters, fitting and the fitted model with its explicit preprocessing.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::lbfgs::{self, LbfgsOptions, Stop};
use crate::LinearError;

/// Rows per block when summing the loss and gradient (fixed, so sums do not depend on the
/// thread count).
const BLOCK_ROWS: usize = 4096;

/// Hyper-parameters. Defaults: `l2 = 1.0`, `max_iter = 100`, `gradient_tolerance = 1e-4`,
/// `class_weight_pos = 1.0`, no log features — scikit-learn's `LogisticRegression()` defaults
/// (`C = 1`, `max_iter = 100`, `tol = 1e-4`). Validate with [`LogisticParams::check`] (done
/// by [`fit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogisticParams {
    /// L2 penalty `alpha` on the coefficients (not the intercept), ≥ 0 and finite;
    /// scikit-learn's `C = 1 / l2`.
    pub l2: f64,
    /// Maximum L-BFGS iterations, ≥ 1 (scikit-learn's `max_iter`).
    pub max_iter: u64,
    /// Stop when the largest absolute component of the gradient of the *mean* objective
    /// (the crate docs' objective divided by the total weight) is at most this; > 0 and
    /// finite (scikit-learn's `tol`, which it passes to SciPy as `gtol`).
    pub gradient_tolerance: f64,
    /// Weight of positive rows (multiplies any sample weight), > 0 and finite.
    pub class_weight_pos: f64,
    /// Feature indexes transformed by `sign(x) · ln(1 + |x|)` before imputation.
    pub log_features: Vec<usize>,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams {
            l2: 1.0,
            max_iter: 100,
            gradient_tolerance: 1e-4,
            class_weight_pos: 1.0,
            log_features: Vec::new(),
        }
    }
}

impl LogisticParams {
    /// The one place parameter validation happens (feature indexes are checked against the
    /// data in [`fit`]).
    pub fn check(&self) -> Result<(), LinearError> {
        let bad = |field, reason: String| Err(LinearError::Params { field, reason });
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("l2", format!("{} must be finite and >= 0", self.l2));
        }
        if self.max_iter == 0 {
            return bad("max_iter", "must be at least 1".into());
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return bad(
                "gradient_tolerance",
                format!("{} must be finite and > 0", self.gradient_tolerance),
            );
        }
        if !(self.class_weight_pos.is_finite() && self.class_weight_pos > 0.0) {
            return bad(
                "class_weight_pos",
                format!("{} must be finite and > 0", self.class_weight_pos),
            );
        }
        Ok(())
    }
}

/// How the optimiser ended: recorded in the model (and so in the model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// L-BFGS iterations run.
    pub iterations: u64,
    /// Cost and gradient evaluations (line search included).
    pub evaluations: u64,
    /// Largest absolute component of the mean objective's gradient at the solution.
    pub gradient_max: f64,
    /// The mean objective at the solution.
    pub objective: f64,
    /// Why the solver stopped.
    pub stop: Stop,
    /// `stop` is the gradient or the cost tolerance (not the iteration cap).
    pub converged: bool,
}

/// A fitted model. Every field is part of the documented prediction contract (crate docs);
/// all per-feature vectors have length `n_features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub n_features: usize,
    /// Apply `sign(v) · ln(1 + |v|)` to feature `j`.
    pub log_transform: Vec<bool>,
    /// Replacement for NaN (training mean of the transformed, non-missing values; 0 if none).
    pub impute: Vec<f32>,
    /// Standardisation: `(v − mean) / scale`; `scale` is the training standard deviation
    /// (population, after imputation), 1 where it was 0.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// Coefficient per standardised feature.
    pub coef: Vec<f32>,
    pub intercept: f32,
    /// Iterations, final gradient and convergence of the fit.
    pub report: FitReport,
    /// The parameters it was fitted with.
    pub params: LogisticParams,
}

/// `sign(v) · ln(1 + |v|)` in f32 exactly as documented (sign(±0) = 0, NaN stays NaN).
#[inline]
pub(crate) fn signed_log(v: f32) -> f32 {
    let sign = if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else if v == 0.0 {
        0.0
    } else {
        f32::NAN
    };
    (1.0 + v.abs()).ln() * sign
}

impl LogisticModel {
    /// Check that the per-feature vectors agree with `n_features` (a deserialised model may not).
    pub fn validate(&self) -> Result<(), LinearError> {
        let d = self.n_features;
        for (name, len) in [
            ("log_transform", self.log_transform.len()),
            ("impute", self.impute.len()),
            ("mean", self.mean.len()),
            ("scale", self.scale.len()),
            ("coef", self.coef.len()),
        ] {
            if len != d {
                return Err(LinearError::Data {
                    reason: format!("model field {name} has {len} entries, n_features is {d}"),
                });
            }
        }
        Ok(())
    }

    /// Preprocessed value of feature `j` (steps 1–3 of the contract).
    #[inline]
    fn standardise(&self, j: usize, x: f32) -> f32 {
        let mut v = x;
        if self.log_transform[j] {
            v = signed_log(v);
        }
        if v.is_nan() {
            v = self.impute[j];
        }
        (v - self.mean[j]) / self.scale[j]
    }

    #[inline]
    fn proba_row(&self, row: impl Iterator<Item = f32>) -> f32 {
        let mut z = 0.0f32;
        for (j, x) in row.enumerate() {
            z += self.coef[j] * self.standardise(j, x);
        }
        z += self.intercept;
        1.0 / (1.0 + (-z).exp())
    }

    /// P(positive) for each row of `x` (n × `n_features`, NaN = missing), computed in f32 as
    /// documented in the crate docs. Rows are scored in parallel; each row's arithmetic is
    /// sequential, so results do not depend on the thread count.
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Result<Vec<f32>, LinearError> {
        self.validate()?;
        if x.ncols() != self.n_features {
            return Err(LinearError::Shape {
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        let parts: Vec<Vec<f32>> = x
            .axis_chunks_iter(Axis(0), BLOCK_ROWS)
            .into_par_iter()
            .map(|block| {
                block
                    .outer_iter()
                    .map(|row| self.proba_row(row.iter().copied()))
                    .collect()
            })
            .collect();
        Ok(parts.concat())
    }
}

/// Preprocessing statistics and the standardised training matrix (f64, row-major).
pub(crate) struct Prepared {
    pub(crate) log_transform: Vec<bool>,
    pub(crate) impute: Vec<f32>,
    pub(crate) mean: Vec<f32>,
    pub(crate) scale: Vec<f32>,
    pub(crate) z: Array2<f64>,
}

pub(crate) fn prepare(
    params: &LogisticParams,
    x: ArrayView2<f32>,
) -> Result<Prepared, LinearError> {
    let (n, d) = x.dim();
    let mut log_transform = vec![false; d];
    for &j in &params.log_features {
        if j >= d {
            return Err(LinearError::Params {
                field: "log_features",
                reason: format!("index {j} but data has {d} features"),
            });
        }
        log_transform[j] = true;
    }
    let mut impute = vec![0.0f32; d];
    let mut mean = vec![0.0f32; d];
    let mut scale = vec![1.0f32; d];
    let mut z = Array2::<f64>::zeros((n, d));
    let mut col = vec![0.0f32; n];
    for j in 0..d {
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (i, c) in col.iter_mut().enumerate() {
            let raw = x[[i, j]];
            if raw.is_infinite() {
                return Err(LinearError::Data {
                    reason: format!("row {i}, feature {j}: value is infinite"),
                });
            }
            let v = if log_transform[j] {
                signed_log(raw)
            } else {
                raw
            };
            *c = v;
            if !v.is_nan() {
                sum += f64::from(v);
                count += 1;
            }
        }
        impute[j] = if count > 0 {
            (sum / count as f64) as f32
        } else {
            0.0
        };
        for c in col.iter_mut() {
            if c.is_nan() {
                *c = impute[j];
            }
        }
        let m = col.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = col.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / n as f64;
        mean[j] = m as f32;
        let sd = var.sqrt() as f32;
        scale[j] = if sd > 0.0 && sd.is_finite() { sd } else { 1.0 };
        for (i, &v) in col.iter().enumerate() {
            z[[i, j]] = f64::from((v - mean[j]) / scale[j]);
        }
    }
    Ok(Prepared {
        log_transform,
        impute,
        mean,
        scale,
        z,
    })
}

/// Fit a logistic regression on `x` (n × d, NaN = missing) and labels `y` (true = positive),
/// optionally with non-negative sample weights.
pub fn fit(
    params: &LogisticParams,
    x: ArrayView2<f32>,
    y: &[bool],
    weight: Option<&[f32]>,
) -> Result<LogisticModel, LinearError> {
    params.check()?;
    let (n, d) = x.dim();
    if n == 0 {
        return Err(LinearError::Data {
            reason: "no training rows".into(),
        });
    }
    if y.len() != n {
        return Err(LinearError::Data {
            reason: format!("x has {n} rows, y has {}", y.len()),
        });
    }
    let positive = y.iter().filter(|&&v| v).count();
    if positive == 0 || positive == n {
        return Err(LinearError::SingleClass { positive, rows: n });
    }
    if let Some(w) = weight {
        if w.len() != n {
            return Err(LinearError::Data {
                reason: format!("x has {n} rows, weight has {}", w.len()),
            });
        }
        if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(LinearError::Data {
                reason: format!("row {i}: weight {} must be finite and >= 0", w[i]),
            });
        }
    }
    let prep = prepare(params, x)?;
    let w: Vec<f64> = (0..n)
        .map(|i| {
            let base = weight.map_or(1.0, |w| f64::from(w[i]));
            if y[i] {
                base * params.class_weight_pos
            } else {
                base
            }
        })
        .collect();
    let (pos_w, neg_w) =
        w.iter().zip(y).fold(
            (0.0, 0.0),
            |(p, q), (wi, &yi)| if yi { (p + wi, q) } else { (p, q + wi) },
        );
    if !(pos_w > 0.0 && neg_w > 0.0) {
        return Err(LinearError::Data {
            reason: "one class has zero total weight".into(),
        });
    }
    let (coef, intercept, report) = minimise(params, &prep.z, y, &w)?;
    Ok(LogisticModel {
        n_features: d,
        log_transform: prep.log_transform,
        impute: prep.impute,
        mean: prep.mean,
        scale: prep.scale,
        coef: coef.iter().map(|&c| c as f32).collect(),
        intercept: intercept as f32,
        report,
        params: params.clone(),
    })
}

/// `ln(1 + e^{-m})` without overflow.
#[inline]
fn log1p_exp_neg(m: f64) -> f64 {
    if m > 0.0 {
        (-m).exp().ln_1p()
    } else {
        -m + m.exp().ln_1p()
    }
}

/// The crate docs' objective divided by the total weight `W = Σ wᵢ` (scikit-learn's scaling,
/// so the gradient tolerance means the same for any number of rows) and its gradient, in one
/// pass over the rows. Parameters are `[β₁ … β_d, β₀]` (intercept last).
fn mean_objective(
    z: &Array2<f64>,
    y: &[bool],
    w: &[f64],
    total_weight: f64,
    l2: f64,
    p: &[f64],
    grad: &mut [f64],
) -> f64 {
    let d = z.ncols();
    let (beta, b0) = (&p[..d], p[d]);
    let blocks: Vec<(f64, Vec<f64>)> = z
        .axis_chunks_iter(Axis(0), BLOCK_ROWS)
        .into_par_iter()
        .enumerate()
        .map(|(bi, block)| {
            let mut g = vec![0.0; d + 1];
            let mut cost = 0.0;
            for (k, row) in block.outer_iter().enumerate() {
                let i = bi * BLOCK_ROWS + k;
                if w[i] == 0.0 {
                    continue;
                }
                let s = if y[i] { 1.0 } else { -1.0 };
                let eta: f64 = row.iter().zip(beta).map(|(a, b)| a * b).sum::<f64>() + b0;
                let m = s * eta;
                cost += w[i] * log1p_exp_neg(m);
                // d/dη of ln(1 + e^{-sη}) = −s·σ(−sη)
                let r = -s * w[i] / (1.0 + m.exp());
                for (gj, a) in g.iter_mut().zip(row.iter()) {
                    *gj += r * a;
                }
                g[d] += r;
            }
            (cost, g)
        })
        .collect();
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut cost = 0.0;
    for (c, g) in blocks {
        cost += c;
        for (a, b) in grad.iter_mut().zip(&g) {
            *a += b;
        }
    }
    for j in 0..d {
        cost += 0.5 * l2 * beta[j] * beta[j];
        grad[j] += l2 * beta[j];
    }
    let inv = 1.0 / total_weight;
    grad.iter_mut().for_each(|g| *g *= inv);
    cost * inv
}

/// L-BFGS from β = 0 and the intercept at the weighted log-odds of the labels (the optimum
/// when all coefficients are zero; scikit-learn starts from 0, which only costs iterations).
fn minimise(
    params: &LogisticParams,
    z: &Array2<f64>,
    y: &[bool],
    w: &[f64],
) -> Result<(Vec<f64>, f64, FitReport), LinearError> {
    let d = z.ncols();
    let total: f64 = w.iter().sum();
    let pos: f64 = w
        .iter()
        .zip(y)
        .filter(|(_, &yi)| yi)
        .map(|(wi, _)| wi)
        .sum();
    let mut x0 = vec![0.0; d + 1];
    x0[d] = (pos / (total - pos)).ln();
    let opts = LbfgsOptions {
        memory: 10,
        max_iter: params.max_iter,
        gradient_tolerance: params.gradient_tolerance,
        cost_tolerance: 64.0 * f64::EPSILON,
    };
    let r = lbfgs::minimize(
        |p, g| mean_objective(z, y, w, total, params.l2, p, g),
        x0,
        &opts,
    );
    if !r.x.iter().all(|v| v.is_finite()) {
        return Err(LinearError::Solver {
            reason: "L-BFGS produced non-finite coefficients".into(),
        });
    }
    let report = FitReport {
        iterations: r.iterations,
        evaluations: r.evaluations,
        gradient_max: r.gradient_max,
        objective: r.cost,
        stop: r.stop,
        converged: r.stop.converged(),
    };
    Ok((r.x[..d].to_vec(), r.x[d], report))
}
