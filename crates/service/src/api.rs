//! HTTP API: routes, authentication, handlers, and the JSON error type.
//!
//! | route | role | what |
//! |---|---|---|
//! | `POST /v1/score` | score | one declaration (object) or `{"declarations": [...]}` |
//! | `GET /v1/models` | admin | registered versions |
//! | `POST /v1/models/{version}/promote` | admin | make champion (atomic swap) |
//! | `POST /v1/models/{version}/retire` | admin | retire (not the champion) |
//! | `POST /v1/models/{version}/challenger` | admin | score in shadow |
//! | `DELETE /v1/challenger` | admin | stop shadow scoring |
//! | `GET /healthz` | — | process up |
//! | `GET /readyz` | — | a champion is loaded (503 otherwise) |
//! | `GET /metrics` | — | Prometheus text |
//! | `GET /v1/openapi.json` | — | the OpenAPI 3.1 document ([`OPENAPI`], `api/openapi.json`) |
//! | `GET /` | — | the endpoints (from the OpenAPI document) and where the docs are |
//!
//! Keys go in `Authorization: Bearer <key>` or `X-Api-Key: <key>`. Every error body is
//! `{"error": {"code": "...", "message": "..."}}` (plus `details` for invalid declarations);
//! codes are stable, messages never carry internal detail (paths, SQL, model internals),
//! which is logged instead.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;

use crate::audit::AuditRecord;
use crate::db::now_rfc3339;
use crate::error::ServiceError;
use crate::keys::{Caller, Role};
use crate::metrics::Route;
use crate::scorer::{FieldIssue, ScoreError};
use crate::state::{decide, AppState, DecideError, Decision};

/// The OpenAPI 3.1 document of this API, served at `GET /v1/openapi.json`: the one description
/// of every route, request and response (the index at `GET /` is read from it; a test checks
/// live responses against it).
pub const OPENAPI: &str = include_str!("../api/openapi.json");

/// An HTTP error with a stable code.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    BodyTooLarge { limit: usize },
    BatchTooLarge { len: usize, max: usize },
    InvalidJson(String),
    InvalidRequest(String),
    InvalidDeclaration(Vec<FieldIssue>),
    NoChampion,
    ModelNotFound(String),
    Conflict(String),
    ModelIntegrity(String),
    ModelUnloadable(String),
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge { .. } | ApiError::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::InvalidJson(_) | ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidDeclaration(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NoChampion => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) | ApiError::ModelIntegrity(_) | ApiError::ModelUnloadable(_) => {
                StatusCode::CONFLICT
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BatchTooLarge { .. } => "batch_too_large",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidDeclaration(_) => "invalid_declaration",
            ApiError::NoChampion => "no_champion",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::ModelIntegrity(_) => "model_integrity",
            ApiError::ModelUnloadable(_) => "model_unloadable",
            ApiError::Internal => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Unauthorized => "missing or unknown API key".into(),
            ApiError::Forbidden => "this API key's role may not use this endpoint".into(),
            ApiError::NotFound => "no such endpoint".into(),
            ApiError::MethodNotAllowed => "method not allowed on this endpoint".into(),
            ApiError::BodyTooLarge { limit } => format!("request body exceeds {limit} bytes"),
            ApiError::BatchTooLarge { len, max } => {
                format!("{len} declarations in one request; at most {max}")
            }
            ApiError::InvalidJson(m) => format!("body is not valid JSON: {m}"),
            ApiError::InvalidRequest(m) => m.clone(),
            ApiError::InvalidDeclaration(d) => format!(
                "{} problem(s) with the declaration(s); see details",
                d.len()
            ),
            ApiError::NoChampion => "no champion model is deployed".into(),
            ApiError::ModelNotFound(v) => format!("no model version {v:?}"),
            ApiError::Conflict(m) => m.clone(),
            ApiError::ModelIntegrity(v) => {
                format!(
                    "the model file of version {v:?} does not match its registered sha256; refused"
                )
            }
            ApiError::ModelUnloadable(_) => {
                "the model could not be loaded; see the server log".into()
            }
            ApiError::Internal => "internal error; see the server log".into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [FieldIssue]>,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let details = match &self {
            ApiError::InvalidDeclaration(d) => Some(d.as_slice()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorInner {
                code: self.code(),
                message: self.message(),
                details,
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        });
        json_response(self.status(), bytes)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::UnknownVersion { version } => ApiError::ModelNotFound(version),
            ServiceError::Conflict(m) => ApiError::Conflict(m),
            ServiceError::Invalid(m) => ApiError::InvalidRequest(m),
            ServiceError::HashMismatch { ref version, .. } => {
                tracing::error!(error = %e, "model integrity check failed");
                ApiError::ModelIntegrity(version.clone())
            }
            ServiceError::Model { ref path, .. } => {
                tracing::error!(error = %e, "model could not be loaded");
                ApiError::ModelUnloadable(
                    path.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            }
            ServiceError::NoChampion => ApiError::NoChampion,
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::Internal
            }
        }
    }
}

/// The router. Tests call it with `tower::ServiceExt::oneshot`; [`crate::server::run`] serves it.
pub fn app(state: AppState) -> Router {
    let limit = state.limits().max_body_bytes;
    let score_routes = Router::new()
        .route("/v1/score", post(score))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_score));
    let admin_routes = Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{version}/promote", post(promote))
        .route("/v1/models/{version}/retire", post(retire))
        .route("/v1/models/{version}/challenger", post(set_challenger))
        .route("/v1/challenger", delete(clear_challenger))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/", get(index))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(score_routes)
        .merge(admin_routes)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("handler panicked");
                ApiError::Internal.into_response()
            },
        ))
        .with_state(state)
}

fn route_of(path: &str) -> Route {
    match path {
        "/v1/score" => Route::Score,
        "/healthz" | "/readyz" => Route::Health,
        "/metrics" => Route::Metrics,
        p if p.starts_with("/v1/models") || p.starts_with("/v1/challenger") => Route::Admin,
        _ => Route::Other,
    }
}

/// Metrics: in-flight gauge, status counts, latency histogram.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let start = Instant::now();
    let metrics = state.metrics();
    metrics.enter();
    // Decrement in-flight even if the client goes away mid-request (the future is dropped).
    struct Guard<'a>(&'a crate::metrics::Metrics, Route, Instant, Option<u16>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0
                .leave(self.1, self.3.unwrap_or(499), self.2.elapsed());
        }
    }
    let mut guard = Guard(metrics, route, start, None);
    let resp = next.run(req).await;
    guard.3 = Some(resp.status().as_u16());
    drop(guard);
    resp
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

async fn authorize(state: &AppState, mut req: Request, next: Next, role: Role) -> Response {
    let Some(caller) = presented_key(req.headers()).and_then(|k| state.authenticate(k)) else {
        return ApiError::Unauthorized.into_response();
    };
    if caller.role != role {
        return ApiError::Forbidden.into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn require_score(State(state): State<AppState>, req: Request, next: Next) -> Response {
    authorize(&state, req, next, Role::Score).await
}

async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    authorize(&state, req, next, Role::Admin).await
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, OPENAPI.as_bytes().to_vec())
}

/// `GET /`: every endpoint with its summary, read from [`OPENAPI`] once.
async fn index() -> Response {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap_or(Value::Null);
        let mut endpoints = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (path, ops) in paths {
                for (method, op) in ops.as_object().into_iter().flatten() {
                    endpoints.push(serde_json::json!({
                        "method": method.to_uppercase(),
                        "path": path,
                        "summary": op.get("summary").and_then(Value::as_str).unwrap_or(""),
                    }));
                }
            }
        }
        serde_json::to_vec(&serde_json::json!({
            "service": "customs-risk scoring service",
            "openapi": "/v1/openapi.json",
            "docs": "README.md, section \"HTTP API\" (request and response JSON, error codes, a curl walk-through)",
            "endpoints": endpoints,
        }))
        .unwrap_or_default()
    });
    json_response(StatusCode::OK, body.clone())
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let dep = state.deployment();
    match &dep.champion {
        Some(c) => {
            let body = serde_json::json!({"status": "ready", "champion": c.meta.version});
            json_response(StatusCode::OK, body.to_string().into_bytes())
        }
        None => ApiError::NoChampion.into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let dep = state.deployment();
    let mut models = Vec::new();
    if let Some(c) = &dep.champion {
        models.push((c.meta.version.as_str(), "champion"));
    }
    if let Some(c) = &dep.challenger {
        models.push((c.meta.version.as_str(), "challenger"));
    }
    let a = state.audit().stats();
    let audit = (
        a.written.load(std::sync::atomic::Ordering::Relaxed),
        a.write_errors.load(std::sync::atomic::Ordering::Relaxed),
        a.healthy.load(std::sync::atomic::Ordering::Relaxed),
    );
    let text = state.metrics().render(&models, audit);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

#[derive(Serialize)]
struct ResultOut<'a> {
    declaration_id: &'a str,
    score: f32,
    percentile: Option<f64>,
    channel: &'static str,
    model_version: &'a str,
    request_id: &'a str,
}

#[derive(Serialize)]
struct BatchOut<'a> {
    request_id: &'a str,
    model_version: &'a str,
    results: Vec<ResultOut<'a>>,
}

/// The declarations of a request body, and whether it was a batch.
fn parse_body(bytes: &[u8], max_batch: usize) -> Result<(Vec<Value>, bool), ApiError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    match value {
        Value::Object(mut map) if map.contains_key("declarations") => {
            if map.len() != 1 {
                return Err(ApiError::InvalidRequest(
                    "a batch body must have only the field `declarations`".into(),
                ));
            }
            match map.remove("declarations") {
                Some(Value::Array(records)) if records.len() > max_batch => {
                    Err(ApiError::BatchTooLarge {
                        len: records.len(),
                        max: max_batch,
                    })
                }
                Some(Value::Array(records)) => Ok((records, true)),
                _ => Err(ApiError::InvalidRequest(
                    "`declarations` must be an array of declaration objects".into(),
                )),
            }
        }
        Value::Object(map) => Ok((vec![Value::Object(map)], false)),
        _ => Err(ApiError::InvalidRequest(
            "body must be one declaration (a JSON object) or {\"declarations\": [...]}".into(),
        )),
    }
}

async fn score(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|rej| match rej.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge {
            limit: state.limits().max_body_bytes,
        },
        _ => ApiError::InvalidRequest("could not read the request body".into()),
    })?;
    let (records, batch) = parse_body(&bytes, state.limits().max_batch)?;
    drop(bytes);
    let dep = state.deployment();
    let Some(champion) = dep.champion.clone() else {
        return Err(ApiError::NoChampion);
    };
    let n = records.len();
    let decisions: Vec<Decision> = if n == 0 {
        Vec::new()
    } else if n <= state.limits().inline_max_declarations {
        decide(&dep, &records).map_err(decide_error)?
    } else {
        let permit = state
            .inner
            .blocking
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal)?;
        let dep = std::sync::Arc::clone(&dep);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            decide(&dep, &records)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "scoring task failed");
            ApiError::Internal
        })?
        .map_err(decide_error)?
    };
    let request_id = state.next_request_id();
    let version = champion.meta.version.as_str();
    let shadow_version = dep.challenger.as_ref().map(|c| c.meta.version.clone());
    let at = now_rfc3339();
    let records: Vec<AuditRecord> = decisions
        .iter()
        .map(|d| AuditRecord {
            at: at.clone(),
            key_id: caller.key_id.clone(),
            request_id: request_id.clone(),
            declaration_id: d.declaration_id.clone(),
            model_version: version.to_string(),
            score: f64::from(d.score),
            percentile: d.percentile,
            channel: d.channel.as_str().to_string(),
            shadow_version: d.shadow_score.and(shadow_version.clone()),
            shadow_score: d.shadow_score.map(f64::from),
        })
        .collect();
    // A decision that cannot be recorded is not returned.
    state.audit().append(records).await.map_err(|e| {
        tracing::error!(error = %e, "audit append failed");
        ApiError::Internal
    })?;
    state
        .metrics()
        .declarations_scored
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    let results: Vec<ResultOut<'_>> = decisions
        .iter()
        .map(|d| ResultOut {
            declaration_id: &d.declaration_id,
            score: d.score,
            percentile: d.percentile,
            channel: d.channel.as_str(),
            model_version: version,
            request_id: &request_id,
        })
        .collect();
    let body = if batch {
        serde_json::to_vec(&BatchOut {
            request_id: &request_id,
            model_version: version,
            results,
        })
    } else {
        match results.first() {
            Some(r) => serde_json::to_vec(r),
            None => return Err(ApiError::Internal),
        }
    }
    .map_err(|_| ApiError::Internal)?;
    let mut resp = json_response(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

fn decide_error(e: DecideError) -> ApiError {
    match e {
        DecideError::NoChampion => ApiError::NoChampion,
        DecideError::Score(ScoreError::Invalid(issues)) => ApiError::InvalidDeclaration(issues),
        DecideError::Score(ScoreError::Internal(m)) => {
            tracing::error!(error = %m, "scoring failed");
            ApiError::Internal
        }
    }
}

fn ok_json<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|_| ApiError::Internal)?;
    Ok(json_response(StatusCode::OK, body))
}

fn who(caller: &Caller) -> String {
    format!("{} (key {})", caller.name, caller.key_id)
}

fn version_of(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|_| ApiError::InvalidRequest("bad model version in path".into()))
}

async fn list_models(State(state): State<AppState>) -> Result<Response, ApiError> {
    let models = state.list_models().await?;
    ok_json(&serde_json::json!({ "models": models }))
}

async fn promote(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    version: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let version = version_of(version)?;
    let mv = state.promote(&version, &who(&caller)).await?;
    tracing::info!(version = %mv.version, by = %who(&caller), "promoted");
    ok_json(&mv)
}

async fn retire(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    version: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let version = version_of(version)?;
    let mv = state.retire(&version, &who(&caller)).await?;
    tracing::info!(version = %mv.version, by = %who(&caller), "retired");
    ok_json(&mv)
}

async fn set_challenger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    version: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let version = version_of(version)?;
    let mv = state.set_challenger(&version, &who(&caller)).await?;
    tracing::info!(version = %mv.version, by = %who(&caller), "challenger set");
    ok_json(&mv)
}

async fn clear_challenger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    state.clear_challenger(&who(&caller)).await?;
    ok_json(&serde_json::json!({ "challenger": null }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shapes() {
        assert!(matches!(
            parse_body(b"{", 10),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_body(b"[1]", 10),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_body(b"{\"declarations\": 3}", 10),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_body(b"{\"declarations\": [], \"x\": 1}", 10),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_body(b"{\"declarations\": [{},{},{}]}", 2),
            Err(ApiError::BatchTooLarge { len: 3, max: 2 })
        ));
        let (r, batch) = parse_body(b"{\"id\": \"a\"}", 2).unwrap();
        assert!(!batch);
        assert_eq!(r.len(), 1);
        let (r, batch) = parse_body(b"{\"declarations\": [{}, {}]}", 2).unwrap();
        assert!(batch);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn key_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static(" k1 "));
        assert_eq!(presented_key(&h), Some("k1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k2"));
        assert_eq!(presented_key(&h), Some("k2"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic k2"));
        assert_eq!(presented_key(&h), None);
    }
}
