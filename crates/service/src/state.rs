//! Shared server state: the deployed models (swapped atomically), keys, audit writer, metrics.
//!
//! The deployment (champion + optional challenger) lives in an `RwLock<Arc<Deployment>>`: a
//! request takes the read lock only long enough to clone the `Arc`, then scores every
//! declaration of the request with that snapshot, so a promotion in the middle of a request
//! can never produce a mixed or partial response. Promotion loads and verifies the new model
//! first, then swaps the `Arc` under the write lock (nanoseconds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand::RngCore;
use tokio::sync::Semaphore;

use crate::audit::{AuditConfig, AuditWriter};
use crate::error::{Result, ServiceError};
use crate::keys::{Caller, KeyStore};
use crate::metrics::{Metrics, ModelRole as Role};
use crate::registry::{ModelStatus, ModelVersion, Registry};
use crate::scorer::{ModelLoader, RiskScorer, ScoreError, Scored};
use crate::targeting::Targeting;
use cr_policy::Stratum;

/// Request limits and scheduling knobs.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Most declarations in one batch request (default 1000).
    pub max_batch: usize,
    /// Requests with at most this many declarations are scored directly on the async worker
    /// thread (a single declaration of a 100-tree model takes microseconds, less than the
    /// hand-off to a blocking thread); larger ones go to `spawn_blocking`. Default 16.
    pub inline_max_declarations: usize,
    /// Concurrent blocking scoring tasks (default: number of CPUs).
    pub blocking_permits: usize,
    /// Time to receive a complete request body (default 10 s); 408 after it.
    pub body_read_timeout: std::time::Duration,
    /// Longest declaration id in bytes (default 64); longer ones are refused with 422.
    pub max_id_bytes: usize,
    /// Longest text value or field name in a declaration in bytes (default 256).
    pub max_text_bytes: usize,
    /// Most `/v1/score` requests one API key may have in flight; more get 429 (default 256).
    pub per_key_concurrency: usize,
    /// How decisions are committed to the audit trail (durable group commit by default).
    pub audit: AuditConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_batch: 1000,
            inline_max_declarations: 16,
            blocking_permits: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            body_read_timeout: std::time::Duration::from_secs(10),
            max_id_bytes: 64,
            max_text_bytes: 256,
            per_key_concurrency: 256,
            audit: AuditConfig::default(),
        }
    }
}

/// A model version with its loaded scorer and, when the version has one, its compiled
/// targeting policy.
pub struct LoadedModel {
    pub meta: ModelVersion,
    pub scorer: Arc<dyn RiskScorer>,
    pub targeting: Option<Arc<Targeting>>,
}

impl LoadedModel {
    /// Load-time part of a deployment: compile the version's policy (if any) against the
    /// loaded model's schema and reference (watch lists are read now).
    pub fn new(meta: ModelVersion, scorer: Arc<dyn RiskScorer>) -> Result<LoadedModel> {
        let targeting = match &meta.policy {
            None => None,
            Some(p) => {
                let schema = scorer.schema().ok_or_else(|| {
                    ServiceError::Invalid(format!(
                        "model {}: no declaration schema for its policy",
                        meta.version
                    ))
                })?;
                Some(Arc::new(Targeting::compile(
                    p,
                    schema,
                    meta.reference().as_ref(),
                )?))
            }
        };
        Ok(LoadedModel {
            meta,
            scorer,
            targeting,
        })
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("version", &self.meta.version)
            .finish_non_exhaustive()
    }
}

/// What answers right now.
#[derive(Debug, Default)]
pub struct Deployment {
    pub champion: Option<Arc<LoadedModel>>,
    pub challenger: Option<Arc<LoadedModel>>,
}

/// One decision for one declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub declaration_id: String,
    pub score: f32,
    pub percentile: Option<f64>,
    /// The channel: the policy's channel name under a policy, else from the version's
    /// thresholds (green / yellow / red).
    pub channel: String,
    pub shadow_score: Option<f32>,
    /// Under a policy: how the declaration came to its channel, with what probability it is
    /// selected, and the rules that fired.
    pub targeting: Option<TargetingOut>,
}

/// The policy part of a [`Decision`].
#[derive(Debug, Clone, PartialEq)]
pub struct TargetingOut {
    pub stratum: Stratum,
    pub propensity: f64,
    /// Names of the rules that fired, in policy order.
    pub rules: Vec<String>,
}

/// Score `records` with the deployment's champion (and the challenger in shadow). CPU-bound:
/// call inline only for small requests.
pub fn decide(
    dep: &Deployment,
    records: &[serde_json::Value],
) -> Result<Vec<Decision>, DecideError> {
    let champion = dep.champion.as_ref().ok_or(DecideError::NoChampion)?;
    let (scored, targeted) = match &champion.targeting {
        None => (
            champion.scorer.score(records).map_err(DecideError::Score)?,
            None,
        ),
        Some(t) => {
            let (batch, scores) = champion
                .scorer
                .score_rows(records)
                .map_err(DecideError::Score)?;
            let decided = t
                .decide(&batch, &scores)
                .map_err(|e| DecideError::Score(ScoreError::internal(e.to_string())))?;
            let scored: Vec<Scored> = batch
                .ids
                .into_iter()
                .zip(scores)
                .map(|(id, score)| Scored { id, score })
                .collect();
            (scored, Some((t, decided)))
        }
    };
    if scored.len() != records.len() {
        return Err(DecideError::Score(ScoreError::internal(format!(
            "model {} returned {} scores for {} declarations",
            champion.meta.version,
            scored.len(),
            records.len()
        ))));
    }
    let shadow: Option<Vec<f32>> = dep.challenger.as_ref().and_then(|c| {
        match c.scorer.score(records) {
            Ok(s) if s.len() == records.len() => Some(s.into_iter().map(|s| s.score).collect()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(challenger = %c.meta.version, error = %e, "shadow scoring failed");
                None
            }
        }
    });
    Ok(scored
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let score = f64::from(s.score);
            let (channel, targeting) = match &targeted {
                Some((t, decided)) => match decided.get(i) {
                    Some(d) => (
                        t.channel_name(d.channel).to_string(),
                        Some(TargetingOut {
                            stratum: d.stratum,
                            propensity: d.propensity,
                            rules: t
                                .rule_names(&d.rules)
                                .into_iter()
                                .map(str::to_string)
                                .collect(),
                        }),
                    ),
                    None => (String::new(), None),
                },
                None => (
                    champion.meta.thresholds.channel(score).as_str().to_string(),
                    None,
                ),
            };
            Decision {
                percentile: champion.meta.percentile(score),
                channel,
                declaration_id: s.id,
                score: s.score,
                shadow_score: shadow.as_ref().and_then(|v| v.get(i).copied()),
                targeting,
            }
        })
        .collect())
}

/// Why [`decide`] failed.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideError {
    NoChampion,
    Score(ScoreError),
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.inner.registry_path)
            .finish_non_exhaustive()
    }
}

/// Version -> (sha256 verified at load, scorer).
pub(crate) type ScorerCache = HashMap<String, (String, Arc<dyn RiskScorer>)>;

pub(crate) struct Inner {
    pub limits: Limits,
    pub registry_path: PathBuf,
    pub loader: Arc<dyn ModelLoader>,
    pub deployment: RwLock<Arc<Deployment>>,
    pub keys: RwLock<Arc<KeyStore>>,
    /// Loaded scorers by version (with the sha256 they were verified against). Looked up by
    /// key only; pruned to the deployed versions plus the previous champion after each change.
    pub cache: Mutex<ScorerCache>,
    /// Serialises model changes (HTTP admin calls and registry polling).
    pub admin: tokio::sync::Mutex<()>,
    pub audit: AuditWriter,
    pub metrics: Metrics,
    pub blocking: Arc<Semaphore>,
    /// False while the deployed champion's file is missing or no longer matches its sha256, or
    /// the registry's champion could not be loaded (`/readyz` 503).
    pub champion_ok: AtomicBool,
    /// In-flight `/v1/score` slots per key id ([`Limits::per_key_concurrency`]).
    key_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    request_prefix: String,
    request_seq: AtomicU64,
}

impl AppState {
    /// Open the registry at `registry_path` (creating it if needed), load keys and the
    /// champion/challenger, start the audit writer. A champion that cannot be loaded (file
    /// missing or changed) leaves the server up but not ready (`/readyz` 503, admin calls work);
    /// a challenger that cannot be loaded is left out of shadow scoring (error log and metric).
    /// Must be called outside an async context or inside `spawn_blocking` (it loads models).
    pub fn open(registry_path: &Path, limits: Limits) -> Result<AppState> {
        Self::open_with_loader(
            registry_path,
            limits,
            Arc::new(crate::infer::InferLoader::default()),
        )
    }

    /// [`AppState::open`] with a specific model loader.
    pub fn open_with_loader(
        registry_path: &Path,
        limits: Limits,
        loader: Arc<dyn ModelLoader>,
    ) -> Result<AppState> {
        let registry = Registry::open_with_loader(registry_path, Arc::clone(&loader))?;
        let keys = KeyStore::load(&registry)?;
        let audit = AuditWriter::start(registry_path, limits.audit.clone())?;
        let mut prefix = [0u8; 6];
        rand::rng().fill_bytes(&mut prefix);
        let state = AppState {
            inner: Arc::new(Inner {
                blocking: Arc::new(Semaphore::new(limits.blocking_permits.max(1))),
                limits,
                registry_path: registry_path.to_path_buf(),
                loader,
                deployment: RwLock::new(Arc::new(Deployment::default())),
                keys: RwLock::new(Arc::new(keys)),
                cache: Mutex::new(HashMap::new()),
                admin: tokio::sync::Mutex::new(()),
                audit,
                metrics: Metrics::default(),
                champion_ok: AtomicBool::new(true),
                key_slots: Mutex::new(HashMap::new()),
                request_prefix: hex::encode(prefix),
                request_seq: AtomicU64::new(0),
            }),
        };
        state.sync_blocking(&registry)?;
        Ok(state)
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn registry_path(&self) -> &Path {
        &self.inner.registry_path
    }

    /// A fresh registry connection (for admin operations, off the async runtime).
    pub fn registry(&self) -> Result<Registry> {
        Registry::open_with_loader(&self.inner.registry_path, Arc::clone(&self.inner.loader))
    }

    /// The current deployment snapshot.
    pub fn deployment(&self) -> Arc<Deployment> {
        match self.inner.deployment.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn install(&self, dep: Deployment) {
        let dep = Arc::new(dep);
        match self.inner.deployment.write() {
            Ok(mut g) => *g = dep,
            Err(poisoned) => *poisoned.into_inner() = dep,
        }
    }

    /// Verify a caller's key against the in-memory key table.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let keys = match self.inner.keys.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        keys.verify(presented)
    }

    /// Re-read active keys from the registry (blocking).
    pub fn reload_keys_blocking(&self, registry: &Registry) -> Result<()> {
        let keys = Arc::new(KeyStore::load(registry)?);
        match self.inner.keys.write() {
            Ok(mut g) => *g = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        Ok(())
    }

    pub fn audit(&self) -> &AuditWriter {
        &self.inner.audit
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// One of `key_id`'s in-flight request slots, `None` when all are taken. Released on drop.
    pub fn key_slot(&self, key_id: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let sem = {
            let mut slots = match self.inner.key_slots.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            match slots.get(key_id) {
                Some(s) => Arc::clone(s),
                None => {
                    let s = Arc::new(Semaphore::new(self.inner.limits.per_key_concurrency.max(1)));
                    slots.insert(key_id.to_string(), Arc::clone(&s));
                    s
                }
            }
        };
        sem.try_acquire_owned().ok()
    }

    /// A new request id: a per-process random prefix and a counter (unique, cheap).
    pub fn next_request_id(&self) -> String {
        let n = self.inner.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:010}", self.inner.request_prefix)
    }

    fn scorer_for(&self, registry: &Registry, mv: &ModelVersion) -> Result<Arc<dyn RiskScorer>> {
        let cached = self.inner.cache.lock().ok().and_then(|c| {
            c.get(&mv.version)
                .filter(|(sha, _)| *sha == mv.sha256)
                .map(|(_, s)| Arc::clone(s))
        });
        if let Some(s) = cached {
            // Loaded earlier from verified bytes; still refuse if the file has since changed,
            // so a tampered file is noticed at the next promotion.
            mv.verify_file()?;
            return Ok(s);
        }
        let scorer = registry.load(mv)?;
        if let Ok(mut c) = self.inner.cache.lock() {
            c.insert(mv.version.clone(), (mv.sha256.clone(), Arc::clone(&scorer)));
        }
        Ok(scorer)
    }

    /// Whether the champion's file is intact (see [`Inner::champion_ok`]).
    pub fn champion_intact(&self) -> bool {
        self.inner.champion_ok.load(Ordering::Relaxed)
    }

    /// Make the in-memory deployment match the registry's champion and challenger (blocking:
    /// may load models). A champion that fails to load (file missing, changed, unloadable)
    /// keeps the current champion and marks the server not ready; a challenger that fails is
    /// dropped from shadow scoring. Both are logged and counted
    /// (`customs_risk_model_integrity_failures_total`). Errors only when the registry cannot be
    /// read.
    pub fn sync_blocking(&self, registry: &Registry) -> Result<()> {
        let current = self.deployment();
        let champion = registry.champion()?;
        let challenger = registry.challenger()?;
        let same =
            |loaded: &Option<Arc<LoadedModel>>, want: &Option<ModelVersion>| match (loaded, want) {
                (None, None) => true,
                (Some(l), Some(w)) => l.meta == *w,
                _ => false,
            };
        let champion_same = same(&current.champion, &champion);
        if champion_same && same(&current.challenger, &challenger) {
            return Ok(());
        }
        let load = |mv: ModelVersion| -> Result<Arc<LoadedModel>> {
            let scorer = self.scorer_for(registry, &mv)?;
            Ok(Arc::new(LoadedModel::new(mv, scorer)?))
        };
        let new_champion = if champion_same {
            current.champion.clone()
        } else {
            match champion {
                None => {
                    self.inner.champion_ok.store(true, Ordering::Relaxed);
                    None
                }
                Some(mv) => {
                    let version = mv.version.clone();
                    match load(mv) {
                        Ok(m) => {
                            self.inner.champion_ok.store(true, Ordering::Relaxed);
                            Some(m)
                        }
                        Err(e) => {
                            self.inner.metrics.integrity_failure(Role::Champion);
                            self.inner.champion_ok.store(false, Ordering::Relaxed);
                            tracing::error!(champion = %version, error = %e,
                                "the registry's champion cannot be used; not ready until it is fixed or another version is promoted");
                            current.champion.clone()
                        }
                    }
                }
            }
        };
        let new_challenger = if same(&current.challenger, &challenger) {
            current.challenger.clone()
        } else {
            match challenger {
                None => None,
                Some(mv) => {
                    let version = mv.version.clone();
                    match load(mv) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            self.inner.metrics.integrity_failure(Role::Challenger);
                            tracing::error!(challenger = %version, error = %e,
                                "the challenger cannot be used; shadow scoring is off");
                            None
                        }
                    }
                }
            }
        };
        let new = Deployment {
            champion: new_champion,
            challenger: new_challenger,
        };
        let changed = |a: &Option<Arc<LoadedModel>>, b: &Option<Arc<LoadedModel>>| match (a, b) {
            (None, None) => false,
            (Some(x), Some(y)) => !Arc::ptr_eq(x, y),
            _ => true,
        };
        if !changed(&new.champion, &current.champion)
            && !changed(&new.challenger, &current.challenger)
        {
            return Ok(());
        }
        let previous = current.champion.as_ref().map(|c| c.meta.version.clone());
        if let Ok(mut cache) = self.inner.cache.lock() {
            let keep: Vec<String> = [&new.champion, &new.challenger]
                .into_iter()
                .flatten()
                .map(|m| m.meta.version.clone())
                .chain(previous)
                .collect();
            cache.retain(|v, _| keep.contains(v));
        }
        tracing::info!(
            champion = new
                .champion
                .as_ref()
                .map(|m| m.meta.version.as_str())
                .unwrap_or("-"),
            challenger = new
                .challenger
                .as_ref()
                .map(|m| m.meta.version.as_str())
                .unwrap_or("-"),
            "deployment changed"
        );
        self.install(new);
        Ok(())
    }

    /// Re-hash the deployed champion's and challenger's files (blocking). A champion whose
    /// file is missing or changed marks the server not ready (it keeps answering with the
    /// verified model in memory, so admin calls and in-flight work go on); a challenger whose
    /// file is missing or changed is dropped from shadow scoring. Logged and counted.
    pub fn check_models_blocking(&self) {
        let dep = self.deployment();
        if let Some(c) = &dep.champion {
            match c.meta.verify_file() {
                Ok(()) => {
                    if !self.inner.champion_ok.swap(true, Ordering::Relaxed) {
                        tracing::info!(champion = %c.meta.version, "champion file intact again; ready");
                    }
                }
                Err(e) => {
                    self.inner.metrics.integrity_failure(Role::Champion);
                    self.inner.champion_ok.store(false, Ordering::Relaxed);
                    tracing::error!(champion = %c.meta.version, error = %e,
                        "champion model file check failed; not ready");
                }
            }
        }
        if let Some(c) = &dep.challenger {
            if let Err(e) = c.meta.verify_file() {
                self.inner.metrics.integrity_failure(Role::Challenger);
                tracing::error!(challenger = %c.meta.version, error = %e,
                    "challenger model file check failed; dropped from shadow scoring");
                // Swap only if the deployment has not changed meanwhile.
                let mut g = match self.inner.deployment.write() {
                    Ok(g) => g,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if Arc::ptr_eq(&*g, &dep) {
                    *g = Arc::new(Deployment {
                        champion: dep.champion.clone(),
                        challenger: None,
                    });
                }
            }
        }
    }

    /// [`AppState::check_models_blocking`] off the async runtime.
    pub async fn check_models(&self) {
        let _guard = self.inner.admin.lock().await;
        let this = self.clone();
        let _ = run_blocking(move || {
            this.check_models_blocking();
            Ok(())
        })
        .await;
    }

    /// Re-read keys and deployment from the registry (picks up CLI changes).
    pub async fn refresh(&self) -> Result<()> {
        let _guard = self.inner.admin.lock().await;
        let this = self.clone();
        run_blocking(move || {
            let reg = this.registry()?;
            this.reload_keys_blocking(&reg)?;
            this.sync_blocking(&reg)
        })
        .await
    }

    /// Promote `version` to champion: verify and load it first, then record the promotion and
    /// swap it in atomically.
    pub async fn promote(&self, version: &str, by: &str) -> Result<ModelVersion> {
        let _guard = self.inner.admin.lock().await;
        let (this, version, by) = (self.clone(), version.to_string(), by.to_string());
        run_blocking(move || {
            let mut reg = this.registry()?;
            let mv = reg.get(&version)?;
            if mv.status == ModelStatus::Retired {
                return Err(ServiceError::Conflict(format!(
                    "version {version:?} is retired"
                )));
            }
            // A model that cannot load (or whose file changed) never becomes champion.
            let scorer = this.scorer_for(&reg, &mv)?;
            // ... nor one whose policy cannot be applied (watch lists gone, ...).
            LoadedModel::new(mv.clone(), scorer)?;
            let mv = reg.promote(&version, &by)?;
            this.sync_blocking(&reg)?;
            Ok(mv)
        })
        .await
    }

    /// Retire `version` (refused for the champion).
    pub async fn retire(&self, version: &str, by: &str) -> Result<ModelVersion> {
        let _guard = self.inner.admin.lock().await;
        let (this, version, by) = (self.clone(), version.to_string(), by.to_string());
        run_blocking(move || {
            let mut reg = this.registry()?;
            let mv = reg.retire(&version, &by)?;
            this.sync_blocking(&reg)?;
            Ok(mv)
        })
        .await
    }

    /// Make `version` the shadow challenger (loaded and verified first).
    pub async fn set_challenger(&self, version: &str, by: &str) -> Result<ModelVersion> {
        let _guard = self.inner.admin.lock().await;
        let (this, version, by) = (self.clone(), version.to_string(), by.to_string());
        run_blocking(move || {
            let mut reg = this.registry()?;
            let mv = reg.get(&version)?;
            if mv.status == ModelStatus::Retired {
                return Err(ServiceError::Conflict(format!(
                    "version {version:?} is retired"
                )));
            }
            let scorer = this.scorer_for(&reg, &mv)?;
            // ... nor one whose policy cannot be applied (watch lists gone, ...).
            LoadedModel::new(mv.clone(), scorer)?;
            let mv = reg.set_challenger(&version, &by)?;
            this.sync_blocking(&reg)?;
            Ok(mv)
        })
        .await
    }

    /// Stop shadow scoring.
    pub async fn clear_challenger(&self, by: &str) -> Result<()> {
        let _guard = self.inner.admin.lock().await;
        let (this, by) = (self.clone(), by.to_string());
        run_blocking(move || {
            let mut reg = this.registry()?;
            reg.clear_challenger(&by)?;
            this.sync_blocking(&reg)
        })
        .await
    }

    /// All registered versions.
    pub async fn list_models(&self) -> Result<Vec<ModelVersion>> {
        let this = self.clone();
        run_blocking(move || this.registry()?.list()).await
    }

    /// Wait until every decision so far is committed to the audit trail.
    pub async fn flush_audit(&self) -> Result<()> {
        self.inner.audit.flush().await
    }
}

/// Run blocking work off the async runtime.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Internal(format!("blocking task failed: {e}")))?
}
