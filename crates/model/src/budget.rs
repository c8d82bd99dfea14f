//! Inspection budgets: a share of rows (`rate`) or a number of rows (`count`), and the one rule
//! for how many rows a budget selects ([`Budget::k`]), used by bulk scoring (`score --budget`),
//! evaluation (`cr-eval`) and selection.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// How many declarations may be inspected.
///
/// Serialised as `{"rate": 0.05}` or `{"count": 500}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Budget {
    /// A share of the rows, in (0, 1]. `k = ceil(rate·n)` (see [`Budget::k`]).
    Rate(f64),
    /// A fixed number of rows (capped at n).
    Count(usize),
}

impl Budget {
    /// The number of rows inspected out of `n`.
    ///
    /// `Rate(r)`: `k = ceil(r·n)`, where a product within 1e-9 (relative) of an integer is
    /// taken as that integer, so `0.05 × 100` is 5 and not 6 because of floating-point noise.
    /// `Count(c)`: `min(c, n)`.
    pub fn k(&self, n: usize) -> usize {
        match *self {
            Budget::Rate(r) => {
                let x = r * n as f64;
                let rounded = x.round();
                let k = if (x - rounded).abs() <= 1e-9 * x.abs().max(1.0) {
                    rounded
                } else {
                    x.ceil()
                };
                (k.max(0.0) as usize).min(n)
            }
            Budget::Count(c) => c.min(n),
        }
    }

    /// Human label: "5 %", "0.5 %", "500 rows".
    pub fn label(&self) -> String {
        match *self {
            Budget::Rate(r) => format!("{} %", fmt_pct_number(r * 100.0)),
            Budget::Count(c) => format!("{c} rows"),
        }
    }

    /// A rate must lie in (0, 1], a count must be at least 1.
    pub fn check(&self) -> Result<(), ModelError> {
        match *self {
            Budget::Rate(r) if !(r > 0.0 && r <= 1.0) => Err(ModelError::Budget(format!(
                "budget rate {r} must be in (0, 1]"
            ))),
            Budget::Count(0) => Err(ModelError::Budget("budget count must be at least 1".into())),
            _ => Ok(()),
        }
    }
}

/// 5 -> "5", 0.5 -> "0.5", 2.25 -> "2.25" (at most 2 decimals, trailing zeros dropped).
fn fmt_pct_number(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_rule() {
        assert_eq!(Budget::Rate(0.05).k(100), 5);
        assert_eq!(Budget::Rate(0.07).k(100), 7); // 0.07*100 = 7.000000000000001
        assert_eq!(Budget::Rate(0.05).k(101), 6); // 5.05 -> 6
        assert_eq!(Budget::Rate(0.01).k(1), 1);
        assert_eq!(Budget::Rate(1.0).k(3), 3);
        assert_eq!(Budget::Count(10).k(3), 3);
        assert_eq!(Budget::Rate(0.05).k(0), 0);
        assert_eq!(Budget::Rate(0.05).label(), "5 %");
        assert_eq!(Budget::Rate(0.005).label(), "0.5 %");
        assert_eq!(Budget::Count(500).label(), "500 rows");
    }

    #[test]
    fn rate_k_is_the_integer_ceiling_for_exact_percentages() {
        // from first principles: ceil(p·n / 100) in integers, for rates p % that are exact
        for n in [0usize, 1, 7, 99, 100, 101, 1000, 12_345, 1_000_000] {
            for p in 1..=100usize {
                assert_eq!(
                    Budget::Rate(p as f64 / 100.0).k(n),
                    (n * p).div_ceil(100),
                    "{p} % of {n}"
                );
            }
        }
        assert_eq!(Budget::Rate(0.0701).k(100), 8);
    }

    #[test]
    fn check_refuses_empty_and_out_of_range_budgets() {
        assert!(Budget::Rate(0.05).check().is_ok());
        assert!(Budget::Rate(1.0).check().is_ok());
        assert!(Budget::Count(1).check().is_ok());
        for bad in [
            Budget::Rate(0.0),
            Budget::Rate(1.5),
            Budget::Rate(f64::NAN),
            Budget::Count(0),
        ] {
            assert!(matches!(bad.check(), Err(ModelError::Budget(_))), "{bad:?}");
        }
    }

    #[test]
    fn serde_shape() {
        assert_eq!(
            serde_json::to_string(&Budget::Rate(0.05)).unwrap(),
            r#"{"rate":0.05}"#
        );
        assert_eq!(
            serde_json::to_string(&Budget::Count(500)).unwrap(),
            r#"{"count":500}"#
        );
        let b: Budget = serde_json::from_str(r#"{"count":3}"#).unwrap();
        assert_eq!(b, Budget::Count(3));
    }
}
