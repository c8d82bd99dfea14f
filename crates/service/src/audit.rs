//! Audit trail: every decision, append-only and hash-chained, committed before it is answered.
//!
//! Durable before answered: a request handler calls [`AuditWriter::append`], which hands the
//! records to one writer thread and waits until they are committed. The writer takes everything
//! queued meanwhile into one SQLite transaction (`BEGIN IMMEDIATE` ... `COMMIT`, one WAL sync
//! with `synchronous = FULL`): group commit, so many requests share one transaction and one
//! sync. When the commit fails (disk full, another connection holding the write lock past
//! [`AuditConfig::lock_deadline`]) every request of the batch gets
//! [`ServiceError::AuditUnavailable`] (HTTP 503 with `Retry-After`, nothing returned, so
//! nothing answered is lost), the writer reports itself unhealthy (`/readyz` 503) and probes
//! the file every [`AuditConfig::probe_interval`] until a write succeeds again.
//!
//! The queue is bounded in bytes ([`AuditConfig::queue_bytes`]): a request whose records do
//! not fit waits at most the lock deadline, then gets the same 503. Each row carries a hash
//! chained to the previous row ([`crate::chain`]). [`AuditWriter::close`] writes what is queued
//! and stops the thread. The `audit` table's triggers abort any UPDATE or DELETE.
//!
//! Adding a field to [`AuditRecord`] (policy channel, reasons, ...): add a nullable column to
//! the `audit` table in [`crate::db`] (and an `ALTER TABLE` in its migration), the name to
//! [`AUDIT_COLUMNS`], read it in [`record_from_row`], and make the field an `Option` with
//! `#[serde(skip_serializing_if = "Option::is_none")]` so rows written before keep their hash.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::chain;
use crate::db;
use crate::error::{Result, ServiceError};

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC, microseconds.
    pub at: String,
    pub key_id: String,
    pub request_id: String,
    pub declaration_id: String,
    pub model_version: String,
    pub score: f64,
    pub percentile: Option<f64>,
    pub channel: String,
    pub shadow_version: Option<String>,
    pub shadow_score: Option<f64>,
    /// Under a targeting policy: `rule`, `model`, `random` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratum: Option<String>,
    /// Under a targeting policy: the probability that the declaration is selected (1 for
    /// rule and model selections, the random floor's `p` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity: Option<f64>,
    /// Under a targeting policy: names of the rules that fired, joined by `;`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
}

impl AuditRecord {
    /// Bytes this record holds in the queue (strings plus a fixed overhead).
    pub fn queued_bytes(&self) -> usize {
        128 + self.at.len()
            + self.key_id.len()
            + self.request_id.len()
            + self.declaration_id.len()
            + self.model_version.len()
            + self.channel.len()
            + self.shadow_version.as_ref().map_or(0, String::len)
            + self.stratum.as_ref().map_or(0, String::len)
            + self.rules.as_ref().map_or(0, String::len)
    }
}

/// The `audit` columns that make up an [`AuditRecord`], in [`record_from_row`]'s order.
pub const AUDIT_COLUMNS: &str = "at, key_id, request_id, declaration_id, model_version, score, \
     percentile, channel, shadow_version, shadow_score, stratum, propensity, rules";

/// Read an [`AuditRecord`] from `row`, whose column `first` is the first of [`AUDIT_COLUMNS`].
pub fn record_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        at: row.get(first)?,
        key_id: row.get(first + 1)?,
        request_id: row.get(first + 2)?,
        declaration_id: row.get(first + 3)?,
        model_version: row.get(first + 4)?,
        score: row.get(first + 5)?,
        percentile: row.get(first + 6)?,
        channel: row.get(first + 7)?,
        shadow_version: row.get(first + 8)?,
        shadow_score: row.get(first + 9)?,
        stratum: row.get(first + 10)?,
        propensity: row.get(first + 11)?,
        rules: row.get(first + 12)?,
    })
}

/// A stored decision (a record plus its sequence number).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// How the writer commits.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// `true` (the default and what `customs-risk serve` uses): [`AuditWriter::append`] returns
    /// after the commit. `false` only queues (the pre-durability behaviour, kept so the benchmark
    /// can show what durability costs; a crash loses what is queued).
    pub durable: bool,
    /// Most bytes of records queued or being written (default 64 MiB).
    pub queue_bytes: usize,
    /// How long a commit waits for another connection's write lock, and a request for queue
    /// space, before the request gets 503 (default 2 s).
    pub lock_deadline: Duration,
    /// How often an unhealthy writer retries an empty write to find out it can write again
    /// (default 1 s).
    pub probe_interval: Duration,
    /// Seconds clients are told to wait (`Retry-After`) when the audit cannot be written.
    pub retry_after_secs: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            durable: true,
            queue_bytes: 64 << 20,
            lock_deadline: Duration::from_secs(2),
            probe_interval: Duration::from_secs(1),
            retry_after_secs: 2,
        }
    }
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Msg {
    Records {
        records: Vec<AuditRecord>,
        ack: Option<Ack>,
        _permit: OwnedSemaphorePermit,
    },
    Flush(Ack),
    /// Write everything queued, acknowledge, and stop.
    Stop(oneshot::Sender<()>),
}

/// Counters and gauges the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct AuditStats {
    pub written: AtomicU64,
    pub write_errors: AtomicU64,
    pub healthy: AtomicBool,
    /// Records handed to the writer and not yet committed (or failed).
    pub queued_records: AtomicI64,
    /// Bytes of those records ([`AuditRecord::queued_bytes`]).
    pub queued_bytes: AtomicI64,
    /// Duration of the last commit (microseconds).
    pub last_commit_us: AtomicU64,
    /// Sum and number of commits (for an average commit latency).
    pub commit_us_sum: AtomicU64,
    pub commits: AtomicU64,
    /// Simulated database size limit in pages (0 = none): see [`AuditWriter::set_max_page_count`].
    max_page_count: AtomicU64,
}

/// Handle to the writer thread. Share it behind an `Arc`.
pub struct AuditWriter {
    sender: Mutex<Option<mpsc::Sender<Msg>>>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<AuditStats>,
    space: Arc<Semaphore>,
    config: AuditConfig,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// Most records inserted per transaction.
const MAX_BATCH_RECORDS: usize = 8192;

/// Largest byte budget a tokio semaphore takes in one acquire.
const MAX_PERMITS: usize = u32::MAX as usize;

impl AuditWriter {
    /// Start the writer on its own connection to the registry file.
    pub fn start(path: &Path, config: AuditConfig) -> Result<AuditWriter> {
        let conn = db::open(path)?;
        conn.busy_timeout(config.lock_deadline)
            .map_err(ServiceError::db("setting audit busy timeout"))?;
        if config.durable {
            conn.execute_batch("PRAGMA synchronous = FULL;")
                .map_err(ServiceError::db("setting audit synchronous mode"))?;
        }
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(AuditStats {
            healthy: AtomicBool::new(true),
            ..AuditStats::default()
        });
        let thread_stats = Arc::clone(&stats);
        let probe = config.probe_interval;
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer_loop(conn, rx, &thread_stats, probe))
            .map_err(|source| ServiceError::Io {
                path: PathBuf::from("<audit thread>"),
                source,
            })?;
        let budget = config.queue_bytes.clamp(1, MAX_PERMITS);
        Ok(AuditWriter {
            sender: Mutex::new(Some(tx)),
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            stats,
            space: Arc::new(Semaphore::new(budget)),
            config,
        })
    }

    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Whether the last write (or probe) succeeded.
    pub fn healthy(&self) -> bool {
        self.stats.healthy.load(Ordering::Relaxed)
    }

    /// Simulate a full disk: limit the database file to `pages` pages (SQLite's
    /// `max_page_count`, clamped by SQLite to the current size), or lift the limit with `None`.
    /// For tests and drills; applied by the writer before its next write.
    pub fn set_max_page_count(&self, pages: Option<u64>) {
        self.stats
            .max_page_count
            .store(pages.map_or(0, |p| p.max(1)), Ordering::Relaxed);
    }

    fn stopped() -> ServiceError {
        ServiceError::Audit("writer has stopped; decision not recorded".into())
    }

    fn send(&self, msg: Msg) -> Result<()> {
        let guard = self.sender.lock().map_err(|_| Self::stopped())?;
        match guard.as_ref() {
            Some(s) => s.send(msg).map_err(|_| Self::stopped()),
            None => Err(Self::stopped()),
        }
    }

    /// Record `records`. Durable mode (the default): returns once they are committed, or
    /// [`ServiceError::AuditUnavailable`] when they could not be (then nothing was recorded
    /// and the caller must not answer). Waits at most [`AuditConfig::lock_deadline`] for queue
    /// space.
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Self::stopped());
        }
        let bytes: usize = records.iter().map(AuditRecord::queued_bytes).sum();
        // A request larger than the whole budget takes all of it (it then runs alone).
        let want = bytes.clamp(1, self.config.queue_bytes.clamp(1, MAX_PERMITS)) as u32;
        let deadline = self.config.lock_deadline;
        let permit =
            match tokio::time::timeout(deadline, Arc::clone(&self.space).acquire_many_owned(want))
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(Self::stopped()),
                Err(_) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(ServiceError::AuditUnavailable(format!(
                        "audit queue full ({} bytes) for {deadline:?}",
                        self.config.queue_bytes
                    )));
                }
            };
        let n = records.len() as i64;
        self.stats.queued_records.fetch_add(n, Ordering::Relaxed);
        self.stats
            .queued_bytes
            .fetch_add(bytes as i64, Ordering::Relaxed);
        let (ack, wait) = if self.config.durable {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if let Err(e) = self.send(Msg::Records {
            records,
            ack,
            _permit: permit,
        }) {
            self.stats.queued_records.fetch_sub(n, Ordering::Relaxed);
            self.stats
                .queued_bytes
                .fetch_sub(bytes as i64, Ordering::Relaxed);
            return Err(e);
        }
        let Some(wait) = wait else { return Ok(()) };
        // The writer answers every batch; a dropped ack means the thread died.
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(ServiceError::AuditUnavailable(msg)),
            Err(_) => Err(Self::stopped()),
        }
    }

    /// Wait until every record queued before this call is committed.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(Msg::Flush(done))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(ServiceError::AuditUnavailable(msg)),
            Err(_) => Err(Self::stopped()),
        }
    }

    fn begin_close(&self) -> Option<oneshot::Receiver<()>> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return None;
        }
        let (done, wait) = oneshot::channel();
        let sent = self.send(Msg::Stop(done)).is_ok();
        // Dropping the sender lets the thread see the end of the queue after the stop.
        if let Ok(mut g) = self.sender.lock() {
            g.take();
        }
        sent.then_some(wait)
    }

    /// Write everything queued and stop the writer thread (idempotent). Call it after the HTTP
    /// server has drained its in-flight requests; later appends fail with
    /// [`ServiceError::Audit`].
    pub async fn close(&self) -> Result<()> {
        if let Some(wait) = self.begin_close() {
            let _ = wait.await;
        }
        let handle = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(handle) = handle {
            // The thread has acknowledged and is returning; joining takes microseconds.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        Ok(())
    }

    /// [`AuditWriter::close`] for callers outside an async runtime (must not be called from
    /// inside one).
    pub fn close_blocking(&self) -> Result<()> {
        if let Some(wait) = self.begin_close() {
            let _ = wait.blocking_recv();
        }
        if let Some(handle) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = handle.join();
        }
        Ok(())
    }
}

/// Insert `records` in one immediate transaction, each chained to the one before.
fn insert_batch<'a>(
    conn: &mut Connection,
    records: impl Iterator<Item = &'a AuditRecord>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut prev = chain::head(&tx, "audit")?;
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT INTO audit ({AUDIT_COLUMNS}, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ))?;
        for r in records {
            let hash = chain::link(&prev, &chain::audit_payload(r));
            stmt.execute(params![
                r.at,
                r.key_id,
                r.request_id,
                r.declaration_id,
                r.model_version,
                r.score,
                r.percentile,
                r.channel,
                r.shadow_version,
                r.shadow_score,
                r.stratum,
                r.propensity,
                r.rules,
                prev,
                hash
            ])?;
            prev = hash;
        }
    }
    tx.commit()
}

/// A real write that needs space and the write lock, so it fails exactly when a batch would.
fn probe(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('audit_probe', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [db::now_rfc3339()],
    )?;
    tx.commit()
}

fn apply_page_limit(conn: &Connection, stats: &AuditStats, applied: &mut u64) {
    let want = stats.max_page_count.load(Ordering::Relaxed);
    if want == *applied {
        return;
    }
    // SQLite's default maximum (4294967294 pages) lifts the limit.
    let pages = if want == 0 { 4_294_967_294 } else { want };
    let _ = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
        r.get::<_, i64>(0)
    });
    *applied = want;
}

struct Batch {
    records: Vec<(Vec<AuditRecord>, Option<Ack>, OwnedSemaphorePermit)>,
    flushes: Vec<Ack>,
    count: usize,
    bytes: i64,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            records: Vec::new(),
            flushes: Vec::new(),
            count: 0,
            bytes: 0,
        }
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Msg>,
    stats: &AuditStats,
    probe_every: Duration,
) {
    let mut page_limit = 0u64;
    loop {
        let first = if stats.healthy.load(Ordering::Relaxed) {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(probe_every)
        };
        let first = match first {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                apply_page_limit(&conn, stats, &mut page_limit);
                match probe(&mut conn) {
                    Ok(()) => {
                        tracing::info!("audit trail writable again");
                        stats.healthy.store(true, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "audit trail still not writable"),
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = Batch::new();
        let mut stop: Option<oneshot::Sender<()>> = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Records {
                    records,
                    ack,
                    _permit,
                } => {
                    batch.count += records.len();
                    batch.bytes += records.iter().map(|r| r.queued_bytes() as i64).sum::<i64>();
                    batch.records.push((records, ack, _permit));
                }
                Msg::Flush(ack) => batch.flushes.push(ack),
                Msg::Stop(ack) => stop = Some(ack),
            }
            // After a stop, keep draining whatever is already queued.
            if batch.count >= MAX_BATCH_RECORDS && stop.is_none() {
                break;
            }
            next = rx.try_recv().ok();
        }
        apply_page_limit(&conn, stats, &mut page_limit);
        commit(&mut conn, batch, stats);
        if let Some(ack) = stop {
            // The sender is dropped after Stop: drain the rest, write it, stop.
            let mut rest = Batch::new();
            while let Ok(msg) = rx.recv_timeout(Duration::from_millis(0)) {
                if let Msg::Records {
                    records,
                    ack,
                    _permit,
                } = msg
                {
                    rest.count += records.len();
                    rest.bytes += records.iter().map(|r| r.queued_bytes() as i64).sum::<i64>();
                    rest.records.push((records, ack, _permit));
                }
            }
            commit(&mut conn, rest, stats);
            let _ = ack.send(());
            return;
        }
    }
}

/// Commit one batch and answer everyone waiting on it.
fn commit(conn: &mut Connection, batch: Batch, stats: &AuditStats) {
    let result = if batch.count == 0 {
        Ok(())
    } else {
        let start = Instant::now();
        let r = insert_batch(
            conn,
            batch
                .records
                .iter()
                .flat_map(|(records, _, _)| records.iter()),
        );
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.last_commit_us.store(us, Ordering::Relaxed);
        stats.commit_us_sum.fetch_add(us, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        r
    };
    let outcome = match result {
        Ok(()) => {
            stats
                .written
                .fetch_add(batch.count as u64, Ordering::Relaxed);
            stats.healthy.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
            stats.healthy.store(false, Ordering::Relaxed);
            let durable = batch.records.iter().all(|(_, ack, _)| ack.is_some());
            if durable {
                tracing::error!(error = %e, records = batch.count, "audit write failed; the requests get 503");
            } else {
                tracing::error!(error = %e, lost = batch.count, "audit write failed; queued (non-durable) records lost");
            }
            Err(format!("audit trail not writable: {e}"))
        }
    };
    stats
        .queued_records
        .fetch_sub(batch.count as i64, Ordering::Relaxed);
    stats.queued_bytes.fetch_sub(batch.bytes, Ordering::Relaxed);
    for (_, ack, permit) in batch.records {
        if let Some(ack) = ack {
            let _ = ack.send(outcome.clone());
        }
        drop(permit);
    }
    for ack in batch.flushes {
        let _ = ack.send(outcome.clone());
    }
}

/// Output format of [`export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Header line, then one comma-separated line per decision (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "json" | "ndjson" | "jsonlines" => Ok(ExportFormat::JsonLines),
            _ => Err(format!(
                "unknown export format {s:?} (expected csv or jsonl)"
            )),
        }
    }
}

/// Normalise `since` (`YYYY-MM-DD`, or RFC 3339 with any offset) to the stored UTC form.
pub fn parse_since(since: &str) -> Result<String> {
    let s = since.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(format!("{}T00:00:00.000000Z", d.format("%Y-%m-%d")));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()
        })
        .map_err(|_| {
            ServiceError::Invalid(format!(
                "--since {since:?} is neither YYYY-MM-DD nor RFC 3339"
            ))
        })
}

/// Decisions at or after `since` (see [`parse_since`]), oldest first, all in memory: for tests
/// and small ranges; [`export`] streams.
pub fn read_since(conn: &Connection, since: &str) -> Result<Vec<AuditRow>> {
    let mut rows = Vec::new();
    for_each_since(conn, since, |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// Call `f` for each decision at or after `since`, oldest first, one row in memory at a time.
pub fn for_each_since(
    conn: &Connection,
    since: &str,
    mut f: impl FnMut(AuditRow) -> Result<()>,
) -> Result<u64> {
    let since = parse_since(since)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT seq, {AUDIT_COLUMNS} FROM audit WHERE at >= ?1 ORDER BY seq"
        ))
        .map_err(ServiceError::db("reading audit"))?;
    let mut rows = stmt
        .query([since])
        .map_err(ServiceError::db("reading audit"))?;
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(ServiceError::db("reading audit"))? {
        let row = AuditRow {
            seq: r.get(0).map_err(ServiceError::db("reading audit"))?,
            record: record_from_row(r, 1).map_err(ServiceError::db("reading audit"))?,
        };
        f(row)?;
        n += 1;
    }
    Ok(n)
}

/// A CSV cell: RFC 4180 quoting, and unless `raw`, a leading `'` on text that a spreadsheet
/// would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return).
fn csv_field(s: &str, raw: bool) -> String {
    let neutral;
    let s = if !raw && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutral = format!("'{s}");
        neutral.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// Export options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// CSV only: write text cells as stored, without neutralising spreadsheet formulas.
    pub raw: bool,
}

/// `customs-risk audit export --since DATE`: stream decisions at or after `since` from the
/// registry file (which must exist) to `out`, one row in memory at a time; returns the number
/// of decisions written.
pub fn export(
    registry_path: &Path,
    since: &str,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    export_with(
        registry_path,
        since,
        ExportOptions { format, raw: false },
        out,
    )
}

/// [`export`] with all options.
pub fn export_with(
    registry_path: &Path,
    since: &str,
    opts: ExportOptions,
    out: &mut dyn Write,
) -> Result<u64> {
    let conn = db::open_existing(registry_path)?;
    let io = |source| ServiceError::Io {
        path: PathBuf::from("<export output>"),
        source,
    };
    if opts.format == ExportFormat::Csv {
        writeln!(
            out,
            "seq,at,key_id,request_id,declaration_id,model_version,score,percentile,channel,shadow_version,shadow_score,stratum,propensity,rules"
        )
        .map_err(io)?;
    }
    let raw = opts.raw;
    let n = for_each_since(&conn, since, |row| {
        let r = &row.record;
        match opts.format {
            ExportFormat::Csv => writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                row.seq,
                csv_field(&r.at, raw),
                csv_field(&r.key_id, raw),
                csv_field(&r.request_id, raw),
                csv_field(&r.declaration_id, raw),
                csv_field(&r.model_version, raw),
                r.score,
                opt_num(r.percentile),
                csv_field(&r.channel, raw),
                csv_field(r.shadow_version.as_deref().unwrap_or(""), raw),
                opt_num(r.shadow_score),
                csv_field(r.stratum.as_deref().unwrap_or(""), raw),
                opt_num(r.propensity),
                csv_field(r.rules.as_deref().unwrap_or(""), raw),
            )
            .map_err(io),
            ExportFormat::JsonLines => {
                serde_json::to_writer(&mut *out, &row)
                    .map_err(|e| ServiceError::Audit(e.to_string()))?;
                out.write_all(b"\n").map_err(io)
            }
        }
    })?;
    out.flush().map_err(io)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        assert_eq!(
            parse_since("2024-03-01").unwrap(),
            "2024-03-01T00:00:00.000000Z"
        );
        assert_eq!(
            parse_since("2024-03-01T02:00:00+02:00").unwrap(),
            "2024-03-01T00:00:00.000000Z"
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a", false), "a");
        assert_eq!(csv_field("a,b", false), "\"a,b\"");
        assert_eq!(csv_field("say \"x\"", false), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn csv_formulas_are_neutralised_unless_raw() {
        for s in ["=1+2", "+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(csv_field(s, false), format!("'{s}"), "{s}");
            assert_eq!(csv_field(s, true), s, "{s}");
        }
        assert_eq!(
            csv_field("=HYPERLINK(\"x\",1)", false),
            "\"'=HYPERLINK(\"\"x\"\",1)\""
        );
        assert_eq!(csv_field("D-1", false), "D-1");
    }
}
