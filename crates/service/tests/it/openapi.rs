//! The OpenAPI document (`api/openapi.json`, served at `GET /v1/openapi.json`) against the
//! real router: every endpoint and every error status the router answers is recorded, then
//! `tests/support/check_openapi.py` validates each live response (and the request bodies that
//! succeeded) against the document's schemas with `jsonschema`, and fails when an operation of
//! the document was never answered with 2xx. A field added to a response without the
//! document (or the other way round) fails here.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use cr_service::app;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::{env, models, state};

/// One recorded exchange, in the shape check_openapi.py reads.
async fn record(
    samples: &mut Vec<Value>,
    router: &Router,
    method: &str,
    (path, template): (&str, &str),
    key: Option<&str>,
    request: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = match &request {
        Some(Value::String(raw)) => Body::from(raw.clone()),
        Some(v) => Body::from(serde_json::to_vec(v).unwrap()),
        None => Body::empty(),
    };
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let parsed = if ctype.starts_with("application/json") {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e})"))
    } else {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    samples.push(json!({
        "method": method,
        "path": template,
        "status": status.as_u16(),
        "content_type": ctype,
        "body": parsed,
        "request": match request { Some(Value::String(_)) | None => Value::Null, Some(v) => v },
    }));
    (status, parsed)
}

#[tokio::test]
async fn live_responses_match_the_openapi_document() {
    let m = models();
    let mut samples = Vec::new();
    let s = &mut samples;

    // No champion yet: readyz and score answer 503.
    let e0 = env(None);
    let st0 = state(&e0);
    let r0 = app(st0.clone());
    let decl = m.a.decls[0].clone();
    let (st, _) = record(s, &r0, "GET", ("/readyz", "/readyz"), None, None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    let (st, _) = record(
        s,
        &r0,
        "POST",
        ("/v1/score", "/v1/score"),
        Some(&e0.score_key),
        Some(decl.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    st0.audit().close().await.unwrap();

    let e = env(Some("a"));
    let st = state(&e);
    let r = app(st.clone());
    let (sk, ak) = (e.score_key.as_str(), e.admin_key.as_str());
    let score = ("/v1/score", "/v1/score");
    let mut expect = Vec::new();
    expect.push((record(s, &r, "GET", ("/", "/"), None, None).await.0, 200));
    let (code, doc) = record(
        s,
        &r,
        "GET",
        ("/v1/openapi.json", "/v1/openapi.json"),
        None,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(cr_service::api::OPENAPI).unwrap()
    );
    for p in ["/healthz", "/readyz", "/metrics"] {
        expect.push((record(s, &r, "GET", (p, p), None, None).await.0, 200));
    }
    // score: one, a batch, and every error the route answers
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(decl.clone()))
            .await
            .0,
        200,
    ));
    let batch = json!({ "declarations": m.a.decls.iter().take(5).collect::<Vec<_>>() });
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(batch)).await.0,
        200,
    ));
    expect.push((
        record(s, &r, "POST", score, None, Some(decl.clone()))
            .await
            .0,
        401,
    ));
    expect.push((
        record(s, &r, "POST", score, Some(ak), Some(decl.clone()))
            .await
            .0,
        403,
    ));
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(json!("{not json")))
            .await
            .0,
        400,
    ));
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(json!([1, 2])))
            .await
            .0,
        400,
    ));
    let mut bad = decl.clone();
    bad["value"] = json!(-5.0);
    bad["colour"] = json!("red");
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(bad)).await.0,
        422,
    ));
    let too_many = json!({ "declarations": vec![decl.clone(); 101] });
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(too_many))
            .await
            .0,
        413,
    ));
    let huge = json!({ "declarations": [{ "decl_id": "x".repeat(70 * 1024) }] });
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(huge)).await.0,
        413,
    ));
    expect.push((
        record(s, &r, "PUT", ("/v1/score", "*"), Some(sk), None)
            .await
            .0,
        405,
    ));
    expect.push((
        record(s, &r, "GET", ("/nope", "*"), None, None).await.0,
        404,
    ));
    // admin
    let models_ = ("/v1/models", "/v1/models");
    expect.push((record(s, &r, "GET", models_, Some(ak), None).await.0, 200));
    expect.push((record(s, &r, "GET", models_, Some(sk), None).await.0, 403));
    let promote = "/v1/models/{version}/promote";
    let challenger = "/v1/models/{version}/challenger";
    let retire = "/v1/models/{version}/retire";
    expect.push((
        record(
            s,
            &r,
            "POST",
            ("/v1/models/b/promote", promote),
            Some(ak),
            None,
        )
        .await
        .0,
        200,
    ));
    expect.push((
        record(
            s,
            &r,
            "POST",
            ("/v1/models/zz/promote", promote),
            Some(ak),
            None,
        )
        .await
        .0,
        404,
    ));
    expect.push((
        record(
            s,
            &r,
            "POST",
            ("/v1/models/a/challenger", challenger),
            Some(ak),
            None,
        )
        .await
        .0,
        200,
    ));
    // the challenger answers in shadow: the response still has the champion's shape
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(decl.clone()))
            .await
            .0,
        200,
    ));
    expect.push((
        record(
            s,
            &r,
            "POST",
            ("/v1/models/b/retire", retire),
            Some(ak),
            None,
        )
        .await
        .0,
        409,
    ));
    expect.push((
        record(
            s,
            &r,
            "DELETE",
            ("/v1/challenger", "/v1/challenger"),
            Some(ak),
            None,
        )
        .await
        .0,
        200,
    ));
    expect.push((
        record(
            s,
            &r,
            "POST",
            ("/v1/models/a/retire", retire),
            Some(ak),
            None,
        )
        .await
        .0,
        200,
    ));
    // a champion with a targeting policy: channel, stratum, propensity and rules appear
    let policy = crate::policy::write_policy(e.dir.path(), crate::policy::POLICY);
    cr_service::Registry::open(&e.db)
        .unwrap()
        .register(
            &e.a,
            &cr_service::RegisterOptions {
                policy: Some(policy),
                ..crate::support::opts("gbdt", "pa")
            },
        )
        .unwrap();
    expect.push((
        record(
            s,
            &r,
            "POST",
            ("/v1/models/pa/promote", promote),
            Some(ak),
            None,
        )
        .await
        .0,
        200,
    ));
    expect.push((record(s, &r, "GET", models_, Some(ak), None).await.0, 200));
    let batch = json!({ "declarations": m.a.decls.iter().take(20).collect::<Vec<_>>() });
    expect.push((
        record(s, &r, "POST", score, Some(sk), Some(batch)).await.0,
        200,
    ));
    let (code, body) = record(s, &r, "POST", score, Some(sk), Some(decl.clone())).await;
    expect.push((code, 200));
    assert!(
        body.get("stratum").is_some() && body.get("propensity").is_some(),
        "{body}"
    );
    st.audit().close().await.unwrap();
    let got: Vec<u16> = expect.iter().map(|(c, _)| c.as_u16()).collect();
    let want: Vec<u16> = expect.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want, "statuses of the recorded calls");

    let dir = tempfile::tempdir().unwrap();
    let samples_path = dir.path().join("samples.json");
    std::fs::write(&samples_path, serde_json::to_vec_pretty(&samples).unwrap()).unwrap();
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.json");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/check_openapi.py"
    );
    let out = std::process::Command::new("python3")
        .args([script, doc_path])
        .arg(&samples_path)
        .output()
        .expect("python3 with jsonschema (scripts/requirements-test.txt)");
    assert!(
        out.status.success(),
        "live responses do not match api/openapi.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_index_lists_every_documented_endpoint() {
    let e = env(None);
    let st = state(&e);
    let r = app(st.clone());
    let mut s = Vec::new();
    let (code, index) = record(&mut s, &r, "GET", ("/", "/"), None, None).await;
    assert_eq!(code, StatusCode::OK);
    let doc: Value = serde_json::from_str(cr_service::api::OPENAPI).unwrap();
    let mut want: Vec<String> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            want.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    let got: Vec<String> = index["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(got.contains(&"POST /v1/score".to_string()));
    assert_eq!(index["openapi"], "/v1/openapi.json");
    st.audit().close().await.unwrap();
}
