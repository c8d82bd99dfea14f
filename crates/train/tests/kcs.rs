//! On the public KCS synthetic dataset (train 2020, test 2021-Q2), our pipeline + GBDT reach a
//! test ROC-AUC within 0.01 of LightGBM trained by Python on the same features with matched
//! parameters.

use std::path::{Path, PathBuf};
use std::process::Command;

use cr_data::{read_all, ReadOptions, Schema};
use cr_gbdt::GbdtParams;

fn shared(file: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/customs-import-declarations")
        .join(file);
    assert!(
        p.is_file(),
        "{} is missing: the KCS dataset must sit in ../shared beside the checkout",
        p.display()
    );
    p
}

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn kcs_auc_matches_lightgbm() {
    let schema = Schema::from_path(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/schemas/kcs.toml"),
    )
    .unwrap();
    let opts = ReadOptions::default();
    let (train, _) = read_all(&shared("df_syn_train_eng.csv"), &schema, &opts).unwrap();
    let (test, _) = read_all(&shared("df_syn_test_eng.csv"), &schema, &opts).unwrap();
    let (pipeline, oof) =
        cr_features::fit(&schema, &train, &cr_features::PipelineConfig::default()).unwrap();
    let xte = pipeline.transform(&test).unwrap();
    let ytr: Vec<f32> = train
        .label
        .iter()
        .map(|l| f32::from(u8::from(*l == Some(true))))
        .collect();
    let yte: Vec<f32> = test
        .label
        .iter()
        .map(|l| f32::from(u8::from(*l == Some(true))))
        .collect();
    let params = GbdtParams::default()
        .num_trees(200)
        .num_leaves(31)
        .learning_rate(0.05)
        .max_bin(255)
        .min_data_in_leaf(20)
        .seed(0);
    let x = ndarray::ArrayView2::from_shape((oof.n_rows, oof.n_cols), &oof.data).unwrap();
    let model = cr_gbdt::train(&params, x, &ytr, None, None, None).unwrap();
    let xt = ndarray::ArrayView2::from_shape((xte.n_rows, xte.n_cols), &xte.data).unwrap();
    let ours = model.predict_proba(xt).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("xtr.bin"), &oof.data);
    write_f32(&d.join("ytr.bin"), &ytr);
    write_f32(&d.join("xte.bin"), &xte.data);
    write_f32(&d.join("yte.bin"), &yte);
    std::fs::write(
        d.join("ours.txt"),
        ours.iter()
            .map(|v| format!("{v:.17e}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let meta = serde_json::json!({ "n_features": oof.n_cols, "params": params });
    std::fs::write(d.join("shape.json"), meta.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/lgb_reference.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(d)
        .output()
        .expect("python3 with lightgbm (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (ours_auc, lgb_auc) = (
        r["ours_auc"].as_f64().unwrap(),
        r["lightgbm_auc"].as_f64().unwrap(),
    );
    eprintln!("KCS test 2021-Q2: {r}");
    assert!(
        lgb_auc > 0.75,
        "LightGBM reference AUC {lgb_auc} is implausibly low: feature problem"
    );
    assert!(
        (ours_auc - lgb_auc).abs() <= 0.01,
        "ours {ours_auc:.4} vs LightGBM {lgb_auc:.4}"
    );
}
