//! Tamper evidence: every audit row, key change and registry change carries a hash chained to
//! the previous one, and [`verify`] (`customs-risk audit verify`) reports the first broken link.
//!
//! Three chains live in the registry file, one per append-only table: `audit` (decisions),
//! `model_events` (register / promote / challenger / retire) and `key_events` (create /
//! revoke). Row `n` stores `prev_hash` (row `n-1`'s `hash`, [`GENESIS`] for the first) and
//! `hash = sha256(prev_hash || "\n" || payload)`, where the payload is the row's content as
//! JSON ([`audit_payload`], [`model_event_payload`], [`key_event_payload`]). The mutable tables
//! (`models`: status and thresholds; `api_keys`: revocation) are checked by replaying their
//! event chain: an edited model sha256 or an un-revoked key no longer matches the events.
//!
//! What this detects: a row edited in place, a row deleted in the middle (triggers dropped
//! first), a row inserted by hand without the right hash, a model or key row that disagrees
//! with its history. What it cannot detect on its own: someone with write access who rewrites
//! the whole chain from some row to the end with correct hashes, or cuts the tail off. File
//! permissions on the registry stay the first line of defence; anchoring the chain head
//! elsewhere (printing it, shipping it to a log system — `audit verify` prints it, and
//! `--anchor SEQ:HASH` checks a saved head is still in the chain) makes such truncation or
//! rewriting detectable.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{AuditRecord, AUDIT_COLUMNS};
use crate::db;
use crate::error::{Result, ServiceError};

/// `prev_hash` of the first row of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `sha256(prev || "\n" || payload)`, lowercase hex.
pub fn link(prev: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(payload.as_bytes());
    hex::encode(h.finalize())
}

/// The hashed content of one audit row: the record as JSON, fields in declaration order.
/// New record fields must be `Option` with `skip_serializing_if = "Option::is_none"` so rows
/// written before they existed keep their hash.
pub fn audit_payload(r: &AuditRecord) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// The hashed content of one `model_events` row.
pub fn model_event_payload(
    at: &str,
    version: &str,
    action: &str,
    by: &str,
    detail: Option<&str>,
) -> String {
    serde_json::to_string(&(at, version, action, by, detail)).unwrap_or_default()
}

/// The hashed content of one `key_events` row.
pub fn key_event_payload(at: &str, key_id: &str, action: &str, detail: Option<&str>) -> String {
    serde_json::to_string(&(at, key_id, action, detail)).unwrap_or_default()
}

/// The chain head of `table` (the last row's hash), [`GENESIS`] when empty or when the last row
/// predates the chain. Call inside the writing transaction so the head cannot move meanwhile.
pub(crate) fn head(conn: &Connection, table: &str) -> rusqlite::Result<String> {
    let h: Option<Option<String>> = conn
        .query_row(
            &format!("SELECT hash FROM {table} ORDER BY seq DESC LIMIT 1"),
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(h.flatten().unwrap_or_else(|| GENESIS.to_string()))
}

/// What a registration records about the version (`detail` of `register` / `adopt` events).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelDetail {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub yellow: f64,
    pub red: f64,
    /// Only in `adopt` events (status at the schema upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// sha256 of the targeting policy registered with the version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
}

/// What a key creation records (`detail` of `create` / `adopt` events).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct KeyDetail {
    pub name: String,
    pub role: String,
    pub salt: String,
    pub hash: String,
    /// Only in `adopt` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<bool>,
}

/// Append a chained `model_events` row (inside the caller's write transaction).
pub(crate) fn insert_model_event(
    conn: &Connection,
    at: &str,
    version: &str,
    action: &str,
    by: &str,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    let prev = head(conn, "model_events")?;
    let hash = link(&prev, &model_event_payload(at, version, action, by, detail));
    conn.execute(
        "INSERT INTO model_events (at, version, action, by, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![at, version, action, by, detail, prev, hash],
    )?;
    Ok(())
}

/// Append a chained `key_events` row (inside the caller's write transaction).
pub(crate) fn insert_key_event(
    conn: &Connection,
    at: &str,
    key_id: &str,
    action: &str,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    let prev = head(conn, "key_events")?;
    let hash = link(&prev, &key_event_payload(at, key_id, action, detail));
    conn.execute(
        "INSERT INTO key_events (at, key_id, action, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, key_id, action, detail, prev, hash],
    )?;
    Ok(())
}

/// Schema upgrade from version 1: record every existing model and key as an `adopt` event, so
/// their current state is what later changes are checked against.
pub(crate) fn adopt_existing(conn: &Connection) -> rusqlite::Result<()> {
    let now = db::now_rfc3339();
    let models: Vec<(String, ModelDetail)> = conn
        .prepare("SELECT version, name, path, sha256, yellow, red, status FROM models ORDER BY registered_at, version")?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                ModelDetail {
                    name: r.get(1)?,
                    path: r.get(2)?,
                    sha256: r.get(3)?,
                    yellow: r.get(4)?,
                    red: r.get(5)?,
                    status: Some(r.get(6)?),
                    policy_sha256: None,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (version, detail) in models {
        let text = serde_json::to_string(&detail).unwrap_or_default();
        insert_model_event(conn, &now, &version, "adopt", "schema upgrade", Some(&text))?;
    }
    let keys: Vec<(String, KeyDetail)> = conn
        .prepare(
            "SELECT id, name, role, salt, hash, revoked_at FROM api_keys ORDER BY created_at, id",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                KeyDetail {
                    name: r.get(1)?,
                    role: r.get(2)?,
                    salt: r.get(3)?,
                    hash: r.get(4)?,
                    revoked: Some(r.get::<_, Option<String>>(5)?.is_some()),
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, detail) in keys {
        let text = serde_json::to_string(&detail).unwrap_or_default();
        insert_key_event(conn, &now, &id, "adopt", Some(&text))?;
    }
    Ok(())
}

/// One chain's state after [`verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    pub table: &'static str,
    /// Rows with a hash.
    pub chained: u64,
    /// Rows written before the chain existed (schema version 1), all before the first chained row.
    pub legacy: u64,
    /// `(seq, hash)` of the last row: anchor it elsewhere to detect truncation later.
    pub head: Option<(i64, String)>,
    /// The first broken link, if any.
    pub broken: Option<String>,
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub chains: Vec<ChainReport>,
    /// Mutable rows (`models`, `api_keys`) that disagree with their event chain, and a missing or
    /// changed anchor.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.chains.iter().all(|c| c.broken.is_none())
    }
}

/// Walk one chain in seq order (streaming). `sql` selects `seq, prev_hash, hash` and then what
/// `payload` reads from column 3 on.
fn walk(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    payload: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<String>,
) -> Result<ChainReport> {
    let err = ServiceError::db(format!("reading {table}"));
    let mut stmt = conn
        .prepare(sql)
        .map_err(ServiceError::db(format!("reading {table}")))?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut rep = ChainReport {
        table,
        chained: 0,
        legacy: 0,
        head: None,
        broken: None,
    };
    let mut prev = GENESIS.to_string();
    let mut prev_seq: Option<i64> = None;
    loop {
        let row = match rows.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(ServiceError::db(format!("reading {table}"))(e)),
        };
        let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, Option<String>, Option<String>, String)> {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, payload(row)?))
        };
        let (seq, prev_hash, hash, content) =
            read(row).map_err(ServiceError::db(format!("reading {table}")))?;
        let after = prev_seq
            .map(|p| format!(" (previous row: seq {p})"))
            .unwrap_or_else(|| " (the first row)".into());
        let problem = match (&prev_hash, &hash) {
            (None, None) if rep.chained == 0 => {
                rep.legacy += 1;
                prev_seq = Some(seq);
                rep.head = Some((seq, String::new()));
                continue;
            }
            (_, None) | (None, _) => Some(format!(
                "{table} seq {seq}: no hash although earlier rows are chained: inserted outside \
                 the service (forged row)"
            )),
            (Some(p), Some(h)) => {
                if *p != prev {
                    Some(format!(
                        "{table} seq {seq}: prev_hash does not match the hash of the row before \
                         it{after}: a row was deleted or inserted there"
                    ))
                } else if link(p, &content) != *h {
                    Some(format!(
                        "{table} seq {seq}: content does not match its hash: the row was edited \
                         or forged"
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            rep.broken = Some(p);
            break;
        }
        rep.chained += 1;
        prev = hash.unwrap_or_default();
        prev_seq = Some(seq);
        rep.head = Some((seq, prev.clone()));
    }
    Ok(rep)
}

/// Check every chain of the registry at `path` (which must exist), replay the model and key
/// events against the `models` and `api_keys` tables, and, when `anchor` (a saved audit head
/// `(seq, hash)`) is given, check that row is still in the chain unchanged. Reads in bounded
/// memory apart from the model and key tables.
pub fn verify(path: &Path, anchor: Option<(i64, &str)>) -> Result<VerifyReport> {
    let conn = db::open_existing(path)?;
    let audit_sql = format!("SELECT seq, prev_hash, hash, {AUDIT_COLUMNS} FROM audit ORDER BY seq");
    let audit = walk(&conn, "audit", &audit_sql, |r| {
        Ok(audit_payload(&crate::audit::record_from_row(r, 3)?))
    })?;
    let models = walk(
        &conn,
        "model_events",
        "SELECT seq, prev_hash, hash, at, version, action, by, detail FROM model_events ORDER BY seq",
        |r| {
            Ok(model_event_payload(
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
                &r.get::<_, String>(5)?,
                &r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?.as_deref(),
            ))
        },
    )?;
    let keys = walk(
        &conn,
        "key_events",
        "SELECT seq, prev_hash, hash, at, key_id, action, detail FROM key_events ORDER BY seq",
        |r| {
            Ok(key_event_payload(
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
                &r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?.as_deref(),
            ))
        },
    )?;
    let mut problems = Vec::new();
    replay_models(&conn, &mut problems)?;
    replay_keys(&conn, &mut problems)?;
    if let Some((seq, want)) = anchor {
        let got: Option<Option<String>> = conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
            .optional()
            .map_err(ServiceError::db("reading audit"))?;
        match got {
            None => problems.push(format!(
                "anchor: audit row seq {seq} is gone (the chain was truncated)"
            )),
            Some(h) if h.as_deref() != Some(want) => problems.push(format!(
                "anchor: audit row seq {seq} has hash {} instead of the anchored {want} (the chain \
                 was rewritten)",
                h.unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    Ok(VerifyReport {
        chains: vec![audit, models, keys],
        problems,
    })
}

fn replay_models(conn: &Connection, problems: &mut Vec<String>) -> Result<()> {
    let err = || ServiceError::db("replaying model_events");
    let events: Vec<(i64, String, String, Option<String>)> = conn
        .prepare("SELECT seq, version, action, detail FROM model_events ORDER BY seq")
        .map_err(err())?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(err())?
        .collect::<rusqlite::Result<_>>()
        .map_err(err())?;
    // version -> (registration detail, replayed status)
    let mut state: HashMap<String, (Option<ModelDetail>, String)> = HashMap::new();
    let demote = |state: &mut HashMap<String, (Option<ModelDetail>, String)>, from: &str| {
        for (_, s) in state.values_mut() {
            if s == from {
                *s = "registered".into();
            }
        }
    };
    for (seq, version, action, detail) in events {
        let parsed = detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<ModelDetail>(d).ok());
        match action.as_str() {
            "register" | "adopt" => {
                let status = parsed
                    .as_ref()
                    .and_then(|d| d.status.clone())
                    .unwrap_or_else(|| "registered".into());
                state.insert(version, (parsed, status));
            }
            "promote" => {
                demote(&mut state, "champion");
                state.entry(version).or_insert((None, String::new())).1 = "champion".into();
            }
            "challenger" => {
                demote(&mut state, "challenger");
                state.entry(version).or_insert((None, String::new())).1 = "challenger".into();
            }
            "clear_challenger" => demote(&mut state, "challenger"),
            "retire" => {
                state.entry(version).or_insert((None, String::new())).1 = "retired".into();
            }
            other => problems.push(format!("model_events seq {seq}: unknown action {other:?}")),
        }
    }
    let rows: Vec<(String, ModelDetail, String)> = conn
        .prepare(
            "SELECT version, name, path, sha256, yellow, red, status, policy_text FROM models \
             ORDER BY version",
        )
        .map_err(err())?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                ModelDetail {
                    name: r.get(1)?,
                    path: r.get(2)?,
                    sha256: r.get(3)?,
                    yellow: r.get(4)?,
                    red: r.get(5)?,
                    status: None,
                    // the stored text must still hash to the registered policy
                    policy_sha256: r
                        .get::<_, Option<String>>(7)?
                        .map(|t| crate::targeting::policy_sha256(&t)),
                },
                r.get(6)?,
            ))
        })
        .map_err(err())?
        .collect::<rusqlite::Result<_>>()
        .map_err(err())?;
    for (version, mut row, status) in rows {
        match state.remove(&version) {
            None => problems.push(format!(
                "models: version {version:?} has no registration event (inserted by hand)"
            )),
            Some((None, _)) => problems.push(format!(
                "models: version {version:?}: its registration event carries no detail"
            )),
            Some((Some(mut want), want_status)) => {
                want.status = None;
                row.status = None;
                if row != want {
                    problems.push(format!(
                        "models: version {version:?} differs from its registration event \
                         (stored sha256 {}, path {}, thresholds {}/{}, policy {}; registered \
                         sha256 {}, path {}, thresholds {}/{}, policy {})",
                        row.sha256,
                        row.path,
                        row.yellow,
                        row.red,
                        row.policy_sha256.as_deref().unwrap_or("-"),
                        want.sha256,
                        want.path,
                        want.yellow,
                        want.red,
                        want.policy_sha256.as_deref().unwrap_or("-"),
                    ));
                }
                if status != want_status {
                    problems.push(format!(
                        "models: version {version:?} has status {status} but its events say \
                         {want_status}"
                    ));
                }
            }
        }
    }
    let mut gone: Vec<String> = state.into_keys().collect();
    gone.sort();
    for v in gone {
        problems.push(format!(
            "models: version {v:?} has events but no row (deleted)"
        ));
    }
    Ok(())
}

fn replay_keys(conn: &Connection, problems: &mut Vec<String>) -> Result<()> {
    let err = || ServiceError::db("replaying key_events");
    let events: Vec<(i64, String, String, Option<String>)> = conn
        .prepare("SELECT seq, key_id, action, detail FROM key_events ORDER BY seq")
        .map_err(err())?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(err())?
        .collect::<rusqlite::Result<_>>()
        .map_err(err())?;
    // id -> (detail, revoked)
    let mut state: HashMap<String, (Option<KeyDetail>, bool)> = HashMap::new();
    for (seq, id, action, detail) in events {
        let parsed = detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<KeyDetail>(d).ok());
        match action.as_str() {
            "create" | "adopt" => {
                let revoked = parsed.as_ref().and_then(|d| d.revoked).unwrap_or(false);
                state.insert(id, (parsed, revoked));
            }
            "revoke" => state.entry(id).or_insert((None, false)).1 = true,
            other => problems.push(format!("key_events seq {seq}: unknown action {other:?}")),
        }
    }
    let rows: Vec<(String, KeyDetail, bool)> = conn
        .prepare("SELECT id, name, role, salt, hash, revoked_at FROM api_keys ORDER BY id")
        .map_err(err())?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                KeyDetail {
                    name: r.get(1)?,
                    role: r.get(2)?,
                    salt: r.get(3)?,
                    hash: r.get(4)?,
                    revoked: None,
                },
                r.get::<_, Option<String>>(5)?.is_some(),
            ))
        })
        .map_err(err())?
        .collect::<rusqlite::Result<_>>()
        .map_err(err())?;
    for (id, row, revoked) in rows {
        match state.remove(&id) {
            None | Some((None, _)) => problems.push(format!(
                "api_keys: key {id} has no creation event (inserted by hand)"
            )),
            Some((Some(mut want), want_revoked)) => {
                want.revoked = None;
                if row != want {
                    problems.push(format!(
                        "api_keys: key {id} differs from its creation event (name, role, salt or \
                         hash edited)"
                    ));
                }
                if revoked != want_revoked {
                    problems.push(format!(
                        "api_keys: key {id} is {} but its events say {}",
                        if revoked { "revoked" } else { "active" },
                        if want_revoked {
                            "revoked (un-revoked by hand)"
                        } else {
                            "active"
                        }
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_is_sha256_of_prev_newline_payload() {
        // Reference from Python: hashlib.sha256(('0' * 64 + '\n{}').encode()).hexdigest()
        assert_eq!(
            link(GENESIS, "{}"),
            "5649d09ed68c17156095d175eef152856c5b1a81c117c409c1e00f096aa6838e"
        );
        assert_ne!(link(GENESIS, "{}"), link(GENESIS, "{ }"));
    }
}
