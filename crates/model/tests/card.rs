//! Reading model cards: the current version, older versions through the upgrade steps, newer
//! versions refused; the reference distribution from a file's metadata.

use std::collections::BTreeMap;
use std::error::Error;

use cr_model::card::{upgrade, Upgrade};
use cr_model::{meta, reference_from_metadata, ModelCard, ModelError, CARD_VERSION};
use serde_json::{json, Map, Value};

/// A version-1 card as `cr-train` writes it (field names and nesting are the file format).
fn v1_card() -> Value {
    json!({
      "card_version": 1,
      "name": "gbdt",
      "algo": "gbdt",
      "created_at": "2026-12-01T10:00:00Z",
      "customs_risk_version": "0.1.0",
      "data": {"file": "train.csv", "sha256": "ab", "rows_read": 100, "rows_rejected": 2,
               "labelled": 60, "positives": 6, "date_min": "2024-01-01", "date_max": "2024-06-30"},
      "schema": {"name": "synthetic", "sha256": "cd"},
      "split": {"valid_from": "2024-05-01", "train_rows": 48, "train_positives": 5,
                "valid_rows": 12, "valid_positives": 1},
      "params": {"learning_rate": 0.1},
      "pipeline": {"risk_prior": 10.0},
      "seed": 42,
      "threads": 2,
      "timings": {"read": 0.5, "train": 1.25},
      "validation": {"rows": 12, "positives": 1, "roc_auc": 0.75, "pr_auc": 0.5,
                     "log_loss": null,
                     "at_budget": [{"rate": 0.05, "k": 1, "precision": 1.0, "recall": 1.0,
                                    "revenue_share": null}]},
      "features": ["value", "mass"],
      "importance": [{"feature": "value", "gain": 3.5, "splits": 2.0}],
      "best_iteration": 17,
      "fit": {"refit": true, "rows": 60, "positives": 6, "trees": 17, "sample_weight": "none",
              "ipw_max_weight": null, "ipw_clipped_rows": null, "effective_rows": null,
              "solver": null},
      "score_quantiles": [0.1, 0.2, 0.30000001192092896],
      "feature_bins": [{"feature": "value", "edges": [1.0], "expected": [0.5, 0.5, 0.0]}]
    })
}

/// The same card in version 2: the run facts moved into `run`.
fn v2_card() -> Value {
    let mut c = v1_card();
    let m = c.as_object_mut().unwrap();
    m.insert("card_version".into(), json!(2));
    m.remove("created_at");
    m.remove("threads");
    m.remove("timings");
    m["data"].as_object_mut().unwrap().remove("file");
    m.insert(
        "run".into(),
        json!({"created_at": "2026-12-01T10:00:00Z", "data_file": "train.csv", "threads": 2,
               "timings": {"read": 0.5, "train": 1.25}}),
    );
    c
}

#[test]
fn the_current_version_reads_and_writes_the_same_json() {
    assert_eq!(CARD_VERSION, 2);
    let text = serde_json::to_string(&v2_card()).unwrap();
    let card = ModelCard::from_json(&text).unwrap();
    assert_eq!(card.card_version, 2);
    assert_eq!(card.name, "gbdt");
    assert_eq!(card.best_iteration, Some(17));
    assert_eq!(card.score_quantiles, vec![0.1f32, 0.2, 0.3]);
    // written back: the same fields, the same nesting (existing files and tools keep working)
    let back: Value = serde_json::from_str(&card.to_json_pretty().unwrap()).unwrap();
    let mut want = v2_card();
    // f32 quantiles are written by their shortest f32 text
    want["score_quantiles"] = json!([0.1, 0.2, 0.3]);
    // a card written before `objective` existed reads as (and is written back as) binary
    want["objective"] = json!("binary");
    assert_eq!(back, want);
}

#[test]
fn a_version_1_card_is_upgraded_with_its_run_facts_moved() {
    let from_v1 = ModelCard::from_json(&v1_card().to_string()).unwrap();
    let from_v2 = ModelCard::from_json(&v2_card().to_string()).unwrap();
    assert_eq!(from_v1, from_v2);
    let run = from_v1.run.expect("run facts");
    assert_eq!(run.created_at, "2026-12-01T10:00:00Z");
    assert_eq!(run.data_file, "train.csv");
    assert_eq!(run.threads, 2);
    assert_eq!(run.timings.get("train"), Some(&1.25));
    // a version-1 card that lacks one of them is an error naming it, not a default
    let mut c = v1_card();
    c.as_object_mut().unwrap().remove("timings");
    let err = ModelCard::from_json(&c.to_string()).unwrap_err();
    assert!(err.to_string().contains("timings"), "{err}");
}

#[test]
fn the_card_in_the_model_file_has_no_run_facts() {
    let card = ModelCard::from_json(&v2_card().to_string()).unwrap();
    let inside = card.for_model_file();
    assert_eq!(inside.run, None);
    let json: Value = serde_json::from_str(&inside.to_json_pretty().unwrap()).unwrap();
    assert!(json.get("run").is_none(), "{json}");
    // and it reads back as a card without them
    assert_eq!(
        ModelCard::from_json(&inside.to_json_pretty().unwrap()).unwrap(),
        inside
    );
}

#[test]
fn a_version_1_card_written_before_fit_existed_reads_with_the_default() {
    let mut c = v1_card();
    c.as_object_mut().unwrap().remove("fit");
    let card = ModelCard::from_json(&c.to_string()).unwrap();
    assert_eq!(card.fit, cr_model::FitInfo::default());
}

#[test]
fn a_newer_version_is_a_clear_error() {
    let mut c = v1_card();
    c["card_version"] = json!(CARD_VERSION + 1);
    let err = ModelCard::from_json(&c.to_string()).unwrap_err();
    assert!(
        matches!(err, ModelError::NewerCard { found, supported } if found == CARD_VERSION + 1 && supported == CARD_VERSION),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("card_version {}", CARD_VERSION + 1))
            && text.contains("newer customs-risk"),
        "{text}"
    );
}

#[test]
fn a_card_without_a_version_is_refused() {
    let mut c = v1_card();
    c.as_object_mut().unwrap().remove("card_version");
    let err = ModelCard::from_json(&c.to_string()).unwrap_err();
    assert!(err.to_string().contains("no card_version"), "{err}");
    for bad in [json!(0), json!("1"), json!(-1), json!(1.5)] {
        c["card_version"] = bad.clone();
        assert!(
            matches!(
                ModelCard::from_json(&c.to_string()),
                Err(ModelError::CardVersion(_))
            ),
            "card_version {bad}"
        );
    }
    assert!(matches!(
        ModelCard::from_json("[1]"),
        Err(ModelError::CardVersion(_))
    ));
}

#[test]
fn a_missing_field_is_an_error_naming_it() {
    let mut c = v1_card();
    c.as_object_mut().unwrap().remove("score_quantiles");
    let err = ModelCard::from_json(&c.to_string()).unwrap_err();
    assert!(err.to_string().contains("score_quantiles"), "{err}");
    // the serde error is kept as the cause
    let source = err.source().expect("a cause");
    assert!(source.downcast_ref::<serde_json::Error>().is_some());
    assert!(ModelCard::from_json("{not json").is_err());
}

// The upgrade path, with made-up steps (version 1 is the first real one): version 1 renamed
// `a` to `b` in version 2; version 3 doubled `b`.
fn v1_to_v2(m: &mut Map<String, Value>) -> Result<(), ModelError> {
    let a = m.remove("a").unwrap_or(Value::Null);
    m.insert("b".into(), a);
    Ok(())
}
fn v2_to_v3(m: &mut Map<String, Value>) -> Result<(), ModelError> {
    let b = m
        .get("b")
        .and_then(Value::as_f64)
        .ok_or_else(|| ModelError::CardVersion("version 2 card without b".into()))?;
    m.insert("b".into(), json!(b * 2.0));
    Ok(())
}
const STEPS: &[Upgrade] = &[v1_to_v2, v2_to_v3];

#[test]
fn older_versions_are_upgraded_step_by_step() {
    let mut old: Map<String, Value> = json!({"card_version": 1, "a": 2.0})
        .as_object()
        .unwrap()
        .clone();
    upgrade(&mut old, 1, 3, STEPS).unwrap();
    assert_eq!(Value::Object(old), json!({"card_version": 3, "b": 4.0}));
    let mut mid: Map<String, Value> = json!({"card_version": 2, "b": 5.0})
        .as_object()
        .unwrap()
        .clone();
    upgrade(&mut mid, 2, 3, STEPS).unwrap();
    assert_eq!(Value::Object(mid), json!({"card_version": 3, "b": 10.0}));
    let mut current: Map<String, Value> = json!({"card_version": 3, "b": 1.0})
        .as_object()
        .unwrap()
        .clone();
    upgrade(&mut current, 3, 3, STEPS).unwrap();
    assert_eq!(Value::Object(current), json!({"card_version": 3, "b": 1.0}));
    let mut newer = Map::new();
    assert!(matches!(
        upgrade(&mut newer, 4, 3, STEPS),
        Err(ModelError::NewerCard {
            found: 4,
            supported: 3
        })
    ));
    // a step that fails stops the upgrade with its error
    let mut broken: Map<String, Value> = json!({"card_version": 2}).as_object().unwrap().clone();
    assert!(upgrade(&mut broken, 2, 3, STEPS).is_err());
}

fn metadata(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn reference_comes_from_the_card_else_the_reference_key() {
    let card = v1_card().to_string();
    let r = reference_from_metadata(&metadata(&[(meta::CARD, card.clone())]))
        .unwrap()
        .unwrap();
    assert_eq!(
        r.as_slice(),
        &[f64::from(0.1f32), f64::from(0.2f32), f64::from(0.3f32)]
    );
    // the card wins over the key
    let both = metadata(&[
        (meta::CARD, card),
        (meta::REFERENCE_SCORES, "[5, 1]".into()),
    ]);
    assert_eq!(reference_from_metadata(&both).unwrap().unwrap(), r);
    let key_only = metadata(&[(meta::REFERENCE_SCORES, "[5, 1, 3]".into())]);
    assert_eq!(
        reference_from_metadata(&key_only)
            .unwrap()
            .unwrap()
            .as_slice(),
        &[1.0, 3.0, 5.0]
    );
    assert_eq!(reference_from_metadata(&BTreeMap::new()).unwrap(), None);
}

#[test]
fn an_unreadable_card_or_reference_is_an_error_not_no_reference() {
    let bad_card = metadata(&[(
        meta::CARD,
        r#"{"name": "m", "score_quantiles": [0.1]}"#.into(),
    )]);
    assert!(reference_from_metadata(&bad_card).is_err());
    let bad_ref = metadata(&[(meta::REFERENCE_SCORES, r#"[0.1, "x"]"#.into())]);
    let err = reference_from_metadata(&bad_ref).unwrap_err();
    assert!(
        err.to_string().contains("customs_risk.reference_scores"),
        "{err}"
    );
}
