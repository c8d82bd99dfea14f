//! Errors of the service library (registry, keys, audit, model loading).
//!
//! HTTP errors are a separate typed enum ([`crate::api::ApiError`]) that maps these to stable
//! codes without leaking internal detail to clients.

use std::path::PathBuf;

/// Everything that can go wrong in the registry, key store, audit trail or model loading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// SQLite failed (open, query, constraint, trigger abort).
    #[error("{context}: {source}")]
    Db {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The model file on disk no longer has the sha256 recorded at registration.
    #[error("model {version}: file {path} has sha256 {actual}, registered {expected}; refusing to use it")]
    HashMismatch {
        version: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The model file of a version cannot be read (missing, unreadable).
    #[error("model {version}: file {path} cannot be read: {source}")]
    ModelFileMissing {
        version: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No model version of that name in the registry.
    #[error("no model version {version:?} in the registry")]
    UnknownVersion { version: String },
    /// The operation conflicts with the version's state (e.g. promoting a retired version).
    #[error("{0}")]
    Conflict(String),
    /// Invalid argument (thresholds, names, dates, ...).
    #[error("{0}")]
    Invalid(String),
    /// The model could not be loaded or scored by the inference engine.
    #[error("model {}: {source}", path.display())]
    Model {
        path: PathBuf,
        #[source]
        source: crate::scorer::LoadError,
    },
    /// The model file's card or reference scores cannot be read (e.g. a card of a newer
    /// customs-risk).
    #[error("model {}: {source}", path.display())]
    Card {
        path: PathBuf,
        #[source]
        source: cr_model::ModelError,
    },
    /// The version's targeting policy is refused (a rule over a field the model's schema
    /// lacks, a watch list that cannot be loaded, ...): the policy error names the file, line,
    /// column and rule.
    #[error("policy {}: {source}", path.display())]
    Policy {
        path: PathBuf,
        #[source]
        source: Box<cr_policy::PolicyError>,
    },
    /// No champion is promoted.
    #[error("no champion model is promoted")]
    NoChampion,
    /// A bug or a failed background task (details logged, never sent to clients).
    #[error("internal error: {0}")]
    Internal(String),
    /// The audit writer has stopped (after shutdown or a fatal write error).
    #[error("audit writer: {0}")]
    Audit(String),
    /// The decision could not be committed to the audit trail in time (disk full, write lock
    /// held by another connection, queue full): not answered, retry later.
    #[error("audit trail unavailable: {0}")]
    AuditUnavailable(String),
}

impl ServiceError {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> ServiceError {
        let context = context.into();
        move |source| ServiceError::Db { context, source }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// `e` and every cause under it, joined by ": " (for logs, which keep one line per event).
/// A cause whose text its parent already ends with is not repeated.
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = c.source();
    }
    out
}
