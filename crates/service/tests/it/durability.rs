//! Durable before answered, in process: a full database (simulated with SQLite's
//! `max_page_count`, see `AuditWriter::set_max_page_count`) and a write lock held by another
//! connection make requests fail with 503 + `Retry-After` and `/readyz` 503, every 200 is in
//! the audit, and service resumes when the audit is writable again. The kill -9 tests against
//! the real `customs-risk serve` process are in crates/cli/tests/serve.rs.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use cr_service::{app, AppState, AuditConfig, Limits};
use serde_json::Value;
use tower::ServiceExt;

use crate::support::{env, limits, models, Env};

/// POST one declaration with id `id`: (status, error code or "", Retry-After header).
async fn score_one(router: &Router, key: &str, id: &str) -> (StatusCode, String, Option<String>) {
    let mut d = models().a.decls[0].clone();
    d["decl_id"] = Value::String(id.to_string());
    let req = Request::builder()
        .method("POST")
        .uri("/v1/score")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&d).unwrap()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("").to_string();
    (status, code, retry)
}

async fn readyz(router: &Router) -> StatusCode {
    let req = Request::builder()
        .uri("/readyz")
        .body(Body::empty())
        .unwrap();
    router.clone().oneshot(req).await.unwrap().status()
}

fn audited_ids(e: &Env) -> std::collections::HashSet<String> {
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    let mut stmt = conn.prepare("SELECT declaration_id FROM audit").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn state_with(e: &Env, audit: AuditConfig) -> AppState {
    AppState::open(&e.db, Limits { audit, ..limits() }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_database_answers_503_and_loses_nothing_answered() {
    let e = env(Some("a"));
    let s = state_with(
        &e,
        AuditConfig {
            probe_interval: Duration::from_millis(100),
            ..AuditConfig::default()
        },
    );
    let router = app(s.clone());
    assert_eq!(readyz(&router).await, StatusCode::OK);
    // The file may not grow by a single page from now on.
    s.audit().set_max_page_count(Some(1));
    let mut answered = Vec::new();
    let mut refused = None;
    for i in 0..20_000 {
        let id = format!("full-{i}");
        let (status, code, retry) = score_one(&router, &e.score_key, &id).await;
        match status {
            StatusCode::OK => answered.push(id),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(code, "audit_unavailable");
                assert_eq!(retry.as_deref(), Some("2"));
                refused = Some(id);
                break;
            }
            other => panic!("unexpected {other} {code}"),
        }
    }
    let refused = refused.expect("the full database never refused a decision");
    assert_eq!(readyz(&router).await, StatusCode::SERVICE_UNAVAILABLE);
    // Still full: the next request is refused too, quickly.
    let (status, _, _) = score_one(&router, &e.score_key, "full-again").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let ids = audited_ids(&e);
    assert!(
        answered.iter().all(|id| ids.contains(id)),
        "an answered decision is missing"
    );
    assert!(!ids.contains(&refused), "a refused decision was recorded");

    // Space again: the probe notices, /readyz recovers, decisions are answered and recorded.
    s.audit().set_max_page_count(None);
    let t = Instant::now();
    while readyz(&router).await != StatusCode::OK {
        assert!(t.elapsed() < Duration::from_secs(10), "never ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, _) = score_one(&router, &e.score_key, "after").await;
    assert_eq!(status, StatusCode::OK);
    assert!(audited_ids(&e).contains("after"));
    eprintln!(
        "database full after {} decisions; refused with 503, all answered ones recorded",
        answered.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_write_lock_past_the_deadline_answers_503_and_queue_stays_bounded_in_bytes() {
    let e = env(Some("a"));
    let budget = 2_000;
    let s = state_with(
        &e,
        AuditConfig {
            queue_bytes: budget,
            lock_deadline: Duration::from_millis(300),
            probe_interval: Duration::from_millis(100),
            ..AuditConfig::default()
        },
    );
    let router = app(s.clone());
    let (status, _, _) = score_one(&router, &e.score_key, "before").await;
    assert_eq!(status, StatusCode::OK);

    let locker = rusqlite::Connection::open(&e.db).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (router, key) = (router.clone(), e.score_key.clone());
        tasks.push(tokio::spawn(async move {
            score_one(&router, &key, &format!("locked-{i}")).await
        }));
    }
    // Sample the queue while the requests wait: never more bytes than the budget.
    let mut max_bytes = 0i64;
    while !tasks.iter().all(|t| t.is_finished()) {
        let q = s
            .audit()
            .stats()
            .queued_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        max_bytes = max_bytes.max(q);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut unavailable = 0;
    for t in tasks {
        let (status, code, retry) = t.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{code}");
        assert_eq!(code, "audit_unavailable");
        assert!(retry.is_some());
        unavailable += 1;
    }
    assert_eq!(unavailable, 40);
    assert!(
        max_bytes > 0 && max_bytes <= budget as i64,
        "queued {max_bytes} bytes, budget {budget}"
    );
    // Every request got its answer within a few deadlines, not after the lock was released.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(readyz(&router).await, StatusCode::SERVICE_UNAVAILABLE);
    locker.execute_batch("ROLLBACK").unwrap();
    let t = Instant::now();
    while readyz(&router).await != StatusCode::OK {
        assert!(t.elapsed() < Duration::from_secs(10), "never ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, _) = score_one(&router, &e.score_key, "after").await;
    assert_eq!(status, StatusCode::OK);
    let ids = audited_ids(&e);
    assert!(ids.contains("before") && ids.contains("after"));
    assert!(!ids.iter().any(|id| id.starts_with("locked-")));
}
