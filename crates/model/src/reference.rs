//! The reference score distribution of a model and the one percentile rule.
//!
//! A model's reference is the distribution its scores are read against: for our models the
//! card's `score_quantiles` (quantiles 0, 1, …, 100 % of the validation scores, written by
//! `cr-train`), for other files the [`crate::meta::REFERENCE_SCORES`] metadata (any sample).
//! `score` (bulk), `/v1/score` (the service) and selection all ask [`Reference::percentile`],
//! so one declaration gets one percentile everywhere, and channel thresholds given as
//! percentiles come from [`Reference::score_at`], its inverse.
//!
//! # The percentile rule
//!
//! The reference holds `n` sorted points, read as evenly spaced quantiles: point `i` sits at
//! percentile `100·i/(n−1)`. A score's percentile is the inverse of that quantile function,
//! linear between neighbouring points:
//!
//! - a score strictly between points `i` and `i+1` gets `100·(i + (s−qᵢ)/(qᵢ₊₁−qᵢ))/(n−1)`;
//! - a score equal to a run of tied points `i..=j` gets the middle of the run,
//!   `100·((i+j)/2)/(n−1)` (the mid-rank rule);
//! - below the first point 0, above the last point 100; a NaN score has no percentile;
//! - a reference of one point gives 0, 50 or 100 (below, equal, above).
//!
//! Why this rule and not "the share of reference points `<=` s": the reference of our models is
//! 101 quantiles, not the validation scores themselves. Counting points turns them into a step
//! function with 1 % steps whose value at a quantile depends on the side ties fall on (the
//! median got 50.5 in bulk scoring, 50 in the service, before both used this rule).
//! Interpolating reads the quantile grid as what it is, a piecewise-linear CDF, and it is the
//! exact inverse of numpy's default (`linear`) percentile method used for thresholds:
//! `percentile(score_at(p)) == p` for every `p` in a strictly increasing reference, so a
//! declaration scoring exactly at the "98th percentile" threshold reports percentile 98.
//!
//! All arithmetic is in f64; our scores are f32 and are widened exactly, and card quantiles are
//! f32 widened the same way, so every caller compares the same numbers.

use crate::ModelError;

/// A sorted, finite, non-empty reference score distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    sorted: Vec<f64>,
}

impl Reference {
    /// From any sample of scores (any order). Empty: `Ok(None)`. A NaN or infinite value is
    /// an error naming its position.
    pub fn new(mut values: Vec<f64>) -> Result<Option<Reference>, ModelError> {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::Reference(format!(
                "reference score {i} is {}, not a finite number",
                values[i]
            )));
        }
        if values.is_empty() {
            return Ok(None);
        }
        values.sort_by(f64::total_cmp);
        Ok(Some(Reference { sorted: values }))
    }

    /// From f32 quantiles (a card's `score_quantiles`), widened exactly.
    pub fn from_f32(values: &[f32]) -> Result<Option<Reference>, ModelError> {
        Reference::new(values.iter().map(|&v| f64::from(v)).collect())
    }

    /// The sorted points.
    pub fn as_slice(&self) -> &[f64] {
        &self.sorted
    }

    /// Percentile (0..=100) of `score`, by the rule in the module doc. `None` for NaN.
    pub fn percentile(&self, score: f64) -> Option<f64> {
        percentile_of(&self.sorted, score)
    }

    /// Score at percentile `p` (0..=100): linear interpolation between order statistics
    /// (numpy's default `percentile` method). `None` outside 0..=100.
    pub fn score_at(&self, p: f64) -> Option<f64> {
        score_at_percentile(&self.sorted, p)
    }
}

/// Percentile (0..=100) of `score` in the sorted `reference`, by the rule in the module doc.
/// `None` for an empty reference or a NaN score. `reference` must be sorted ascending (as
/// [`Reference::as_slice`] is).
pub fn percentile_of(reference: &[f64], score: f64) -> Option<f64> {
    let n = reference.len();
    if n == 0 || score.is_nan() {
        return None;
    }
    let lo = reference.partition_point(|&r| r < score); // first index >= score
    let hi = reference.partition_point(|&r| r <= score); // first index > score
    if n == 1 {
        return Some(if lo == hi {
            if lo == 0 {
                0.0
            } else {
                100.0
            }
        } else {
            50.0
        });
    }
    let pos = if lo < hi {
        (lo + hi - 1) as f64 / 2.0
    } else if lo == 0 {
        0.0
    } else if lo == n {
        (n - 1) as f64
    } else {
        let (a, b) = (reference[lo - 1], reference[lo]);
        (lo - 1) as f64 + (score - a) / (b - a)
    };
    Some(100.0 * pos / (n - 1) as f64)
}

/// Score at percentile `p` (0..=100) of the sorted `reference`: linear interpolation between
/// order statistics (numpy's default `percentile` method). `None` for an empty reference or
/// `p` outside 0..=100.
pub fn score_at_percentile(reference: &[f64], p: f64) -> Option<f64> {
    if reference.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let pos = p / 100.0 * (reference.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (*reference.get(lo)?, *reference.get(hi)?);
    Some(a + (pos - lo as f64) * (b - a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Reference {
        // quantiles 0, 1, ..., 100 % of a uniform distribution on [0, 1]
        Reference::new((0..=100).map(|i| f64::from(i) / 100.0).collect())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_median_of_the_grid_is_the_50th_percentile() {
        // First principles: point 50 of 101 evenly spaced quantiles is the median.
        let r = grid();
        assert_eq!(r.percentile(0.5), Some(50.0));
        assert_eq!(r.percentile(0.0), Some(0.0));
        assert_eq!(r.percentile(1.0), Some(100.0));
        assert_eq!(r.percentile(-3.0), Some(0.0));
        assert_eq!(r.percentile(7.0), Some(100.0));
        assert_eq!(r.percentile(f64::NAN), None);
    }

    #[test]
    fn between_points_is_linear() {
        // numpy: np.interp(s, [1, 2, 4, 8], [0, 100/3, 200/3, 100])
        let r = Reference::new(vec![8.0, 1.0, 4.0, 2.0]).unwrap().unwrap();
        assert_eq!(r.as_slice(), &[1.0, 2.0, 4.0, 8.0]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(r.percentile(1.5).unwrap(), 100.0 / 6.0));
        assert!(close(r.percentile(3.0).unwrap(), 50.0));
        assert!(close(r.percentile(6.0).unwrap(), 100.0 * 2.5 / 3.0));
    }

    #[test]
    fn ties_get_the_middle_of_their_run() {
        // points 1..=3 tie: positions 1, 2, 3 -> middle 2 of 0..=4 -> 50
        let r = Reference::new(vec![0.0, 0.5, 0.5, 0.5, 1.0])
            .unwrap()
            .unwrap();
        assert_eq!(r.percentile(0.5), Some(50.0));
        let one = Reference::new(vec![0.3]).unwrap().unwrap();
        assert_eq!(
            [
                one.percentile(0.1),
                one.percentile(0.3),
                one.percentile(0.9)
            ],
            [Some(0.0), Some(50.0), Some(100.0)]
        );
    }

    #[test]
    fn percentile_inverts_the_threshold_rule() {
        let r = Reference::new((0..=100).map(|i| f64::from(i * i) / 7.0).collect())
            .unwrap()
            .unwrap();
        for p in [0.0, 0.5, 12.25, 50.0, 90.0, 98.0, 99.9, 100.0] {
            let s = r.score_at(p).unwrap();
            let back = r.percentile(s).unwrap();
            assert!((back - p).abs() < 1e-9, "{p} -> {s} -> {back}");
        }
        assert_eq!(r.score_at(100.5), None);
        assert_eq!(r.score_at(-1.0), None);
    }

    #[test]
    fn score_at_matches_numpy_linear() {
        // np.percentile([1, 2, 4, 8], [0, 25, 50, 90, 100]) = [1, 1.75, 3, 6.8, 8]
        let r = Reference::new(vec![1.0, 2.0, 4.0, 8.0]).unwrap().unwrap();
        let got: Vec<f64> = [0.0, 25.0, 50.0, 90.0, 100.0]
            .iter()
            .map(|&p| r.score_at(p).unwrap())
            .collect();
        let want = [1.0, 1.75, 3.0, 6.8, 8.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn non_finite_references_are_refused_and_empty_is_none() {
        assert_eq!(Reference::new(vec![]).unwrap(), None);
        let err = Reference::new(vec![0.1, f64::INFINITY]).unwrap_err();
        assert!(
            err.to_string().contains("reference score 1 is inf"),
            "{err}"
        );
        assert!(Reference::from_f32(&[0.1, f32::NAN]).is_err());
    }

    #[test]
    fn f32_quantiles_are_widened_exactly() {
        let q = [0.1f32, 0.2, 0.3];
        let r = Reference::from_f32(&q).unwrap().unwrap();
        assert_eq!(r.percentile(f64::from(0.2f32)), Some(50.0));
        // 0.2 as an f64 literal is not the f32 quantile; it falls strictly inside a gap
        assert_ne!(r.percentile(0.2), Some(50.0));
    }
}
