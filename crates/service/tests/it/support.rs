//! Shared fixtures: real ONNX models made by `tests/support/make_model.py` (scikit-learn +
//! skl2onnx, reference scores from ONNX Runtime), a registry in a temp dir, keys, and helpers
//! to call the router with `oneshot`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use cr_service::{AppState, Limits, RegisterOptions, Registry, Role, ThresholdSpec};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

/// One generated model and its reference data.
pub struct ModelFiles {
    pub path: PathBuf,
    pub decls: Vec<Value>,
    /// Declaration id -> positive-class probability computed by ONNX Runtime (Python).
    pub expected: BTreeMap<String, f64>,
}

pub struct Models {
    _dir: PathBuf,
    pub a: ModelFiles,
    pub b: ModelFiles,
    /// No model card, so no reference distribution.
    pub nocard: ModelFiles,
}

fn load_files(dir: &Path, name: &str) -> ModelFiles {
    let read = |suffix: &str| {
        std::fs::read_to_string(dir.join(format!("{name}.{suffix}"))).expect("generated file")
    };
    ModelFiles {
        path: dir.join(format!("{name}.onnx")),
        decls: serde_json::from_str(&read("decls.json")).expect("decls json"),
        expected: serde_json::from_str(&read("expected.json")).expect("expected json"),
    }
}

/// The models, generated once per test binary (Python takes a few seconds). A static is never
/// dropped, so the folder is kept: it goes under cargo's `target/tmp` (removed by `cargo clean`),
/// not the system temp dir, so test runs leave nothing behind in `/tmp`.
pub fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("cr-service-models-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir")
            .keep();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_model.py");
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .arg("60")
            .args(["a:1:30", "b:2:30", "nocard:3:10:nocard"])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "make_model.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for name in ["a", "b", "nocard"] {
            bind_graph_digest(&dir.join(format!("{name}.onnx")));
        }
        Models {
            a: load_files(&dir, "a"),
            b: load_files(&dir, "b"),
            nocard: load_files(&dir, "nocard"),
            _dir: dir,
        }
    })
}

/// Add the graph digest our exporter writes (`cr_onnx::bind_graph_digest`): without it the
/// native engine refuses a raw-field model and ONNX Runtime scores it.
fn bind_graph_digest(path: &Path) {
    let mut m = cr_onnx::load_model(path).expect("load generated model");
    cr_onnx::bind_graph_digest(&mut m).expect("generated model metadata");
    cr_onnx::save_model(path, &m).expect("save generated model");
}

/// A registry in its own temp dir, with copies of the models (tests may tamper with them).
pub struct Env {
    pub dir: TempDir,
    pub db: PathBuf,
    pub a: PathBuf,
    pub b: PathBuf,
    pub nocard: PathBuf,
    pub score_key: String,
    pub admin_key: String,
}

pub fn opts(name: &str, version: &str) -> RegisterOptions {
    RegisterOptions {
        name: name.into(),
        version: Some(version.into()),
        thresholds: ThresholdSpec::default(),
        registered_by: "tester".into(),
        policy: None,
    }
}

/// Registry with versions `a` and `b` registered (default thresholds), `champion` promoted
/// when given, and one key of each role.
pub fn env(champion: Option<&str>) -> Env {
    let m = models();
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = |f: &ModelFiles, name: &str| {
        let p = dir.path().join(name);
        std::fs::copy(&f.path, &p).expect("copy model");
        p
    };
    let (a, b, nocard) = (
        copy(&m.a, "a.onnx"),
        copy(&m.b, "b.onnx"),
        copy(&m.nocard, "nocard.onnx"),
    );
    let db = dir.path().join("registry.db");
    let mut reg = Registry::open(&db).expect("open registry");
    reg.register(&a, &opts("gbdt", "a")).expect("register a");
    reg.register(&b, &opts("gbdt", "b")).expect("register b");
    if let Some(v) = champion {
        reg.promote(v, "tester").expect("promote");
    }
    let score_key = reg.create_key(Role::Score, "gateway").expect("key").key;
    let admin_key = reg.create_key(Role::Admin, "ops").expect("key").key;
    Env {
        dir,
        db,
        a,
        b,
        nocard,
        score_key,
        admin_key,
    }
}

pub fn limits() -> Limits {
    Limits {
        max_body_bytes: 64 * 1024,
        max_batch: 100,
        inline_max_declarations: 16,
        blocking_permits: 2,
        ..Limits::default()
    }
}

pub fn state(env: &Env) -> AppState {
    AppState::open(&env.db, limits()).expect("open state")
}

/// Call the router without a socket. Returns status, parsed JSON body (Null if not JSON),
/// and the raw body text.
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    )
}

pub fn json_body(v: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).expect("json"))
}

/// The error code of an error body, asserting its shape.
pub fn error_code(body: &Value) -> String {
    let e = body
        .get("error")
        .unwrap_or_else(|| panic!("no error object in {body}"));
    let msg = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!msg.is_empty());
    e.get("code")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_string()
}

/// Percentile from first principles: position of `score` on the evenly spaced quantile grid,
/// linear between neighbouring points (checked by a plain scan, not a binary search).
pub fn grid_percentile(q: &[f64], score: f64) -> f64 {
    let n = q.len();
    if score < q[0] {
        return 0.0;
    }
    if score > q[n - 1] {
        return 100.0;
    }
    let ties: Vec<usize> = (0..n).filter(|&i| q[i] == score).collect();
    if !ties.is_empty() {
        let mid = (ties[0] + ties[ties.len() - 1]) as f64 / 2.0;
        return 100.0 * mid / (n - 1) as f64;
    }
    for i in 0..n - 1 {
        if q[i] < score && score < q[i + 1] {
            return 100.0 * (i as f64 + (score - q[i]) / (q[i + 1] - q[i])) / (n - 1) as f64;
        }
    }
    f64::NAN
}

/// The scores the model `version` (`a` or `b`) gives, from the Python reference.
pub fn expected_for(version: &str) -> &'static BTreeMap<String, f64> {
    match version {
        "a" => &models().a.expected,
        "b" => &models().b.expected,
        other => panic!("unknown version {other}"),
    }
}

/// Assert `score` (f32 from the service) equals the ONNX Runtime reference.
pub fn assert_score(version: &str, id: &str, score: f64) {
    let want = expected_for(version)[id];
    assert!(
        (score - want).abs() <= 1e-6,
        "version {version} declaration {id}: service {score}, onnxruntime {want}"
    );
}
