use cr_data::Batch;
use cr_features::{fit, FeatureError, FittedPipeline, PipelineConfig};

use crate::common::{push, schema, synthetic};

#[test]
fn fit_without_labels_is_a_clear_error() {
    let mut b = synthetic(50, 5, 0);
    b.source = "nolabels.csv".into();
    assert!(b.label.iter().all(|l| l.is_none()));
    match fit(&schema(), &b, &PipelineConfig::default()) {
        Err(e @ FeatureError::NoLabels { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("nolabels.csv") && msg.contains("50 rows") && msg.contains("label"),
                "{msg}"
            );
        }
        other => panic!("expected NoLabels, got {other:?}"),
    }
}

#[test]
fn too_few_labels_bad_config_and_bad_batches_are_errors() {
    let s = schema();
    let mut b = Batch::empty(&s, "few");
    for i in 0..3 {
        push(
            &mut b,
            0,
            10_101,
            &["i", "d", "o"],
            &[1.0, 1.0],
            Some(i == 0),
        );
    }
    assert!(matches!(
        fit(&s, &b, &PipelineConfig::default()),
        Err(FeatureError::Fit { .. })
    ));
    for bad in [
        PipelineConfig {
            smoothing: -1.0,
            ..PipelineConfig::default()
        },
        PipelineConfig {
            smoothing: f64::NAN,
            ..PipelineConfig::default()
        },
        PipelineConfig {
            folds: 1,
            ..PipelineConfig::default()
        },
        PipelineConfig {
            min_count: 0,
            ..PipelineConfig::default()
        },
        PipelineConfig {
            pairs: Some(vec![vec![cr_features::KeyPart::Hs(8)]]),
            ..PipelineConfig::default()
        },
        PipelineConfig {
            pairs: Some(vec![vec![cr_features::KeyPart::Categorical(3)]]),
            ..PipelineConfig::default()
        },
        PipelineConfig {
            pairs: Some(vec![vec![cr_features::KeyPart::Categorical(0)]]),
            ..PipelineConfig::default()
        },
        PipelineConfig {
            pairs: Some(vec![vec![]]),
            ..PipelineConfig::default()
        },
    ] {
        let r = fit(&s, &synthetic(50, 1, 50), &bad);
        assert!(
            matches!(r, Err(FeatureError::Config { .. })),
            "{bad:?} -> {r:?}"
        );
    }
    let good = synthetic(100, 2, 50);
    let (p, _) = fit(&s, &good, &PipelineConfig::default()).expect("fit");
    // wrong shape
    let mut short = good.clone();
    short.numeric.pop();
    assert!(matches!(
        p.transform(&short),
        Err(FeatureError::Shape { .. })
    ));
    let mut ragged = good.clone();
    ragged.dates.pop();
    assert!(matches!(
        p.transform(&ragged),
        Err(FeatureError::Shape { .. })
    ));
    // HS code wider than the schema says
    let mut wide = good.clone();
    wide.hs[7] = 1_234_567;
    match p.transform(&wide) {
        Err(FeatureError::Data { line, column, .. }) => {
            assert_eq!((line, column.as_str()), (9, "hs"))
        }
        other => panic!("expected Data error, got {other:?}"),
    }
}

#[test]
fn config_parses_with_defaults_and_rejects_unknown_fields() {
    let c: PipelineConfig =
        serde_json::from_str(r#"{"folds": 3, "pairs": [[{"categorical": 0}, {"hs": 4}]]}"#)
            .expect("cfg");
    assert_eq!((c.folds, c.smoothing, c.min_count), (3, 20.0, 5));
    assert_eq!(
        c.pairs,
        Some(vec![vec![
            cr_features::KeyPart::Categorical(0),
            cr_features::KeyPart::Hs(4)
        ]])
    );
    assert!(serde_json::from_str::<PipelineConfig>(r#"{"fold": 3}"#).is_err());
}

#[test]
fn from_json_checks_version_and_contents() {
    let (p, _) = fit(
        &schema(),
        &synthetic(100, 3, 50),
        &PipelineConfig::default(),
    )
    .expect("fit");
    let json = p.to_json();
    let v2 = json.replacen("\"format_version\": 1", "\"format_version\": 2", 1);
    assert!(
        matches!(FittedPipeline::from_json(&v2), Err(FeatureError::Format { message }) if message.contains("format_version 2"))
    );
    assert!(FittedPipeline::from_json("{}").is_err());
    let extra = json.replacen(
        "\"format_version\": 1",
        "\"format_version\": 1, \"colour\": 3",
        1,
    );
    assert!(FittedPipeline::from_json(&extra).is_err());
    let mut bad = p.clone();
    if let Some(cr_features::FeatureDef::Numeric { index, .. }) = bad.features.first_mut() {
        *index = 9;
    }
    assert!(matches!(
        FittedPipeline::from_json(&bad.to_json()),
        Err(FeatureError::Format { .. })
    ));
    assert!(bad.compile().is_err());
}
