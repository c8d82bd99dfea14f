use std::io::Write;
use std::process::Command;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::model::prepare;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// Small dataset: x0 normal, x1 heavy-tailed (log feature), x2 normal with 10 % NaN,
/// x3 constant (std 0), x4 binary, x5 signed heavy-tailed (log feature). Labels drawn from a
/// logistic model.
fn dataset(n: usize, seed: u64) -> (Array2<f32>, Vec<bool>, Vec<f32>) {
    dataset_with_offset(n, seed, -1.0)
}

/// `offset` is the generating model's intercept (moves the positive share).
fn dataset_with_offset(n: usize, seed: u64, offset: f64) -> (Array2<f32>, Vec<bool>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f32>::zeros((n, 6));
    let mut y = Vec::with_capacity(n);
    let mut w = Vec::with_capacity(n);
    for i in 0..n {
        let a: f64 = normal(&mut rng);
        let b: f64 = (2.0 + 1.5 * normal(&mut rng)).exp();
        let c: f64 = normal(&mut rng);
        let e = if rng.random_bool(0.3) { 1.0 } else { 0.0 };
        let f: f64 = normal(&mut rng) * 50.0;
        let z = offset + 0.8 * a + 0.5 * b.ln_1p() - 0.6 * c + 1.2 * e + 0.01 * f;
        y.push(rng.random::<f64>() < 1.0 / (1.0 + (-z).exp()));
        x[[i, 0]] = a as f32;
        x[[i, 1]] = b as f32;
        x[[i, 2]] = if rng.random_bool(0.1) {
            f32::NAN
        } else {
            c as f32
        };
        x[[i, 3]] = 7.0;
        x[[i, 4]] = e as f32;
        x[[i, 5]] = f as f32;
        w.push(rng.random_range(0.2..2.0f32));
    }
    (x, y, w)
}

fn write_csv(path: &std::path::Path, x: &Array2<f32>, y: &[bool], w: &[f32]) {
    let mut f = std::fs::File::create(path).expect("create csv");
    for (i, row) in x.outer_iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .map(|v| {
                if v.is_nan() {
                    "nan".into()
                } else {
                    format!("{v:e}")
                }
            })
            .collect();
        writeln!(f, "{},{},{:e}", cells.join(","), u8::from(y[i]), w[i]).expect("write csv");
    }
}

/// scikit-learn reference: independent numpy preprocessing (signed log1p, mean impute,
/// population std, std 0 -> 1), LogisticRegression(C = 1 / l2), optional sample weights
/// (times the positive-class weight); prints one probability per row. Then the documented f32
/// prediction contract evaluated by numpy from the model's JSON, one probability per row.
const PY: &str = r#"
import sys, json
import numpy as np
from sklearn.linear_model import LogisticRegression
csv, l2, weighted, cwp, logf, model_json = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4]), [int(v) for v in sys.argv[5].split(",") if v], sys.argv[6]
tol, max_iter = float(sys.argv[7]), int(sys.argv[8])
d = np.loadtxt(csv, delimiter=",", dtype=np.float64)
x = d[:, :-2].astype(np.float32).astype(np.float64); y = d[:, -2].astype(int); w = d[:, -1]
for j in logf:
    x[:, j] = np.sign(x[:, j]) * np.log1p(np.abs(x[:, j]))
for j in range(x.shape[1]):
    col = x[:, j]; m = np.nanmean(col); col[np.isnan(col)] = m
    sd = col.std(); x[:, j] = (col - col.mean()) / (sd if sd > 0 else 1.0)
sw = (w if weighted else np.ones_like(w)) * np.where(y == 1, cwp, 1.0)
clf = LogisticRegression(C=1.0 / l2, tol=tol, max_iter=max_iter).fit(x, y, sample_weight=sw)
p_ref = clf.predict_proba(x)[:, 1]
coef = clf.coef_[0].tolist() + [float(clf.intercept_[0])]
n_iter = int(clf.n_iter_[0])
m = json.load(open(model_json))
f32 = np.float32
X = d[:, :-2].astype(f32)
z = np.zeros(X.shape[0], dtype=f32)
for j in range(m["n_features"]):
    v = X[:, j].copy()
    if m["log_transform"][j]:
        v = (f32(1) + np.abs(v)).astype(f32); v = np.log(v).astype(f32) * np.sign(X[:, j]).astype(f32)
    v = np.where(np.isnan(v), f32(m["impute"][j]), v).astype(f32)
    s = ((v - f32(m["mean"][j])) / f32(m["scale"][j])).astype(f32)
    z = (z + (f32(m["coef"][j]) * s).astype(f32)).astype(f32)
z = (z + f32(m["intercept"])).astype(f32)
p_contract = (f32(1) / (f32(1) + np.exp(-z).astype(f32))).astype(f32)
print(json.dumps({"ref": p_ref.tolist(), "contract": [float(v) for v in p_contract], "coef": coef, "n_iter": n_iter}))
"#;

struct Reference {
    sklearn: Vec<f64>,
    contract: Vec<f64>,
    /// scikit-learn's coefficients on its own standardised matrix, intercept last.
    coef: Vec<f64>,
    /// scikit-learn's L-BFGS iterations.
    n_iter: u64,
}

/// scikit-learn fitted to its tightest (tol 1e-12, no practical iteration cap).
fn python_reference(
    params: &LogisticParams,
    model: &LogisticModel,
    x: &Array2<f32>,
    y: &[bool],
    w: &[f32],
    weighted: bool,
) -> Reference {
    python_reference_with(params, model, x, y, w, weighted, 1e-12, 100_000)
}

#[allow(clippy::too_many_arguments)]
fn python_reference_with(
    params: &LogisticParams,
    model: &LogisticModel,
    x: &Array2<f32>,
    y: &[bool],
    w: &[f32],
    weighted: bool,
    tol: f64,
    max_iter: u64,
) -> Reference {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("data.csv");
    write_csv(&csv, x, y, w);
    let mj = dir.path().join("model.json");
    std::fs::write(&mj, serde_json::to_string(model).expect("json")).expect("write model");
    let logf: Vec<String> = params.log_features.iter().map(|j| j.to_string()).collect();
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY)
        .arg(&csv)
        .arg(params.l2.to_string())
        .arg(if weighted { "1" } else { "0" })
        .arg(params.class_weight_pos.to_string())
        .arg(logf.join(","))
        .arg(&mj)
        .arg(tol.to_string())
        .arg(max_iter.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    let get = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .expect("array")
            .iter()
            .map(|p| p.as_f64().expect("number"))
            .collect()
    };
    Reference {
        sklearn: get("ref"),
        contract: get("contract"),
        coef: get("coef"),
        n_iter: v["n_iter"].as_u64().expect("n_iter"),
    }
}

fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - y).abs())
        .fold(0.0, f64::max)
}

/// `max |ours − theirs| / max |theirs|` over coefficients and intercept.
fn coef_rel_diff(model: &LogisticModel, theirs: &[f64]) -> f64 {
    let ours: Vec<f64> = model
        .coef
        .iter()
        .chain([&model.intercept])
        .map(|&c| f64::from(c))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale
}

fn tight(l2: f64, cwp: f64) -> LogisticParams {
    LogisticParams {
        l2,
        max_iter: 2000,
        gradient_tolerance: 1e-10,
        class_weight_pos: cwp,
        log_features: vec![1, 5],
    }
}

#[test]
fn unweighted_matches_sklearn() {
    // Positive share: minority (as in fraud data), majority, and a balanced draw.
    for (l2, offset) in [(1.0, -3.0), (0.05, -1.0), (0.3, 2.0)] {
        let (x, y, w) = dataset_with_offset(600, 1, offset);
        let params = tight(l2, 1.0);
        let model = fit(&params, x.view(), &y, None).expect("fit");
        assert!(model.report.converged, "{:?}", model.report);
        assert_eq!(model.scale[3], 1.0, "constant feature keeps scale 1");
        let p = model.predict_proba(x.view()).expect("predict");
        let r = python_reference(&params, &model, &x, &y, &w, false);
        let rel = coef_rel_diff(&model, &r.coef);
        assert!(
            rel < 1e-4,
            "l2 {l2} offset {offset}: coefficients differ by {rel} (relative)"
        );
        let d = max_abs_diff(&p, &r.sklearn);
        assert!(d < 1e-4, "l2 {l2} offset {offset}: max |p - sklearn| = {d}");
        let c = max_abs_diff(&p, &r.contract);
        assert!(c < 1e-6, "l2 {l2}: max |p - numpy f32 contract| = {c}");
    }
}

#[test]
fn weighted_matches_sklearn() {
    let (x, y, w) = dataset(600, 2);
    for (l2, cwp, use_w) in [(1.0, 3.0, true), (0.1, 1.0, true), (0.5, 2.5, false)] {
        let params = tight(l2, cwp);
        let model = fit(&params, x.view(), &y, use_w.then_some(&w[..])).expect("fit");
        assert!(model.report.converged, "{:?}", model.report);
        let p = model.predict_proba(x.view()).expect("predict");
        let r = python_reference(&params, &model, &x, &y, &w, use_w);
        let rel = coef_rel_diff(&model, &r.coef);
        assert!(
            rel < 1e-4,
            "l2 {l2} cwp {cwp}: coefficients differ by {rel} (relative)"
        );
        let d = max_abs_diff(&p, &r.sklearn);
        assert!(
            d < 1e-4,
            "l2 {l2} cwp {cwp} w {use_w}: max |p - sklearn| = {d}"
        );
        let c = max_abs_diff(&p, &r.contract);
        assert!(c < 1e-6, "contract: {c}");
    }
}

#[test]
fn defaults_converge_like_sklearn_defaults() {
    // With both libraries' defaults (C = 1, tol = 1e-4, max_iter = 100) on 20k rows, ours
    // must converge, land where scikit-learn's default fit lands, and take no more iterations
    // than it (plus slack for the different line searches): a tolerance on the summed
    // gradient (linfa's, our old one) is 20 000 times tighter and needs far more.
    // Ill-conditioned like real risk features: two latent signals, each seen through eight
    // nearly collinear columns, plus four heavy-tailed (log) columns.
    let n = 20_000;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut x = Array2::<f32>::zeros((n, 20));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (normal(&mut rng), normal(&mut rng));
        for k in 0..8 {
            x[[i, k]] = (a + 0.05 * normal(&mut rng)) as f32;
            x[[i, 8 + k]] = (b + 0.05 * normal(&mut rng)) as f32;
        }
        let mut z = -2.0 + 1.2 * a - 0.7 * b;
        for k in 16..20 {
            let v = (1.0 + 2.0 * normal(&mut rng)).exp();
            x[[i, k]] = v as f32;
            z += 0.1 * v.ln_1p();
        }
        y.push(rng.random::<f64>() < 1.0 / (1.0 + (-z).exp()));
    }
    let w = vec![1.0f32; n];
    let params = LogisticParams {
        log_features: (16..20).collect(),
        ..Default::default()
    };
    let model = fit(&params, x.view(), &y, None).expect("fit");
    let r = &model.report;
    assert!(r.converged && r.iterations < 100, "{r:?}");
    assert!(r.stop != Stop::Gradient || r.gradient_max <= 1e-4, "{r:?}");
    let p = model.predict_proba(x.view()).expect("predict");
    let reference = python_reference_with(&params, &model, &x, &y, &w, false, 1e-4, 100);
    let d = max_abs_diff(&p, &reference.sklearn);
    assert!(d < 1e-3, "max |p - sklearn default fit| = {d}");
    assert!(
        r.iterations <= reference.n_iter + 5,
        "{} iterations, scikit-learn {}: {r:?}",
        r.iterations,
        reference.n_iter
    );
}

#[test]
fn matches_linfa_logistic() {
    // linfa-logistic (argmin L-BFGS, More–Thuente) minimises Σ logloss + (alpha/2)‖β‖² on the
    // same standardised matrix: an independent implementation of the same optimum.
    use linfa::prelude::*;
    let (x, y, _) = dataset(500, 3);
    let params = tight(1.0, 1.0);
    let ours = fit(&params, x.view(), &y, None).expect("ours");
    let prep = prepare(&params, x.view()).expect("prepare");
    let targets = ndarray::Array1::from(y.clone());
    let lin = linfa_logistic::LogisticRegression::default()
        .alpha(params.l2)
        .max_iterations(5000)
        .gradient_tolerance(1e-9)
        .fit(&linfa::Dataset::new(prep.z, targets))
        .expect("linfa fit");
    // linfa's decision function is P(more frequent class): flip when that class is `false`.
    let sign = if lin.labels().pos.class { 1.0 } else { -1.0 };
    let theirs: Vec<f64> = lin
        .params()
        .iter()
        .map(|c| sign * c)
        .chain([sign * lin.intercept()])
        .collect();
    let rel = coef_rel_diff(&ours, &theirs);
    assert!(rel < 1e-4, "ours vs linfa-logistic: {rel}");
    // Integer sample weights equal duplicated rows.
    let w2: Vec<f32> = (0..x.nrows())
        .map(|i| if i % 3 == 0 { 2.0 } else { 1.0 })
        .collect();
    let wm = fit(&params, x.view(), &y, Some(&w2)).expect("weighted");
    let idx: Vec<usize> = (0..x.nrows())
        .flat_map(|i| if i % 3 == 0 { vec![i, i] } else { vec![i] })
        .collect();
    let xd = x.select(ndarray::Axis(0), &idx);
    let yd: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
    let dm = fit(&params, xd.view(), &yd, None).expect("duplicated");
    // Preprocessing statistics differ (duplicates shift mean/std), so compare probabilities.
    let p1 = wm.predict_proba(x.view()).expect("predict");
    let p2 = dm.predict_proba(x.view()).expect("predict");
    let d = p1
        .iter()
        .zip(&p2)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0f32, f32::max);
    // The weighted fit standardises with unweighted stats, the duplicated one with the
    // duplicated rows' stats; the penalty then acts on differently scaled coefficients, so
    // only approximate agreement is expected.
    assert!(d < 0.02, "{d}");
}

#[test]
fn deterministic_serde_and_thread_independent() {
    let (x, y, w) = dataset(9_000, 4); // > 2 blocks of 4096 rows
    let params = LogisticParams {
        log_features: vec![1, 5],
        class_weight_pos: 2.0,
        ..Default::default()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool");
    let a = one
        .install(|| fit(&params, x.view(), &y, Some(&w)))
        .expect("fit");
    let b = three
        .install(|| fit(&params, x.view(), &y, Some(&w)))
        .expect("fit");
    assert_eq!(a, b);
    let c = fit(
        &LogisticParams {
            class_weight_pos: 1.0,
            ..params.clone()
        },
        x.view(),
        &y,
        None,
    )
    .expect("fit");
    let c2 = fit(
        &LogisticParams {
            class_weight_pos: 1.0,
            ..params.clone()
        },
        x.view(),
        &y,
        None,
    )
    .expect("fit");
    assert_eq!(c, c2);
    let json = serde_json::to_string(&a).expect("serialise");
    let back: LogisticModel = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, a);
    assert_eq!(
        back.predict_proba(x.view()).expect("p"),
        a.predict_proba(x.view()).expect("p")
    );
    let pa = one.install(|| a.predict_proba(x.view())).expect("p");
    let pb = three.install(|| a.predict_proba(x.view())).expect("p");
    assert_eq!(pa, pb);
    // Learned direction: x0 raises risk, x2 lowers it (see the generating model).
    assert!(a.coef[0] > 0.3 && a.coef[2] < -0.2, "{:?}", a.coef);
}

#[test]
fn rejects_bad_input() {
    let (x, y, w) = dataset(50, 5);
    let p = LogisticParams::default();
    for bad in [
        LogisticParams {
            l2: -1.0,
            ..Default::default()
        },
        LogisticParams {
            l2: f64::NAN,
            ..Default::default()
        },
        LogisticParams {
            max_iter: 0,
            ..Default::default()
        },
        LogisticParams {
            gradient_tolerance: 0.0,
            ..Default::default()
        },
        LogisticParams {
            class_weight_pos: 0.0,
            ..Default::default()
        },
    ] {
        assert!(
            matches!(bad.check(), Err(LinearError::Params { .. })),
            "{bad:?}"
        );
        assert!(fit(&bad, x.view(), &y, None).is_err());
    }
    let log_oob = LogisticParams {
        log_features: vec![6],
        ..Default::default()
    };
    assert!(matches!(
        fit(&log_oob, x.view(), &y, None),
        Err(LinearError::Params {
            field: "log_features",
            ..
        })
    ));
    assert!(matches!(
        fit(&p, x.view(), &y[..49], None),
        Err(LinearError::Data { .. })
    ));
    assert!(matches!(
        fit(&p, x.view(), &y, Some(&w[..3])),
        Err(LinearError::Data { .. })
    ));
    let mut wn = w.clone();
    wn[4] = -1.0;
    assert!(matches!(
        fit(&p, x.view(), &y, Some(&wn)),
        Err(LinearError::Data { .. })
    ));
    assert!(matches!(
        fit(&p, x.view(), &[true; 50], None),
        Err(LinearError::SingleClass { .. })
    ));
    let mut xi = x.clone();
    xi[[3, 0]] = f32::INFINITY;
    assert!(matches!(
        fit(&p, xi.view(), &y, None),
        Err(LinearError::Data { .. })
    ));
    let model = fit(&p, x.view(), &y, None).expect("fit");
    let narrow = x.slice(ndarray::s![.., ..5]);
    assert!(matches!(
        model.predict_proba(narrow),
        Err(LinearError::Shape {
            expected: 6,
            got: 5
        })
    ));
    let mut broken = model.clone();
    broken.coef.pop();
    assert!(broken.predict_proba(x.view()).is_err());
    // Missing values at prediction time are imputed, not propagated.
    let mut xm = x.clone();
    xm.row_mut(0).fill(f32::NAN);
    let pm = model.predict_proba(xm.view()).expect("predict");
    assert!(pm[0].is_finite() && pm[0] > 0.0 && pm[0] < 1.0);
}

#[test]
fn signed_log_contract() {
    use crate::model::signed_log;
    assert_eq!(signed_log(0.0), 0.0);
    assert_eq!(signed_log(-0.0), 0.0);
    assert!(signed_log(f32::NAN).is_nan());
    assert_eq!(
        signed_log(std::f32::consts::E - 1.0),
        (std::f32::consts::E).ln()
    );
    assert_eq!(signed_log(-3.0), -(4.0f32).ln());
}

#[test]
fn model_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<LogisticModel>();
    check::<LogisticParams>();
}
