//! HTTP API through the router with `oneshot`: scoring, errors, auth, admin, metrics.

use axum::http::StatusCode;
use cr_service::{app, Registry};
use serde_json::{json, Value};

use crate::support::{
    assert_score, call, env, error_code, grid_percentile, json_body, models, state,
};

fn quantiles(db: &std::path::Path, version: &str) -> Vec<f64> {
    let mv = Registry::open(db).unwrap().get(version).unwrap();
    // the card's quantiles are f32 (written as their shortest f32 text)
    serde_json::from_value::<Vec<f32>>(mv.card["score_quantiles"].clone())
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

#[tokio::test]
async fn single_declaration_is_scored_like_onnxruntime() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let q = quantiles(&e.db, "a");
    let mv = Registry::open(&e.db).unwrap().get("a").unwrap();
    for decl in models().a.decls.iter().take(20) {
        let (status, body, text) = call(
            &router,
            "POST",
            "/v1/score",
            Some(&e.score_key),
            json_body(decl),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let id = decl["decl_id"].as_str().unwrap();
        assert_eq!(body["declaration_id"], id);
        assert_eq!(body["model_version"], "a");
        assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        let score = body["score"].as_f64().unwrap();
        assert_score("a", id, score);
        // The JSON number is the shortest text of an f32; the service computes with its
        // exact value.
        let score = f64::from(score as f32);
        let pct = body["percentile"].as_f64().unwrap();
        assert!(
            (pct - grid_percentile(&q, score)).abs() < 1e-9,
            "percentile {pct} for {score}"
        );
        let want = if score >= mv.thresholds.red {
            "red"
        } else if score >= mv.thresholds.yellow {
            "yellow"
        } else {
            "green"
        };
        assert_eq!(body["channel"], want);
    }
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn batch_is_scored_in_order_with_one_request_id() {
    let e = env(Some("b"));
    let s = state(&e);
    let router = app(s.clone());
    let decls = &models().b.decls;
    let (status, body, text) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": decls })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), decls.len());
    assert_eq!(body["model_version"], "b");
    for (r, d) in results.iter().zip(decls) {
        assert_eq!(r["declaration_id"], d["decl_id"]);
        assert_eq!(r["request_id"], body["request_id"]);
        assert_eq!(r["model_version"], "b");
        assert_score(
            "b",
            r["declaration_id"].as_str().unwrap(),
            r["score"].as_f64().unwrap(),
        );
    }
    // Different channels occur across the batch (thresholds at the 90th / 98th percentile).
    let channels: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert!(channels.contains("green"), "{channels:?}");
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": [] })),
    )
    .await;
    assert_eq!(
        (status, body["results"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn invalid_declarations_get_per_field_details() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let mut bad = models().a.decls[0].clone();
    bad["value"] = json!(-5.0);
    bad.as_object_mut().unwrap().remove("mass");
    bad["colour"] = json!("red");
    let good = models().a.decls[1].clone();
    let (status, body, text) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": [good, bad] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!(error_code(&body), "invalid_declaration");
    let details = body["error"]["details"].as_array().unwrap();
    let fields: std::collections::BTreeSet<&str> =
        details.iter().filter_map(|d| d["field"].as_str()).collect();
    for f in ["value", "mass", "colour"] {
        assert!(fields.contains(f), "{f} missing from {details:?}");
    }
    assert!(details.iter().all(|d| d["index"] == 1), "{details:?}");
    // Duplicate ids within a batch are rejected too.
    let d = models().a.decls[2].clone();
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(&json!({ "declarations": [d.clone(), d] })),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_declaration")
    );
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn malformed_bodies_and_limits() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let key = Some(e.score_key.as_str());
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{\"decl_id\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (b"".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            b"[1, 2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"\"text\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"{\"declarations\": {}}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![0xff, 0xfe, 0x00],
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (body, want_status, want_code) in cases {
        let (status, resp, text) = call(&router, "POST", "/v1/score", key, Some(body)).await;
        assert_eq!(
            (status, error_code(&resp).as_str()),
            (want_status, want_code),
            "{text}"
        );
    }
    // 101 declarations with a batch limit of 100.
    let many: Vec<Value> = (0..101)
        .map(|i| json!({ "decl_id": format!("x{i}") }))
        .collect();
    let (status, resp, _) = call(
        &router,
        "POST",
        "/v1/score",
        key,
        json_body(&json!({ "declarations": many })),
    )
    .await;
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large")
    );
    // A body over the 64 KiB limit.
    let big = format!("{{\"decl_id\": \"{}\"}}", "x".repeat(70 * 1024));
    let (status, resp, _) = call(&router, "POST", "/v1/score", key, Some(big.into_bytes())).await;
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    // Unknown route and wrong method are JSON errors too.
    let (status, resp, _) = call(&router, "GET", "/v2/nothing", key, None).await;
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, resp, _) = call(&router, "GET", "/v1/score", key, None).await;
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn authentication_and_roles() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    let decl = json_body(&models().a.decls[0]);
    let unknown = format!("crk_0000000000000000_{}", "0".repeat(64));
    for key in [None, Some("garbage"), Some(unknown.as_str())] {
        let (status, body, text) = call(&router, "POST", "/v1/score", key, decl.clone()).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{text}"
        );
        let (status, _, _) = call(&router, "POST", "/v1/models/a/promote", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Each endpoint needs its own role.
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.admin_key),
        decl.clone(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/models/b/promote",
        Some(&e.score_key),
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, _, _) = call(&router, "GET", "/v1/models", Some(&e.score_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // X-Api-Key works as well as a bearer token.
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/score")
        .header("x-api-key", &e.score_key)
        .body(axum::body::Body::from(decl.unwrap()))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn admin_endpoints_promote_and_shadow() {
    let e = env(None);
    let s = state(&e);
    let router = app(s.clone());
    let decl = &models().a.decls[3];
    let id = decl["decl_id"].as_str().unwrap();
    // No champion yet: not ready, scoring refused.
    let (status, body, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "no_champion")
    );
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(decl),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "no_champion")
    );
    let (status, body, _) = call(&router, "GET", "/healthz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    let admin = Some(e.admin_key.as_str());
    let (status, body, text) = call(&router, "POST", "/v1/models/a/promote", admin, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        (body["version"].as_str(), body["status"].as_str()),
        (Some("a"), Some("champion"))
    );
    assert!(body["promoted_by"].as_str().unwrap().contains("ops"));
    let (status, body, _) = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(
        (status, body["champion"].as_str()),
        (StatusCode::OK, Some("a"))
    );

    // Challenger b in shadow: responses still come from a.
    let (status, _, text) = call(&router, "POST", "/v1/models/b/challenger", admin, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(decl),
    )
    .await;
    assert_eq!(
        (status, body["model_version"].as_str()),
        (StatusCode::OK, Some("a"))
    );
    assert_score("a", id, body["score"].as_f64().unwrap());
    assert!(body.get("shadow_score").is_none());
    s.flush_audit().await.unwrap();
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    let (v, sv, ss): (String, Option<String>, Option<f64>) = conn
        .query_row(
            "SELECT model_version, shadow_version, shadow_score FROM audit WHERE request_id = ?1",
            [body["request_id"].as_str().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((v.as_str(), sv.as_deref()), ("a", Some("b")));
    assert_score("b", id, ss.unwrap());

    // Promote the challenger over HTTP; answers switch to b, the shadow stops.
    let (status, _, _) = call(&router, "POST", "/v1/models/b/promote", admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body, _) = call(
        &router,
        "POST",
        "/v1/score",
        Some(&e.score_key),
        json_body(decl),
    )
    .await;
    assert_eq!(body["model_version"], "b");
    assert_score("b", id, body["score"].as_f64().unwrap());
    assert!(s.deployment().challenger.is_none());

    // Retire: the champion is refused, a is fine; unknown versions are 404.
    let (status, body, _) = call(&router, "POST", "/v1/models/b/retire", admin, None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, body, _) = call(&router, "POST", "/v1/models/a/retire", admin, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("retired"))
    );
    let (status, body, _) = call(&router, "POST", "/v1/models/nope/promote", admin, None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "model_not_found")
    );
    let (status, body, _) = call(&router, "GET", "/v1/models", admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["models"].as_array().map(Vec::len), Some(2));
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn tampered_model_promotion_is_refused_without_leaking_paths() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    std::fs::write(&e.b, b"replaced by an attacker").unwrap();
    let (status, body, text) = call(
        &router,
        "POST",
        "/v1/models/b/promote",
        Some(&e.admin_key),
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::CONFLICT, "model_integrity"),
        "{text}"
    );
    assert!(
        !text.contains(e.dir.path().to_str().unwrap()),
        "path leaked: {text}"
    );
    assert!(!text.contains(".onnx"), "file name leaked: {text}");
    assert_eq!(s.deployment().champion.as_ref().unwrap().meta.version, "a");
    s.audit().close().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_and_show_models() {
    let e = env(Some("a"));
    let s = state(&e);
    let router = app(s.clone());
    for _ in 0..3 {
        let _ = call(
            &router,
            "POST",
            "/v1/score",
            Some(&e.score_key),
            json_body(&models().a.decls[0]),
        )
        .await;
    }
    let _ = call(&router, "POST", "/v1/score", None, None).await;
    s.flush_audit().await.unwrap();
    let (status, _, text) = call(&router, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "customs_risk_http_requests_total{route=\"score\",status=\"200\"} 3",
        "customs_risk_http_requests_total{route=\"score\",status=\"401\"} 1",
        "customs_risk_http_request_duration_seconds_count{route=\"score\"} 4",
        "customs_risk_model_info{version=\"a\",role=\"champion\"} 1",
        "customs_risk_declarations_scored_total 3",
        "customs_risk_audit_records_written_total 3",
        "customs_risk_http_in_flight 1", // the /metrics request itself
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    s.audit().close().await.unwrap();
}
