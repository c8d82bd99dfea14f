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
//! | `GET /readyz` | — | a champion is loaded and the audit trail is writable (503 otherwise) |
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
use axum::extract::rejection::PathRejection;
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
    BodyTooLarge {
        limit: usize,
    },
    BatchTooLarge {
        len: usize,
        max: usize,
    },
    InvalidJson(String),
    InvalidRequest(String),
    InvalidDeclaration(Vec<FieldIssue>),
    NoChampion,
    ModelNotFound(String),
    Conflict(String),
    ModelIntegrity(String),
    /// The version's model file is missing or unreadable (409).
    ModelFileMissing(String),
    /// The champion's file no longer matches its registered hash (`/readyz` 503).
    ChampionIntegrity,
    ModelUnloadable(String),
    /// The request body did not arrive within [`crate::Limits::body_read_timeout`] (408).
    BodyTimeout,
    /// The key already has [`crate::Limits::per_key_concurrency`] requests in flight (429).
    TooManyRequests,
    /// The decision could not be committed to the audit trail: 503 with `Retry-After`.
    AuditUnavailable {
        retry_after_secs: u32,
    },
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
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NoChampion | ApiError::AuditUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Conflict(_)
            | ApiError::ModelIntegrity(_)
            | ApiError::ModelFileMissing(_)
            | ApiError::ModelUnloadable(_) => StatusCode::CONFLICT,
            ApiError::ChampionIntegrity => StatusCode::SERVICE_UNAVAILABLE,
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
            ApiError::ModelFileMissing(_) => "model_file_missing",
            ApiError::ChampionIntegrity => "champion_integrity",
            ApiError::ModelUnloadable(_) => "model_unloadable",
            ApiError::AuditUnavailable { .. } => "audit_unavailable",
            ApiError::TooManyRequests => "too_many_requests",
            ApiError::BodyTimeout => "body_timeout",
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
            ApiError::InvalidJson(m) => {
                format!("body is not valid JSON: {}", truncate(m, MAX_DETAIL_REASON_BYTES))
            }
            ApiError::InvalidRequest(m) => truncate(m, 2 * MAX_DETAIL_REASON_BYTES),
            ApiError::InvalidDeclaration(d) if d.len() > MAX_ERROR_DETAILS => format!(
                "{} problem(s) with the declaration(s); the first {MAX_ERROR_DETAILS} are in details",
                d.len()
            ),
            ApiError::InvalidDeclaration(d) => format!(
                "{} problem(s) with the declaration(s); see details",
                d.len()
            ),
            ApiError::NoChampion => "no champion model is deployed".into(),
            ApiError::ModelNotFound(v) => {
                format!("no model version {:?}", truncate(v, MAX_DETAIL_FIELD_BYTES))
            }
            ApiError::Conflict(m) => truncate(m, 2 * MAX_DETAIL_REASON_BYTES),
            ApiError::ModelIntegrity(v) => {
                format!(
                    "the model file of version {v:?} does not match its registered sha256; refused"
                )
            }
            ApiError::ModelFileMissing(v) => {
                format!("the model file of version {v:?} is missing or unreadable; refused")
            }
            ApiError::ChampionIntegrity => {
                "the champion's model file is missing or no longer matches its registered \
                 sha256; see the server log"
                    .into()
            }
            ApiError::ModelUnloadable(_) => {
                "the model could not be loaded; see the server log".into()
            }
            ApiError::BodyTimeout => "the request body did not arrive in time".into(),
            ApiError::TooManyRequests => {
                "too many concurrent requests with this API key; retry shortly".into()
            }
            ApiError::AuditUnavailable { retry_after_secs } => format!(
                "the decision could not be recorded in the audit trail, so it is not returned; \
                 retry in {retry_after_secs} s"
            ),
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

/// Most field problems listed in an error body (the message gives the total).
pub const MAX_ERROR_DETAILS: usize = 20;
/// Longest field name / reason in an error body, in bytes.
const MAX_DETAIL_FIELD_BYTES: usize = 64;
const MAX_DETAIL_REASON_BYTES: usize = 160;

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Error bodies stay small whatever the request: at most [`MAX_ERROR_DETAILS`] problems,
/// each with a truncated field name and reason.
fn bounded_details(d: &[FieldIssue]) -> Vec<FieldIssue> {
    d.iter()
        .take(MAX_ERROR_DETAILS)
        .map(|i| FieldIssue {
            index: i.index,
            field: i
                .field
                .as_deref()
                .map(|f| truncate(f, MAX_DETAIL_FIELD_BYTES)),
            reason: truncate(&i.reason, MAX_DETAIL_REASON_BYTES),
        })
        .collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let details = match &self {
            ApiError::InvalidDeclaration(d) => Some(bounded_details(d)),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorInner {
                code: self.code(),
                message: self.message(),
                details: details.as_deref(),
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        });
        let mut resp = json_response(self.status(), bytes);
        let retry = match self {
            ApiError::AuditUnavailable { retry_after_secs } => Some(retry_after_secs),
            ApiError::TooManyRequests => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
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
            ServiceError::ModelFileMissing { ref version, .. } => {
                tracing::error!(error = %e, "model file missing");
                ApiError::ModelFileMissing(version.clone())
            }
            ServiceError::Model { ref path, .. } | ServiceError::Card { ref path, .. } => {
                tracing::error!(error = %e, "model could not be loaded");
                ApiError::ModelUnloadable(
                    path.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            }
            ServiceError::NoChampion => ApiError::NoChampion,
            ServiceError::AuditUnavailable(ref m) => {
                tracing::warn!(error = %m, "audit trail unavailable");
                ApiError::AuditUnavailable {
                    retry_after_secs: crate::audit::AuditConfig::default().retry_after_secs,
                }
            }
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
    if !state.audit().healthy() {
        return ApiError::AuditUnavailable {
            retry_after_secs: state.audit().config().retry_after_secs,
        }
        .into_response();
    }
    if !state.champion_intact() {
        return ApiError::ChampionIntegrity.into_response();
    }
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
    let text = state.metrics().render(&models, state.audit().stats());
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
    channel: &'a str,
    /// Under a policy: `rule`, `model`, `random` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    stratum: Option<&'static str>,
    /// Under a policy: the probability that this declaration is selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    propensity: Option<f64>,
    /// Under a policy: the names of the rules that fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<&'a [String]>,
    model_version: &'a str,
    request_id: &'a str,
}

#[derive(Serialize)]
struct BatchOut<'a> {
    request_id: &'a str,
    model_version: &'a str,
    results: Vec<ResultOut<'a>>,
}

/// Builds a [`Value`] like serde_json does, but refuses an object with a repeated key (which
/// serde_json resolves silently to the last one).
struct StrictValue;

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                // The key itself is not echoed; serde_json adds line and column.
                return Err(serde::de::Error::custom("duplicate key in an object"));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parse JSON, refusing duplicate keys at any depth.
pub fn parse_json_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Declarations whose id or any text value or field name is longer than the limits.
fn check_lengths(
    records: &[Value],
    id_column: Option<&str>,
    max_id: usize,
    max_text: usize,
) -> Result<(), ApiError> {
    let mut issues = Vec::new();
    for (index, r) in records.iter().enumerate() {
        let Value::Object(map) = r else { continue };
        for (k, v) in map {
            if k.len() > max_text {
                issues.push(FieldIssue {
                    index,
                    field: None,
                    reason: format!("a field name is longer than {max_text} bytes"),
                });
                continue;
            }
            let (max, what) = if Some(k.as_str()) == id_column {
                (max_id, "the declaration id")
            } else {
                (max_text, "a text value")
            };
            let len = match v {
                Value::String(s) => s.len(),
                // Numbers are short; arrays and objects are refused by the schema check.
                _ => 0,
            };
            if len > max {
                issues.push(FieldIssue {
                    index,
                    field: Some(k.clone()),
                    reason: format!("{what} is {len} bytes; at most {max}"),
                });
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidDeclaration(issues))
    }
}

/// The declarations of a request body, and whether it was a batch.
fn parse_body(bytes: &[u8], max_batch: usize) -> Result<(Vec<Value>, bool), ApiError> {
    let value: Value =
        parse_json_strict(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
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

/// The whole body, at most `limit` bytes, within `deadline` (in total, not per read).
async fn read_body(
    body: axum::body::Body,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(deadline, limited.collect()).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::BodyTooLarge { limit })
        }
        Ok(Err(_)) => Err(ApiError::InvalidRequest(
            "could not read the request body".into(),
        )),
    }
}

async fn score(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    // Per-key concurrency: taken before the body is read, so slow bodies count too.
    let _slot = state
        .key_slot(&caller.key_id)
        .ok_or(ApiError::TooManyRequests)?;
    let limits = state.limits();
    let bytes = read_body(body, limits.max_body_bytes, limits.body_read_timeout).await?;
    let (records, batch) = parse_body(&bytes, state.limits().max_batch)?;
    drop(bytes);
    let dep = state.deployment();
    let Some(champion) = dep.champion.clone() else {
        return Err(ApiError::NoChampion);
    };
    check_lengths(
        &records,
        champion.scorer.id_column(),
        limits.max_id_bytes,
        limits.max_text_bytes,
    )?;
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
            channel: d.channel.clone(),
            shadow_version: d.shadow_score.and(shadow_version.clone()),
            shadow_score: d.shadow_score.map(f64::from),
            stratum: d.targeting.as_ref().map(|t| t.stratum.as_str().to_string()),
            propensity: d.targeting.as_ref().map(|t| t.propensity),
            rules: d.targeting.as_ref().map(|t| t.rules.join(";")),
        })
        .collect();
    // A decision that cannot be recorded is not returned: the handler answers only after the
    // records are committed.
    state.audit().append(records).await.map_err(|e| match e {
        ServiceError::AuditUnavailable(m) => {
            tracing::warn!(error = %m, "decision not recorded; answering 503");
            ApiError::AuditUnavailable {
                retry_after_secs: state.audit().config().retry_after_secs,
            }
        }
        e => {
            tracing::error!(error = %e, "audit append failed");
            ApiError::Internal
        }
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
            channel: &d.channel,
            stratum: d.targeting.as_ref().map(|t| t.stratum.as_str()),
            propensity: d.targeting.as_ref().map(|t| t.propensity),
            rules: d.targeting.as_ref().map(|t| t.rules.as_slice()),
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
        DecideError::Score(ScoreError::Internal(cause)) => {
            tracing::error!(error = %crate::error::with_causes(cause.as_ref()), "scoring failed");
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
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [
            &br#"{"a": 1, "a": 2}"#[..],
            br#"{"declarations": [{"decl_id": "x", "decl_id": "y"}]}"#,
            br#"{"declarations": [], "declarations": []}"#,
        ] {
            let err = parse_body(body, 10).unwrap_err();
            let ApiError::InvalidJson(m) = &err else {
                panic!("{err:?}")
            };
            assert!(m.contains("duplicate key"), "{m}");
            // The message names the place, not the key.
            assert!(!m.contains("decl_id"), "{m}");
        }
        let v = parse_json_strict(br#"{"a": [1, 2.5, "x", null, true, {"b": -3}]}"#).unwrap();
        let want: Value =
            serde_json::from_str(r#"{"a": [1, 2.5, "x", null, true, {"b": -3}]}"#).unwrap();
        assert_eq!(v, want);
        assert!(parse_json_strict(b"{} x").is_err());
    }

    #[test]
    fn lengths_are_bounded() {
        let ok = serde_json::json!({"decl_id": "a".repeat(64), "origin": "b".repeat(256)});
        assert!(check_lengths(&[ok], Some("decl_id"), 64, 256).is_ok());
        let long_id = serde_json::json!({"decl_id": "a".repeat(65)});
        let Err(ApiError::InvalidDeclaration(d)) =
            check_lengths(&[long_id], Some("decl_id"), 64, 256)
        else {
            panic!()
        };
        assert_eq!(d[0].field.as_deref(), Some("decl_id"));
        let long_text = serde_json::json!({"decl_id": "a", "origin": "é".repeat(129)});
        assert!(check_lengths(&[long_text], Some("decl_id"), 64, 256).is_err());
        let mut m = serde_json::Map::new();
        m.insert("k".repeat(257), Value::from(1));
        let long_key = Value::Object(m);
        assert!(check_lengths(&[long_key], Some("decl_id"), 64, 256).is_err());
    }

    #[test]
    fn error_details_are_bounded() {
        let issues: Vec<FieldIssue> = (0..1000)
            .map(|i| FieldIssue {
                index: i,
                field: Some("f".repeat(10_000)),
                reason: "r".repeat(10_000),
            })
            .collect();
        let resp = ApiError::InvalidDeclaration(issues).into_response();
        let (_, body) = resp.into_parts();
        let bytes = futures_body(body);
        assert!(bytes.len() < 8 * 1024, "{} bytes", bytes.len());
        assert_eq!(truncate("ééé", 3), "é…");
    }

    fn futures_body(body: axum::body::Body) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap()
                .to_vec()
        })
    }

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
