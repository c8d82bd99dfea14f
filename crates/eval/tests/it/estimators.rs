//! Selection-aware estimates on a world where the truth is known for every row: the random
//! sample and IPW intervals cover the truth, the inspected-rows estimate is visibly biased and
//! flagged as such; breakdowns, overlap and sentences are consistent.

use cr_eval::{
    at_budgets, compare, evaluate, feature_psi, Budget, Estimator, EvalConfig, EvalInput,
    FeatureDriftInput,
};

use crate::common::world;

#[test]
fn random_and_ipw_cover_the_truth_inspected_is_biased() {
    let w = world(40_000, 21);
    let n = w.truth.len();
    let input = EvalInput {
        model: "A".into(),
        scores: w.score_a.clone(),
        rows: w.rows.clone(),
        ..EvalInput::default()
    };
    let rep = evaluate(&input, &EvalConfig::default()).unwrap();
    assert!(!rep.fully_labelled);
    assert_eq!(rep.primary_estimator, Estimator::RandomSample);

    let true_prev = w.truth.iter().filter(|&&b| b).count() as f64 / n as f64;
    let unins: Vec<usize> = (0..n).filter(|&i| !w.rows.inspected[i]).collect();
    let true_unins = unins.iter().filter(|&&i| w.truth[i]).count() as f64 / unins.len() as f64;
    let truth_at = at_budgets(
        &w.score_a,
        &w.truth,
        None,
        &[Budget::Rate(0.05), Budget::Rate(0.10)],
    )
    .unwrap();

    for est in [Estimator::RandomSample, Estimator::Ipw] {
        let e = rep.estimator(est).unwrap();
        assert!(!e.biased);
        let prev = e.prevalence.unwrap();
        assert_eq!(prev.estimator, est);
        assert!(
            !prev.excludes(true_prev),
            "{est:?} prevalence {prev:?} vs truth {true_prev}"
        );
        let u = e.uninspected_fraud_rate.unwrap();
        assert!(
            !u.excludes(true_unins),
            "{est:?} uninspected {u:?} vs truth {true_unins}"
        );
        for (b, t) in e
            .budgets
            .iter()
            .filter(|b| b.budget != Budget::Rate(0.01) && b.budget != Budget::Rate(0.02))
            .zip(&truth_at)
        {
            let p = b.precision.unwrap();
            assert!(
                !p.excludes(t.precision.unwrap()),
                "{est:?} {:?} precision {p:?} vs truth {:?}",
                b.budget,
                t.precision
            );
        }
    }
    let ins = rep.estimator(Estimator::Inspected).unwrap();
    assert!(ins.biased && ins.description.contains("BIASED"));
    let p = ins.prevalence.unwrap();
    assert!(
        p.ci_low > 2.0 * true_prev,
        "inspected rows should over-state fraud: {p:?} vs {true_prev}"
    );
    assert!(ins.uninspected_fraud_rate.is_none());

    // Breakdowns use the primary estimator; months of 2024, six offices.
    let m = rep.by_period.as_ref().unwrap();
    assert_eq!(m.groups.len(), 12);
    assert_eq!(m.groups[0].key, "2024-01");
    assert_eq!(m.groups.iter().map(|g| g.n).sum::<usize>(), n);
    assert!(m.groups.iter().all(|g| g
        .precision
        .is_none_or(|p| p.estimator == Estimator::RandomSample)));
    assert_eq!(rep.by_segment[0].groups.len(), 6);

    // JSON round trip keeps every number.
    let back: cr_eval::EvaluationReport = serde_json::from_str(&rep.to_json()).unwrap();
    assert_eq!(back, rep);

    // The terminal summary: one line per estimator, one per budget of each, the notes.
    let text = rep.headline();
    let lines: Vec<&str> = text.lines().collect();
    let budget_lines: usize = rep.estimators.iter().map(|e| e.budgets.len()).sum();
    assert_eq!(
        lines.len(),
        1 + rep.estimators.len() + budget_lines + rep.notes.len(),
        "{text}"
    );
    assert!(
        lines[0].starts_with("A: 40000 rows") && lines[0].ends_with("random sample"),
        "{text}"
    );
    let p = rep.estimator(Estimator::RandomSample).unwrap().budgets[2]
        .precision
        .unwrap();
    assert!(
        text.contains(&format!(
            "at    5 %: hit rate {:.3} [{:.3}, {:.3}]",
            p.value, p.ci_low, p.ci_high
        )),
        "{text}"
    );
}

#[test]
fn comparison_finds_the_better_model_and_says_so() {
    let w = world(30_000, 8);
    let cfg = EvalConfig {
        bootstrap_reps: 200,
        ..EvalConfig::default()
    };
    let rep = compare(
        &[
            ("A".into(), w.score_a.clone()),
            ("B".into(), w.score_b.clone()),
        ],
        &w.rows,
        &cfg,
    )
    .unwrap();
    let pair = &rep.pairs[0];
    let ipw = pair.estimator(Estimator::Ipw).unwrap();
    let d = ipw.delong.unwrap();
    assert!(d.diff > 0.0, "B is built with less noise: {d:?}");
    assert_eq!(pair.sentences.len(), cfg.budgets.len());
    assert!(
        pair.sentences[2].starts_with("B finds")
            && pair.sentences[2].contains("at 5 % (1500 inspections)"),
        "{}",
        pair.sentences[2]
    );
    // The comparison's point estimates are the evaluations' numbers (two code paths).
    for (m, ev) in rep.evaluations.iter().enumerate() {
        for pe in &pair.by_estimator {
            let er = ev.estimator(pe.estimator).unwrap();
            for (bd, be) in pe.budgets.iter().zip(&er.budgets) {
                let d = bd.precision.unwrap();
                let mine = if m == 0 { d.baseline } else { d.challenger };
                assert!(
                    (mine - be.precision.unwrap().value).abs() < 1e-12,
                    "{:?} {:?}",
                    pe.estimator,
                    bd.budget
                );
                let r = bd.recall.unwrap();
                let mine = if m == 0 { r.baseline } else { r.challenger };
                assert!((mine - be.recall.unwrap().value).abs() < 1e-12);
            }
            let a = pe.auc.unwrap();
            let mine = if m == 0 { a.baseline } else { a.challenger };
            assert!((mine - er.roc_auc.unwrap().value).abs() < 1e-12);
        }
    }
    // Overlap by hand.
    let k = Budget::Rate(0.05).k(w.truth.len());
    let top = |s: &[f64]| cr_eval::top_k(s, k).unwrap();
    let (ta, tb) = (top(&w.score_a), top(&w.score_b));
    let inter = tb.iter().filter(|i| ta.contains(i)).count();
    let ov = pair.overlap[2];
    assert_eq!((ov.k, ov.intersection), (k, inter));
    assert_eq!(ov.jaccard, inter as f64 / (2 * k - inter) as f64);
}

#[test]
fn drift_flags_a_shifted_feature() {
    let edges = vec![0.0, 1.0, 2.0];
    let expected = vec![0.1, 0.4, 0.3, 0.2, 0.0];
    let same: Vec<f64> = (0..1000)
        .map(|i| match i % 10 {
            0 => -1.0,
            1..=4 => 0.5,
            5..=7 => 1.5,
            _ => 3.0,
        })
        .collect();
    let shifted: Vec<f64> = (0..1000)
        .map(|i| if i % 10 < 2 { f64::NAN } else { 3.0 })
        .collect();
    let a = feature_psi(
        &FeatureDriftInput {
            name: "x".into(),
            edges: edges.clone(),
            expected: expected.clone(),
            values: same,
            expected_shift: None,
        },
        0.2,
    )
    .unwrap();
    assert!(a.psi.abs() < 1e-12 && !a.flagged);
    let b = feature_psi(
        &FeatureDriftInput {
            name: "x".into(),
            edges,
            expected,
            values: shifted,
            expected_shift: None,
        },
        0.2,
    )
    .unwrap();
    assert!(b.flagged, "{b:?}");
    // by hand: floors at 1e-4 for empty bins
    let e: [f64; 5] = [0.1, 0.4, 0.3, 0.2, 1e-4];
    let a_: [f64; 5] = [1e-4, 1e-4, 1e-4, 0.8, 0.2];
    let want: f64 = e.iter().zip(a_).map(|(e, a)| (a - e) * (a / e).ln()).sum();
    assert!((b.psi - want).abs() < 1e-12);
}
