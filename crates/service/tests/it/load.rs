//! Promotion under load: many concurrent requests while the champion flips between a and b.
//! Every response must be complete and self-consistent: its model version is a or b and every
//! score in it is the score that version gives (ONNX Runtime reference), never a mix.

use axum::http::StatusCode;
use cr_service::app;
use serde_json::json;

use crate::support::{assert_score, call, env, json_body, models, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promotion_swaps_atomically_under_load() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let decls = &models().a.decls;
    // The two models must disagree on every declaration used, or the check proves nothing.
    for d in decls {
        let id = d["decl_id"].as_str().unwrap();
        let (a, b) = (
            crate::support::expected_for("a")[id],
            crate::support::expected_for("b")[id],
        );
        assert!((a - b).abs() > 1e-5, "{id}: a {a} b {b}");
    }

    // Clients keep going until the promoter is done, so every swap happens under load.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8usize {
        let (router, key, done) = (router.clone(), e.score_key.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            let mut n_decls = 0usize;
            let mut i = 0usize;
            while i < 60 || !done.load(std::sync::atomic::Ordering::Acquire) {
                let k = (c * 7 + i) % decls.len();
                // Alternate single declarations (scored inline) and batches of 20 (scored on
                // the blocking pool).
                let body = if i.is_multiple_of(3) {
                    let batch: Vec<_> = (0..20)
                        .map(|j| decls[(k + j) % decls.len()].clone())
                        .collect();
                    json!({ "declarations": batch })
                } else {
                    decls[k].clone()
                };
                let (status, resp, text) =
                    call(&router, "POST", "/v1/score", Some(&key), json_body(&body)).await;
                assert_eq!(status, StatusCode::OK, "{text}");
                let results = match resp.get("results") {
                    Some(r) => r.as_array().unwrap().clone(),
                    None => vec![resp.clone()],
                };
                let version = resp["model_version"].as_str().unwrap().to_string();
                assert!(version == "a" || version == "b", "{version}");
                assert_eq!(results.len(), if i.is_multiple_of(3) { 20 } else { 1 });
                for r in &results {
                    assert_eq!(
                        r["model_version"].as_str().unwrap(),
                        version,
                        "mixed versions in {text}"
                    );
                    assert_score(
                        &version,
                        r["declaration_id"].as_str().unwrap(),
                        r["score"].as_f64().unwrap(),
                    );
                }
                seen.insert(version);
                n_decls += results.len();
                i += 1;
            }
            (seen, n_decls)
        }));
    }
    let promoter = {
        let (s, done) = (s.clone(), done.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let v = if i % 2 == 0 { "b" } else { "a" };
                s.promote(v, "load-test").await.expect("promote");
                tokio::task::yield_now().await;
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        })
    };
    promoter.await.expect("promoter");
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for c in clients {
        let (v, n) = c.await.expect("client task");
        seen.extend(v);
        total += n;
    }
    assert!(!seen.is_empty());
    s.audit().close().await.unwrap();
    // The audit agrees with the responses: every row's score is its version's score.
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    let mut stmt = conn
        .prepare("SELECT model_version, declaration_id, score FROM audit")
        .unwrap();
    let rows: Vec<(String, String, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), total);
    for (v, id, score) in rows {
        assert_score(&v, &id, score);
    }
}
