//! Model registry: which ONNX files may answer, with what thresholds, decided by whom and when.
//!
//! Each version records the file's path and sha256, its model card, its channel thresholds and
//! its reference score distribution (for percentiles). Status moves between `registered`,
//! `champion` (at most one: it answers), `challenger` (at most one: scored in shadow, logged
//! in the audit, never returned) and `retired` (final). Every change is also appended to the
//! append-only `model_events` table.
//!
//! A file whose bytes no longer hash to the recorded sha256 is refused at register, promote
//! and load time ([`ServiceError::HashMismatch`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db;
use crate::error::{Result, ServiceError};
use cr_model::{percentile_of, score_at_percentile, ModelCard, Reference};

use crate::targeting::{new_draw_key, policy_sha256, StoredPolicy, Targeting};

use crate::scorer::{ModelLoader, RiskScorer};

/// Score cutoffs of the three channels: `score >= red` is red, else `score >= yellow` is
/// yellow, else green.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub yellow: f64,
    pub red: f64,
}

impl Thresholds {
    /// Both finite and `yellow <= red`.
    pub fn new(yellow: f64, red: f64) -> Result<Thresholds> {
        if !yellow.is_finite() || !red.is_finite() {
            return Err(ServiceError::Invalid(format!(
                "thresholds must be finite (yellow {yellow}, red {red})"
            )));
        }
        if yellow > red {
            return Err(ServiceError::Invalid(format!(
                "yellow threshold {yellow} is above red threshold {red}"
            )));
        }
        Ok(Thresholds { yellow, red })
    }

    pub fn channel(&self, score: f64) -> Channel {
        if score >= self.red {
            Channel::Red
        } else if score >= self.yellow {
            Channel::Yellow
        } else {
            Channel::Green
        }
    }
}

/// How to set a new version's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdSpec {
    /// Explicit score cutoffs.
    Scores { yellow: f64, red: f64 },
    /// Percentiles (0..=100) of the model's reference score distribution; fails when the model
    /// carries none.
    Percentiles { yellow: f64, red: f64 },
}

impl Default for ThresholdSpec {
    /// Yellow for the top 10 %, red for the top 2 % of the reference distribution.
    fn default() -> Self {
        ThresholdSpec::Percentiles {
            yellow: 90.0,
            red: 98.0,
        }
    }
}

/// Inspection channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Green,
    Yellow,
    Red,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Green => "green",
            Channel::Yellow => "yellow",
            Channel::Red => "red",
        }
    }
}

/// Lifecycle state of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    Registered,
    Champion,
    Challenger,
    Retired,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Registered => "registered",
            ModelStatus::Champion => "champion",
            ModelStatus::Challenger => "challenger",
            ModelStatus::Retired => "retired",
        }
    }
    fn parse(s: &str) -> Option<ModelStatus> {
        match s {
            "registered" => Some(ModelStatus::Registered),
            "champion" => Some(ModelStatus::Champion),
            "challenger" => Some(ModelStatus::Challenger),
            "retired" => Some(ModelStatus::Retired),
            _ => None,
        }
    }
}

/// One registered model version, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub version: String,
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    /// The model card (`customs_risk.card` metadata, JSON), `{}` when the file has none.
    pub card: serde_json::Value,
    pub thresholds: Thresholds,
    /// Sorted reference scores for percentiles; `None` when the model carries none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_scores: Option<Vec<f64>>,
    pub status: ModelStatus,
    pub registered_by: String,
    /// RFC 3339 UTC.
    pub registered_at: String,
    pub promoted_by: Option<String>,
    pub promoted_at: Option<String>,
    pub retired_by: Option<String>,
    pub retired_at: Option<String>,
    /// The targeting policy applied by `/v1/score` when this version is the champion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<StoredPolicy>,
}

impl ModelVersion {
    /// The reference distribution ([`cr_model::Reference`]), when the model carries one.
    pub fn reference(&self) -> Option<Reference> {
        self.reference_scores
            .as_ref()
            .and_then(|r| Reference::new(r.clone()).ok().flatten())
    }

    /// Percentile (0..=100) of `score` within the reference distribution, by the one rule
    /// ([`cr_model::reference`]); `None` without a reference.
    pub fn percentile(&self, score: f64) -> Option<f64> {
        self.reference_scores
            .as_deref()
            .and_then(|r| percentile_of(r, score))
    }

    /// Check that the file still hashes to the registered sha256.
    pub fn verify_file(&self) -> Result<()> {
        let actual = sha256_file(&self.path).map_err(|e| match e {
            ServiceError::Io { path, source } => ServiceError::ModelFileMissing {
                version: self.version.clone(),
                path,
                source,
            },
            other => other,
        })?;
        if actual != self.sha256 {
            return Err(ServiceError::HashMismatch {
                version: self.version.clone(),
                path: self.path.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// What to register. `version` defaults to `NAME-` + the first 12 hex digits of the sha256.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    pub name: String,
    pub version: Option<String>,
    pub thresholds: ThresholdSpec,
    pub registered_by: String,
    /// A targeting policy file to store with the version (checked against the model's schema
    /// and reference distribution now; see [`crate::targeting`]).
    pub policy: Option<PathBuf>,
}

/// One row of the registry's history (`model_events`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEvent {
    pub seq: i64,
    pub at: String,
    pub version: String,
    pub action: String,
    pub by: String,
}

/// Lowercase hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The file's card (typed and version-checked, as JSON for the registry) and reference
/// distribution ([`cr_model::reference_from_metadata`]: the card's quantiles, else the
/// [`cr_model::meta::REFERENCE_SCORES`] metadata), sorted.
fn card_and_reference(
    path: &Path,
    scorer: &dyn RiskScorer,
) -> Result<(serde_json::Value, Option<Vec<f64>>)> {
    let card_error = |source| ServiceError::Card {
        path: path.to_path_buf(),
        source,
    };
    let card = match ModelCard::from_metadata(scorer.metadata()).map_err(card_error)? {
        None => serde_json::json!({}),
        Some(c) => serde_json::to_value(&c).map_err(|source| {
            card_error(cr_model::ModelError::Json {
                what: "the model card",
                source,
            })
        })?,
    };
    let reference = cr_model::reference_from_metadata(scorer.metadata())
        .map_err(card_error)?
        .map(|r| r.as_slice().to_vec());
    Ok((card, reference))
}

/// Read the policy file at `path` and compile it against the model (its schema, watch lists,
/// reference distribution): a policy the service could not apply is refused now, with the
/// policy error (file, line, column, rule).
fn check_policy(
    path: &Path,
    scorer: &dyn RiskScorer,
    reference: Option<&[f64]>,
) -> Result<StoredPolicy> {
    let abs = std::fs::canonicalize(path).map_err(|source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = std::fs::read_to_string(&abs).map_err(|source| ServiceError::Io {
        path: abs.clone(),
        source,
    })?;
    let schema = scorer.schema().ok_or_else(|| {
        ServiceError::Invalid(format!(
            "policy {}: the model has no declaration schema, so no policy can be applied to it",
            path.display()
        ))
    })?;
    let reference = match reference {
        Some(r) => Reference::new(r.to_vec()).map_err(|e| ServiceError::Invalid(e.to_string()))?,
        None => None,
    };
    let mut stored = StoredPolicy {
        name: String::new(),
        path: abs,
        sha256: policy_sha256(&text),
        text,
        draw_key: new_draw_key(),
    };
    let t = Targeting::compile(&stored, schema, reference.as_ref())?;
    stored.name = t.policy.name.clone();
    Ok(stored)
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '@'))
}

/// The SQLite-backed registry. Not `Sync`: give each thread its own (`open` is cheap) or wrap
/// it in a mutex.
pub struct Registry {
    conn: Connection,
    path: PathBuf,
    loader: Arc<dyn ModelLoader>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .finish()
    }
}

const COLUMNS: &str = "version, name, path, sha256, card, yellow, red, reference_scores, status, \
     registered_by, registered_at, promoted_by, promoted_at, retired_by, retired_at, \
     policy_name, policy_path, policy_sha256, policy_text, policy_key";

fn row_to_version(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(ModelVersion, String, Option<String>, String)> {
    let card: String = row.get(4)?;
    let reference: Option<String> = row.get(7)?;
    let status: String = row.get(8)?;
    let mv = ModelVersion {
        version: row.get(0)?,
        name: row.get(1)?,
        path: PathBuf::from(row.get::<_, String>(2)?),
        sha256: row.get(3)?,
        card: serde_json::Value::Null,
        thresholds: Thresholds {
            yellow: row.get(5)?,
            red: row.get(6)?,
        },
        reference_scores: None,
        status: ModelStatus::Registered,
        registered_by: row.get(9)?,
        registered_at: row.get(10)?,
        promoted_by: row.get(11)?,
        promoted_at: row.get(12)?,
        retired_by: row.get(13)?,
        retired_at: row.get(14)?,
        policy: match (
            row.get::<_, Option<String>>(15)?,
            row.get::<_, Option<String>>(16)?,
            row.get::<_, Option<String>>(17)?,
            row.get::<_, Option<String>>(18)?,
            row.get::<_, Option<String>>(19)?,
        ) {
            (Some(name), Some(path), Some(sha256), Some(text), Some(draw_key)) => {
                Some(StoredPolicy {
                    name,
                    path: PathBuf::from(path),
                    sha256,
                    text,
                    draw_key,
                })
            }
            _ => None,
        },
    };
    Ok((mv, card, reference, status))
}

fn finish_row(raw: (ModelVersion, String, Option<String>, String)) -> Result<ModelVersion> {
    let (mut mv, card, reference, status) = raw;
    mv.card = serde_json::from_str(&card).map_err(|e| {
        ServiceError::Invalid(format!(
            "registry row {}: stored card is not JSON: {e}",
            mv.version
        ))
    })?;
    mv.reference_scores = match reference {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            ServiceError::Invalid(format!(
                "registry row {}: stored reference is not JSON: {e}",
                mv.version
            ))
        })?),
    };
    mv.status = ModelStatus::parse(&status).ok_or_else(|| {
        ServiceError::Invalid(format!(
            "registry row {}: unknown status {status:?}",
            mv.version
        ))
    })?;
    Ok(mv)
}

impl Registry {
    /// Open (or create) the registry at `path`, loading models with `cr-infer`.
    pub fn open(path: &Path) -> Result<Registry> {
        Registry::open_with_loader(path, Arc::new(crate::infer::InferLoader::default()))
    }

    /// Open the registry at `path`, which must exist (a mistyped path is an error, not a new
    /// empty registry).
    pub fn open_existing(path: &Path) -> Result<Registry> {
        db::open_existing(path)?;
        Registry::open(path)
    }

    /// Open with a specific model loader.
    pub fn open_with_loader(path: &Path, loader: Arc<dyn ModelLoader>) -> Result<Registry> {
        Ok(Registry {
            conn: db::open(path)?,
            path: path.to_path_buf(),
            loader,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn loader(&self) -> &Arc<dyn ModelLoader> {
        &self.loader
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Register the ONNX file at `model_path`: hash it, load it (it must load), read its card
    /// and reference distribution, resolve thresholds. The new version's status is `registered`.
    pub fn register(&mut self, model_path: &Path, opts: &RegisterOptions) -> Result<ModelVersion> {
        let path = std::fs::canonicalize(model_path).map_err(|source| ServiceError::Io {
            path: model_path.to_path_buf(),
            source,
        })?;
        let sha = sha256_file(&path)?;
        let scorer = self
            .loader
            .load(&path)
            .map_err(|source| ServiceError::Model {
                path: path.clone(),
                source,
            })?;
        // The file must not have changed between hashing and loading.
        if sha256_file(&path)? != sha {
            return Err(ServiceError::Conflict(format!(
                "{} changed while it was being registered",
                path.display()
            )));
        }
        let (card, reference) = card_and_reference(&path, scorer.as_ref())?;
        let thresholds = match opts.thresholds {
            ThresholdSpec::Scores { yellow, red } => Thresholds::new(yellow, red)?,
            ThresholdSpec::Percentiles { yellow, red } => {
                let r = reference.as_deref().ok_or_else(|| {
                    ServiceError::Invalid(format!(
                        "{} carries no reference score distribution (card `score_quantiles` or metadata \
                         {}); give explicit score thresholds",
                        path.display(),
                        cr_model::meta::REFERENCE_SCORES
                    ))
                })?;
                let at = |p: f64| {
                    score_at_percentile(r, p).ok_or_else(|| {
                        ServiceError::Invalid(format!("percentile {p} is outside 0..=100"))
                    })
                };
                Thresholds::new(at(yellow)?, at(red)?)?
            }
        };
        if opts.name.trim().is_empty() {
            return Err(ServiceError::Invalid("model name is empty".into()));
        }
        let policy = match &opts.policy {
            None => None,
            Some(p) => Some(check_policy(p, scorer.as_ref(), reference.as_deref())?),
        };
        let version = match &opts.version {
            Some(v) => v.clone(),
            None => format!("{}-{}", opts.name.trim(), &sha[..12]),
        };
        if !valid_version(&version) {
            return Err(ServiceError::Invalid(format!(
                "version {version:?} must be 1-128 characters of letters, digits and . - _ + @"
            )));
        }
        let now = db::now_rfc3339();
        let reference_text = match &reference {
            Some(r) => {
                Some(serde_json::to_string(r).map_err(|e| ServiceError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        let path_text = path
            .to_str()
            .ok_or_else(|| {
                ServiceError::Invalid(format!("model path {} is not UTF-8", path.display()))
            })?
            .to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(ServiceError::db("begin register"))?;
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM models WHERE version = ?1",
                [&version],
                |_| Ok(true),
            )
            .optional()
            .map_err(ServiceError::db("looking up version"))?
            .unwrap_or(false);
        if exists {
            return Err(ServiceError::Conflict(format!(
                "version {version:?} is already registered"
            )));
        }
        tx.execute(
            "INSERT INTO models (version, name, path, sha256, card, yellow, red, reference_scores, status, \
             registered_by, registered_at, policy_name, policy_path, policy_sha256, policy_text, \
             policy_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'registered', ?9, ?10, ?11, ?12, \
             ?13, ?14, ?15)",
            params![
                version,
                opts.name.trim(),
                path_text,
                sha,
                card.to_string(),
                thresholds.yellow,
                thresholds.red,
                reference_text,
                opts.registered_by,
                now,
                policy.as_ref().map(|p| p.name.as_str()),
                policy.as_ref().map(|p| p.path.to_string_lossy().into_owned()),
                policy.as_ref().map(|p| p.sha256.as_str()),
                policy.as_ref().map(|p| p.text.as_str()),
                policy.as_ref().map(|p| p.draw_key.as_str()),
            ],
        )
        .map_err(ServiceError::db("inserting model version"))?;
        let detail = crate::chain::ModelDetail {
            name: opts.name.trim().to_string(),
            path: path_text.clone(),
            sha256: sha.clone(),
            yellow: thresholds.yellow,
            red: thresholds.red,
            status: None,
            policy_sha256: policy.as_ref().map(|p| p.sha256.clone()),
        };
        let detail =
            serde_json::to_string(&detail).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        insert_event_detail(
            &tx,
            &now,
            &version,
            "register",
            &opts.registered_by,
            Some(&detail),
        )?;
        tx.commit().map_err(ServiceError::db("commit register"))?;
        self.get(&version)
    }

    /// One version.
    pub fn get(&self, version: &str) -> Result<ModelVersion> {
        let sql = format!("SELECT {COLUMNS} FROM models WHERE version = ?1");
        let raw = self
            .conn
            .query_row(&sql, [version], row_to_version)
            .optional()
            .map_err(ServiceError::db("reading model version"))?
            .ok_or_else(|| ServiceError::UnknownVersion {
                version: version.to_string(),
            })?;
        finish_row(raw)
    }

    /// All versions, oldest registration first.
    pub fn list(&self) -> Result<Vec<ModelVersion>> {
        let sql = format!("SELECT {COLUMNS} FROM models ORDER BY registered_at, version");
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(ServiceError::db("listing models"))?;
        let rows = stmt
            .query_map([], row_to_version)
            .map_err(ServiceError::db("listing models"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::db("listing models"))?;
        rows.into_iter().map(finish_row).collect()
    }

    fn with_status(&self, status: ModelStatus) -> Result<Option<ModelVersion>> {
        let sql = format!("SELECT {COLUMNS} FROM models WHERE status = ?1");
        let raw = self
            .conn
            .query_row(&sql, [status.as_str()], row_to_version)
            .optional()
            .map_err(ServiceError::db("reading champion/challenger"))?;
        raw.map(finish_row).transpose()
    }

    /// The version that answers, if any.
    pub fn champion(&self) -> Result<Option<ModelVersion>> {
        self.with_status(ModelStatus::Champion)
    }

    /// The version scored in shadow, if any.
    pub fn challenger(&self) -> Result<Option<ModelVersion>> {
        self.with_status(ModelStatus::Challenger)
    }

    /// History of register / promote / retire / challenger changes, oldest first.
    pub fn events(&self) -> Result<Vec<ModelEvent>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, version, action, by FROM model_events ORDER BY seq")
            .map_err(ServiceError::db("reading model events"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ModelEvent {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    version: r.get(2)?,
                    action: r.get(3)?,
                    by: r.get(4)?,
                })
            })
            .map_err(ServiceError::db("reading model events"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::db("reading model events"))?;
        Ok(rows)
    }

    fn usable(&self, version: &str) -> Result<ModelVersion> {
        let mv = self.get(version)?;
        if mv.status == ModelStatus::Retired {
            return Err(ServiceError::Conflict(format!(
                "version {version:?} is retired; register it again to reuse it"
            )));
        }
        mv.verify_file()?;
        Ok(mv)
    }

    /// Make `version` the champion (the previous champion goes back to `registered`; a
    /// challenger being promoted leaves the challenger slot empty). Refused for retired
    /// versions and for files whose hash changed. Does not load the model: the server loads it
    /// before calling this, so a model that cannot load never becomes champion.
    pub fn promote(&mut self, version: &str, by: &str) -> Result<ModelVersion> {
        let mv = self.usable(version)?;
        if mv.status == ModelStatus::Champion {
            return Ok(mv);
        }
        let now = db::now_rfc3339();
        let tx = self
            .conn
            .transaction()
            .map_err(ServiceError::db("begin promote"))?;
        tx.execute(
            "UPDATE models SET status = 'registered' WHERE status = 'champion'",
            [],
        )
        .map_err(ServiceError::db("demoting champion"))?;
        tx.execute(
            "UPDATE models SET status = 'champion', promoted_by = ?2, promoted_at = ?3 WHERE version = ?1",
            params![version, by, now],
        )
        .map_err(ServiceError::db("promoting"))?;
        insert_event(&tx, &now, version, "promote", by)?;
        tx.commit().map_err(ServiceError::db("commit promote"))?;
        self.get(version)
    }

    /// Make `version` the shadow challenger (replacing any other). Not allowed for the champion.
    pub fn set_challenger(&mut self, version: &str, by: &str) -> Result<ModelVersion> {
        let mv = self.usable(version)?;
        match mv.status {
            ModelStatus::Challenger => return Ok(mv),
            ModelStatus::Champion => {
                return Err(ServiceError::Conflict(format!(
                    "version {version:?} is the champion"
                )));
            }
            _ => {}
        }
        let now = db::now_rfc3339();
        let tx = self
            .conn
            .transaction()
            .map_err(ServiceError::db("begin set challenger"))?;
        tx.execute(
            "UPDATE models SET status = 'registered' WHERE status = 'challenger'",
            [],
        )
        .map_err(ServiceError::db("clearing challenger"))?;
        tx.execute(
            "UPDATE models SET status = 'challenger' WHERE version = ?1",
            [version],
        )
        .map_err(ServiceError::db("setting challenger"))?;
        insert_event(&tx, &now, version, "challenger", by)?;
        tx.commit()
            .map_err(ServiceError::db("commit set challenger"))?;
        self.get(version)
    }

    /// Stop shadow scoring (no-op without a challenger).
    pub fn clear_challenger(&mut self, by: &str) -> Result<()> {
        let Some(current) = self.challenger()? else {
            return Ok(());
        };
        let now = db::now_rfc3339();
        let tx = self
            .conn
            .transaction()
            .map_err(ServiceError::db("begin clear challenger"))?;
        tx.execute(
            "UPDATE models SET status = 'registered' WHERE status = 'challenger'",
            [],
        )
        .map_err(ServiceError::db("clearing challenger"))?;
        insert_event(&tx, &now, &current.version, "clear_challenger", by)?;
        tx.commit()
            .map_err(ServiceError::db("commit clear challenger"))?;
        Ok(())
    }

    /// Retire `version` for good. The champion cannot be retired (promote another version
    /// first), so a running service always has a model to answer with.
    pub fn retire(&mut self, version: &str, by: &str) -> Result<ModelVersion> {
        let mv = self.get(version)?;
        match mv.status {
            ModelStatus::Retired => return Ok(mv),
            ModelStatus::Champion => {
                return Err(ServiceError::Conflict(format!(
                    "version {version:?} is the champion; promote another version before retiring it"
                )));
            }
            _ => {}
        }
        let now = db::now_rfc3339();
        let tx = self
            .conn
            .transaction()
            .map_err(ServiceError::db("begin retire"))?;
        tx.execute(
            "UPDATE models SET status = 'retired', retired_by = ?2, retired_at = ?3 WHERE version = ?1",
            params![version, by, now],
        )
        .map_err(ServiceError::db("retiring"))?;
        insert_event(&tx, &now, version, "retire", by)?;
        tx.commit().map_err(ServiceError::db("commit retire"))?;
        self.get(version)
    }

    /// Verify the file's hash and load the model for `mv`.
    pub fn load(&self, mv: &ModelVersion) -> Result<Arc<dyn RiskScorer>> {
        mv.verify_file()?;
        self.loader
            .load(&mv.path)
            .map_err(|source| ServiceError::Model {
                path: mv.path.clone(),
                source,
            })
    }
}

fn insert_event(conn: &Connection, at: &str, version: &str, action: &str, by: &str) -> Result<()> {
    insert_event_detail(conn, at, version, action, by, None)
}

/// Append a hash-chained history row (see [`crate::chain`]).
fn insert_event_detail(
    conn: &Connection,
    at: &str,
    version: &str,
    action: &str,
    by: &str,
    detail: Option<&str>,
) -> Result<()> {
    crate::chain::insert_model_event(conn, at, version, action, by, detail)
        .map_err(ServiceError::db("recording model event"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_order_and_channels() {
        assert!(Thresholds::new(0.9, 0.5).is_err());
        assert!(Thresholds::new(f64::NAN, 0.5).is_err());
        let t = Thresholds::new(0.5, 0.9).unwrap();
        assert_eq!(t.channel(0.49), Channel::Green);
        assert_eq!(t.channel(0.5), Channel::Yellow);
        assert_eq!(t.channel(0.9), Channel::Red);
    }

    #[test]
    fn version_names() {
        assert!(valid_version("gbdt-2024.1+abc"));
        assert!(!valid_version(""));
        assert!(!valid_version("a b"));
        assert!(!valid_version("../x"));
        assert!(!valid_version(".."));
    }
}
