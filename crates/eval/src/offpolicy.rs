//! Off-policy value: what a *target* selection (a new policy's, a challenger's top-k) would have
//! found, estimated from inspections that a *logging* policy chose with recorded inclusion
//! probabilities.
//!
//! ## Setting and estimand
//! Rows i = 1..n of a period. The target policy selects the set T (|T| = t rows). The logging
//! policy inspected row i with known probability π_i ∈ (0, 1] (independent draws: Poisson
//! sampling; mandatory rules have π_i = 1); I_i = 1 when row i was inspected, and then its
//! outcome y_i is observed (1/0 for a seizure, or revenue recovered). The estimand is the
//! **finite-population mean over the target set**, θ = (1/t) Σ_{i∈T} y_i — for binary y the
//! hit rate the target policy would have had.
//!
//! ## Estimators (Horvitz & Thompson 1952; Hájek 1971; Robins, Rotnitzky & Zhao 1994)
//! - **IPW** (Horvitz–Thompson): θ̂ = (1/t) Σ_{i∈T} I_i y_i / π_i. Unbiased.
//!   V̂ = (1/t²) Σ_{i∈T} I_i (1 − π_i) y_i² / π_i².
//! - **Self-normalised IPW** (Hájek): θ̂ = Σ_T I y/π / N̂ with N̂ = Σ_T I/π. Bias O(1/n), often
//!   smaller variance. Linearised V̂ = (1/N̂²) Σ_T I (1 − π)(y − θ̂)² / π².
//! - **Doubly robust** (augmented IPW) with an outcome model m_i (e.g. the calibrated score):
//!   θ̂ = (1/t) Σ_{i∈T} [m_i + I_i (y_i − m_i)/π_i]. Unbiased when the π are right, whatever m;
//!   its variance shrinks as m approaches y. V̂ = (1/t²) Σ_T I (1 − π)(y − m)² / π².
//!
//! Each V̂ is the design-based (Poisson sampling) variance estimator of its linear form;
//! intervals are θ̂ ± z·√V̂ (z = Φ⁻¹(½ + confidence/2)). Rows with π_i = 1 add no variance.
//! The naive mean over inspected rows in T ignores π and is biased whenever π correlates with
//! y inside T; it is reported for contrast only.

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::stats::z_for;

/// Which off-policy estimator produced a [`PolicyEstimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffPolicyEstimator {
    /// Horvitz–Thompson inverse-propensity weighting.
    Ipw,
    /// Hájek self-normalised inverse-propensity weighting.
    SelfNormalisedIpw,
    /// Augmented IPW with an outcome model.
    DoublyRobust,
    /// Mean over inspected target rows, ignoring propensities (biased; for contrast).
    NaiveInspected,
}

impl OffPolicyEstimator {
    pub fn as_str(self) -> &'static str {
        match self {
            OffPolicyEstimator::Ipw => "ipw",
            OffPolicyEstimator::SelfNormalisedIpw => "snipw",
            OffPolicyEstimator::DoublyRobust => "doubly_robust",
            OffPolicyEstimator::NaiveInspected => "naive_inspected",
        }
    }
}

/// One estimate of the target policy's mean outcome, with its normal interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyEstimate {
    pub estimator: OffPolicyEstimator,
    pub value: f64,
    /// Estimated standard error (√V̂).
    pub se: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
}

impl PolicyEstimate {
    fn new(est: OffPolicyEstimator, value: f64, var: f64, z: f64, conf: f64) -> PolicyEstimate {
        let se = var.max(0.0).sqrt();
        PolicyEstimate {
            estimator: est,
            value,
            se,
            ci_low: value - z * se,
            ci_high: value + z * se,
            confidence: conf,
        }
    }
    /// True when `x` lies inside the interval (ends included).
    pub fn covers(&self, x: f64) -> bool {
        self.ci_low <= x && x <= self.ci_high
    }
}

/// Logged data of one period, one entry per row.
#[derive(Debug, Clone, Copy)]
pub struct LoggedData<'a> {
    /// Outcome where the row was inspected (1.0/0.0 for a seizure, or revenue), `None` if not.
    pub outcome: &'a [Option<f64>],
    /// Logging policy's inclusion probability π_i ∈ (0, 1]; required on every inspected row.
    pub propensity: &'a [Option<f64>],
}

/// The value of a target selection under each estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyValue {
    /// Rows the target policy selects (t).
    pub target_rows: usize,
    /// Inspected rows among them (the rows that carry information).
    pub observed_in_target: usize,
    pub ipw: PolicyEstimate,
    pub snipw: Option<PolicyEstimate>,
    /// Present when an outcome model was given.
    pub doubly_robust: Option<PolicyEstimate>,
    pub naive: Option<PolicyEstimate>,
}

/// Estimate the mean outcome over the rows with `target[i] == true` from logged inspections.
/// `model` is the outcome model m_i for the doubly robust estimator (one per row; may be `None`).
///
/// Errors: length mismatch; an inspected row without a propensity or with π ∉ (0, 1]; a
/// non-finite outcome or model value; an empty target set.
pub fn policy_value(
    target: &[bool],
    logged: LoggedData<'_>,
    model: Option<&[f64]>,
    confidence: f64,
) -> Result<PolicyValue, EvalError> {
    let n = target.len();
    for (what, got) in [
        ("outcome", logged.outcome.len()),
        ("propensity", logged.propensity.len()),
        ("model", model.map_or(n, <[f64]>::len)),
    ] {
        if got != n {
            return Err(EvalError::LengthMismatch {
                what: what.into(),
                got,
                expected: n,
            });
        }
    }
    let t = target.iter().filter(|&&s| s).count();
    if t == 0 {
        return Err(EvalError::InvalidRow {
            row: 0,
            column: "target",
            why: "the target policy selects no row".into(),
        });
    }
    let z = z_for(confidence);
    let tf = t as f64;
    // One pass for the sums that do not need θ̂; a second for the Hájek residuals.
    let (mut ht, mut ht_var, mut n_hat, mut dr, mut dr_var) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut naive_sum, mut naive_sq, mut observed) = (0.0, 0.0, 0usize);
    for i in (0..n).filter(|&i| target[i]) {
        let m = match model {
            Some(m) => {
                let v = m[i];
                if !v.is_finite() {
                    return Err(EvalError::InvalidRow {
                        row: i,
                        column: "model",
                        why: format!("is {v}, must be finite"),
                    });
                }
                v
            }
            None => 0.0,
        };
        dr += m;
        let Some(y) = logged.outcome[i] else { continue };
        if !y.is_finite() {
            return Err(EvalError::InvalidRow {
                row: i,
                column: "outcome",
                why: format!("is {y}, must be finite"),
            });
        }
        let p = checked_propensity(i, logged.propensity[i])?;
        observed += 1;
        let w = 1.0 / p;
        let c = (1.0 - p) * w * w;
        ht += y * w;
        ht_var += c * y * y;
        n_hat += w;
        dr += (y - m) * w;
        dr_var += c * (y - m) * (y - m);
        naive_sum += y;
        naive_sq += y * y;
    }
    let ipw = PolicyEstimate::new(
        OffPolicyEstimator::Ipw,
        ht / tf,
        ht_var / (tf * tf),
        z,
        confidence,
    );
    let snipw = (n_hat > 0.0).then(|| {
        let theta = ht / n_hat;
        let mut v = 0.0;
        for i in (0..n).filter(|&i| target[i]) {
            if let (Some(y), Some(p)) = (logged.outcome[i], logged.propensity[i]) {
                v += (1.0 - p) / (p * p) * (y - theta) * (y - theta);
            }
        }
        PolicyEstimate::new(
            OffPolicyEstimator::SelfNormalisedIpw,
            theta,
            v / (n_hat * n_hat),
            z,
            confidence,
        )
    });
    let doubly_robust = model.map(|_| {
        PolicyEstimate::new(
            OffPolicyEstimator::DoublyRobust,
            dr / tf,
            dr_var / (tf * tf),
            z,
            confidence,
        )
    });
    let naive = (observed > 0).then(|| {
        let k = observed as f64;
        let mean = naive_sum / k;
        let var = if observed > 1 {
            (naive_sq - k * mean * mean).max(0.0) / (k - 1.0) / k
        } else {
            f64::INFINITY
        };
        PolicyEstimate::new(OffPolicyEstimator::NaiveInspected, mean, var, z, confidence)
    });
    Ok(PolicyValue {
        target_rows: t,
        observed_in_target: observed,
        ipw,
        snipw,
        doubly_robust,
        naive,
    })
}

/// The difference θ_B − θ_A between two target selections (e.g. challenger B's and champion
/// A's top-k), estimated from the same logged inspections. Paired: a row selected by both
/// cancels exactly, so only the rows where the selections differ carry variance.
///
/// With c_i = b_i/t_B − a_i/t_A (a_i, b_i ∈ {0, 1} the selections):
/// - IPW: Σ c_i I_i y_i/π_i, V̂ = Σ c_i² I_i (1 − π_i) y_i²/π_i²;
/// - DR: Σ c_i [m_i + I_i (y_i − m_i)/π_i], V̂ = Σ c_i² I_i (1 − π_i)(y_i − m_i)²/π_i²;
/// - self-normalised: θ̂_B − θ̂_A of the Hájek ratios, with the linearised influence
///   u_i = b_i (y_i − θ̂_B)/N̂_B − a_i (y_i − θ̂_A)/N̂_A and V̂ = Σ I_i (1 − π_i) u_i²/π_i².
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDifference {
    pub a: PolicyValue,
    pub b: PolicyValue,
    pub ipw: PolicyEstimate,
    pub snipw: Option<PolicyEstimate>,
    pub doubly_robust: Option<PolicyEstimate>,
}

impl PolicyDifference {
    /// The difference by one estimator (`NaiveInspected` has no paired form: `None`).
    pub fn by(&self, est: OffPolicyEstimator) -> Option<PolicyEstimate> {
        match est {
            OffPolicyEstimator::Ipw => Some(self.ipw),
            OffPolicyEstimator::SelfNormalisedIpw => self.snipw,
            OffPolicyEstimator::DoublyRobust => self.doubly_robust,
            OffPolicyEstimator::NaiveInspected => None,
        }
    }
}

/// Estimate θ_B − θ_A; see [`PolicyDifference`]. Errors as [`policy_value`] for either set.
pub fn policy_difference(
    target_a: &[bool],
    target_b: &[bool],
    logged: LoggedData<'_>,
    model: Option<&[f64]>,
    confidence: f64,
) -> Result<PolicyDifference, EvalError> {
    if target_b.len() != target_a.len() {
        return Err(EvalError::LengthMismatch {
            what: "target_b".into(),
            got: target_b.len(),
            expected: target_a.len(),
        });
    }
    let a = policy_value(target_a, logged, model, confidence)?;
    let b = policy_value(target_b, logged, model, confidence)?;
    let z = z_for(confidence);
    let (ta, tb) = (a.target_rows as f64, b.target_rows as f64);
    let (mut ht_var, mut dr_var, mut sn_var) = (0.0, 0.0, 0.0);
    let (sa, sb) = (a.snipw, b.snipw);
    let (mut na, mut nb) = (0.0, 0.0);
    for i in 0..target_a.len() {
        if let (Some(_), Some(p)) = (logged.outcome[i], logged.propensity[i]) {
            let w = 1.0 / p;
            na += f64::from(u8::from(target_a[i])) * w;
            nb += f64::from(u8::from(target_b[i])) * w;
        }
    }
    for i in 0..target_a.len() {
        let (ai, bi) = (target_a[i], target_b[i]);
        if !(ai || bi) {
            continue;
        }
        let (Some(y), Some(p)) = (logged.outcome[i], logged.propensity[i]) else {
            continue;
        };
        let k = (1.0 - p) / (p * p);
        let c = f64::from(u8::from(bi)) / tb - f64::from(u8::from(ai)) / ta;
        let m = model.map_or(0.0, |m| m[i]);
        ht_var += c * c * k * y * y;
        dr_var += c * c * k * (y - m) * (y - m);
        if let (Some(ea), Some(eb)) = (sa, sb) {
            let u = if bi { (y - eb.value) / nb } else { 0.0 }
                - if ai { (y - ea.value) / na } else { 0.0 };
            sn_var += k * u * u;
        }
    }
    let ipw = PolicyEstimate::new(
        OffPolicyEstimator::Ipw,
        b.ipw.value - a.ipw.value,
        ht_var,
        z,
        confidence,
    );
    let snipw = match (sa, sb) {
        (Some(ea), Some(eb)) => Some(PolicyEstimate::new(
            OffPolicyEstimator::SelfNormalisedIpw,
            eb.value - ea.value,
            sn_var,
            z,
            confidence,
        )),
        _ => None,
    };
    let doubly_robust = match (a.doubly_robust, b.doubly_robust) {
        (Some(ea), Some(eb)) => Some(PolicyEstimate::new(
            OffPolicyEstimator::DoublyRobust,
            eb.value - ea.value,
            dr_var,
            z,
            confidence,
        )),
        _ => None,
    };
    Ok(PolicyDifference {
        a,
        b,
        ipw,
        snipw,
        doubly_robust,
    })
}

/// The promotion rule: promote the challenger only when the **one-sided lower confidence
/// bound** of its improvement, θ̂_B − θ̂_A − z₁·SE with z₁ = Φ⁻¹(confidence), is above
/// `threshold`. At confidence 0.95 a challenger no better than the champion is promoted at
/// most ~5 % of the time (asymptotically), and one that is worse far less.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PromotionGate {
    pub estimator: OffPolicyEstimator,
    /// Minimum improvement of the lower bound (in outcome units, e.g. hit-rate points).
    pub threshold: f64,
    /// One-sided confidence of the lower bound.
    pub confidence: f64,
}

impl Default for PromotionGate {
    fn default() -> Self {
        PromotionGate {
            estimator: OffPolicyEstimator::DoublyRobust,
            threshold: 0.0,
            confidence: 0.95,
        }
    }
}

/// What the gate decided, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    pub promote: bool,
    pub estimator: OffPolicyEstimator,
    pub improvement: f64,
    pub se: f64,
    pub lower_bound: f64,
    pub threshold: f64,
    pub confidence: f64,
    /// One sentence for the registry and the report.
    pub reason: String,
}

impl PromotionGate {
    /// Decide from a [`PolicyDifference`] (B = challenger, A = champion). An estimator the
    /// difference lacks (DR without an outcome model) falls back to self-normalised IPW,
    /// then IPW, and the decision says which it used.
    pub fn decide(&self, diff: &PolicyDifference) -> GateDecision {
        let e = diff.by(self.estimator).or(diff.snipw).unwrap_or(diff.ipw);
        let z1 = crate::stats::norm_ppf(self.confidence);
        let lower = e.value - z1 * e.se;
        let promote = lower > self.threshold;
        let reason = format!(
            "{} estimate of the improvement {:+.4} (SE {:.4}); one-sided {:.0} % lower bound {:+.4} {} threshold {:+.4}: {}",
            e.estimator.as_str(),
            e.value,
            e.se,
            self.confidence * 100.0,
            lower,
            if promote { ">" } else { "<=" },
            self.threshold,
            if promote { "promote" } else { "keep the champion" }
        );
        GateDecision {
            promote,
            estimator: e.estimator,
            improvement: e.value,
            se: e.se,
            lower_bound: lower,
            threshold: self.threshold,
            confidence: self.confidence,
            reason,
        }
    }
}

fn checked_propensity(row: usize, p: Option<f64>) -> Result<f64, EvalError> {
    match p {
        Some(p) if p > 0.0 && p <= 1.0 => Ok(p),
        Some(p) => Err(EvalError::InvalidRow {
            row,
            column: "propensity",
            why: format!("is {p}, must be in (0, 1]"),
        }),
        None => Err(EvalError::InvalidRow {
            row,
            column: "propensity",
            why: "an inspected row has no recorded inclusion probability".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed on four target rows: π = (1, .5, .25, –), y = (1, 0, 1, –), m = .5 each.
    #[test]
    fn formulas_by_hand() {
        let target = [true, true, true, true, false];
        let outcome = [Some(1.0), Some(0.0), Some(1.0), None, Some(1.0)];
        let propensity = [Some(1.0), Some(0.5), Some(0.25), None, Some(0.5)];
        let model = [0.5; 5];
        let v = policy_value(
            &target,
            LoggedData {
                outcome: &outcome,
                propensity: &propensity,
            },
            Some(&model),
            0.95,
        )
        .unwrap();
        // HT: (1/1 + 0 + 1/.25) / 4 = 5/4; V = ((1-.25)·16·1)/16 = 0.75.
        assert!((v.ipw.value - 1.25).abs() < 1e-15);
        assert!((v.ipw.se - 0.75f64.sqrt()).abs() < 1e-15);
        // Hájek: 5 / (1 + 2 + 4) = 5/7.
        let sn = v.snipw.unwrap();
        assert!((sn.value - 5.0 / 7.0).abs() < 1e-15);
        let th = 5.0 / 7.0;
        let var: f64 = ((0.5 / 0.25) * th * th + (0.75 / 0.0625) * (1.0 - th) * (1.0 - th)) / 49.0;
        assert!((sn.se - var.sqrt()).abs() < 1e-15);
        // DR: (4·0.5 + (0.5) + (-0.5)·2 + 0.5·4) / 4 = (2 + .5 - 1 + 2)/4 = 0.875.
        let dr = v.doubly_robust.unwrap();
        assert!((dr.value - 0.875).abs() < 1e-15);
        let var: f64 = (0.5 * 4.0 * 0.25 + 0.75 * 16.0 * 0.25) / 16.0;
        assert!((dr.se - var.sqrt()).abs() < 1e-15);
        assert_eq!(v.observed_in_target, 3);
        assert_eq!(v.target_rows, 4);
    }

    #[test]
    fn inspected_row_without_propensity_is_an_error() {
        let e = policy_value(
            &[true],
            LoggedData {
                outcome: &[Some(1.0)],
                propensity: &[None],
            },
            None,
            0.95,
        )
        .unwrap_err();
        assert!(e.to_string().contains("propensity"), "{e}");
        let e = policy_value(
            &[true],
            LoggedData {
                outcome: &[Some(1.0)],
                propensity: &[Some(0.0)],
            },
            None,
            0.95,
        )
        .unwrap_err();
        assert!(e.to_string().contains("(0, 1]"), "{e}");
        assert!(policy_value(
            &[false],
            LoggedData {
                outcome: &[None],
                propensity: &[None]
            },
            None,
            0.95
        )
        .is_err());
    }
}
