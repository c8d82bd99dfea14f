//! Audit trail: one row per decision, append-only, export.

use axum::http::StatusCode;
use cr_service::{app, export_audit, ExportFormat};
use serde_json::{json, Value};

use crate::support::{assert_score, call, env, json_body, models, state};

#[tokio::test]
async fn every_decision_is_recorded_and_cannot_be_changed() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let decls = &models().a.decls;
    let (status, batch, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": decls[..30] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, single, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&decls[30]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Rejected requests record nothing.
    let _ = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        Some(b"{}".to_vec()),
    )
    .await;
    s.audit().close().await.unwrap();

    let key_id = e.score_key.split('_').nth(1).unwrap();
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    type Row = (String, String, String, String, f64, String, Option<f64>);
    let rows: Vec<Row> = conn
        .prepare("SELECT key_id, request_id, declaration_id, model_version, score, channel, percentile FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 31);
    for (i, (k, req, decl, version, score, channel, pct)) in rows.iter().enumerate() {
        assert_eq!(k, key_id);
        assert_eq!(version, "a");
        assert_eq!(decl, decls[i]["decl_id"].as_str().unwrap());
        assert_score("a", decl, *score);
        let resp: &Value = if i < 30 {
            &batch["results"][i]
        } else {
            &single
        };
        assert_eq!(req, resp["request_id"].as_str().unwrap());
        assert_eq!(channel, resp["channel"].as_str().unwrap());
        assert_eq!(*pct, resp["percentile"].as_f64());
    }
    for sql in [
        "UPDATE audit SET score = 0",
        "DELETE FROM audit",
        "UPDATE audit SET channel = 'green' WHERE seq = 1",
    ] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 31);
    // After close, new decisions are refused rather than silently lost.
    let (status, _, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&decls[31]),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn export_csv_and_json_lines_since_a_date() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let decls = &models().a.decls;
    let (status, _, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": decls[..5] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.audit().close().await.unwrap();

    let mut csv = Vec::new();
    assert_eq!(
        export_audit(&e.db, "2000-01-01", ExportFormat::Csv, &mut csv).unwrap(),
        5
    );
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[0].starts_with("seq,at,key_id,request_id,declaration_id,model_version,score"));
    assert!(lines[1].contains(",D00000,a,"), "{}", lines[1]);

    let mut jsonl = Vec::new();
    assert_eq!(
        export_audit(
            &e.db,
            "2000-01-01T00:00:00+00:00",
            ExportFormat::JsonLines,
            &mut jsonl
        )
        .unwrap(),
        5
    );
    let rows: Vec<Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[4]["declaration_id"], "D00004");
    assert_eq!(rows[4]["model_version"], "a");
    assert_score("a", "D00004", rows[4]["score"].as_f64().unwrap());

    let mut none = Vec::new();
    assert_eq!(
        export_audit(&e.db, "2999-01-01", ExportFormat::JsonLines, &mut none).unwrap(),
        0
    );
    assert!(export_audit(&e.db, "last tuesday", ExportFormat::Csv, &mut Vec::new()).is_err());
}
