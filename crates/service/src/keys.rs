//! API keys: creation (shown once), salted sha256 storage, constant-time verification.
//!
//! A key looks like `crk_<id>_<secret>`: `id` is 16 hex digits (public: it is what the audit
//! trail records), `secret` is 64 hex digits (32 random bytes from the OS-seeded CSPRNG). Only
//! `sha256(salt || secret)` and the 16-byte random salt are stored. Each endpoint needs exactly
//! one role: `score` for `/v1/score`, `admin` for model changes (separation of duties; an admin
//! key cannot score and a scoring key cannot promote).

use std::collections::HashMap;

use rand::RngCore;
use rusqlite::params;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db;
use crate::error::{Result, ServiceError};
use crate::registry::Registry;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `POST /v1/score`.
    Score,
    /// Model changes: promote, retire, challenger, list.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Score => "score",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "score" => Some(Role::Score),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| format!("unknown role {s:?} (expected score or admin)"))
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A freshly created key. `key` is the only copy of the secret: print it once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub info: KeyInfo,
    pub key: String,
}

fn hash_secret(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Equality whose running time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Split `crk_<id>_<secret>`.
fn parse_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix("crk_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 16 || secret.len() != 64 {
        return None;
    }
    Some((id, secret))
}

impl Registry {
    /// Create a key; the returned [`NewKey::key`] is never stored.
    pub fn create_key(&mut self, role: Role, name: &str) -> Result<NewKey> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(ServiceError::Invalid(
                "key name must be 1-200 characters".into(),
            ));
        }
        let mut rng = rand::rng();
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        rng.fill_bytes(&mut salt);
        let (id, secret) = (hex::encode(id), hex::encode(secret));
        let hash = hash_secret(&salt, &secret);
        let now = db::now_rfc3339();
        let (salt, hash) = (hex::encode(salt), hex::encode(hash));
        let detail = serde_json::to_string(&crate::chain::KeyDetail {
            name: name.to_string(),
            role: role.as_str().to_string(),
            salt: salt.clone(),
            hash: hash.clone(),
            revoked: None,
        })
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let tx = self
            .conn_mut()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(ServiceError::db("storing API key"))?;
        tx.execute(
            "INSERT INTO api_keys (id, name, role, salt, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, name, role.as_str(), salt, hash, now],
        )
        .map_err(ServiceError::db("storing API key"))?;
        crate::chain::insert_key_event(&tx, &now, &id, "create", Some(&detail))
            .map_err(ServiceError::db("recording key event"))?;
        tx.commit().map_err(ServiceError::db("storing API key"))?;
        Ok(NewKey {
            key: format!("crk_{id}_{secret}"),
            info: KeyInfo {
                id,
                name: name.to_string(),
                role,
                created_at: now,
                revoked_at: None,
            },
        })
    }

    /// All keys (revoked included), oldest first.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
            .map_err(ServiceError::db("listing keys"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            })
            .map_err(ServiceError::db("listing keys"))?
            .collect::<rusqlite::Result<Vec<(String, String, String, String, Option<String>)>>>()
            .map_err(ServiceError::db("listing keys"))?;
        rows.into_iter()
            .map(|(id, name, role, created_at, revoked_at)| {
                let role = Role::parse(&role).ok_or_else(|| {
                    ServiceError::Invalid(format!("key {id}: unknown role {role:?}"))
                })?;
                Ok(KeyInfo {
                    id,
                    name,
                    role,
                    created_at,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Revoke a key by id (takes effect in a running server at its next key reload).
    pub fn revoke_key(&mut self, id: &str) -> Result<()> {
        let now = db::now_rfc3339();
        let tx = self
            .conn_mut()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(ServiceError::db("revoking key"))?;
        let n = tx
            .execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )
            .map_err(ServiceError::db("revoking key"))?;
        if n == 0 {
            return Err(ServiceError::Invalid(format!(
                "no active key with id {id:?}"
            )));
        }
        crate::chain::insert_key_event(&tx, &now, id, "revoke", None)
            .map_err(ServiceError::db("recording key event"))?;
        tx.commit().map_err(ServiceError::db("revoking key"))?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct StoredKey {
    name: String,
    role: Role,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// In-memory table of active keys, for verification on the request path (no SQLite access).
/// Only looked up by id, never iterated.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    by_id: HashMap<String, StoredKey>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    /// The key's name (recorded as who promoted / retired a model).
    pub name: String,
    pub role: Role,
}

impl KeyStore {
    /// Read all active (non-revoked) keys.
    pub fn load(registry: &Registry) -> Result<KeyStore> {
        let mut stmt = registry
            .conn()
            .prepare("SELECT id, role, salt, hash, name FROM api_keys WHERE revoked_at IS NULL")
            .map_err(ServiceError::db("loading keys"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(ServiceError::db("loading keys"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::db("loading keys"))?;
        let mut by_id = HashMap::with_capacity(rows.len());
        for (id, role, salt, hash, name) in rows {
            let bad =
                |what: &str| ServiceError::Invalid(format!("key {id}: stored {what} is corrupt"));
            let role = Role::parse(&role).ok_or_else(|| bad("role"))?;
            let salt = hex::decode(&salt).map_err(|_| bad("salt"))?;
            let hash = hex::decode(&hash).map_err(|_| bad("hash"))?;
            by_id.insert(
                id.clone(),
                StoredKey {
                    name,
                    role,
                    salt,
                    hash,
                },
            );
        }
        Ok(KeyStore { by_id })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The caller behind `presented`, or `None` for a malformed, unknown or revoked key.
    pub fn verify(&self, presented: &str) -> Option<Caller> {
        let (id, secret) = parse_key(presented.trim())?;
        let stored = self.by_id.get(id)?;
        let hash = hash_secret(&stored.salt, secret);
        constant_time_eq(&hash, &stored.hash).then(|| Caller {
            key_id: id.to_string(),
            name: stored.name.clone(),
            role: stored.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn key_format_parsing() {
        let id = "0123456789abcdef";
        let secret = "a".repeat(64);
        let key = format!("crk_{id}_{secret}");
        assert_eq!(parse_key(&key), Some((id, secret.as_str())));
        assert_eq!(parse_key("crk_short_x"), None);
        assert_eq!(parse_key("Bearer nothing"), None);
        // The secret hash is sha256(salt || secret): check against an independent digest of the
        // concatenation.
        let direct: [u8; 32] = Sha256::digest(b"saltsecret").into();
        assert_eq!(hash_secret(b"salt", "secret"), direct);
    }
}
