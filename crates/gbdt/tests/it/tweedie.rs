//! The Tweedie objective against LightGBM's `tweedie` (variance power 1.5) on the same data:
//! integer-valued features (< 255 distinct values, so both libraries put every value in its
//! own bin and any split sends the same training rows the same way), zero-inflated revenue.
//! One round: the same tree (same predictions on every training row); 100 rounds: the same
//! Tweedie deviance within 1 %.

use std::process::Command;

use cr_gbdt::{train, GbdtParams, Objective};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

const PY: &str = r#"
import sys, json
import numpy as np
import lightgbm as lgb
d, nf, rounds = sys.argv[1], int(sys.argv[2]), [int(v) for v in sys.argv[3].split(",")]
x = np.fromfile(f"{d}/x.bin", dtype=np.float32).reshape(-1, nf)
y = np.fromfile(f"{d}/y.bin", dtype=np.float32)
out = {}
for r in rounds:
    params = dict(objective="tweedie", tweedie_variance_power=1.5, num_leaves=15, learning_rate=0.1,
                  min_data_in_leaf=20, min_sum_hessian_in_leaf=1e-3, lambda_l2=0.0, max_bin=255,
                  feature_fraction=1.0, bagging_fraction=1.0, num_threads=1, seed=0,
                  deterministic=True, verbose=-1)
    b = lgb.train(params, lgb.Dataset(x, y), num_boost_round=r)
    out[str(r)] = b.predict(x).tolist()
print(json.dumps(out))
"#;

fn data(n: usize) -> (Array2<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let nf = 4;
    let mut x = Array2::<f32>::zeros((n, nf));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let v: Vec<f64> = (0..nf)
            .map(|_| f64::from(rng.random_range(0..40u8)))
            .collect();
        for (j, a) in v.iter().enumerate() {
            x[[i, j]] = *a as f32;
        }
        // P(revenue > 0) and its size both grow with x0; x1 shifts the size; x2, x3 noise.
        let hit = 1.0 / (1.0 + (-(-2.5 + 0.08 * v[0])).exp());
        let amount = (4.0 + 0.03 * v[0] + 0.02 * v[1]).exp();
        let r = if rng.random::<f64>() < hit {
            Gamma::new(2.0, amount / 2.0)
                .expect("gamma")
                .sample(&mut rng)
        } else {
            0.0
        };
        y.push(r as f32);
    }
    (x, y)
}

/// Unit Tweedie deviance (power 1.5), mean over rows.
fn deviance(y: &[f32], mu: &[f64]) -> f64 {
    let rho = 1.5f64;
    let total: f64 = y
        .iter()
        .zip(mu)
        .map(|(&y, &m)| {
            let y = f64::from(y);
            let a = if y > 0.0 {
                y.powf(2.0 - rho) / ((1.0 - rho) * (2.0 - rho))
            } else {
                0.0
            };
            2.0 * (a - y * m.powf(1.0 - rho) / (1.0 - rho) + m.powf(2.0 - rho) / (2.0 - rho))
        })
        .sum();
    total / y.len() as f64
}

#[test]
fn tweedie_matches_lightgbm() {
    let n = 8000;
    let (x, y) = data(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let yb: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.path().join("x.bin"), xb).expect("write x");
    std::fs::write(dir.path().join("y.bin"), yb).expect("write y");
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY)
        .arg(dir.path())
        .arg(x.ncols().to_string())
        .arg("1,100")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lgb = |r: &str| -> Vec<f64> {
        v[r].as_array()
            .expect("array")
            .iter()
            .map(|p| p.as_f64().expect("number"))
            .collect()
    };
    let params = |rounds| {
        GbdtParams::new()
            .objective(Objective::Tweedie {
                variance_power: 1.5,
            })
            .num_trees(rounds)
            .num_leaves(15)
            .learning_rate(0.1)
            .min_data_in_leaf(20)
            .min_sum_hessian_in_leaf(1e-3)
            .num_threads(1)
    };
    // One round: the same tree, so the same prediction for every training row.
    let one = train(&params(1), x.view(), &y, None, None, None).expect("train");
    assert_eq!(one.trees[0].num_leaves(), 15);
    let ours = one.predict(x.view()).expect("predict");
    let theirs = lgb("1");
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "1 round: max relative difference {worst}");
    // 100 rounds: deviance within 1 %.
    let hundred = train(&params(100), x.view(), &y, None, None, None).expect("train");
    let (d_ours, d_lgb) = (
        deviance(&y, &hundred.predict(x.view()).expect("predict")),
        deviance(&y, &lgb("100")),
    );
    let d0 = deviance(&y, &vec![f64::from(y.iter().sum::<f32>()) / n as f64; n]);
    assert!(
        d_ours < 0.95 * d0,
        "learned nothing: {d_ours} vs constant {d0}"
    );
    assert!(
        (d_ours - d_lgb).abs() <= 0.01 * d_lgb,
        "deviance after 100 rounds: ours {d_ours}, LightGBM {d_lgb}"
    );
}
