//! A small, deterministic L-BFGS minimiser (Nocedal & Wright, *Numerical Optimization*,
//! 2nd ed., Algorithm 7.4 two-loop recursion and 7.5) with Armijo backtracking. It minimises
//! the logistic objective of [`crate::fit`].
//!
//! Stopping rules are SciPy's L-BFGS-B as scikit-learn's `lbfgs` solver calls it
//! (`gtol = tol`, `ftol = 64·ε`): the largest absolute gradient component is at most
//! `gradient_tolerance`, or the relative decrease of the cost
//! `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1)` is at most `cost_tolerance`; both count as
//! converged. Running out of iterations or finding no descent step does not.

/// Stopping and memory settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbfgsOptions {
    /// Number of (s, y) correction pairs kept. Default 10 (as linfa's argmin L-BFGS).
    pub memory: usize,
    /// Maximum number of iterations.
    pub max_iter: u64,
    /// Stop when the largest absolute gradient component is at most this.
    pub gradient_tolerance: f64,
    /// Stop when the relative cost decrease of one iteration is at most this.
    pub cost_tolerance: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            memory: 10,
            max_iter: 100,
            gradient_tolerance: 1e-4,
            cost_tolerance: 64.0 * f64::EPSILON,
        }
    }
}

/// Why [`minimize`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The largest gradient component reached `gradient_tolerance` (converged).
    Gradient,
    /// One iteration lowered the cost by at most `cost_tolerance`, relatively (converged).
    Cost,
    /// `max_iter` iterations ran (not converged).
    MaxIter,
    /// No step along the search direction lowered the cost (not converged).
    LineSearch,
}

impl Stop {
    /// The serialized name (`gradient`, `cost`, `max_iter`, `line_search`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Gradient => "gradient",
            Stop::Cost => "cost",
            Stop::MaxIter => "max_iter",
            Stop::LineSearch => "line_search",
        }
    }

    /// Gradient and cost tolerance count as converged (as SciPy's L-BFGS-B reports them).
    pub fn converged(self) -> bool {
        matches!(self, Stop::Gradient | Stop::Cost)
    }
}

/// Outcome of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsResult {
    pub x: Vec<f64>,
    pub cost: f64,
    /// Largest absolute gradient component at `x`.
    pub gradient_max: f64,
    pub iterations: u64,
    /// Cost and gradient evaluations (line search included).
    pub evaluations: u64,
    pub stop: Stop,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimise `f` from `x0`. `f(x, grad)` returns the cost at `x` and writes the gradient into
/// `grad` (same length as `x`). A non-finite cost is treated as "step too long".
pub fn minimize<F>(mut f: F, x0: Vec<f64>, opts: &LbfgsOptions) -> LbfgsResult
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut cost = f(&x, &mut g);
    let mut evaluations = 1;
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho_hist: Vec<f64> = Vec::new();
    let mut d = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut alpha = vec![0.0; opts.memory.max(1)];
    let mut iterations = 0;
    let mut gmax = max_abs(&g);
    let mut stop = if gmax <= opts.gradient_tolerance {
        Some(Stop::Gradient)
    } else {
        None
    };
    while stop.is_none() {
        if iterations >= opts.max_iter {
            stop = Some(Stop::MaxIter);
            break;
        }
        if !cost.is_finite() {
            stop = Some(Stop::LineSearch);
            break;
        }
        iterations += 1;
        // Two-loop recursion: d = -H g.
        d.copy_from_slice(&g);
        let m = s_hist.len();
        for i in (0..m).rev() {
            alpha[i] = rho_hist[i] * dot(&s_hist[i], &d);
            for (dj, yj) in d.iter_mut().zip(&y_hist[i]) {
                *dj -= alpha[i] * yj;
            }
        }
        let gamma = if m > 0 {
            1.0 / (rho_hist[m - 1] * dot(&y_hist[m - 1], &y_hist[m - 1]))
        } else {
            1.0
        };
        for dj in d.iter_mut() {
            *dj *= gamma;
        }
        for i in 0..m {
            let beta = rho_hist[i] * dot(&y_hist[i], &d);
            for (dj, sj) in d.iter_mut().zip(&s_hist[i]) {
                *dj += (alpha[i] - beta) * sj;
            }
        }
        for dj in d.iter_mut() {
            *dj = -*dj;
        }
        let mut slope = dot(&g, &d);
        let mut step = 1.0;
        // (`slope >= 0` or NaN: not a descent direction.)
        if m == 0 || slope.is_nan() || slope >= 0.0 {
            // Steepest descent with a cautious first step; forget the curvature pairs.
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
            for (dj, gj) in d.iter_mut().zip(&g) {
                *dj = -gj;
            }
            let gnorm = dot(&g, &g).sqrt();
            slope = -gnorm * gnorm;
            step = 1.0 / gnorm.max(1.0);
        }
        // Armijo backtracking.
        let mut accepted = false;
        let mut new_cost = cost;
        for _ in 0..60 {
            for ((xn, xj), dj) in x_new.iter_mut().zip(&x).zip(&d) {
                *xn = xj + step * dj;
            }
            new_cost = f(&x_new, &mut g_new);
            evaluations += 1;
            if new_cost.is_finite() && new_cost <= cost + 1e-4 * step * slope {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            stop = Some(Stop::LineSearch);
            break;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if s_hist.len() == opts.memory.max(1) {
                s_hist.remove(0);
                y_hist.remove(0);
                rho_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho_hist.push(1.0 / sy);
        }
        let relative_decrease = (cost - new_cost) / cost.abs().max(new_cost.abs()).max(1.0);
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        cost = new_cost;
        gmax = max_abs(&g);
        if gmax <= opts.gradient_tolerance {
            stop = Some(Stop::Gradient);
        } else if relative_decrease <= opts.cost_tolerance {
            stop = Some(Stop::Cost);
        }
    }
    LbfgsResult {
        x,
        cost,
        gradient_max: gmax,
        iterations,
        evaluations,
        stop: stop.unwrap_or(Stop::MaxIter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_rosenbrock() {
        // Minimum (1, 1), value 0 (first principles).
        let f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let r = minimize(
            f,
            vec![-1.2, 1.0],
            &LbfgsOptions {
                max_iter: 1000,
                gradient_tolerance: 1e-9,
                cost_tolerance: 0.0,
                ..Default::default()
            },
        );
        assert_eq!(r.stop, Stop::Gradient, "{r:?}");
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
            "{r:?}"
        );
    }

    #[test]
    fn minimises_quadratic_exactly() {
        // f = ½ xᵀAx − bᵀx with A = diag(1, 10, 100): minimum x = b / diag(A).
        let diag = [1.0, 10.0, 100.0];
        let b = [1.0, -2.0, 3.0];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..3 {
                g[i] = diag[i] * x[i] - b[i];
                v += 0.5 * diag[i] * x[i] * x[i] - b[i] * x[i];
            }
            v
        };
        let r = minimize(
            f,
            vec![0.0; 3],
            &LbfgsOptions {
                gradient_tolerance: 1e-10,
                cost_tolerance: 0.0,
                ..Default::default()
            },
        );
        for i in 0..3 {
            assert!((r.x[i] - b[i] / diag[i]).abs() < 1e-9, "{r:?}");
        }
    }
}
