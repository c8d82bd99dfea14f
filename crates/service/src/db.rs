//! The SQLite file shared by the registry, the key store and the audit trail.
//!
//! One file holds four tables: `models` (one row per registered version, mutable status),
//! `model_events` (append-only history of register / promote / retire / challenger changes),
//! `api_keys` (salted hashes only) and `audit` (append-only, one row per decision).
//! Append-only is enforced by triggers that abort any UPDATE or DELETE, so even a client with
//! raw SQL access cannot rewrite history without dropping the trigger first.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Result, ServiceError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    version          TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    path             TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    card             TEXT NOT NULL,
    yellow           REAL NOT NULL,
    red              REAL NOT NULL,
    reference_scores TEXT,
    status           TEXT NOT NULL CHECK (status IN ('registered', 'champion', 'challenger', 'retired')),
    registered_by    TEXT NOT NULL,
    registered_at    TEXT NOT NULL,
    promoted_by      TEXT,
    promoted_at      TEXT,
    retired_by       TEXT,
    retired_at       TEXT,
    policy_name      TEXT,
    policy_path      TEXT,
    policy_sha256    TEXT,
    policy_text      TEXT,
    policy_key       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS models_one_champion ON models(status) WHERE status = 'champion';
CREATE UNIQUE INDEX IF NOT EXISTS models_one_challenger ON models(status) WHERE status = 'challenger';

CREATE TABLE IF NOT EXISTS model_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    version   TEXT NOT NULL,
    action    TEXT NOT NULL,
    by        TEXT NOT NULL,
    detail    TEXT,
    prev_hash TEXT,
    hash      TEXT
);
CREATE TRIGGER IF NOT EXISTS model_events_no_update BEFORE UPDATE ON model_events
BEGIN SELECT RAISE(ABORT, 'model_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS model_events_no_delete BEFORE DELETE ON model_events
BEGIN SELECT RAISE(ABORT, 'model_events is append-only'); END;

CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('score', 'admin')),
    salt       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE IF NOT EXISTS key_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS key_events_no_update BEFORE UPDATE ON key_events
BEGIN SELECT RAISE(ABORT, 'key_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS key_events_no_delete BEFORE DELETE ON key_events
BEGIN SELECT RAISE(ABORT, 'key_events is append-only'); END;

CREATE TABLE IF NOT EXISTS audit (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at             TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    declaration_id TEXT NOT NULL,
    model_version  TEXT NOT NULL,
    score          REAL NOT NULL,
    percentile     REAL,
    channel        TEXT NOT NULL,
    shadow_version TEXT,
    shadow_score   REAL,
    prev_hash      TEXT,
    hash           TEXT,
    stratum        TEXT,
    propensity     REAL,
    rules          TEXT
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

"#;

/// Schema version written by this build. Version 1 had no hash chain: [`open`] adds the
/// columns and adopts the existing keys and models into the chains (see [`crate::chain`]).
/// Version 2 had no targeting policy (models' `policy_*` columns, audit's `stratum`,
/// `propensity`, `rules`): [`open`] adds the nullable columns.
pub const SCHEMA_VERSION: &str = "3";

/// Nullable columns added after version 1, added by [`migrate`] when missing.
const ADDED_COLUMNS: [(&str, &str, &str); 8] = [
    ("models", "policy_name", "TEXT"),
    ("models", "policy_path", "TEXT"),
    ("models", "policy_sha256", "TEXT"),
    ("models", "policy_text", "TEXT"),
    ("models", "policy_key", "TEXT"),
    ("audit", "stratum", "TEXT"),
    ("audit", "propensity", "REAL"),
    ("audit", "rules", "TEXT"),
];

/// Open the registry database, which must exist (the CLI's `--create` decides otherwise), and
/// bring its schema up to date. A mistyped path is an error instead of a new empty registry.
pub fn open_existing(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(ServiceError::Invalid(format!(
            "registry {} does not exist (pass --create to create a new one)",
            path.display()
        )));
    }
    open(path)
}

/// Open (creating if needed) the registry database and bring its schema up to date.
///
/// WAL mode lets the audit writer, the registry and the CLI use the file at the same time.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path).map_err(ServiceError::db(format!(
        "cannot open registry {}",
        path.display()
    )))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(ServiceError::db("setting busy timeout"))?;
    // journal_mode returns a row, so it cannot go through execute_batch on every SQLite build.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(ServiceError::db(format!(
            "cannot enable WAL on {}",
            path.display()
        )))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(ServiceError::db("setting pragmas"))?;
    conn.execute_batch(SCHEMA)
        .map_err(ServiceError::db(format!(
            "cannot create tables in {}",
            path.display()
        )))?;
    migrate(&mut conn).map_err(ServiceError::db(format!(
        "cannot upgrade the schema of {}",
        path.display()
    )))?;
    Ok(conn)
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.iter().any(|n| n == column))
}

/// Bring a version-1 file (no hash chain) to [`SCHEMA_VERSION`]; a no-op on current files.
/// Runs under the write lock, so two processes opening an old file at once upgrade it once.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current = |c: &Connection| -> rusqlite::Result<Option<String>> {
        c.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
    };
    if current(conn)?.as_deref() == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    match current(&tx)?.as_deref() {
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        None => {
            // A new file: nothing to adopt.
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(v) => {
            if v == "1" {
                migrate_chain(&tx)?;
            }
            for (table, column, ty) in ADDED_COLUMNS {
                if !has_column(&tx, table, column)? {
                    tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
                }
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [SCHEMA_VERSION],
            )?;
        }
    }
    tx.commit()
}

/// Version 1 → 2: the hash chain columns, and the existing keys and models adopted.
fn migrate_chain(tx: &Connection) -> rusqlite::Result<()> {
    {
        {
            for (table, column) in [
                ("audit", "prev_hash"),
                ("audit", "hash"),
                ("model_events", "detail"),
                ("model_events", "prev_hash"),
                ("model_events", "hash"),
            ] {
                if !has_column(tx, table, column)? {
                    tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"))?;
                }
            }
            crate::chain::adopt_existing(tx)?;
        }
    }
    Ok(())
}

/// Current UTC time as RFC 3339 with microseconds and a `Z` suffix. Such strings sort in time
/// order, which `audit export --since` relies on.
pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
