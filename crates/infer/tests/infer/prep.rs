//! Element-wise preprocessing before the core (our logistic export's signed log, NaN
//! imputation and standardisation; skl2onnx's Scaler/Imputer): native against ONNX Runtime
//! (in-process, one intra-op thread) on edge values, bit for bit where ORT's arithmetic is
//! reproducible, plus the unsupported cases that must fall back.

use cr_infer::{Engine, InferError, LoadOptions, Model};
use cr_onnx::proto::{ModelProto, TensorProto};
use cr_onnx::{attr, tensor, Dim, ElemType, GraphBuilder, ModelBuilder};
use rand::{Rng, SeedableRng};

use crate::common::max_abs_diff;

/// Inputs covering NaN, ±0, ±inf, subnormals, the extremes and the `Log` range-reduction
/// boundary, then random values over every magnitude. The length is a multiple of 4 and
/// below ORT's chunk, so ORT's `Log` runs its vectorised path on every element.
fn edge_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut x = vec![
        f32::NAN,
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        1e-45,
        1e-40,
        -1e-40,
        1e30,
        -1e30,
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3.0,
        0.7,
        std::f32::consts::FRAC_1_SQRT_2,
        f32::from_bits(std::f32::consts::FRAC_1_SQRT_2.to_bits() + 1),
        1.000_000_1,
        0.999_999_94,
        f32::MIN_POSITIVE,
        0.3,
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    while x.len() < n {
        let mag = 10f32.powi(rng.random_range(-40..39));
        let v = rng.random_range(1.0f32..10.0) * mag;
        x.push(match rng.random_range(0..10) {
            0 => f32::NAN,
            1..=3 => -v,
            4 => rng.random_range(-3.0f32..3.0),
            _ => v,
        });
    }
    x
}

fn same(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn scalar(g: &mut GraphBuilder, v: f32) -> String {
    let n = g.unique_name("c");
    g.add_initializer(tensor::f32(&n, &[], &[v]));
    n
}

fn node(g: &mut GraphBuilder, op: &str, inputs: &[&str]) -> String {
    let out = g.unique_name(&op.to_ascii_lowercase());
    let domain = if matches!(op, "Scaler" | "Imputer") {
        "ai.onnx.ml"
    } else {
        ""
    };
    g.add_node(op, domain, inputs, &[&out], vec![]);
    out
}

fn to_float(g: &mut GraphBuilder, v: &str) -> String {
    let out = g.unique_name("cast");
    g.add_node("Cast", "", &[v], &[&out], vec![attr::int("to", 1)]);
    out
}

/// `x [N, 1] -> body -> Neg -> Neg -> MatMul([[1]])`: the score is the body's value itself.
/// (The `Neg`s keep ORT's MatMulScaleFusion from folding a scalar `Mul`/`Div` of the body
/// into the GEMM's alpha, which computes `x * (1 / c)` instead of `x / c`.)
fn one_feature_model(body: &dyn Fn(&mut GraphBuilder) -> String) -> ModelProto {
    let mut g = GraphBuilder::new("prep");
    g.add_input("x", ElemType::F32, &[Dim::batch(), Dim::Known(1)]);
    let y = body(&mut g);
    let y = node(&mut g, "Neg", &[&y]);
    let y = node(&mut g, "Neg", &[&y]);
    g.add_initializer(tensor::f32("w", &[1, 1], &[1.0]));
    g.add_node("MatMul", "", &[&y, "w"], &["score"], vec![]);
    g.add_output("score", ElemType::F32, &[Dim::batch(), Dim::Known(1)]);
    ModelBuilder::new(g.build()).opset("ai.onnx.ml", 3).build()
}

type Body = Box<dyn Fn(&mut GraphBuilder) -> String>;

fn cases() -> Vec<(&'static str, Body)> {
    let mut v: Vec<(&'static str, Body)> = Vec::new();
    for op in [
        "Neg",
        "Abs",
        "Sign",
        "Log",
        "Sqrt",
        "Reciprocal",
        "Floor",
        "Ceil",
    ] {
        v.push((op, Box::new(move |g| node(g, op, &["x"]))));
    }
    for op in ["Add", "Sub", "Mul", "Div"] {
        v.push((
            op,
            Box::new(move |g| {
                let c = scalar(g, 0.3);
                node(g, op, &["x", &c])
            }),
        ));
        v.push((
            op,
            Box::new(move |g| {
                let c = scalar(g, -2.5);
                node(g, op, &[&c, "x"])
            }),
        ));
    }
    v.push((
        "Mul(x, Abs x)",
        Box::new(|g| {
            let a = node(g, "Abs", &["x"]);
            node(g, "Mul", &["x", &a])
        }),
    ));
    for op in ["Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual"] {
        v.push((
            op,
            Box::new(move |g| {
                let c = scalar(g, if op == "Equal" { 0.0 } else { 0.5 });
                let b = node(g, op, &["x", &c]);
                to_float(g, &b)
            }),
        ));
    }
    for op in ["And", "Or", "Xor"] {
        v.push((
            op,
            Box::new(move |g| {
                let c = scalar(g, 1.0);
                let lt = node(g, "Less", &["x", &c]);
                let nan = node(g, "IsNaN", &["x"]);
                let not = node(g, "Not", &[&nan]);
                let b = node(g, op, &[&lt, &not]);
                to_float(g, &b)
            }),
        ));
    }
    v.push((
        "Where(IsNaN)",
        Box::new(|g| {
            let c = scalar(g, 4.0);
            let nan = node(g, "IsNaN", &["x"]);
            node(g, "Where", &[&nan, &c, "x"])
        }),
    ));
    v.push((
        "Where(Cast bool)",
        Box::new(|g| {
            let b = g.unique_name("b");
            g.add_node("Cast", "", &["x"], &[&b], vec![attr::int("to", 9)]);
            let (p, q) = (scalar(g, 1.5), scalar(g, -1.5));
            node(g, "Where", &[&b, &p, &q])
        }),
    ));
    v.push((
        "signed log",
        Box::new(|g| {
            // what crates/train/src/export/linear.rs writes for one log-transformed feature
            let one = scalar(g, 1.0);
            let sign = node(g, "Sign", &["x"]);
            let abs = node(g, "Abs", &["x"]);
            let a1 = node(g, "Add", &[&one, &abs]);
            let ln = node(g, "Log", &[&a1]);
            node(g, "Mul", &[&ln, &sign])
        }),
    ));
    for replaced in [f32::NAN, 0.0] {
        v.push((
            "Imputer+Scaler",
            Box::new(move |g| {
                let i = g.unique_name("imp");
                g.add_node(
                    "Imputer",
                    "ai.onnx.ml",
                    &["x"],
                    &[&i],
                    vec![
                        attr::floats("imputed_value_floats", vec![0.25]),
                        attr::float("replaced_value_float", replaced),
                    ],
                );
                let s = g.unique_name("sc");
                g.add_node(
                    "Scaler",
                    "ai.onnx.ml",
                    &[&i],
                    &[&s],
                    vec![
                        attr::floats("offset", vec![0.1]),
                        attr::floats("scale", vec![3.0]),
                    ],
                );
                s
            }),
        ));
    }
    v
}

#[test]
fn elementwise_ops_match_ort_bit_for_bit() {
    let n = 4096;
    let x = edge_inputs(n, 5);
    for (name, body) in cases() {
        let m = one_feature_model(&*body);
        let native = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Auto,
                threads: 1,
            },
        )
        .expect("native");
        assert_eq!(native.engine_used(), Engine::Native, "{name}");
        let ort = Model::from_proto(
            &m,
            &LoadOptions {
                engine: Engine::Ort,
                threads: 1,
            },
        )
        .expect("ort");
        let (a, b) = (
            native.score_matrix(&x, n).expect("native"),
            ort.score_matrix(&x, n).expect("ort"),
        );
        let bad: Vec<_> = (0..n)
            .filter(|&i| !same(a[i], b[i]))
            .map(|i| (x[i], a[i], b[i]))
            .take(5)
            .collect();
        assert!(bad.is_empty(), "{name}: (x, native, ort) {bad:?}");
    }
}

/// `Log` against the correctly rounded logarithm (f64): within 2^-23 of max(|ln x|, 1)
/// (Eigen's rational approximation is accurate in absolute terms near x = 1), exact at the
/// special values.
#[test]
fn eigen_log_is_accurate() {
    for &v in &edge_inputs(100_000, 9) {
        let got = cr_infer::math::eigen_log(v);
        let want = (v as f64).ln() as f32;
        if v.is_nan() || v < 0.0 {
            assert!(got.is_nan(), "{v}");
        } else if !want.is_finite() || want == 0.0 {
            assert_eq!(got, want, "{v}");
        } else {
            let tol = f64::from(f32::EPSILON) * f64::from(want.abs().max(1.0));
            assert!(
                f64::from((got - want).abs()) <= tol,
                "log({v}) = {got}, want {want}"
            );
        }
    }
}

struct Logistic {
    mask: Vec<bool>,
    impute: Vec<f32>,
    mean: Vec<f32>,
    scale: Vec<f32>,
    coef: Vec<f32>,
    intercept: f32,
}

/// The graph `crates/train/src/export/linear.rs` writes (its contract, mirrored here so this
/// crate's tests need no trainer): signed log under a bool mask -> `IsNaN`/`Where` imputation
/// -> `Sub`/`Div` -> `MatMul`/`Add` -> `Sigmoid` -> `Concat(1 - p, p)`.
fn export_shaped(m: &Logistic) -> ModelProto {
    let d = m.mask.len() as i64;
    let mut g = GraphBuilder::new("logistic");
    g.add_input("features", ElemType::F32, &[Dim::batch(), Dim::Known(d)]);
    g.add_initializer(TensorProto {
        name: Some("log_mask".into()),
        dims: vec![1, d],
        data_type: Some(9),
        int32_data: m.mask.iter().map(|&b| i32::from(b)).collect(),
        ..Default::default()
    });
    let one = scalar(&mut g, 1.0);
    let sign = node(&mut g, "Sign", &["features"]);
    let abs = node(&mut g, "Abs", &["features"]);
    let a1 = node(&mut g, "Add", &[&one, &abs]);
    let ln = node(&mut g, "Log", &[&a1]);
    let lg = node(&mut g, "Mul", &[&ln, &sign]);
    let x = node(&mut g, "Where", &["log_mask", &lg, "features"]);
    g.add_initializer(tensor::f32("impute", &[1, d], &m.impute));
    let isnan = node(&mut g, "IsNaN", &[&x]);
    let x = node(&mut g, "Where", &[&isnan, "impute", &x]);
    g.add_initializer(tensor::f32("mean", &[1, d], &m.mean));
    g.add_initializer(tensor::f32("scale", &[1, d], &m.scale));
    let c = node(&mut g, "Sub", &[&x, "mean"]);
    let s = node(&mut g, "Div", &[&c, "scale"]);
    g.add_initializer(tensor::f32("coef", &[d, 1], &m.coef));
    g.add_initializer(tensor::f32("intercept", &[1], &[m.intercept]));
    let z = node(&mut g, "MatMul", &[&s, "coef"]);
    let z = node(&mut g, "Add", &[&z, "intercept"]);
    let p = node(&mut g, "Sigmoid", &[&z]);
    let one2 = scalar(&mut g, 1.0);
    let q = node(&mut g, "Sub", &[&one2, &p]);
    g.add_node(
        "Concat",
        "",
        &[&q, &p],
        &["probabilities"],
        vec![attr::int("axis", 1)],
    );
    g.add_output(
        "probabilities",
        ElemType::F32,
        &[Dim::batch(), Dim::Known(2)],
    );
    ModelBuilder::new(g.build()).build()
}

#[test]
fn our_logistic_export_runs_natively_and_matches_ort() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let f = 7;
    let m = Logistic {
        mask: (0..f).map(|j| j % 3 != 1).collect(),
        impute: (0..f).map(|_| rng.random_range(-1.0f32..5.0)).collect(),
        mean: (0..f).map(|_| rng.random_range(-2.0f32..6.0)).collect(),
        scale: (0..f).map(|_| rng.random_range(0.2f32..4.0)).collect(),
        coef: (0..f).map(|_| rng.random_range(-0.8f32..0.8)).collect(),
        intercept: -1.3,
    };
    let proto = export_shaped(&m);
    let n = 2400; // n * f is a multiple of 4: ORT's Log takes its vectorised path everywhere
    let x: Vec<f32> = (0..n * f)
        .map(|_| match rng.random_range(0..20) {
            0 => f32::NAN,
            1 => 0.0,
            2 => -rng.random_range(0.0f32..50.0),
            3 => rng.random_range(1e6f32..1e30),
            _ => rng.random_range(0.0f32..200.0),
        })
        .collect();
    let native = Model::from_proto(
        &proto,
        &LoadOptions {
            engine: Engine::Auto,
            threads: 1,
        },
    )
    .expect("native");
    assert_eq!(
        native.engine_used(),
        Engine::Native,
        "our logistic graph compiles natively"
    );
    let ort = Model::from_proto(
        &proto,
        &LoadOptions {
            engine: Engine::Ort,
            threads: 1,
        },
    )
    .expect("ort");
    let (a, b) = (
        native.score_matrix(&x, n).expect("native"),
        ort.score_matrix(&x, n).expect("ort"),
    );
    let d = max_abs_diff(&a, &b);
    let exact = a
        .iter()
        .zip(&b)
        .filter(|(p, q)| p.to_bits() == q.to_bits())
        .count();
    eprintln!("logistic export: max|native - ort| {d:.3e}, {exact}/{n} bit-exact");
    assert!(d <= 1e-6, "{d}");
    if cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("fma") {
        // MLAS' FMA kernels (GEMM, logistic) and Eigen's log are reproduced exactly
        assert_eq!(exact, n, "native scores are not bit-identical to ORT's");
    }
    // first principles, in f64
    for r in 0..n {
        let mut z = m.intercept as f64;
        for j in 0..f {
            let mut v = x[r * f + j] as f64;
            if m.mask[j] {
                v = v.signum() * (1.0 + v.abs()).ln();
            }
            if v.is_nan() {
                v = m.impute[j] as f64;
            }
            z += m.coef[j] as f64 * ((v - m.mean[j] as f64) / m.scale[j] as f64);
        }
        let p = 1.0 / (1.0 + (-z).exp());
        assert!((a[r] as f64 - p).abs() < 1e-5, "row {r}: {} vs {p}", a[r]);
    }
    // exact contributions of the logistic model: coefficient x pre-processed (log, imputed,
    // standardised) value, bias = intercept; checked against the same first principles
    let ex = cr_infer::shap::Explainer::for_model(&native, None).expect("linear explainer");
    assert_eq!(ex.cover_origin(), cr_infer::shap::CoverOrigin::Linear);
    assert_eq!(ex.bias(), f64::from(m.intercept));
    let phi = ex.explain_rows(&x, n).expect("explain");
    for r in 0..n {
        let mut z = ex.bias();
        for j in 0..f {
            let mut v = x[r * f + j] as f64;
            if m.mask[j] {
                v = v.signum() * (1.0 + v.abs()).ln();
            }
            if v.is_nan() {
                v = m.impute[j] as f64;
            }
            let want = m.coef[j] as f64 * ((v - m.mean[j] as f64) / m.scale[j] as f64);
            let got = phi[r * f + j];
            // the engine pre-processes in f32 (as it scores): agreement to f32 rounding
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "row {r} feature {j}: {got} vs {want}"
            );
            z += got;
        }
        // local accuracy: bias + sum = the margin behind the engine's score
        let p = 1.0 / (1.0 + (-z).exp());
        assert!((a[r] as f64 - p).abs() < 1e-5, "row {r}: {} vs {p}", a[r]);
    }
    // the same scores for any thread count
    let multi = Model::from_proto(
        &proto,
        &LoadOptions {
            engine: Engine::Native,
            threads: 3,
        },
    )
    .expect("native x3");
    let c = multi.score_matrix(&x, n).expect("native x3");
    assert!(a.iter().zip(&c).all(|(p, q)| p.to_bits() == q.to_bits()));
}

fn expect_unsupported(m: &ModelProto, what: &str) {
    let err = Model::from_proto(
        m,
        &LoadOptions {
            engine: Engine::Native,
            threads: 1,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, InferError::Unsupported { .. }) && err.to_string().contains(what),
        "{what}: {err}"
    );
    let auto = Model::from_proto(
        m,
        &LoadOptions {
            engine: Engine::Auto,
            threads: 1,
        },
    )
    .expect("auto falls back");
    assert_eq!(auto.engine_used(), Engine::Ort, "{what}");
}

#[test]
fn unsupported_preprocessing_falls_back_to_ort() {
    // an op ORT computes with its own approximation (not reproduced)
    expect_unsupported(&one_feature_model(&|g| node(g, "Exp", &["x"])), "Exp");
    // a constant that is not a [1, F] row
    expect_unsupported(
        &one_feature_model(&|g| {
            g.add_initializer(tensor::f32("col", &[2, 1], &[1.0, 2.0]));
            node(g, "Add", &["x", "col"])
        }),
        "shape",
    );
    // a Cast to another float type
    expect_unsupported(
        &one_feature_model(&|g| {
            let d = g.unique_name("d");
            g.add_node("Cast", "", &["x"], &[&d], vec![attr::int("to", 11)]);
            let f = g.unique_name("f");
            g.add_node("Cast", "", &[&d], &[&f], vec![attr::int("to", 1)]);
            f
        }),
        "Cast",
    );
}
