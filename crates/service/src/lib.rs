//! `cr-service`: the HTTP scoring service, the SQLite model registry, API keys and the audit
//! trail.
//!
//! Owns: `POST /v1/score` (champion answers, challenger in shadow), model registration /
//! promotion / retirement with sha256 integrity checks, API keys (salted hashes, roles
//! `score` and `admin`), the append-only audit trail and its export, Prometheus metrics,
//! graceful shutdown.
//!
//! Must not: link training code (`cr-train`, `cr-gbdt`, `cr-linear`) — checked by
//! `tests/it/deps.rs` and `crates/service/check-deps.sh`; run CPU-bound
//! scoring of large requests on the async runtime (they go to `spawn_blocking` behind a
//! semaphore; requests of at most [`Limits::inline_max_declarations`] declarations are scored
//! inline because that is cheaper than the hand-off); write SQLite on the request path (audit
//! records go through a channel to one writer thread, and the handler waits for their group
//! commit before answering); send internal error detail to clients.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cr_service::ServiceError> {
//! use cr_service::{run, shutdown_signal, Registry, RegisterOptions, Role, ServeConfig, ThresholdSpec};
//! let mut reg = Registry::open("registry.db".as_ref())?;
//! let mv = reg.register("models/gbdt.onnx".as_ref(), &RegisterOptions {
//!     name: "gbdt".into(), version: None, thresholds: ThresholdSpec::default(),
//!     registered_by: "alice".into(), policy: None,
//! })?;
//! reg.promote(&mv.version, "alice")?;
//! let key = reg.create_key(Role::Score, "lodgement-gateway")?; // print key.key once
//! run(ServeConfig::new("registry.db", "127.0.0.1:8080".parse().unwrap()), shutdown_signal()).await
//! # }
//! ```

pub mod api;
pub mod audit;
pub mod chain;
pub mod db;
mod error;
pub mod infer;
pub mod keys;
pub mod metrics;
pub mod registry;
pub mod scorer;
pub mod server;
pub mod state;
pub mod targeting;

pub use api::{app, ApiError};
pub use audit::{
    export as export_audit, export_with as export_audit_with, AuditConfig, AuditRecord, AuditRow,
    AuditWriter, ExportFormat, ExportOptions,
};
pub use chain::{verify as verify_audit, ChainReport, VerifyReport};
pub use error::ServiceError;
pub use infer::InferLoader;
pub use keys::{Caller, KeyInfo, KeyStore, NewKey, Role};
pub use registry::{
    Channel, ModelEvent, ModelStatus, ModelVersion, RegisterOptions, Registry, ThresholdSpec,
    Thresholds,
};
pub use scorer::{FieldIssue, ModelLoader, RiskScorer, ScoreError, Scored};
pub use server::{
    init_tracing, run, serve, shutdown_signal, ConnectionLimits, LogFormat, ServeConfig,
};
pub use state::{AppState, Limits};
pub use targeting::{StoredPolicy, Targeted, Targeting};
