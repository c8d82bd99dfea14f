//! Objectives: the loss, its gradient and hessian with respect to the raw margin, the initial
//! score and the link function.
//!
//! The tree learner never sees labels or the loss: the boosting loop asks the objective for
//! per-row `(gradient, hessian)` pairs (stored as `[f32; 2]`) and hands only those to the
//! learner (LightGBM's split between `objective`, `boosting` and `treelearner`).
//!
//! With raw margin `s` and effective row weight `w` (sample weight, times `scale_pos_weight` for
//! positive rows of the binary objective):
//!
//! | objective | loss `l(y, s)` | gradient | hessian | init score |
//! |---|---|---|---|---|
//! | binary | `log(1 + e^s) - y s` | `w (p - y)`, `p = σ(s)` | `w p (1 - p)` | `log(P / (1 - P))`, `P` = weighted base rate |
//! | regression | `(s - y)^2 / 2` | `w (s - y)` | `w` | weighted mean of `y` |
//! | tweedie (power `ρ`, log link) | `-y e^{(1-ρ)s}/(1-ρ) + e^{(2-ρ)s}/(2-ρ)` | `w (-y e^{(1-ρ)s} + e^{(2-ρ)s})` | `w (-y (1-ρ) e^{(1-ρ)s} + (2-ρ) e^{(2-ρ)s})` | `log` of weighted mean of `y` |

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::GbdtError;
use crate::par::{chunked_sum2, SUM_CHUNK};

fn default_scale_pos_weight() -> f64 {
    1.0
}
fn default_variance_power() -> f64 {
    1.5
}

/// The loss being minimised. Serialized as an internally tagged table, e.g.
/// `{ "type": "binary", "scale_pos_weight": 10.0 }`, `{ "type": "regression" }`,
/// `{ "type": "tweedie", "variance_power": 1.5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Objective {
    /// Binary log loss on labels in {0, 1}. `scale_pos_weight` (default 1, > 0) multiplies the
    /// weight of positive rows. Raw margin is log-odds; [`Objective::transform`] is the sigmoid.
    Binary {
        #[serde(default = "default_scale_pos_weight")]
        scale_pos_weight: f64,
    },
    /// Squared error (L2) regression; identity link.
    Regression,
    /// Tweedie regression with log link; labels must be >= 0. `variance_power` in (1, 2),
    /// default 1.5.
    Tweedie {
        #[serde(default = "default_variance_power")]
        variance_power: f64,
    },
}

impl Default for Objective {
    fn default() -> Self {
        Objective::Binary {
            scale_pos_weight: 1.0,
        }
    }
}

/// Numerically stable logistic function.
#[inline]
pub fn sigmoid(s: f64) -> f64 {
    if s >= 0.0 {
        1.0 / (1.0 + (-s).exp())
    } else {
        let e = s.exp();
        e / (1.0 + e)
    }
}

impl Objective {
    /// Check the objective's own parameters.
    pub(crate) fn check(&self) -> Result<(), GbdtError> {
        match *self {
            Objective::Binary { scale_pos_weight } => {
                if !(scale_pos_weight.is_finite() && scale_pos_weight > 0.0) {
                    return Err(GbdtError::InvalidParam {
                        name: "objective.scale_pos_weight",
                        reason: format!("must be finite and > 0, got {scale_pos_weight}"),
                    });
                }
            }
            Objective::Regression => {}
            Objective::Tweedie { variance_power } => {
                if !(variance_power > 1.0 && variance_power < 2.0) {
                    return Err(GbdtError::InvalidParam {
                        name: "objective.variance_power",
                        reason: format!("must be in (1, 2), got {variance_power}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Validate one label. Returns the reason when invalid.
    pub(crate) fn check_label(&self, y: f32) -> Result<(), &'static str> {
        if !y.is_finite() {
            return Err("label must be finite");
        }
        match self {
            Objective::Binary { .. } if y != 0.0 && y != 1.0 => Err("binary label must be 0 or 1"),
            Objective::Tweedie { .. } if y < 0.0 => Err("tweedie label must be >= 0"),
            _ => Ok(()),
        }
    }

    /// Extra weight factor for a row with label `y` (scale_pos_weight for binary positives).
    #[inline]
    pub(crate) fn label_weight(&self, y: f32) -> f32 {
        match *self {
            Objective::Binary { scale_pos_weight } if y > 0.5 => scale_pos_weight as f32,
            _ => 1.0,
        }
    }

    /// Initial raw score (the constant that minimises the weighted loss).
    /// `w` are the effective weights (sample weight x label weight), `None` = all ones.
    pub(crate) fn init_score(&self, y: &[f32], w: Option<&[f32]>) -> Result<f64, GbdtError> {
        let (swy, sw) = chunked_sum2(y.len(), |i| {
            let wi = w.map_or(1.0, |w| w[i]) as f64;
            (wi * y[i] as f64, wi)
        });
        if sw <= 0.0 {
            return Err(GbdtError::ZeroWeight);
        }
        let mean = swy / sw;
        Ok(match self {
            Objective::Binary { .. } => {
                let p = mean.clamp(1e-15, 1.0 - 1e-15);
                (p / (1.0 - p)).ln()
            }
            Objective::Regression => mean,
            Objective::Tweedie { .. } => mean.max(1e-15).ln(),
        })
    }

    /// Unweighted per-row loss `l(y, s)` (see the module table).
    #[inline]
    pub fn loss(&self, y: f64, s: f64) -> f64 {
        match *self {
            Objective::Binary { .. } => softplus(s) - y * s,
            Objective::Regression => 0.5 * (s - y) * (s - y),
            Objective::Tweedie {
                variance_power: rho,
            } => -y * ((1.0 - rho) * s).exp() / (1.0 - rho) + ((2.0 - rho) * s).exp() / (2.0 - rho),
        }
    }

    /// Unweighted `(gradient, hessian)` of [`Objective::loss`] at raw score `s`.
    #[inline]
    pub fn grad_hess(&self, y: f64, s: f64) -> (f64, f64) {
        match *self {
            Objective::Binary { .. } => {
                let p = sigmoid(s);
                (p - y, p * (1.0 - p))
            }
            Objective::Regression => (s - y, 1.0),
            Objective::Tweedie {
                variance_power: rho,
            } => {
                let a = ((1.0 - rho) * s).exp();
                let b = ((2.0 - rho) * s).exp();
                (-y * a + b, -y * (1.0 - rho) * a + (2.0 - rho) * b)
            }
        }
    }

    /// Fill `gh[i] = w_i * grad_hess(y_i, s_i)` for every row (parallel, per-row independent).
    pub(crate) fn gradients(
        &self,
        y: &[f32],
        w: Option<&[f32]>,
        scores: &[f64],
        gh: &mut [[f32; 2]],
    ) {
        let obj = *self;
        gh.par_chunks_mut(SUM_CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                let lo = c * SUM_CHUNK;
                let ys = &y[lo..lo + out.len()];
                let ss = &scores[lo..lo + out.len()];
                match w {
                    None => {
                        for ((o, &yi), &si) in out.iter_mut().zip(ys).zip(ss) {
                            let (g, h) = obj.grad_hess(yi as f64, si);
                            *o = [g as f32, h as f32];
                        }
                    }
                    Some(w) => {
                        let ws = &w[lo..lo + out.len()];
                        for (((o, &yi), &si), &wi) in out.iter_mut().zip(ys).zip(ss).zip(ws) {
                            let (g, h) = obj.grad_hess(yi as f64, si);
                            let wi = wi as f64;
                            *o = [(g * wi) as f32, (h * wi) as f32];
                        }
                    }
                }
            });
    }

    /// Map a raw margin to the output scale: sigmoid (binary), identity (regression),
    /// `exp` (tweedie).
    #[inline]
    pub fn transform(&self, raw: f64) -> f64 {
        match self {
            Objective::Binary { .. } => sigmoid(raw),
            Objective::Regression => raw,
            Objective::Tweedie { .. } => raw.exp(),
        }
    }
}

/// `log(1 + e^s)` without overflow.
#[inline]
pub(crate) fn softplus(s: f64) -> f64 {
    s.max(0.0) + (-s.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objectives() -> Vec<Objective> {
        vec![
            Objective::Binary {
                scale_pos_weight: 1.0,
            },
            Objective::Regression,
            Objective::Tweedie {
                variance_power: 1.3,
            },
            Objective::Tweedie {
                variance_power: 1.8,
            },
        ]
    }

    /// Gradient and hessian against central finite differences of the loss (first principles).
    #[test]
    fn grad_hess_match_finite_differences() {
        let eps = 1e-5;
        for obj in objectives() {
            let ys: &[f64] = match obj {
                Objective::Binary { .. } => &[0.0, 1.0],
                _ => &[0.0, 0.7, 3.5],
            };
            for &y in ys {
                for &s in &[-3.0, -0.4, 0.0, 0.25, 2.0] {
                    let (g, h) = obj.grad_hess(y, s);
                    let fd_g = (obj.loss(y, s + eps) - obj.loss(y, s - eps)) / (2.0 * eps);
                    let fd_h =
                        (obj.grad_hess(y, s + eps).0 - obj.grad_hess(y, s - eps).0) / (2.0 * eps);
                    let fd_h2 = (obj.loss(y, s + 1e-4) - 2.0 * obj.loss(y, s)
                        + obj.loss(y, s - 1e-4))
                        / 1e-8;
                    assert!(
                        (g - fd_g).abs() < 1e-6 * (1.0 + g.abs()),
                        "{obj:?} y={y} s={s}: g={g} fd={fd_g}"
                    );
                    assert!(
                        (h - fd_h).abs() < 1e-6 * (1.0 + h.abs()),
                        "{obj:?} y={y} s={s}: h={h} fd={fd_h}"
                    );
                    assert!(
                        (h - fd_h2).abs() < 1e-4 * (1.0 + h.abs()),
                        "{obj:?} y={y} s={s}: h={h} fd2={fd_h2}"
                    );
                }
            }
        }
    }

    #[test]
    fn binary_loss_is_log_loss() {
        let obj = Objective::default();
        for &s in &[-30.0, -1.0, 0.0, 2.5, 40.0] {
            let p = sigmoid(s);
            let l1 = obj.loss(1.0, s);
            let l0 = obj.loss(0.0, s);
            assert!((l1 - (-(p.max(1e-300)).ln())).abs() < 1e-9 * (1.0 + l1));
            assert!((l0 - (-(1.0 - p).max(1e-300).ln())).abs() < 1e-9 * (1.0 + l0) || s > 30.0);
        }
    }

    #[test]
    fn init_score_minimises_constant_loss() {
        let y = [0.0f32, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let w = [1.0f32, 2.0, 1.0, 0.5, 2.0, 1.0, 3.0];
        for obj in objectives() {
            let s0 = obj.init_score(&y, Some(&w)).unwrap_or(f64::NAN);
            let total = |s: f64| -> f64 {
                y.iter()
                    .zip(&w)
                    .map(|(&yi, &wi)| wi as f64 * obj.loss(yi as f64, s))
                    .sum()
            };
            assert!(
                total(s0) <= total(s0 + 1e-3) && total(s0) <= total(s0 - 1e-3),
                "{obj:?}"
            );
        }
    }
}
