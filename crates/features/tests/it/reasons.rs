//! Reasons on raw fields: group sums against an independent grouping by `inputs`, a pair
//! reported as the pair, and sentences whose numbers are worked out by hand from the training
//! rows (smoothed rates, counts, the HS4 median unit value).

use std::collections::BTreeMap;

use cr_data::Batch;
use cr_features::{fit, FeatureDef, KeyPart, PipelineConfig, ReasonGroups};

use crate::common::{push, schema, synthetic, Gen};

/// importer A: 1,1,0 (rate (2 + 2·0.5) / (3 + 2) = 60 %, 3 inspections); B: 0,0; C: 1.
/// prior 3/6 = 50 %. Every unit value 1.0 under HS4 0101.
fn tiny() -> Batch {
    let s = schema();
    let mut b = Batch::empty(&s, "tiny");
    for (imp, y) in [
        ("A", Some(true)),
        ("A", Some(true)),
        ("A", Some(false)),
        ("B", Some(false)),
        ("B", Some(false)),
        ("C", Some(true)),
    ] {
        push(&mut b, 19_000, 10_101, &[imp, "d", "o"], &[1.0, 1.0], y);
    }
    b
}

fn cfg() -> PipelineConfig {
    PipelineConfig {
        smoothing: 2.0,
        folds: 2,
        seed: 3,
        pairs: Some(vec![vec![KeyPart::Categorical(0), KeyPart::Categorical(1)]]),
        min_count: 1,
    }
}

fn feature(p: &cr_features::FittedPipeline, name: &str) -> usize {
    p.features
        .iter()
        .position(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no feature {name} in {:?}", p.feature_names()))
}

#[test]
fn group_sums_equal_feature_sums_and_pairs_stay_pairs() {
    let s = schema();
    let train = synthetic(2000, 11, 60);
    let (p, _) = fit(&s, &train, &PipelineConfig::default()).expect("fit");
    let g = ReasonGroups::new(&p);
    // independent grouping: by the feature's input names
    let mut want: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (j, f) in p.features.iter().enumerate() {
        want.entry(f.inputs(&s).join(" × ")).or_default().push(j);
    }
    let mut names: Vec<&str> = g.names();
    names.sort_unstable();
    assert_eq!(names, want.keys().map(String::as_str).collect::<Vec<_>>());
    assert!(
        want.contains_key("importer × declarant"),
        "{:?}",
        want.keys()
    );
    let pair = feature(&p, "risk_rate[importer|declarant]");
    assert_eq!(g.names()[g.group_of(pair)], "importer × declarant");
    let mut gen = Gen(5);
    for _ in 0..50 {
        let phi: Vec<f64> = (0..p.features.len())
            .map(|_| (gen.below(2001) as f64 - 1000.0) / 997.0)
            .collect();
        let sums = g.sums(&phi);
        for (gi, name) in g.names().iter().enumerate() {
            let w: f64 = want[*name].iter().map(|&j| phi[j]).sum();
            assert!((sums[gi] - w).abs() < 1e-12, "{name}: {} vs {w}", sums[gi]);
        }
        let total: f64 = phi.iter().sum();
        assert!((sums.iter().sum::<f64>() - total).abs() < 1e-9);
    }
}

#[test]
fn sentences_quote_the_pipeline_tables() {
    let s = schema();
    let (p, _) = fit(&s, &tiny(), &cfg()).expect("fit");
    let g = ReasonGroups::new(&p);
    let mut b = Batch::empty(&s, "score");
    // unit value 0.42 / 2 = 0.21; the HS4 0101 median is 1.0 (every training unit value)
    push(&mut b, 19_000, 10_101, &["A", "d", "o"], &[0.42, 2.0], None);
    push(&mut b, 19_000, 10_101, &["Z", "d", "o"], &[1.0, 1.0], None);
    let nf = p.features.len();
    let only = |name: &str, v: f64| {
        let mut phi = vec![0.0; nf];
        phi[feature(&p, name)] = v;
        phi
    };

    let r = g.top(&p, &b, 0, &only("risk_rate[importer]", 0.7), 1);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].field.as_str(), r[0].value.as_str()),
        ("importer", "A")
    );
    assert_eq!(r[0].contribution, 0.7);
    assert_eq!(
        r[0].text,
        "importer A: seizure rate 60.0 % over 3 labelled inspections, typical 50.0 %"
    );
    // the risk count of the same key joins the same reason
    let mut phi = only("risk_rate[importer]", 0.5);
    phi[feature(&p, "risk_count[importer]")] = -0.2;
    let r = g.top(&p, &b, 0, &phi, 1);
    assert!((r[0].contribution - 0.3).abs() < 1e-15);

    // a pair is reported as the pair
    let r = g.top(&p, &b, 0, &only("risk_rate[importer|declarant]", -0.4), 1);
    assert_eq!(
        (r[0].field.as_str(), r[0].value.as_str()),
        ("importer × declarant", "A × d")
    );
    assert_eq!(
        r[0].text,
        "importer × declarant A × d: pair's seizure rate 60.0 % over 3 labelled inspections, typical 50.0 %"
    );

    // an importer never seen: the prior
    let r = g.top(&p, &b, 1, &only("risk_rate[importer]", 0.1), 1);
    assert_eq!(
        r[0].text,
        "importer Z: too few labelled inspections for a rate of its own (typical 50.0 % used)"
    );

    // relative unit value, against the HS4 median; the compiled transform agrees with it
    let r = g.top(&p, &b, 0, &only("rel_unit_value", 1.5), 1);
    assert_eq!(r[0].field, "value × mass × hs");
    assert_eq!(r[0].value, "0.42 × 2 × 010101");
    assert!(
        r[0].text
            .contains("declared unit value 0.21 × the median for HS 0101 (1)"),
        "{}",
        r[0].text
    );
    let rel = &p.features[feature(&p, "rel_unit_value")];
    assert_eq!(rel.median_for(10_101, 6), Some((4, 1.0)));
    let x = p
        .compile()
        .expect("compile")
        .transform(&b)
        .expect("transform");
    let c = x.column_index("rel_unit_value").expect("column");
    assert_eq!(x.column(c)[0], 0.42f32 / 2.0);
    assert!(matches!(rel, FeatureDef::RelUnitValue { .. }));

    // top-K: largest |contribution| first, K at most the number of groups
    let mut phi = vec![0.0; nf];
    phi[feature(&p, "risk_rate[importer]")] = 0.2;
    phi[feature(&p, "rel_unit_value")] = -0.9;
    phi[feature(&p, "risk_rate[importer|declarant]")] = 0.5;
    let r = g.top(&p, &b, 0, &phi, 3);
    let fields: Vec<&str> = r.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        fields,
        ["value × mass × hs", "importer × declarant", "importer"]
    );
    assert_eq!(g.top(&p, &b, 0, &phi, 1000).len(), g.names().len());
}
