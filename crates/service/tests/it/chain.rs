//! Tamper evidence: `verify_audit` (behind `customs-risk audit verify`) finds a forged insert,
//! a deleted row (triggers dropped first), an edited row, an edited model hash, an un-revoked
//! key, a truncated tail (with an anchored head), and upgrades a version-1 file.

use axum::http::StatusCode;
use cr_service::{app, verify_audit, Registry, VerifyReport};
use rusqlite::Connection;
use serde_json::json;

use crate::support::{call, env, json_body, models, state, Env};

/// A registry with 20 audited decisions, the writer closed.
async fn scored_env() -> Env {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let (status, _, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": models().a.decls[..20] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.audit().close().await.unwrap();
    e
}

fn verify(e: &Env) -> VerifyReport {
    verify_audit(&e.db, None).unwrap()
}

fn broken(r: &VerifyReport, table: &str) -> String {
    r.chains
        .iter()
        .find(|c| c.table == table)
        .and_then(|c| c.broken.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn intact_trail_verifies_with_heads() {
    let e = scored_env().await;
    let r = verify(&e);
    assert!(r.ok(), "{r:?}");
    let audit = &r.chains[0];
    assert_eq!((audit.table, audit.chained, audit.legacy), ("audit", 20, 0));
    assert_eq!(audit.head.as_ref().unwrap().0, 20);
    // register a, register b, promote a; two keys created.
    assert_eq!(r.chains[1].chained, 3);
    assert_eq!(r.chains[2].chained, 2);
    // The head is checkable as an anchor.
    let (seq, hash) = audit.head.clone().unwrap();
    assert!(verify_audit(&e.db, Some((seq, &hash))).unwrap().ok());
}

#[tokio::test]
async fn forged_insert_is_detected() {
    for hash in ["NULL", "'00'"] {
        let e = scored_env().await;
        let conn = Connection::open(&e.db).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO audit (at, key_id, request_id, declaration_id, model_version, score, \
             percentile, channel, prev_hash, hash) SELECT at, key_id, request_id, 'FORGED', \
             model_version, 0.01, percentile, 'green', hash, {hash} FROM audit WHERE seq = 20"
        ))
        .unwrap();
        let r = verify(&e);
        assert!(!r.ok());
        let b = broken(&r, "audit");
        assert!(b.starts_with("audit seq 21:"), "{b}");
        assert!(b.contains("forged"), "{b}");
    }
}

#[tokio::test]
async fn deleted_row_is_detected_even_with_triggers_dropped() {
    let e = scored_env().await;
    let conn = Connection::open(&e.db).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 7;")
        .unwrap();
    let b = broken(&verify(&e), "audit");
    assert!(b.starts_with("audit seq 8:"), "{b}");
    assert!(b.contains("deleted"), "{b}");
}

#[tokio::test]
async fn edited_row_is_detected() {
    let e = scored_env().await;
    let conn = Connection::open(&e.db).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET channel = 'green', score = 0.0 WHERE seq = 5;")
        .unwrap();
    let b = broken(&verify(&e), "audit");
    assert!(b.starts_with("audit seq 5:") && b.contains("edited"), "{b}");
}

#[tokio::test]
async fn edited_model_hash_is_detected() {
    let e = scored_env().await;
    let conn = Connection::open(&e.db).unwrap();
    conn.execute(
        "UPDATE models SET sha256 = ?1 WHERE version = 'b'",
        ["f".repeat(64)],
    )
    .unwrap();
    let r = verify(&e);
    assert!(!r.ok());
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("\"b\"") && p.contains("differs from its registration")),
        "{:?}",
        r.problems
    );
    // A status changed by hand (b made champion without a promote event) is found too.
    let e = scored_env().await;
    let conn = Connection::open(&e.db).unwrap();
    conn.execute_batch("UPDATE models SET status = 'retired' WHERE version = 'b'")
        .unwrap();
    let r = verify(&e);
    assert!(
        r.problems.iter().any(|p| p.contains("status retired")),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn unrevoked_or_forged_key_is_detected() {
    let e = scored_env().await;
    let id = e.score_key.split('_').nth(1).unwrap().to_string();
    Registry::open(&e.db).unwrap().revoke_key(&id).unwrap();
    assert!(verify(&e).ok());
    let conn = Connection::open(&e.db).unwrap();
    conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE id = ?1", [&id])
        .unwrap();
    let r = verify(&e);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(&id) && p.contains("un-revoked")),
        "{:?}",
        r.problems
    );
    conn.execute_batch(
        "INSERT INTO api_keys (id, name, role, salt, hash, created_at) \
         VALUES ('00000000deadbeef', 'mallory', 'admin', '00', '00', '2024-01-01')",
    )
    .unwrap();
    let r = verify(&e);
    assert!(
        r.problems.iter().any(|p| p.contains("00000000deadbeef")),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn truncated_tail_is_detected_only_with_an_anchor() {
    let e = scored_env().await;
    let (seq, hash) = verify(&e).chains[0].head.clone().unwrap();
    let conn = Connection::open(&e.db).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq > 15;")
        .unwrap();
    // The remaining chain is consistent: without an anchor nothing shows.
    assert!(verify(&e).ok());
    let r = verify_audit(&e.db, Some((seq, &hash))).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        r.problems
    );
}

#[test]
fn version_1_file_is_upgraded_and_its_state_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    {
        // The version-1 schema (no hash columns, no key_events), with a model, a key and
        // two decisions.
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE models (version TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL,
               sha256 TEXT NOT NULL, card TEXT NOT NULL, yellow REAL NOT NULL, red REAL NOT NULL,
               reference_scores TEXT, status TEXT NOT NULL, registered_by TEXT NOT NULL,
               registered_at TEXT NOT NULL, promoted_by TEXT, promoted_at TEXT, retired_by TEXT,
               retired_at TEXT);
             CREATE TABLE model_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
               version TEXT NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL);
             CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
               salt TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
             CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
               key_id TEXT NOT NULL, request_id TEXT NOT NULL, declaration_id TEXT NOT NULL,
               model_version TEXT NOT NULL, score REAL NOT NULL, percentile REAL,
               channel TEXT NOT NULL, shadow_version TEXT, shadow_score REAL);
             INSERT INTO meta VALUES ('schema_version', '1');
             INSERT INTO models VALUES ('m1', 'm', '/x/m.onnx', 'abc', '{}', 0.5, 0.9, NULL,
               'champion', 'alice', '2024-01-01T00:00:00.000000Z', 'alice', NULL, NULL, NULL);
             INSERT INTO model_events (at, version, action, by) VALUES
               ('2024-01-01T00:00:00.000000Z', 'm1', 'register', 'alice'),
               ('2024-01-01T00:00:00.000000Z', 'm1', 'promote', 'alice');
             INSERT INTO api_keys VALUES ('0123456789abcdef', 'gw', 'score', '00', '11',
               '2024-01-01T00:00:00.000000Z', NULL);
             INSERT INTO audit (at, key_id, request_id, declaration_id, model_version, score,
               percentile, channel) VALUES
               ('2024-01-02T00:00:00.000000Z', '0123456789abcdef', 'r1', 'D1', 'm1', 0.1, 10, 'green'),
               ('2024-01-02T00:00:00.000000Z', '0123456789abcdef', 'r2', 'D2', 'm1', 0.95, 99, 'red');",
        )
        .unwrap();
    }
    let reg = Registry::open(&db).unwrap();
    assert_eq!(reg.champion().unwrap().unwrap().version, "m1");
    let r = verify_audit(&db, None).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.chains[0].chained, r.chains[0].legacy), (0, 2));
    // Legacy events stay unchained; the adopt events are chained after them.
    assert_eq!((r.chains[1].legacy, r.chains[1].chained), (2, 1));
    assert_eq!(r.chains[2].chained, 1);
    // After the upgrade, tampering with the adopted state is found.
    let c = Connection::open(&db).unwrap();
    c.execute_batch("UPDATE models SET sha256 = 'def'").unwrap();
    assert!(!verify_audit(&db, None).unwrap().ok());
}
