//! Bounds on what one request can make the service store or send back: id and text lengths
//! (configurable), duplicate JSON keys, error body size (never an echo of the request), and
//! CSV export that neutralises spreadsheet formulas.

use axum::http::StatusCode;
use cr_service::{
    app, export_audit, export_audit_with, AppState, ExportFormat, ExportOptions, Limits,
};
use serde_json::{json, Value};

use crate::support::{call, env, error_code, json_body, limits, models, state};

fn decl(id: &str) -> Value {
    let mut d = models().a.decls[0].clone();
    d["decl_id"] = Value::String(id.to_string());
    d
}

#[tokio::test]
async fn ids_and_text_are_bounded_and_configurable() {
    let e = env(Some("a"));
    let router = app(state(&e));
    let key = Some(e.score_key.as_str());
    let (status, _, _) = call(
        &router,
        "POST",
        "/v1/score",
        key,
        json_body(&decl(&"x".repeat(64))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, text) = call(
        &router,
        "POST",
        "/v1/score",
        key,
        json_body(&decl(&"x".repeat(65))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "invalid_declaration");
    assert_eq!(body["error"]["details"][0]["field"], "decl_id");
    assert!(!text.contains(&"x".repeat(65)), "echoed the id");
    // A megabyte-long id in a field the model does not even use.
    let mut d = decl("ok");
    d["note"] = Value::String("y".repeat(300));
    let (status, _, text) = call(&router, "POST", "/v1/score", key, json_body(&d)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.len() < 1024, "{} bytes", text.len());
    // Configurable.
    let e2 = env(Some("a"));
    let router2 = app(AppState::open(
        &e2.db,
        Limits {
            max_id_bytes: 8,
            ..limits()
        },
    )
    .unwrap());
    let (status, _, _) = call(
        &router2,
        "POST",
        "/v1/score",
        Some(&e2.score_key),
        json_body(&decl("123456789")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing refused was recorded (decisions are committed before they are answered).
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    let max_len: i64 = conn
        .query_row("SELECT max(length(declaration_id)) FROM audit", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(max_len, 64);
}

#[tokio::test]
async fn duplicate_keys_are_rejected() {
    let e = env(Some("a"));
    let router = app(state(&e));
    let d = decl("dup");
    let text = serde_json::to_string(&d).unwrap();
    // The same declaration with its id given twice, and a batch key given twice.
    let twice = format!("{{\"decl_id\": \"other\", {}", &text[1..]);
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        Some(twice.into_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_json");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("duplicate key"));
    let batch = format!("{{\"declarations\": [{text}], \"declarations\": [{text}]}}");
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        Some(batch.into_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_json");
}

#[tokio::test]
async fn error_bodies_stay_small_whatever_the_request() {
    let e = env(Some("a"));
    let router = app(state(&e));
    // 40 declarations, each with every field wrong and long (but under the text limit).
    let bad: Vec<Value> = (0..40)
        .map(|i| {
            let mut d = decl(&format!("D{i}"));
            for (k, v) in d.as_object_mut().unwrap().iter_mut() {
                if k != "decl_id" {
                    *v = Value::String(format!("NOT-A-VALUE-{}", "z".repeat(180)));
                }
            }
            d
        })
        .collect();
    let body = json!({ "declarations": bad });
    let request_len = serde_json::to_vec(&body).unwrap().len();
    let (status, resp, text) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&body),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp["error"]["details"].as_array().unwrap().len() <= 20);
    assert!(
        text.len() <= 8 * 1024,
        "error body {} bytes for a {request_len}-byte request",
        text.len()
    );
    assert!(!text.contains(&"z".repeat(180)), "the request is echoed");
}

#[tokio::test]
async fn csv_export_neutralises_formulas_unless_raw() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    for id in [
        "=HYPERLINK(\"http://x\",\"a\")",
        "+1",
        "-2",
        "@SUM(A1)",
        "plain",
    ] {
        let (status, _, text) = call(
            &router,
            "POST",
            "/v1/score",
            Some(&e.score_key),
            json_body(&decl(id)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    s.audit().close().await.unwrap();
    let mut out = Vec::new();
    export_audit(&e.db, "2000-01-01", ExportFormat::Csv, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    // Parsed back with Python's csv module (independent reader), column declaration_id.
    let ids = python_csv_column(&csv, "declaration_id");
    assert_eq!(
        ids,
        [
            "'=HYPERLINK(\"http://x\",\"a\")",
            "'+1",
            "'-2",
            "'@SUM(A1)",
            "plain"
        ]
    );
    let mut raw = Vec::new();
    export_audit_with(
        &e.db,
        "2000-01-01",
        ExportOptions {
            format: ExportFormat::Csv,
            raw: true,
        },
        &mut raw,
    )
    .unwrap();
    let ids = python_csv_column(&String::from_utf8(raw).unwrap(), "declaration_id");
    assert_eq!(
        ids,
        [
            "=HYPERLINK(\"http://x\",\"a\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "plain"
        ]
    );
    // JSON lines are never altered.
    let mut jl = Vec::new();
    export_audit(&e.db, "2000-01-01", ExportFormat::JsonLines, &mut jl).unwrap();
    assert!(String::from_utf8(jl)
        .unwrap()
        .contains("\"declaration_id\":\"+1\""));
}

fn python_csv_column(csv: &str, column: &str) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys\nrows = list(csv.DictReader(sys.stdin))\nprint(json.dumps([r[sys.argv[1]] for r in rows]))",
            column,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(csv.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}
