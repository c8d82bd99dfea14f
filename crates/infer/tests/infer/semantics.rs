//! Named cases of ONNX Runtime semantics the native engine reproduces, each checked against
//! ONNX Runtime (run in-process through the ORT engine), plus engine selection and errors.

use cr_infer::{Engine, InferError, InputColumn, LoadOptions, Model};
use cr_onnx::{attr, tensor, Dim, ElemType, GraphBuilder, ModelBuilder};
use rand::{Rng, SeedableRng};

use crate::common::max_abs_diff;
use crate::gen::{Config, Head};
use crate::random_ensembles::native_vs_ort;

fn cfg(head: Head, modes: &[&'static str], post: &'static str, aggregate: &'static str) -> Config {
    Config {
        head,
        n_trees: 20,
        max_depth: 6,
        n_features: 5,
        modes: modes.to_vec(),
        post,
        aggregate,
        missing_prob: 0.5,
    }
}

#[test]
fn binary_classifier_quirks_match_ort() {
    for classes in 0..3u8 {
        for n_base in 0..3 {
            for positive in [false, true] {
                for post in ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"] {
                    let c = cfg(
                        Head::Binary {
                            classes,
                            n_base,
                            positive,
                        },
                        &["BRANCH_LEQ"],
                        post,
                        "SUM",
                    );
                    if classes == 0 && n_base != 2 && post == "PROBIT" {
                        let m = crate::gen::ensemble_model(1, &c);
                        let e = Model::from_proto(
                            &m,
                            &LoadOptions {
                                engine: Engine::Native,
                                threads: 1,
                            },
                        )
                        .unwrap_err();
                        assert!(matches!(e, InferError::Unsupported { .. }), "{e}");
                        continue;
                    }
                    let d = native_vs_ort(11 + u64::from(classes) * 7 + n_base as u64, &c, 300);
                    assert!(d <= 1e-6, "{c:?}: {d}");
                }
            }
        }
    }
}

#[test]
fn regressor_aggregates_and_modes_match_ort() {
    for aggregate in ["SUM", "AVERAGE", "MIN", "MAX"] {
        for (k, modes) in [
            vec!["BRANCH_LT"],
            vec!["BRANCH_GTE"],
            vec!["BRANCH_GT", "BRANCH_LEQ"],
            vec!["BRANCH_EQ", "BRANCH_NEQ", "BRANCH_LEQ"],
        ]
        .into_iter()
        .enumerate()
        {
            for (n_targets, n_base) in [(1, 0), (1, 1), (2, 2)] {
                let c = cfg(
                    Head::Regressor { n_targets, n_base },
                    &modes,
                    "NONE",
                    aggregate,
                );
                let d = native_vs_ort(100 + k as u64, &c, 257);
                assert!(d <= 1e-6, "{c:?}: {d}");
            }
        }
    }
}

/// x [N,3] -> MatMul(W) -> Add(b) -> Sigmoid: a plain logistic-regression graph.
fn logistic_graph(gemm: bool) -> cr_onnx::proto::ModelProto {
    let mut g = GraphBuilder::new("logit");
    g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(3)]);
    if gemm {
        g.add_initializer(tensor::f32("w", &[1, 3], &[0.5, -1.25, 2.0]));
        g.add_initializer(tensor::f32("b", &[1], &[0.1]));
        g.add_node(
            "Gemm",
            "",
            &["x", "w", "b"],
            &["z"],
            vec![attr::int("transB", 1)],
        );
    } else {
        g.add_initializer(tensor::f32("w", &[3, 1], &[0.5, -1.25, 2.0]));
        g.add_initializer(tensor::f32("b", &[1], &[0.1]));
        g.add_node("MatMul", "", &["x", "w"], &["xw"], vec![]);
        g.add_node("Add", "", &["xw", "b"], &["z"], vec![]);
    }
    g.add_node("Sigmoid", "", &["z"], &["p"], vec![]);
    g.add_output("p", ElemType::F32, &[Dim::batch(), Dim::Known(1)]);
    ModelBuilder::new(g.build())
        .metadata("customs_risk.kind", "logit")
        .build()
}

#[test]
fn matmul_and_gemm_logistic_graphs_are_native_and_match() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n = 500;
    let x: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-4.0f32..4.0)).collect();
    for gemm in [false, true] {
        let m = logistic_graph(gemm);
        let native = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Auto,
                threads: 2,
            },
        )
        .expect("native");
        assert_eq!(native.engine_used(), Engine::Native);
        assert_eq!(
            native
                .metadata()
                .get("customs_risk.kind")
                .map(String::as_str),
            Some("logit")
        );
        let ort = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Ort,
                threads: 1,
            },
        )
        .expect("ort");
        let (a, b) = (
            native.score_matrix(&x, n).unwrap(),
            ort.score_matrix(&x, n).unwrap(),
        );
        let d = max_abs_diff(&a, &b);
        assert!(d <= 1e-6, "gemm={gemm}: {d}");
        // first principles: sigmoid(0.5 x0 - 1.25 x1 + 2 x2 + 0.1)
        for r in 0..n {
            let z = 0.5 * x[3 * r] as f64 - 1.25 * x[3 * r + 1] as f64
                + 2.0 * x[3 * r + 2] as f64
                + 0.1;
            assert!((a[r] as f64 - 1.0 / (1.0 + (-z).exp())).abs() < 1e-5);
        }
    }
}

/// Scaler + Imputer + one-row LinearClassifier (ORT writes [1 - s, s] with the raw margin).
#[test]
fn linear_classifier_pipeline_matches_ort() {
    let mut g = GraphBuilder::new("lin");
    g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
    g.add_node(
        "Imputer",
        "ai.onnx.ml",
        &["x"],
        &["xi"],
        vec![
            attr::floats("imputed_value_floats", vec![0.5, -1.0]),
            attr::float("replaced_value_float", f32::NAN),
        ],
    );
    g.add_node(
        "Scaler",
        "ai.onnx.ml",
        &["xi"],
        &["xs"],
        vec![
            attr::floats("offset", vec![0.25, -0.5]),
            attr::floats("scale", vec![2.0, 0.5]),
        ],
    );
    for (rows, name) in [(1usize, "one_row"), (2, "two_rows")] {
        let mut g = g.clone();
        let coef: Vec<f32> = if rows == 1 {
            vec![0.7, -0.3]
        } else {
            vec![-0.7, 0.3, 0.7, -0.3]
        };
        let icp: Vec<f32> = if rows == 1 {
            vec![0.05]
        } else {
            vec![-0.05, 0.05]
        };
        g.add_node(
            "LinearClassifier",
            "ai.onnx.ml",
            &["xs"],
            &["label", "probabilities"],
            vec![
                attr::floats("coefficients", coef),
                attr::floats("intercepts", icp),
                attr::ints("classlabels_ints", vec![0, 1]),
                attr::string("post_transform", "LOGISTIC"),
            ],
        );
        g.add_node(
            "ZipMap",
            "ai.onnx.ml",
            &["probabilities"],
            &["output_probability"],
            vec![attr::ints("classlabels_int64s", vec![0, 1])],
        );
        g.add_output("label", ElemType::I64, &[Dim::batch()]);
        // ZipMap's output is a sequence of maps; declare it as the converters do.
        let mut out = cr_onnx::builder::value_info("output_probability", ElemType::F32, &[]);
        out.r#type = Some(cr_onnx::proto::TypeProto {
            denotation: None,
            value: Some(cr_onnx::proto::type_proto::Value::SequenceType(Box::new(
                cr_onnx::proto::type_proto::Sequence {
                    elem_type: Some(Box::new(cr_onnx::proto::TypeProto {
                        denotation: None,
                        value: Some(cr_onnx::proto::type_proto::Value::MapType(Box::new(
                            cr_onnx::proto::type_proto::Map {
                                key_type: Some(7),
                                value_type: Some(Box::new(cr_onnx::proto::TypeProto {
                                    denotation: None,
                                    value: Some(cr_onnx::proto::type_proto::Value::TensorType(
                                        cr_onnx::proto::type_proto::Tensor {
                                            elem_type: Some(1),
                                            shape: None,
                                        },
                                    )),
                                })),
                            },
                        ))),
                    })),
                },
            ))),
        });
        let mut graph = g.build();
        graph.output.push(out);
        let m = ModelBuilder::new(graph).build();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = 300;
        let x: Vec<f32> = (0..n * 2)
            .map(|_| {
                if rng.random_bool(0.1) {
                    f32::NAN
                } else {
                    rng.random_range(-3.0f32..3.0)
                }
            })
            .collect();
        let native = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Native,
                threads: 1,
            },
        )
        .expect("native");
        let ort = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Ort,
                threads: 1,
            },
        )
        .expect("ort");
        let (a, b) = (
            native.score_matrix(&x, n).unwrap(),
            ort.score_matrix(&x, n).unwrap(),
        );
        let d = max_abs_diff(&a, &b);
        assert!(d <= 1e-6, "{name}: {d}");
    }
}

/// A raw-field model (named string / int / float inputs) runs on ORT; `Native` refuses it
/// with a hint; inputs are checked.
#[test]
fn named_column_models_use_ort_and_check_inputs() {
    let mut g = GraphBuilder::new("raw");
    g.add_input("country", ElemType::Str, &[Dim::batch(), Dim::Known(1)]);
    g.add_input("hs", ElemType::I64, &[Dim::batch(), Dim::Known(1)]);
    g.add_input("value", ElemType::F32, &[Dim::batch(), Dim::Known(1)]);
    g.add_node(
        "LabelEncoder",
        "ai.onnx.ml",
        &["country"],
        &["c_code"],
        vec![
            attr::strings("keys_strings", &["CN", "DE"]),
            attr::floats("values_floats", vec![1.0, 2.0]),
            attr::float("default_float", 0.0),
        ],
    );
    g.add_node("Cast", "", &["hs"], &["hs_f"], vec![attr::int("to", 1)]);
    g.add_node(
        "Concat",
        "",
        &["c_code", "hs_f", "value"],
        &["feats"],
        vec![attr::int("axis", 1)],
    );
    g.add_initializer(tensor::f32("w", &[3, 1], &[1.0, 0.001, 0.5]));
    g.add_node("MatMul", "", &["feats", "w"], &["score"], vec![]);
    g.add_output("score", ElemType::F32, &[Dim::batch(), Dim::Known(1)]);
    let m = ModelBuilder::new(g.build())
        .opset("ai.onnx.ml", 4)
        .metadata(cr_model::meta::PIPELINE, "{}")
        .build();

    let err = Model::from_proto(
        &m,
        &LoadOptions {
            engine: Engine::Native,
            threads: 1,
        },
    )
    .unwrap_err();
    assert!(matches!(err, InferError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("DeclarationModel"), "{err}");

    let model = Model::from_proto(
        &m,
        &LoadOptions {
            engine: Engine::Auto,
            threads: 2,
        },
    )
    .expect("auto -> ort");
    assert_eq!(model.engine_used(), Engine::Ort);
    let cols = vec![
        (
            "country".to_string(),
            InputColumn::Str(vec!["DE".into(), "XX".into(), "CN".into()]),
        ),
        ("hs".to_string(), InputColumn::I64(vec![1000, 2000, 0])),
        ("value".to_string(), InputColumn::F32(vec![2.0, -4.0, 0.0])),
    ];
    let s = model.score_columns(&cols, 3).expect("scores");
    let want = [2.0 + 1.0 + 1.0, 0.0 + 2.0 - 2.0, 1.0];
    for (a, b) in s.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{s:?}");
    }
    let err = model.score_columns(&cols[..2], 3).unwrap_err();
    assert!(err.to_string().contains("value"), "{err}");
    let err = model.score_columns(&cols, 4).unwrap_err();
    assert!(matches!(err, InferError::Input { .. }), "{err}");
}

#[test]
fn matrix_models_accept_named_columns_with_feature_names() {
    let m = logistic_graph(false);
    let model = Model::from_proto(&m, &LoadOptions::default()).unwrap();
    assert!(model.score_columns(&[], 0).is_err());
    let model = model
        .with_feature_names(vec!["a".into(), "b".into(), "c".into()])
        .unwrap();
    let cols = vec![
        ("c".to_string(), InputColumn::F32(vec![1.0, 0.0])),
        ("a".to_string(), InputColumn::F32(vec![2.0, 0.0])),
        ("b".to_string(), InputColumn::I64(vec![0, 1])),
    ];
    let s = model.score_columns(&cols, 2).unwrap();
    let x = [2.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
    assert_eq!(s, model.score_matrix(&x, 2).unwrap());
    assert!(model.score_matrix(&x[..5], 2).is_err());
}

/// Without ONNX Runtime (ORT_DYLIB_PATH unset), native graphs still load and score, and an
/// unsupported graph's error says how to install ORT. Runs itself in a child process.
#[test]
fn without_onnx_runtime_native_still_works() {
    if std::env::var("CR_INFER_NO_ORT_CHILD").is_ok() {
        let m = logistic_graph(false);
        let model = Model::from_proto(&m, &LoadOptions::default()).expect("native without ORT");
        assert_eq!(model.engine_used(), Engine::Native);
        assert_eq!(model.score_matrix(&[0.0, 0.0, 0.0], 1).unwrap().len(), 1);
        let mut g = GraphBuilder::new("relu");
        g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
        g.add_node("Relu", "", &["x"], &["y"], vec![]);
        g.add_output("y", ElemType::F32, &[Dim::batch(), Dim::Known(2)]);
        let err = Model::from_proto(
            &ModelBuilder::new(g.build()).build(),
            &LoadOptions::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("scripts/setup-ort.sh") && msg.contains("ORT_DYLIB_PATH"),
            "{msg}"
        );
        let err = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Ort,
                threads: 1,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("setup-ort.sh"), "{err}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "semantics::without_onnx_runtime_native_still_works",
            "--nocapture",
        ])
        .env_remove("ORT_DYLIB_PATH")
        .env("CR_INFER_NO_ORT_CHILD", "1")
        .output()
        .expect("child runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
