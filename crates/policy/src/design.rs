//! The random floor's sampling design: fixed size, unequal probabilities, exact first-order
//! inclusion probabilities.
//!
//! **Target probabilities.** Among the `m` declarations of a group not selected otherwise,
//! `n = Budget::Rate(rate).k(m)` are drawn (the budget rule `score` uses). Each gets
//! `π_i = min(1, floor + c·w_i)` with `w_i` its weight (1, or its score) and `c >= 0` chosen
//! so that `Σ π_i = n` (units pushed to 1 are fixed there and `c` is solved again on the rest,
//! the usual iterative capping). Since `n >= floor·m`, every `π_i >= floor`.
//!
//! **Design: systematic sampling in random order** (Madow 1949; Tillé, *Sampling Algorithms*,
//! 2006, §7.2). The units are put in a uniformly random order, laid end to end as intervals of
//! length `π_i` on `[0, n)`, and the points `u, u + 1, ..., u + n - 1` with one
//! `u ~ U[0, 1)` pick the units whose interval holds a point. Because every `π_i <= 1`, an
//! interval holds at most one point, and it holds one with probability exactly its length:
//! `P(i selected) = π_i` whatever the order (the random order only spreads the second-order
//! probabilities). The sample size is exactly `n`. So the probability written out for each
//! declaration is its exact first-order inclusion probability, computed before the draw,
//! not the nominal rate.
//!
//! Numerically, the `π_i` are rescaled so that their f64 sum is `n` (a relative change of
//! about 1e-15) and these rescaled values are the ones written out.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Inclusion probabilities summing to `n` with every value in `[floor, 1]` (see the module
/// doc). `weights` are >= 0 (negative and NaN treated as 0); `n <= weights.len()` and
/// `floor * len <= n` (up to rounding) are the caller's.
pub fn inclusion_probabilities(floor: f64, n: usize, weights: &[f64]) -> Vec<f64> {
    let m = weights.len();
    if m == 0 || n == 0 {
        return vec![0.0; m];
    }
    if n >= m {
        return vec![1.0; m];
    }
    let w: Vec<f64> = weights
        .iter()
        .map(|&x| if x.is_finite() && x > 0.0 { x } else { 0.0 })
        .collect();
    let mut capped = vec![false; m];
    let mut p = vec![0.0; m];
    loop {
        let n_cap = capped.iter().filter(|&&c| c).count();
        let free = m - n_cap;
        if free == 0 {
            break;
        }
        let mass = (n as f64 - n_cap as f64 - floor * free as f64).max(0.0);
        let sw: f64 = w
            .iter()
            .zip(&capped)
            .filter(|(_, &c)| !c)
            .map(|(x, _)| x)
            .sum();
        let mut newly = false;
        for i in 0..m {
            if capped[i] {
                p[i] = 1.0;
                continue;
            }
            p[i] = if sw > 0.0 {
                floor + mass * w[i] / sw
            } else {
                floor + mass / free as f64
            };
            if p[i] > 1.0 {
                capped[i] = true;
                newly = true;
            }
        }
        if !newly {
            break;
        }
    }
    // rescale the uncapped so the f64 sum is n
    let sum: f64 = p.iter().sum();
    if sum > 0.0 && (sum - n as f64).abs() > 0.0 {
        let n_cap = capped.iter().filter(|&&c| c).count() as f64;
        let free_sum: f64 = p
            .iter()
            .zip(&capped)
            .filter(|(_, &c)| !c)
            .map(|(x, _)| x)
            .sum();
        if free_sum > 0.0 {
            let s = (n as f64 - n_cap) / free_sum;
            for (x, &c) in p.iter_mut().zip(&capped) {
                if !c {
                    *x = (*x * s).min(1.0);
                }
            }
        }
    }
    p
}

/// Draw exactly `round(Σ π)` units by systematic sampling in random order; returns a flag per
/// unit. `pi` values must be in `[0, 1]`.
pub fn systematic(pi: &[f64], rng: &mut ChaCha8Rng) -> Vec<bool> {
    let m = pi.len();
    let mut order: Vec<usize> = (0..m).collect();
    // Fisher-Yates
    for i in (1..m).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let total: f64 = order.iter().map(|&i| pi[i]).sum();
    let n = total.round();
    let u: f64 = rng.random::<f64>();
    let mut picked = vec![false; m];
    if n < 1.0 {
        return picked;
    }
    let scale = n / total;
    let mut cum = 0.0f64;
    // number of points u + j (j >= 0) below x: ceil(x - u) for x >= 0
    let below = |x: f64| (x - u).ceil().max(0.0);
    let mut prev = below(0.0);
    for (k, &i) in order.iter().enumerate() {
        cum += pi[i] * scale;
        if k + 1 == m {
            cum = n; // the last interval ends exactly at n
        }
        let now = below(cum);
        if now > prev {
            picked[i] = true;
        }
        prev = now;
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn probabilities_sum_to_n_and_respect_floor_and_one() {
        let w: Vec<f64> = (0..50).map(|i| (i as f64 / 10.0).powi(3)).collect();
        let p = inclusion_probabilities(0.05, 20, &w);
        let sum: f64 = p.iter().sum();
        assert!((sum - 20.0).abs() < 1e-9, "{sum}");
        assert!(
            p.iter().all(|&x| (0.05 - 1e-12..=1.0).contains(&x)),
            "{p:?}"
        );
        assert!(
            p.iter().filter(|&&x| x == 1.0).count() >= 1,
            "heavy weights are capped"
        );
        // monotone in the weight
        assert!(p.windows(2).all(|v| v[0] <= v[1] + 1e-15));
        let u = inclusion_probabilities(0.05, 10, &vec![1.0; 50]);
        assert!(u.iter().all(|&x| (x - 0.2).abs() < 1e-12));
    }

    #[test]
    fn systematic_draws_exactly_n() {
        let w: Vec<f64> = (0..37).map(|i| 1.0 + i as f64).collect();
        let p = inclusion_probabilities(0.02, 7, &w);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..500 {
            let s = systematic(&p, &mut rng);
            assert_eq!(s.iter().filter(|&&b| b).count(), 7);
        }
    }
}
