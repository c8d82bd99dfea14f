//! Small numerical helpers: the normal distribution, Wilson intervals, percentiles.
//!
//! `norm_cdf` uses `libm::erfc` (musl's double-precision implementation); `norm_ppf` starts
//! from Acklam's rational approximation and polishes it with Halley steps on `norm_cdf`, so
//! both agree with SciPy's `norm.cdf` / `norm.ppf` to ~1e-15.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// Standard normal CDF Φ(x).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// Standard normal survival function 1 − Φ(x), accurate in the upper tail.
pub fn norm_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x * FRAC_1_SQRT_2)
}

/// Two-sided p-value of a standard normal statistic `z`: 2·(1 − Φ(|z|)).
pub fn two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    (2.0 * norm_sf(z.abs())).min(1.0)
}

/// Standard normal quantile Φ⁻¹(p) for p in (0, 1); ±∞ at 0 and 1; NaN outside.
pub fn norm_ppf(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239e0,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838e0,
        -2.549732539343734e0,
        4.374664141464968e0,
        2.938163982698783e0,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996e0,
        3.754408661907416e0,
    ];
    const P_LOW: f64 = 0.02425;
    let mut x = if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // Halley refinement. In the upper half work with the survival function so that the
    // residual keeps its precision.
    for _ in 0..3 {
        let e = if x > 0.0 {
            -(norm_sf(x) - (1.0 - p))
        } else {
            norm_cdf(x) - p
        };
        let u = e * (2.0 * PI).sqrt() * (x * x / 2.0).exp();
        let step = u / (1.0 + x * u / 2.0);
        if !step.is_finite() {
            break;
        }
        x -= step;
    }
    x
}

/// z such that a two-sided normal interval has coverage `confidence` (1.959963984540054 at 0.95).
pub fn z_for(confidence: f64) -> f64 {
    norm_ppf(0.5 + confidence / 2.0)
}

/// Wilson score interval for `successes` out of `n` trials; `None` when n = 0.
pub fn wilson(successes: f64, n: f64, z: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let p = successes / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt();
    // exact ends at 0 and n successes (the formula gives them up to rounding)
    let lo = if successes <= 0.0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if successes >= n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some((lo, hi))
}

/// Percentile of already sorted, finite values with linear interpolation between order
/// statistics (NumPy's default `method="linear"`): position q·(m − 1).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    Some(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppf_inverts_cdf() {
        for &p in &[
            1e-12,
            1e-6,
            0.01,
            0.025,
            0.3,
            0.5,
            0.77,
            0.975,
            0.999,
            1.0 - 1e-9,
        ] {
            let x = norm_ppf(p);
            let back = if x > 0.0 {
                1.0 - norm_sf(x)
            } else {
                norm_cdf(x)
            };
            assert!(
                (back - p).abs() <= 1e-15 + 1e-12 * p,
                "p={p} x={x} back={back}"
            );
        }
        // Known value: Φ⁻¹(0.975) = 1.959963984540054 (Abramowitz & Stegun tables).
        assert!((z_for(0.95) - 1.959963984540054).abs() < 1e-13);
        assert_eq!(norm_ppf(0.5), 0.0);
    }

    #[test]
    fn percentile_matches_numpy_linear_rule() {
        let v = [1.0, 2.0, 4.0, 8.0];
        // numpy.percentile([1,2,4,8], 25) = 1.75 ; 50 -> 3.0
        assert_eq!(percentile_sorted(&v, 0.25), Some(1.75));
        assert_eq!(percentile_sorted(&v, 0.5), Some(3.0));
        assert_eq!(percentile_sorted(&v, 1.0), Some(8.0));
    }

    #[test]
    fn wilson_known_value() {
        // 0 of 10 at 95 %: upper = z²/(n+z²) = 3.8415/13.8415 = 0.27753...
        let (lo, hi) = wilson(0.0, 10.0, z_for(0.95)).unwrap();
        assert_eq!(lo, 0.0);
        let z2 = z_for(0.95).powi(2);
        assert!((hi - z2 / (10.0 + z2)).abs() < 1e-12);
    }
}
