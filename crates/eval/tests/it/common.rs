//! Shared helpers: calling python3 with JSON through temp files, synthetic data.

use std::process::Command;

use cr_eval::{EvalRows, Period, SegmentColumn, SelectionKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Run `script` with python3; the script reads the JSON file named by `sys.argv[1]` and prints
/// one JSON document. Panics with stderr on failure (python3 + numpy/scipy/scikit-learn are
/// test requirements, see scripts/requirements-test.txt).
pub fn python(script: &str, input: &Value) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let inp = dir.path().join("in.json");
    let src = dir.path().join("check.py");
    std::fs::write(&inp, serde_json::to_vec(input).expect("json")).expect("write input");
    std::fs::write(&src, script).expect("write script");
    let out = Command::new("python3").arg(&src).arg(&inp).output().expect(
        "python3 not runnable: the reference checks need python3 with numpy, scipy and scikit-learn",
    );
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad python output ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * (1.0 + b.abs()),
        "{what}: ours {a} vs reference {b}"
    );
}

pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Standard normal draw (Box–Muller) from a ChaCha8 stream.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A customs-like world: hidden risk, two model scores, a rule that inspects its top 8 %, and a
/// 3 % random sample. Only inspected rows are labelled; `truth` holds every row's label.
pub struct World {
    pub truth: Vec<bool>,
    pub score_a: Vec<f64>,
    pub score_b: Vec<f64>,
    pub rows: EvalRows,
}

pub fn world(n: usize, seed: u64) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut truth = Vec::with_capacity(n);
    let mut score_a = Vec::with_capacity(n);
    let mut score_b = Vec::with_capacity(n);
    let mut rule = Vec::with_capacity(n);
    for _ in 0..n {
        let x = normal(&mut rng);
        truth.push(rng.random::<f64>() < sigmoid(-3.5 + 1.5 * x));
        score_a.push(sigmoid(-3.4 + 1.1 * x + 0.9 * normal(&mut rng)));
        score_b.push(sigmoid(-3.4 + 1.4 * x + 0.5 * normal(&mut rng)));
        rule.push(x + 1.2 * normal(&mut rng));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| rule[b].total_cmp(&rule[a]));
    let mut by_rule = vec![false; n];
    for &i in &idx[..n * 8 / 100] {
        by_rule[i] = true;
    }
    let offices = ["ABJ", "DKR", "LOS", "ACC", "LFW", "COO"];
    let mut rows = EvalRows::from_labels(vec![None; n]);
    let mut days = Vec::with_capacity(n);
    let mut office = Vec::with_capacity(n);
    for i in 0..n {
        let random = rng.random::<f64>() < 0.03;
        let inspected = random || by_rule[i];
        rows.inspected[i] = inspected;
        rows.label[i] = inspected.then_some(truth[i]);
        rows.selection[i] = if random {
            Some(SelectionKind::Random)
        } else if by_rule[i] {
            Some(SelectionKind::Rule)
        } else {
            None
        };
        // P(inspected) = 1 for rule-flagged rows, else the 3 % sampling rate.
        rows.propensity[i] = inspected.then_some(if by_rule[i] { 1.0 } else { 0.03 });
        rows.revenue[i] = inspected.then(|| {
            if truth[i] {
                (7.0 + normal(&mut rng)).exp()
            } else {
                0.0
            }
        });
        days.push(19_723 + (i * 365 / n) as i32); // 2024-01-01 onwards, one year
        office.push(offices[rng.random_range(0..offices.len())].to_string());
    }
    rows.period = Some(Period::DaysSinceEpoch(days));
    rows.segments = vec![SegmentColumn {
        name: "office".into(),
        values: office,
    }];
    World {
        truth,
        score_a,
        score_b,
        rows,
    }
}
