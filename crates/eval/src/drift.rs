//! Population stability index (PSI).
//!
//! `PSI = Σ_b (a_b − e_b)·ln(a_b / e_b)` over bins, with expected (training) proportions e
//! and actual (new) proportions a. Proportions below [`PSI_FLOOR`] are raised to it first, so
//! an empty bin does not give ∞ (the usual practice; documented, not hidden).
//!
//! Binning by edges `e_0 < e_1 < … < e_{m−1}` gives m + 2 bins:
//! `(−∞, e_0)`, `[e_0, e_1)`, …, `[e_{m−1}, +∞)`, and a last bin for NaN (missing) values.
//! Reading: < 0.1 stable, 0.1–0.2 moderate shift, ≥ 0.2 (default flag) significant shift.

use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// Proportions are floored at this value before the PSI sum.
pub const PSI_FLOOR: f64 = 1e-4;

/// PSI between two proportion vectors of the same length (each should sum to 1; they are
/// renormalised if they do not, and must be finite and ≥ 0 with a positive sum).
pub fn psi(expected_props: &[f64], actual_props: &[f64]) -> Result<f64, EvalError> {
    Ok(psi_terms(expected_props, actual_props)?.iter().sum())
}

/// Per-bin PSI contributions.
pub fn psi_terms(expected_props: &[f64], actual_props: &[f64]) -> Result<Vec<f64>, EvalError> {
    let bad = |why: String| EvalError::Drift {
        name: "psi".into(),
        why,
    };
    if expected_props.len() != actual_props.len() {
        return Err(bad(format!(
            "{} expected proportions but {} actual",
            expected_props.len(),
            actual_props.len()
        )));
    }
    if expected_props.is_empty() {
        return Err(bad("no bins".into()));
    }
    let norm = |v: &[f64], what: &str| -> Result<Vec<f64>, EvalError> {
        if let Some(i) = v.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(bad(format!("{what} proportion {i} is {}", v[i])));
        }
        let s: f64 = v.iter().sum();
        if s <= 0.0 {
            return Err(bad(format!("{what} proportions sum to 0")));
        }
        Ok(v.iter().map(|x| (x / s).max(PSI_FLOOR)).collect())
    };
    let e = norm(expected_props, "expected")?;
    let a = norm(actual_props, "actual")?;
    Ok(e.iter()
        .zip(&a)
        .map(|(e, a)| (a - e) * (a / e).ln())
        .collect())
}

fn check_edges(edges: &[f64]) -> Result<(), EvalError> {
    if let Some(i) = edges.iter().position(|x| !x.is_finite()) {
        return Err(EvalError::Drift {
            name: "edges".into(),
            why: format!("edge {i} is {}", edges[i]),
        });
    }
    if let Some(i) = edges.windows(2).position(|w| w[0] >= w[1]) {
        return Err(EvalError::Drift {
            name: "edges".into(),
            why: format!(
                "edges must be strictly increasing: edge {} = {} >= edge {} = {}",
                i,
                edges[i],
                i + 1,
                edges[i + 1]
            ),
        });
    }
    Ok(())
}

/// Bin index of a value: 0 for `< e_0`, j for `[e_{j−1}, e_j)`, m for `≥ e_{m−1}`, m + 1 for NaN.
#[inline]
pub fn bin_index(x: f64, edges: &[f64]) -> usize {
    if x.is_nan() {
        edges.len() + 1
    } else {
        edges.partition_point(|&e| e <= x)
    }
}

/// Counts per bin (m + 2 bins for m edges, the last one for NaN).
pub fn bin_counts(values: &[f64], edges: &[f64]) -> Result<Vec<u64>, EvalError> {
    check_edges(edges)?;
    let mut c = vec![0u64; edges.len() + 2];
    for &x in values {
        c[bin_index(x, edges)] += 1;
    }
    Ok(c)
}

/// Proportions per bin (m + 2 bins); all zeros for an empty input.
pub fn bin_proportions(values: &[f64], edges: &[f64]) -> Result<Vec<f64>, EvalError> {
    let c = bin_counts(values, edges)?;
    let n = values.len().max(1) as f64;
    Ok(c.iter().map(|&x| x as f64 / n).collect())
}

/// Interior quantile edges for `n_bins` bins of the non-NaN `values` (NumPy's linear
/// percentile rule), duplicates removed; use them as training edges.
pub fn quantile_edges(values: &[f64], n_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() || n_bins < 2 {
        return Vec::new();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mut edges: Vec<f64> = (1..n_bins)
        .filter_map(|j| crate::stats::percentile_sorted(&v, j as f64 / n_bins as f64))
        .collect();
    edges.dedup();
    edges
}

/// Drift level of a PSI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftLevel {
    /// PSI < 0.1
    Stable,
    /// 0.1 ≤ PSI < 0.2
    Moderate,
    /// PSI ≥ 0.2
    Shift,
}

impl DriftLevel {
    pub fn of(psi: f64) -> DriftLevel {
        if psi < 0.1 {
            DriftLevel::Stable
        } else if psi < 0.2 {
            DriftLevel::Moderate
        } else {
            DriftLevel::Shift
        }
    }
}

/// A feature to check: training edges and proportions plus the new values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDriftInput {
    pub name: String,
    /// Training bin edges, strictly increasing (m edges → m + 2 bins incl. NaN).
    pub edges: Vec<f64>,
    /// Training proportions: m + 2 entries, or m + 1 (then the NaN bin is taken as 0).
    pub expected: Vec<f64>,
    /// New values (NaN = missing).
    pub values: Vec<f64>,
    /// Why this feature shifts by construction (e.g. the month of the year on a time split):
    /// its PSI is still computed and shown, but it is never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_shift: Option<String>,
}

/// Drift inputs of a model's features: its card's training bins ([`cr_model::FeatureBins`])
/// with each feature's new values from `values_of(feature name)`. A bin naming a feature that
/// `values_of` does not know is an error, not a feature silently left out (the card and the
/// features come from the same model).
pub fn feature_inputs(
    bins: &[cr_model::FeatureBins],
    mut values_of: impl FnMut(&str) -> Option<Vec<f64>>,
) -> Result<Vec<FeatureDriftInput>, EvalError> {
    bins.iter()
        .map(|b| {
            let values = values_of(&b.feature).ok_or_else(|| EvalError::Drift {
                name: b.feature.clone(),
                why: "the model card has training bins for this feature, but the model does \
                      not compute it"
                    .into(),
            })?;
            Ok(FeatureDriftInput {
                name: b.feature.clone(),
                edges: b.edges.clone(),
                expected: b.expected.clone(),
                values,
                expected_shift: None,
            })
        })
        .collect()
}

/// One bin of a PSI result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsiBin {
    pub label: String,
    pub expected: f64,
    pub actual: f64,
    pub contribution: f64,
}

/// PSI of one feature (or of the score distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsiResult {
    pub name: String,
    pub psi: f64,
    pub level: DriftLevel,
    /// `psi >= flag threshold` (default 0.2), unless the shift is expected.
    pub flagged: bool,
    /// Why a shift of this feature is expected by construction (never flagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_shift: Option<String>,
    pub n_actual: usize,
    pub bins: Vec<PsiBin>,
}

fn bin_labels(edges: &[f64]) -> Vec<String> {
    let f = |x: f64| {
        format!("{x:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    };
    let m = edges.len();
    let mut out = Vec::with_capacity(m + 2);
    if m == 0 {
        out.push("all".to_string());
    } else {
        out.push(format!("< {}", f(edges[0])));
        for j in 1..m {
            out.push(format!("[{}, {})", f(edges[j - 1]), f(edges[j])));
        }
        out.push(format!(">= {}", f(edges[m - 1])));
    }
    out.push("missing".to_string());
    out
}

/// PSI of one feature from training edges/proportions and new values.
pub fn feature_psi(input: &FeatureDriftInput, flag: f64) -> Result<PsiResult, EvalError> {
    let m = input.edges.len();
    check_edges(&input.edges).map_err(|e| match e {
        EvalError::Drift { why, .. } => EvalError::Drift {
            name: input.name.clone(),
            why,
        },
        other => other,
    })?;
    let mut expected = input.expected.clone();
    if expected.len() == m + 1 {
        expected.push(0.0);
    }
    if expected.len() != m + 2 {
        return Err(EvalError::Drift {
            name: input.name.clone(),
            why: format!(
                "{} edges need {} or {} expected proportions, got {}",
                m,
                m + 1,
                m + 2,
                input.expected.len()
            ),
        });
    }
    let actual = bin_proportions(&input.values, &input.edges)?;
    let terms = psi_terms(&expected, &actual).map_err(|e| match e {
        EvalError::Drift { why, .. } => EvalError::Drift {
            name: input.name.clone(),
            why,
        },
        other => other,
    })?;
    let psi: f64 = terms.iter().sum();
    let bins = bin_labels(&input.edges)
        .into_iter()
        .zip(expected.iter().zip(actual.iter().zip(terms)))
        .map(|(label, (&e, (&a, c)))| PsiBin {
            label,
            expected: e,
            actual: a,
            contribution: c,
        })
        .collect();
    Ok(PsiResult {
        name: input.name.clone(),
        psi,
        level: DriftLevel::of(psi),
        flagged: psi >= flag && input.expected_shift.is_none(),
        expected_shift: input.expected_shift.clone(),
        n_actual: input.values.len(),
        bins,
    })
}

/// PSI of the score distribution: decile edges (or `n_bins`) of the reference scores.
pub fn score_psi(
    reference: &[f64],
    scores: &[f64],
    n_bins: usize,
    flag: f64,
) -> Result<PsiResult, EvalError> {
    let edges = quantile_edges(reference, n_bins);
    let expected = bin_proportions(reference, &edges)?;
    feature_psi(
        &FeatureDriftInput {
            name: "score".into(),
            edges,
            expected,
            values: scores.to_vec(),
            expected_shift: None,
        },
        flag,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_inputs_pair_card_bins_with_values_and_refuse_unknown_features() {
        let bins = vec![
            cr_model::FeatureBins {
                feature: "a".into(),
                edges: vec![1.0],
                expected: vec![0.5, 0.5, 0.0],
            },
            cr_model::FeatureBins {
                feature: "b".into(),
                edges: vec![],
                expected: vec![1.0, 0.0],
            },
        ];
        let got = feature_inputs(&bins, |n| Some(vec![if n == "a" { 1.0 } else { 2.0 }])).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].name.as_str(), got[0].values[0]), ("a", 1.0));
        assert_eq!(got[0].edges, vec![1.0]);
        assert_eq!((got[1].name.as_str(), got[1].values[0]), ("b", 2.0));
        let err = feature_inputs(&bins, |n| (n == "a").then(|| vec![0.0])).unwrap_err();
        assert!(
            matches!(&err, EvalError::Drift { name, .. } if name == "b"),
            "{err}"
        );
    }

    #[test]
    fn psi_by_hand() {
        // (0.5-0.25)ln(2) + (0.5-0.75)ln(2/3)
        let v = psi(&[0.25, 0.75], &[0.5, 0.5]).unwrap();
        let want = 0.25 * 2f64.ln() - 0.25 * (2.0f64 / 3.0).ln();
        assert!((v - want).abs() < 1e-15);
        assert_eq!(psi(&[0.2, 0.8], &[0.2, 0.8]).unwrap(), 0.0);
        assert!(psi(&[0.2], &[0.2, 0.8]).is_err());
    }

    #[test]
    fn bins_are_left_closed_with_nan_bin() {
        let e = [1.0, 2.0];
        assert_eq!(
            bin_counts(&[0.5, 1.0, 1.5, 2.0, 9.0, f64::NAN], &e).unwrap(),
            vec![1, 2, 2, 1]
        );
        assert!(bin_counts(&[1.0], &[2.0, 1.0]).is_err());
    }

    #[test]
    fn an_expected_shift_is_measured_but_never_flagged() {
        // Training: all in the first bin; now: all in the second. PSI by hand with the
        // 1e-4 floor of empty bins is large; what matters is the flag.
        let mut input = FeatureDriftInput {
            name: "month".into(),
            edges: vec![7.0],
            expected: vec![1.0, 0.0, 0.0],
            values: vec![9.0; 10],
            expected_shift: None,
        };
        let plain = feature_psi(&input, 0.2).unwrap();
        assert!(plain.psi > 0.2 && plain.flagged);
        input.expected_shift = Some("calendar".into());
        let marked = feature_psi(&input, 0.2).unwrap();
        assert_eq!(marked.psi, plain.psi);
        assert_eq!(marked.level, DriftLevel::Shift);
        assert!(!marked.flagged);
        assert_eq!(marked.expected_shift.as_deref(), Some("calendar"));
    }
}
