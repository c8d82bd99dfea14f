//! DeLong test: a hand-computed example and an independent NumPy/SciPy implementation
//! (midrank "fast DeLong" of Sun & Xu 2014).

use cr_eval::{compare, delong_test, Budget, Estimator, EvalConfig, EvalRows};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::{close, python};

#[test]
fn hand_example() {
    // Baseline: positives {0.8, 0.5}, negatives {0.5, 0.2}: AUC = 3.5/4 = 0.875,
    // V10 = (1, 0.75), V01 = (0.75, 1); S10 = S01 = 2·0.125²/(2−1) = 0.03125;
    // Var = S10/2 + S01/2 = 0.03125.
    // Challenger: perfect ranking, all placements 1, variance 0, covariance 0.
    let y = [true, true, false, false];
    let a = [0.8, 0.5, 0.5, 0.2];
    let b = [0.9, 0.8, 0.3, 0.1];
    let t = delong_test(&a, &b, &y, 0.95).unwrap();
    assert_eq!(t.auc_baseline, 0.875);
    assert_eq!(t.auc_challenger, 1.0);
    close(t.var_baseline, 0.03125, 1e-15, "var a");
    close(t.var_challenger, 0.0, 1e-15, "var b");
    close(t.var_diff, 0.03125, 1e-15, "var diff");
    close(t.z, 0.125 / 0.03125f64.sqrt(), 1e-12, "z");
}

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from scipy.stats import rankdata, norm
d = json.load(open(sys.argv[1]))
y = np.array(d["y"], dtype=bool); m = int(y.sum()); n = int((~y).sum())
def comps(s):
    s = np.array(s); X = s[y]; Y = s[~y]
    tx = rankdata(X); ty = rankdata(Y); tz = rankdata(np.concatenate([X, Y]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1 - (tz[m:] - ty) / m
    return auc, v10, v01
aA, xA, yA = comps(d["a"]); aB, xB, yB = comps(d["b"])
S = np.cov(np.vstack([xA, xB])) / m + np.cov(np.vstack([yA, yB])) / n
var = S[0, 0] + S[1, 1] - 2 * S[0, 1]
z = (aB - aA) / np.sqrt(var)
print(json.dumps({"auc_a": aA, "auc_b": aB, "var_a": S[0, 0], "var_b": S[1, 1], "cov": S[0, 1],
                  "var": var, "z": z, "p": 2 * norm.sf(abs(z)),
                  "lo": (aB - aA) - norm.ppf(0.975) * np.sqrt(var)}))
"#;

#[test]
fn matches_python_fast_delong_with_ties() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (n, ties) in [(400usize, false), (300, true), (25, true)] {
        let mut y = Vec::new();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..n {
            let x: f64 = rng.random();
            let yy = rng.random::<f64>() < 0.2 + 0.5 * x;
            let mut sa = x + 0.6 * rng.random::<f64>();
            let mut sb = x + 0.4 * rng.random::<f64>();
            if ties {
                sa = (sa * 5.0).floor();
                sb = (sb * 5.0).floor();
            }
            y.push(yy);
            a.push(sa);
            b.push(sb);
        }
        let t = delong_test(&a, &b, &y, 0.95).unwrap();
        let r = python(SCRIPT, &json!({"y": y, "a": a, "b": b}));
        let g = |k: &str| r[k].as_f64().unwrap();
        close(t.auc_baseline, g("auc_a"), 1e-12, "auc a");
        close(t.auc_challenger, g("auc_b"), 1e-12, "auc b");
        close(t.var_baseline, g("var_a"), 1e-9, "var a");
        close(t.var_challenger, g("var_b"), 1e-9, "var b");
        close(t.covariance, g("cov"), 1e-9, "cov");
        close(t.var_diff, g("var"), 1e-9, "var diff");
        close(t.z, g("z"), 1e-9, "z");
        close(t.p_value, g("p"), 1e-9, "p");
        close(t.ci_low, g("lo"), 1e-9, "ci low");

        // compare() reports the same test for fully labelled rows.
        let cfg = EvalConfig {
            bootstrap_reps: 50,
            budgets: vec![Budget::Rate(0.1)],
            ..EvalConfig::default()
        };
        let rep = compare(
            &[("a".into(), a.clone()), ("b".into(), b.clone())],
            &EvalRows::fully_labelled(&y),
            &cfg,
        )
        .unwrap();
        let d = rep.pairs[0]
            .estimator(Estimator::Inspected)
            .unwrap()
            .delong
            .unwrap();
        close(d.p_value, g("p"), 1e-9, "compare p");
    }
}
