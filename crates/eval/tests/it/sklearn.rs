//! Every plain metric against scikit-learn 1.9 / NumPy on random and adversarial inputs, and
//! the selection-aware estimators against the same formulas applied to the right subsets.

use cr_eval::{
    at_budgets, average_precision, brier_score, calibration, evaluate, log_loss, pr_curve, roc_auc,
    roc_curve, Budget, Estimator, EvalConfig, EvalError, EvalInput,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::common::{close, f64s, python, world};

const TOL: f64 = 1e-9;

const SCRIPT: &str = r#"
import json, math, sys, warnings
import numpy as np
from sklearn.metrics import roc_auc_score, average_precision_score, log_loss, brier_score_loss, roc_curve, precision_recall_curve
from sklearn.calibration import calibration_curve
warnings.simplefilter("ignore")
cases = json.load(open(sys.argv[1]))
out = []
def attempt(f):
    try:
        v = f()
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    except Exception:
        return None
for c in cases:
    s = np.array(c["scores"], dtype=float); y = np.array(c["labels"], dtype=int)
    w = None if c["weights"] is None else np.array(c["weights"], dtype=float)
    r = {}
    r["auc"] = attempt(lambda: float(roc_auc_score(y, s, sample_weight=w)))
    r["ap"] = attempt(lambda: float(average_precision_score(y, s, sample_weight=w))) if y.sum() > 0 else None
    if c["probs"]:
        r["log_loss"] = float(log_loss(y, s, sample_weight=w, labels=[0, 1]))
        r["brier"] = attempt(lambda: float(brier_score_loss(y, s, sample_weight=w, pos_label=1)))
        if w is None:
            pt, pp = calibration_curve(y, s, n_bins=10, strategy="uniform")
            bins = np.linspace(0.0, 1.0, 11)
            ids = np.searchsorted(bins[1:-1], s)
            tot = np.bincount(ids, minlength=10)
            nz = tot > 0
            r["cal_true"] = pt.tolist(); r["cal_pred"] = pp.tolist(); r["cal_n"] = tot[nz].tolist()
            r["ece"] = float(np.sum(tot[nz] / len(s) * np.abs(pt - pp)))
    if r["auc"] is not None:
        fpr, tpr, thr = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
        r["roc"] = [fpr[1:].tolist(), tpr[1:].tolist(), thr[1:].tolist()]
    if y.sum() > 0:
        p, rc, thr = precision_recall_curve(y, s, sample_weight=w)
        r["pr"] = [p[:-1][::-1].tolist(), rc[:-1][::-1].tolist(), thr[::-1].tolist()]
    # top-k by score desc, then row index asc
    n = len(s); order = np.lexsort((np.arange(n), -s))
    rev = np.array(c["revenue"], dtype=float)
    bud = []
    for rate in c["rates"]:
        k = min(n, math.ceil(round(rate * n, 9)))
        top = order[:k]
        pos = int(y[top].sum())
        bud.append({"k": k, "precision": pos / k if k else None,
                    "recall": pos / y.sum() if y.sum() else None,
                    "revenue": float(rev[top].sum() / rev.sum()) if rev.sum() > 0 else None})
    r["budgets"] = bud
    out.append(r)
print(json.dumps(out))
"#;

struct Case {
    name: &'static str,
    scores: Vec<f64>,
    labels: Vec<bool>,
    weights: Option<Vec<f64>>,
    revenue: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = Vec::new();
    let mut mk = |name,
                  n: usize,
                  f: &mut dyn FnMut(&mut ChaCha8Rng, usize) -> (f64, bool),
                  weighted: bool,
                  rng: &mut ChaCha8Rng| {
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut revenue = Vec::new();
        for i in 0..n {
            let (s, y) = f(rng, i);
            scores.push(s);
            labels.push(y);
            revenue.push(if y { rng.random::<f64>() * 1000.0 } else { 0.0 });
        }
        let weights = weighted.then(|| {
            (0..n)
                .map(|i| {
                    if i % 7 == 3 {
                        0.0
                    } else {
                        0.2 + 5.0 * rng.random::<f64>()
                    }
                })
                .collect()
        });
        out.push(Case {
            name,
            scores,
            labels,
            weights,
            revenue,
        });
    };
    mk(
        "random",
        1000,
        &mut |r, _| {
            let s: f64 = r.random();
            (s, r.random::<f64>() < 0.1 + 0.5 * s)
        },
        false,
        &mut rng,
    );
    mk(
        "random weighted",
        800,
        &mut |r, _| {
            let s: f64 = r.random();
            (s, r.random::<f64>() < 0.1 + 0.5 * s)
        },
        true,
        &mut rng,
    );
    mk(
        "heavy ties",
        500,
        &mut |r, _| {
            let s = (r.random::<f64>() * 10.0).floor() / 10.0;
            (s, r.random::<f64>() < 0.2 + 0.5 * s)
        },
        false,
        &mut rng,
    );
    mk(
        "heavy ties weighted",
        500,
        &mut |r, _| {
            let s = (r.random::<f64>() * 5.0).floor() / 5.0;
            (s, r.random::<f64>() < 0.2 + 0.5 * s)
        },
        true,
        &mut rng,
    );
    mk(
        "bin edges",
        300,
        &mut |r, i| {
            let s = (i % 11) as f64 / 10.0;
            (s, r.random::<f64>() < 0.5)
        },
        false,
        &mut rng,
    );
    mk(
        "all ties",
        50,
        &mut |r, _| (0.5, r.random::<f64>() < 0.3),
        false,
        &mut rng,
    );
    mk(
        "tiny",
        2,
        &mut |_, i| (0.3 + 0.1 * i as f64, i == 0),
        false,
        &mut rng,
    );
    mk(
        "tiny tie",
        3,
        &mut |_, i| (if i == 2 { 0.9 } else { 0.4 }, i != 1),
        false,
        &mut rng,
    );
    mk(
        "extremes 0 and 1",
        40,
        &mut |r, i| (if i % 2 == 0 { 0.0 } else { 1.0 }, r.random::<f64>() < 0.5),
        false,
        &mut rng,
    );
    mk(
        "rare positives",
        2000,
        &mut |r, _| {
            let s: f64 = r.random::<f64>().powi(3);
            (s, r.random::<f64>() < 0.02 * (1.0 + 4.0 * s))
        },
        false,
        &mut rng,
    );
    mk(
        "one class (negatives)",
        30,
        &mut |r, _| (r.random(), false),
        false,
        &mut rng,
    );
    mk(
        "one class (positives)",
        30,
        &mut |r, _| (r.random(), true),
        false,
        &mut rng,
    );
    out
}

const RATES: [f64; 6] = [0.01, 0.02, 0.05, 0.1, 0.37, 1.0];

#[test]
fn plain_metrics_match_sklearn() {
    let cases = cases();
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({"scores": c.scores, "labels": c.labels.iter().map(|&b| b as i32).collect::<Vec<_>>(),
                   "weights": c.weights, "probs": true, "revenue": c.revenue, "rates": RATES})
        })
        .collect();
    let refs = python(SCRIPT, &Value::Array(input));
    for (c, r) in cases.iter().zip(refs.as_array().unwrap()) {
        let w = c.weights.as_deref();
        let what = |m: &str| format!("{} / {m}", c.name);
        // AUC: value or clearly an error for one class
        match (roc_auc(&c.scores, &c.labels, w), r["auc"].as_f64()) {
            (Ok(a), Some(b)) => close(a, b, TOL, &what("auc")),
            (Err(EvalError::OneClass { .. }), None) => {}
            (ours, theirs) => panic!("{}: ours {ours:?}, sklearn {theirs:?}", what("auc")),
        }
        match (average_precision(&c.scores, &c.labels, w), r["ap"].as_f64()) {
            (Ok(a), Some(b)) => close(a, b, TOL, &what("ap")),
            (Err(EvalError::OneClass { .. }), None) => {}
            (ours, theirs) => panic!("{}: ours {ours:?}, sklearn {theirs:?}", what("ap")),
        }
        close(
            log_loss(&c.scores, &c.labels, w).unwrap(),
            r["log_loss"].as_f64().unwrap(),
            TOL,
            &what("log loss"),
        );
        if let Some(b) = r["brier"].as_f64() {
            close(
                brier_score(&c.scores, &c.labels, w).unwrap(),
                b,
                TOL,
                &what("brier"),
            );
        }
        if let Some(roc) = r.get("roc") {
            let ours = roc_curve(&c.scores, &c.labels, w).unwrap();
            let (fpr, tpr, thr) = (f64s(&roc[0]), f64s(&roc[1]), f64s(&roc[2]));
            assert_eq!(ours.len(), fpr.len(), "{}", what("roc length"));
            for (i, p) in ours.iter().enumerate() {
                close(p.fpr, fpr[i], TOL, &what("fpr"));
                close(p.tpr, tpr[i], TOL, &what("tpr"));
                close(p.threshold, thr[i], 0.0, &what("roc threshold"));
            }
        }
        if let Some(pr) = r.get("pr") {
            let ours = pr_curve(&c.scores, &c.labels, w).unwrap();
            let (prec, rec, thr) = (f64s(&pr[0]), f64s(&pr[1]), f64s(&pr[2]));
            assert_eq!(ours.len(), prec.len(), "{}", what("pr length"));
            for (i, p) in ours.iter().enumerate() {
                close(p.precision, prec[i], TOL, &what("precision"));
                close(p.recall, rec[i], TOL, &what("recall"));
                close(p.threshold, thr[i], 0.0, &what("pr threshold"));
            }
        }
        if w.is_none() {
            let cal = calibration(&c.scores, &c.labels, None, 10).unwrap();
            let nonempty: Vec<_> = cal.bins.iter().filter(|b| b.n > 0).collect();
            let (pt, pp, pn) = (
                f64s(&r["cal_true"]),
                f64s(&r["cal_pred"]),
                f64s(&r["cal_n"]),
            );
            assert_eq!(nonempty.len(), pt.len(), "{}", what("calibration bins"));
            for (i, b) in nonempty.iter().enumerate() {
                close(
                    b.fraction_positive.unwrap(),
                    pt[i],
                    TOL,
                    &what("calibration observed"),
                );
                close(
                    b.mean_predicted.unwrap(),
                    pp[i],
                    TOL,
                    &what("calibration predicted"),
                );
                assert_eq!(b.n as f64, pn[i], "{}", what("calibration count"));
            }
            close(cal.ece, r["ece"].as_f64().unwrap(), TOL, &what("ece"));
            // budgets (unweighted definition)
            let budgets: Vec<Budget> = RATES.iter().map(|&r| Budget::Rate(r)).collect();
            let ours = at_budgets(&c.scores, &c.labels, Some(&c.revenue), &budgets).unwrap();
            for (o, t) in ours.iter().zip(r["budgets"].as_array().unwrap()) {
                assert_eq!(o.k as u64, t["k"].as_u64().unwrap(), "{}", what("k"));
                for (a, b, m) in [
                    (o.precision, &t["precision"], "precision@k"),
                    (o.recall, &t["recall"], "recall@k"),
                    (o.revenue_share, &t["revenue"], "revenue@k"),
                ] {
                    match (a, b.as_f64()) {
                        (Some(a), Some(b)) => close(a, b, TOL, &what(m)),
                        (None, None) => {}
                        (a, b) => panic!("{}: ours {a:?} vs {b:?}", what(m)),
                    }
                }
            }
        }
    }
}

#[test]
fn nan_scores_are_errors() {
    let s = [0.1, f64::NAN, 0.3];
    let y = [true, false, true];
    for r in [
        roc_auc(&s, &y, None),
        average_precision(&s, &y, None),
        log_loss(&s, &y, None),
        brier_score(&s, &y, None),
    ] {
        assert!(
            matches!(r, Err(EvalError::BadScore { row: 1, .. })),
            "{r:?}"
        );
    }
    let input = EvalInput {
        model: "m".into(),
        scores: s.to_vec(),
        rows: cr_eval::EvalRows::fully_labelled(&y),
        ..EvalInput::default()
    };
    assert!(matches!(
        evaluate(&input, &EvalConfig::default()),
        Err(EvalError::BadScore { row: 1, .. })
    ));
    assert!(matches!(
        log_loss(&[1.5], &[true], None),
        Err(EvalError::NotProbability { row: 0, .. })
    ));
}

#[test]
fn one_class_report_says_auc_is_undefined() {
    let input = EvalInput {
        model: "m".into(),
        scores: vec![0.2, 0.4, 0.9],
        rows: cr_eval::EvalRows::fully_labelled(&[false, false, false]),
        ..EvalInput::default()
    };
    let rep = evaluate(&input, &EvalConfig::default()).unwrap();
    let e = rep.estimator(Estimator::Inspected).unwrap();
    assert!(e.roc_auc.is_none() && e.average_precision.is_none());
    assert!(
        e.notes.iter().any(|n| n.contains("ROC-AUC undefined")),
        "{:?}",
        e.notes
    );
}

const SUBSET_SCRIPT: &str = r#"
import json, math, sys
import numpy as np
from sklearn.metrics import roc_auc_score, average_precision_score, log_loss, brier_score_loss
d = json.load(open(sys.argv[1]))
s = np.array(d["scores"]); n = len(s)
lab = d["label"]; sel = d["selection"]; prop = d["propensity"]
order = np.lexsort((np.arange(n), -s))
out = {}
for name, mask, w in [
    ("inspected", [l is not None for l in lab], None),
    ("random_sample", [l is not None and q == "random" for l, q in zip(lab, sel)], None),
    ("ipw", [l is not None and p is not None for l, p in zip(lab, prop)], "ipw"),
]:
    m = np.array(mask)
    y = np.array([1 if l else 0 for l in lab])
    wt = np.array([1.0 / p if p is not None else 0.0 for p in prop]) if w else m.astype(float)
    wt = wt * m
    r = {"auc": roc_auc_score(y[m], s[m], sample_weight=wt[m]),
         "ap": average_precision_score(y[m], s[m], sample_weight=wt[m]),
         "log_loss": log_loss(y[m], s[m], sample_weight=wt[m], labels=[0, 1]),
         "brier": brier_score_loss(y[m], s[m], sample_weight=wt[m]),
         "prevalence": float(np.sum(wt * y) / np.sum(wt))}
    bud = []
    for rate in d["rates"]:
        k = min(n, math.ceil(round(rate * n, 9)))
        top = np.zeros(n, bool); top[order[:k]] = True
        bud.append({"precision": float(np.sum((wt * y)[top]) / np.sum(wt[top])),
                    "recall": float(np.sum((wt * y)[top]) / np.sum(wt * y))})
    r["budgets"] = bud
    out[name] = r
print(json.dumps(out))
"#;

#[test]
fn selection_aware_estimators_match_subset_formulas() {
    let w = world(6000, 11);
    let rates = [0.01, 0.05, 0.1];
    let input = EvalInput {
        model: "A".into(),
        scores: w.score_a.clone(),
        rows: w.rows.clone(),
        ..EvalInput::default()
    };
    let cfg = EvalConfig {
        budgets: rates.iter().map(|&r| Budget::Rate(r)).collect(),
        ..EvalConfig::default()
    };
    let rep = evaluate(&input, &cfg).unwrap();
    let refs = python(
        SUBSET_SCRIPT,
        &json!({"scores": w.score_a, "label": w.rows.label, "selection": w.rows.selection,
                "propensity": w.rows.propensity, "rates": rates}),
    );
    for est in Estimator::ALL {
        let e = rep
            .estimator(est)
            .unwrap_or_else(|| panic!("{est:?} missing"));
        let r = &refs[est.as_str()];
        let what = |m: &str| format!("{} / {m}", est.as_str());
        close(
            e.roc_auc.unwrap().value,
            r["auc"].as_f64().unwrap(),
            TOL,
            &what("auc"),
        );
        close(
            e.average_precision.unwrap().value,
            r["ap"].as_f64().unwrap(),
            TOL,
            &what("ap"),
        );
        close(
            e.log_loss.unwrap().value,
            r["log_loss"].as_f64().unwrap(),
            TOL,
            &what("log loss"),
        );
        close(
            e.brier.unwrap().value,
            r["brier"].as_f64().unwrap(),
            TOL,
            &what("brier"),
        );
        close(
            e.prevalence.unwrap().value,
            r["prevalence"].as_f64().unwrap(),
            TOL,
            &what("prevalence"),
        );
        for (b, t) in e.budgets.iter().zip(r["budgets"].as_array().unwrap()) {
            assert_eq!(b.precision.unwrap().estimator, est);
            close(
                b.precision.unwrap().value,
                t["precision"].as_f64().unwrap(),
                TOL,
                &what("precision@k"),
            );
            close(
                b.recall.unwrap().value,
                t["recall"].as_f64().unwrap(),
                TOL,
                &what("recall@k"),
            );
        }
    }
}
