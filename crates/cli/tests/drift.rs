//! Feature drift against the model card's reference, end to end through the binary: a model
//! evaluated on the very rows it was trained from sees no drift (first principles: the same
//! rows through the same transform give the same distribution, PSI 0).

mod common;

use common::{cli_ok, generate};

#[test]
fn no_feature_drifts_on_the_training_traffic_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "d.csv", 20_000, 5);
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/schemas/synthetic.toml"
    );
    let model = dir.path().join("m");
    cli_ok(
        dir.path(),
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--schema",
            schema,
            "--trees",
            "30",
            "--risk-min-count",
            "1",
            "--out",
            model.to_str().unwrap(),
            "--quiet",
        ],
    );
    let json = dir.path().join("e.json");
    cli_ok(
        dir.path(),
        &[
            "evaluate",
            "--model",
            dir.path().join("m.onnx").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--report",
            dir.path().join("e.html").to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--quiet",
        ],
    );
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let features = rep["drift"]["features"].as_array().expect("drift features");
    assert!(features.len() > 20, "{}", features.len());
    let mut drifted = Vec::new();
    for f in features {
        assert_eq!(f["n_actual"].as_u64(), Some(20_000), "{f}");
        let psi = f["psi"].as_f64().unwrap();
        // out-of-fold risk encodings as the reference gave PSI 0.3-7 here (office, tax type,
        // transport mode, ...): the learner's inputs, not what scoring computes
        if psi > 1e-9 {
            drifted.push(format!("{} {psi}", f["name"]));
        }
    }
    assert!(
        drifted.is_empty(),
        "drift on the training rows: {drifted:?}"
    );
}
