//! Builder -> file -> `onnx.checker` + ONNX Runtime (Python) -> first-principles values.

use std::process::Command;

use cr_onnx::{attr, tensor, Attrs, Dim, ElemType, GraphBuilder, ModelBuilder};

/// Python must have `onnx` and `onnxruntime`; set CR_SKIP_PYTHON_TESTS=1 to skip on machines
/// without them (the default is to fail loudly).
fn python(script: &str, args: &[&str]) -> Option<String> {
    if std::env::var("CR_SKIP_PYTHON_TESTS").as_deref() == Ok("1") {
        return None;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// x (N,2) -> x + [1, 0] -> 2-tree TreeEnsembleClassifier with explicit weights for both
/// classes, post_transform NONE, so probabilities are plain leaf sums.
fn tiny_model() -> cr_onnx::proto::ModelProto {
    let mut g = GraphBuilder::new("tiny");
    g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
    g.add_initializer(tensor::f32("shift", &[1, 2], &[1.0, 0.0]));
    let xs = g.unique_name("x_shifted");
    g.add_node("Add", "", &["x", "shift"], &[&xs], vec![]);
    // tree 0: xs0 <= 1.5 ? leaf1 : leaf2; tree 1: xs1 < 0 ? leaf1 : leaf2
    let attrs = vec![
        attr::ints("classlabels_int64s", vec![0, 1]),
        attr::ints("nodes_treeids", vec![0, 0, 0, 1, 1, 1]),
        attr::ints("nodes_nodeids", vec![0, 1, 2, 0, 1, 2]),
        attr::ints("nodes_featureids", vec![0, 0, 0, 1, 0, 0]),
        attr::floats("nodes_values", vec![1.5, 0.0, 0.0, 0.0, 0.0, 0.0]),
        attr::strings(
            "nodes_modes",
            &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
        ),
        attr::ints("nodes_truenodeids", vec![1, 0, 0, 1, 0, 0]),
        attr::ints("nodes_falsenodeids", vec![2, 0, 0, 2, 0, 0]),
        attr::ints("class_treeids", vec![0, 0, 0, 0, 1, 1, 1, 1]),
        attr::ints("class_nodeids", vec![1, 1, 2, 2, 1, 1, 2, 2]),
        attr::ints("class_ids", vec![0, 1, 0, 1, 0, 1, 0, 1]),
        attr::floats(
            "class_weights",
            vec![0.7, 0.1, 0.2, 0.6, 0.05, 0.3, 0.25, 0.0],
        ),
        attr::string("post_transform", "NONE"),
    ];
    let node = g.add_node(
        "TreeEnsembleClassifier",
        "ai.onnx.ml",
        &[&xs],
        &["label", "probabilities"],
        attrs,
    );
    assert!(node.starts_with("TreeEnsembleClassifier"));
    g.add_output("label", ElemType::I64, &[Dim::batch()]);
    g.add_output(
        "probabilities",
        ElemType::F32,
        &[Dim::batch(), Dim::Known(2)],
    );
    ModelBuilder::new(g.build())
        .metadata("customs_risk.test", "hello")
        .metadata("k2", "v2")
        .build()
}

#[test]
fn unique_names_and_attrs() {
    let mut g = GraphBuilder::new("g");
    g.add_input("x", ElemType::F32, &[Dim::batch()]);
    assert_eq!(g.unique_name("x"), "x_1");
    assert_eq!(g.unique_name("y"), "y");
    assert_eq!(g.unique_name("y"), "y_2");
    let a = g.add_node("Relu", "", &["x"], &["r"], vec![]);
    let b = g.add_node("Relu", "", &["r"], &["r2"], vec![]);
    assert_ne!(a, b);
    let model = tiny_model();
    let graph = model.graph.as_ref().expect("graph");
    let trees = cr_onnx::find_nodes(graph, "TreeEnsembleClassifier");
    assert_eq!(trees.len(), 1);
    let at = Attrs::new(trees[0]);
    assert_eq!(at.ints("class_ids").unwrap().len(), 8);
    assert_eq!(at.string("post_transform").unwrap(), "NONE");
    assert_eq!(at.strings("nodes_modes").unwrap()[0], "BRANCH_LEQ");
    let err = at.floats("nodes_modes").unwrap_err().to_string();
    assert!(
        err.contains("nodes_modes") && err.contains("STRINGS"),
        "{err}"
    );
    let err = at.int("base_values").unwrap_err().to_string();
    assert!(err.contains("missing attribute \"base_values\""), "{err}");
    assert_eq!(cr_onnx::opset_version(&model, "ai.onnx.ml"), Some(3));
    assert_eq!(cr_onnx::opset_version(&model, "ai.onnx"), Some(21));
    assert_eq!(
        cr_onnx::metadata_map(&model).get("k2").map(String::as_str),
        Some("v2")
    );
    assert_eq!(model.producer_name(), "customs-risk");
}

#[test]
fn tensor_readers_accept_raw_data() {
    let mut t = tensor::f32("w", &[2], &[]);
    t.raw_data = Some([1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat());
    assert_eq!(cr_onnx::tensor_f32(&t).unwrap(), vec![1.5, -2.0]);
    let d = tensor::f64("d", &[1], &[0.1]);
    assert_eq!(cr_onnx::tensor_f32(&d).unwrap(), vec![0.1f64 as f32]);
    assert!(cr_onnx::tensor_i64(&d).is_err());
    let s = tensor::strings("s", &[2], &["a", "b"]);
    assert_eq!(cr_onnx::tensor_strings(&s).unwrap(), vec!["a", "b"]);
}

#[test]
fn saved_model_passes_checker_and_scores_in_onnxruntime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.onnx");
    let model = tiny_model();
    cr_onnx::save_model(&path, &model).expect("save");
    assert_eq!(cr_onnx::load_model(&path).expect("load"), model);

    // rows: x0 (shifted by +1), x1
    let rows: [[f32; 2]; 5] = [
        [0.0, -1.0],
        [0.5, 0.0],
        [1.0, -0.5],
        [-3.0, 2.0],
        [0.6, 1.0],
    ];
    let flat: Vec<String> = rows.iter().flatten().map(|v| v.to_string()).collect();
    let script = r#"
import sys, onnx, numpy as np, onnxruntime as ort
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.array([float(v) for v in sys.argv[2:]], dtype=np.float32).reshape(-1, 2)
label, prob = s.run(None, {"x": x})
meta = s.get_modelmeta().custom_metadata_map
print(meta["customs_risk.test"])
for l, p in zip(label, prob): print(int(l), repr(float(p[0])), repr(float(p[1])))
"#;
    let mut args = vec![path.to_str().expect("utf8 path")];
    args.extend(flat.iter().map(String::as_str));
    let Some(out) = python(script, &args) else {
        return;
    };
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello"));
    for (row, line) in rows.iter().zip(lines) {
        // first principles
        let xs0 = row[0] + 1.0;
        let (a0, a1) = if xs0 <= 1.5 {
            (0.7f32, 0.1f32)
        } else {
            (0.2, 0.6)
        };
        let (b0, b1) = if row[1] < 0.0 {
            (0.05f32, 0.3f32)
        } else {
            (0.25, 0.0)
        };
        let (p0, p1) = (a0 + b0, a1 + b1);
        let f: Vec<f64> = line
            .split_whitespace()
            .map(|v| v.parse().expect("number"))
            .collect();
        // ORT's binary classifier label is "positive score > 0" (TreeAggregatorClassifier::
        // _set_score_binary), not the argmax.
        assert_eq!(
            f[0] as i64,
            if p1 > 0.0 { 1 } else { 0 },
            "label of {row:?}"
        );
        assert!(
            (f[1] - p0 as f64).abs() < 1e-6 && (f[2] - p1 as f64).abs() < 1e-6,
            "{row:?}: {line}"
        );
    }
}
