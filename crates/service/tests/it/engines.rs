//! The cr-infer backed scorer: native and ONNX Runtime engines agree with the Python ONNX
//! Runtime reference; bad models are refused at load.

use cr_infer::Engine;
use cr_service::infer::InferScorer;
use cr_service::RiskScorer;

use crate::support::{assert_score, models};

#[test]
fn native_and_onnxruntime_engines_match_the_reference() {
    let m = models();
    let auto = InferScorer::load(&m.a.path, Engine::Auto).expect("load auto");
    assert_eq!(auto.engine(), Engine::Native);
    let ort = InferScorer::load(&m.a.path, Engine::Ort).expect("load ort");
    assert_eq!(ort.engine(), Engine::Ort);
    for scorer in [&auto, &ort] {
        let scored = scorer.score(&m.a.decls).expect("score");
        assert_eq!(scored.len(), m.a.decls.len());
        for (s, d) in scored.iter().zip(&m.a.decls) {
            assert_eq!(s.id, d["decl_id"].as_str().unwrap());
            assert_score("a", &s.id, f64::from(s.score));
        }
    }
    assert!(auto.metadata().contains_key(cr_model::meta::CARD));
    assert_eq!(auto.schema().id, "decl_id");
}

#[test]
fn models_without_our_pipeline_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A valid ONNX model (the generated one) stripped of its pipeline metadata.
    let mut proto = cr_onnx::load_model(&models().a.path).unwrap();
    proto
        .metadata_props
        .retain(|p| p.key() != cr_model::meta::PIPELINE);
    let path = dir.path().join("plain.onnx");
    cr_onnx::save_model(&path, &proto).unwrap();
    let err = InferScorer::load(&path, Engine::Auto).unwrap_err();
    assert!(err.to_string().contains("customs_risk.pipeline"), "{err}");
}

#[test]
fn a_load_failure_keeps_its_cause() {
    use cr_service::ModelLoader;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    let err = match cr_service::InferLoader::default().load(&missing) {
        Ok(_) => panic!("a missing file loaded"),
        Err(e) => e,
    };
    // the io::Error is in the chain, not flattened into text
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    let mut found = None;
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            found = Some(io.kind());
        }
        cause = c.source();
    }
    assert_eq!(found, Some(std::io::ErrorKind::NotFound), "{err}");
}
