//! Exact TreeSHAP from ONNX files against the original libraries: LightGBM `pred_contrib`,
//! XGBoost `pred_contribs` and `shap.TreeExplainer` (scikit-learn GradientBoosting), on
//! models converted by onnxmltools / skl2onnx, with the covers recomputed from the training
//! data (`--reference`), on 10k rows with NaN, all-NaN rows and values at split thresholds.

use cr_infer::shap::{CoverOrigin, Explainer, Reference};
use cr_infer::{Engine, LoadOptions, Model};

use crate::common::*;

fn read_f64(path: &std::path::Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

#[test]
fn tree_shap_matches_lightgbm_xgboost_and_shap() {
    if !python_enabled() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run_python(&[&py_script("shap_refs.py"), d.to_str().expect("utf8"), "1"]);
    let manifest = std::fs::read_to_string(d.join("manifest.txt")).expect("manifest");
    let mut seen = Vec::new();
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let p: Vec<&str> = line.split_whitespace().collect();
        let name = p[0];
        let (n_train, n, f): (usize, usize, usize) = (
            p[1].parse().unwrap(),
            p[2].parse().unwrap(),
            p[3].parse().unwrap(),
        );
        let train = read_f32(&d.join(format!("{name}.train.bin")));
        let x = read_f32(&d.join(format!("{name}.x.bin")));
        let want = read_f64(&d.join(format!("{name}.phi.bin")));
        let margin = read_f64(&d.join(format!("{name}.margin.bin")));
        assert_eq!(
            (train.len(), x.len(), want.len()),
            (n_train * f, n * f, n * (f + 1))
        );
        let model = Model::load(
            d.join(format!("{name}.onnx")),
            &LoadOptions {
                engine: Engine::Native,
                threads: 2,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));

        // Converters write no covers: without a reference the error says what to pass.
        let err = Explainer::for_model(&model, None).expect_err("no covers");
        assert!(err.to_string().contains("--reference"), "{name}: {err}");

        let ex = Explainer::for_model(
            &model,
            Some(Reference {
                x: &train,
                n_rows: n_train,
            }),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ex.cover_origin(), CoverOrigin::Reference { rows: n_train });
        assert_eq!(
            ex.tabulated_trees().0,
            ex.tabulated_trees().1,
            "{name}: all tabulated"
        );
        let phi = ex.explain_rows(&x, n).expect("explain");
        // the recursion (no tables) gives the same values to f64 rounding
        let plain = Explainer::with_table_limit(
            model.native_scorer().expect("native"),
            Some(Reference {
                x: &train,
                n_rows: n_train,
            }),
            0,
        )
        .expect("plain");
        assert_eq!(plain.tabulated_trees().0, 0);
        // (on the first 2,000 rows: the recursion is the slow path)
        let m = n.min(2000);
        let phi0 = plain.explain_rows(&x[..m * f], m).expect("explain");
        let dmax = phi
            .iter()
            .zip(&phi0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(dmax < 1e-10, "{name}: tables vs recursion {dmax:e}");
        let scores = model.score_matrix(&x, n).expect("score");
        let mut worst = (0.0f64, 0usize, 0usize);
        let mut worst_bias = 0.0f64;
        for r in 0..n {
            let w = &want[r * (f + 1)..(r + 1) * (f + 1)];
            let g = &phi[r * f..(r + 1) * f];
            for j in 0..f {
                let dv = (g[j] - w[j]).abs();
                if dv > worst.0 {
                    worst = (dv, r, j);
                }
            }
            worst_bias = worst_bias.max((ex.bias() - w[f]).abs());
            // local accuracy: bias + Σφ is the margin the library computes, and the engine's
            // score is its sigmoid (classifiers) or itself (regressors)
            let total = ex.bias() + g.iter().sum::<f64>();
            assert!(
                (total - margin[r]).abs() < 1e-5,
                "{name} row {r}: {total} vs library margin {}",
                margin[r]
            );
            let s = if name.contains("reg") {
                total
            } else {
                1.0 / (1.0 + (-total).exp())
            };
            assert!(
                (s - f64::from(scores[r])).abs() < 2e-6 * s.abs().max(1.0),
                "{name} row {r}: score {} vs explained {s}",
                scores[r]
            );
        }
        assert!(
            worst.0 < 1e-6 && worst_bias < 1e-6,
            "{name}: max |Δφ| = {:e} at row {} feature {} (bias Δ {worst_bias:e})",
            worst.0,
            worst.1,
            worst.2
        );
        eprintln!(
            "{name}: {n} rows, max |Δφ| = {:e}, |Δbias| = {worst_bias:e}",
            worst.0
        );
        seen.push(name.to_string());
    }
    assert_eq!(seen, ["lgbm_binary", "lgbm_reg", "xgb_reg", "sklearn_gb"]);
}

#[test]
fn graphs_that_are_not_trees_or_linear_get_a_clear_error() {
    // An MLP (MatMul -> Relu -> MatMul) compiles neither natively nor for explanations.
    use cr_onnx::{tensor, Dim, ElemType, GraphBuilder, ModelBuilder};
    let mut g = GraphBuilder::new("mlp");
    g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
    g.add_initializer(tensor::f32("w1", &[2, 2], &[1.0, -1.0, 0.5, 2.0]));
    g.add_initializer(tensor::f32("w2", &[2, 1], &[1.0, 1.0]));
    g.add_node("MatMul", "", &["x", "w1"], &["h"], vec![]);
    g.add_node("Relu", "", &["h"], &["r"], vec![]);
    g.add_node("MatMul", "", &["r", "w2"], &["score"], vec![]);
    g.add_output("score", ElemType::F32, &[Dim::batch(), Dim::Known(1)]);
    let proto = ModelBuilder::new(g.build()).build();
    let err = Explainer::for_proto(&proto, None, None).expect_err("an MLP is not explainable");
    let msg = err.to_string();
    assert!(
        msg.contains("tree ensembles") && msg.contains("linear models"),
        "{msg}"
    );
}
