//! Models exported by onnxmltools (LightGBM, XGBoost) and skl2onnx (logistic regression
//! pipeline, linear regression, gradient boosting, random forest): native and ORT engines
//! against onnxruntime in Python, on every row.

use cr_infer::{Core, Engine, InputKind, LoadOptions, Model};

use crate::common::*;

#[test]
fn foreign_models_match_onnxruntime() {
    if !python_enabled() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run_python(&[&py_script("make_models.py"), d.to_str().expect("utf8"), "7"]);
    let manifest = std::fs::read_to_string(d.join("manifest.txt")).expect("manifest");
    let mut seen = 0;
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, n, f) = (
            parts[0],
            parts[1].parse::<usize>().unwrap(),
            parts[2].parse::<usize>().unwrap(),
        );
        let x = read_f32(&d.join(format!("{name}.x.bin")));
        let want = read_f32(&d.join(format!("{name}.ort.bin")));
        assert_eq!(x.len(), n * f);
        let path = d.join(format!("{name}.onnx"));

        let native = Model::load(
            &path,
            &LoadOptions {
                engine: Engine::Native,
                threads: 1,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: native load: {e}"));
        assert_eq!(native.engine_used(), Engine::Native);
        assert_eq!(
            native.input_kind(),
            &InputKind::Matrix {
                n_features: f,
                input_name: "input".into()
            }
        );
        let got_native = native.score_matrix(&x, n).expect("native score");
        let d_native = max_abs_diff(&got_native, &want);

        let ort = Model::load(
            &path,
            &LoadOptions {
                engine: Engine::Ort,
                threads: 2,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: ort load: {e}"));
        assert_eq!(ort.engine_used(), Engine::Ort);
        let got_ort = ort.score_matrix(&x, n).expect("ort score");
        let d_ort = max_abs_diff(&got_ort, &want);

        let auto = Model::load(&path, &LoadOptions::default()).expect("auto");
        assert_eq!(
            auto.engine_used(),
            Engine::Native,
            "{name}: Auto picks native for supported graphs"
        );
        let multi = Model::load(
            &path,
            &LoadOptions {
                engine: Engine::Native,
                threads: 3,
            },
        )
        .expect("native x3");
        let got_multi = multi.score_matrix(&x, n).expect("native x3 score");
        assert!(
            got_multi
                .iter()
                .zip(&got_native)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: thread count changed scores"
        );

        let bit_exact = got_native
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() == b.to_bits())
            .count();
        eprintln!("{name}: native max|diff| {d_native:.3e} ({bit_exact}/{n} bit-exact), ort max|diff| {d_ort:.3e}");
        assert!(
            d_native <= 1e-6,
            "{name}: native differs from onnxruntime by {d_native}"
        );
        assert!(
            d_ort <= 1e-6,
            "{name}: ort engine differs from onnxruntime by {d_ort}"
        );
        if let Some(s) = native.native_scorer() {
            if let Core::Trees(t) = s.core() {
                assert!(t.n_trees() > 0);
                // tree models with f32 thresholds: every row bit-identical to ORT
                assert_eq!(bit_exact, n, "{name}: tree scores are not bit-exact");
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 7);
}
