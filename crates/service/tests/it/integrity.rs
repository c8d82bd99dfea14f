//! Model integrity while serving: hashes checked at start and by the periodic check
//! (`AppState::check_models`); a bad challenger is dropped from shadow scoring (error log +
//! `customs_risk_model_integrity_failures_total`), a bad champion makes `/readyz` 503 while admin
//! calls keep working, promoting a version whose file is missing answers 409, and a missing
//! challenger file does not stop the server from starting.

use axum::http::StatusCode;
use cr_service::metrics::ModelRole;
use cr_service::{app, Registry};

use crate::support::{call, env, error_code, json_body, models, state};

fn corrupt(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.push(0);
    std::fs::write(path, bytes).unwrap();
}

fn shadow_versions(db: &std::path::Path) -> Vec<Option<String>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT shadow_version FROM audit ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn missing_challenger_file_does_not_stop_start() {
    let e = env(Some("a"));
    Registry::open(&e.db)
        .unwrap()
        .set_challenger("b", "tester")
        .unwrap();
    std::fs::remove_file(&e.b).unwrap();
    let s = state(&e);
    assert!(s.deployment().challenger.is_none());
    assert_eq!(s.metrics().integrity_failures(ModelRole::Challenger), 1);
    let router = app(s.clone());
    let (status, _, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, text) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&models().a.decls[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, _, metrics) = call(&router, "GET", "/metrics", None, None).await;
    assert!(metrics.contains("customs_risk_model_integrity_failures_total{role=\"challenger\"} 1"));
    s.audit().close().await.unwrap();
    assert_eq!(shadow_versions(&e.db), vec![None]);
}

#[tokio::test]
async fn bad_champion_at_start_is_not_ready_but_admin_works() {
    let e = env(Some("a"));
    corrupt(&e.a);
    let s = state(&e);
    let router = app(s.clone());
    let (status, body, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "champion_integrity");
    let (status, _, _) = call(&router, "GET", "/v1/models", Some(&e.admin_key), None).await;
    assert_eq!(status, StatusCode::OK);
    // The fix: promote another version over HTTP.
    let (status, _, text) = call(
        &router,
        "POST",
        "/v1/models/b/promote",
        Some(&e.admin_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn periodic_check_finds_changed_champion_and_drops_bad_challenger() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let (status, _, _) = call(
        &router,
        "POST",
        "/v1/models/b/challenger",
        Some(&e.admin_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.check_models().await;
    let (status, _, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(s.deployment().challenger.is_some());

    // Champion file changed under the server: not ready; restored: ready again.
    let original = std::fs::read(&e.a).unwrap();
    corrupt(&e.a);
    s.check_models().await;
    let (status, body, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "champion_integrity");
    assert_eq!(s.metrics().integrity_failures(ModelRole::Champion), 1);
    let (status, _, _) = call(&router, "GET", "/v1/models", Some(&e.admin_key), None).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(&e.a, original).unwrap();
    s.check_models().await;
    let (status, _, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);

    // Challenger file gone: dropped from shadow scoring, counted.
    std::fs::remove_file(&e.b).unwrap();
    s.check_models().await;
    assert!(s.deployment().challenger.is_none());
    assert_eq!(s.metrics().integrity_failures(ModelRole::Challenger), 1);
    let (status, _, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&models().a.decls[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.audit().close().await.unwrap();
    assert_eq!(shadow_versions(&e.db), vec![None]);
}

#[tokio::test]
async fn promote_or_shadow_of_a_missing_file_is_409() {
    let e = env(Some("a"));
    std::fs::remove_file(&e.b).unwrap();
    let router = app(state(&e));
    for path in ["/v1/models/b/promote", "/v1/models/b/challenger"] {
        let (status, body, text) = call(&router, "POST", path, Some(&e.admin_key), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {text}");
        assert_eq!(error_code(&body), "model_file_missing");
        // No file system path in the answer.
        assert!(!text.contains(".onnx"), "{text}");
    }
}
