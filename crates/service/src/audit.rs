//! Audit trail: every decision, append-only, written off the request path.
//!
//! Request handlers push [`AuditRecord`]s into a bounded channel (waiting, never dropping,
//! when it is full); one writer thread drains it and inserts everything it finds in one
//! transaction. [`AuditWriter::close`] flushes and stops the thread, so nothing accepted is
//! lost on graceful shutdown. The `audit` table's triggers abort any UPDATE or DELETE.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

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
}

/// A stored decision (a record plus its sequence number).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

enum Msg {
    Records(Vec<AuditRecord>),
    Flush(oneshot::Sender<()>),
    /// Write everything queued, acknowledge, and stop.
    Stop(oneshot::Sender<()>),
}

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct AuditStats {
    pub written: AtomicU64,
    pub write_errors: AtomicU64,
    pub healthy: AtomicBool,
}

/// Handle to the writer thread. Share it behind an `Arc`.
pub struct AuditWriter {
    sender: mpsc::Sender<Msg>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<AuditStats>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// Most records inserted per transaction.
const MAX_BATCH_RECORDS: usize = 8192;

impl AuditWriter {
    /// Start the writer on its own connection to the registry file. `capacity` bounds the
    /// number of queued requests (each message carries the records of one request).
    pub fn start(path: &Path, capacity: usize) -> Result<AuditWriter> {
        let conn = db::open(path)?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(AuditStats {
            healthy: AtomicBool::new(true),
            ..AuditStats::default()
        });
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer_loop(conn, rx, &thread_stats))
            .map_err(|source| ServiceError::Io {
                path: PathBuf::from("<audit thread>"),
                source,
            })?;
        Ok(AuditWriter {
            sender: tx,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }

    fn stopped() -> ServiceError {
        ServiceError::Audit("writer has stopped; decision not recorded".into())
    }

    /// Queue records; waits (asynchronously) while the queue is full.
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Self::stopped());
        }
        self.sender
            .send(Msg::Records(records))
            .await
            .map_err(|_| Self::stopped())
    }

    /// Wait until every record queued before this call is committed.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.sender
            .send(Msg::Flush(done))
            .await
            .map_err(|_| Self::stopped())?;
        wait.await.map_err(|_| Self::stopped())
    }

    /// Write everything queued and stop the writer thread (idempotent). Call it after the HTTP
    /// server has drained its in-flight requests; later appends fail with
    /// [`ServiceError::Audit`].
    pub async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        if self.sender.send(Msg::Stop(done)).await.is_ok() {
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
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        if self.sender.blocking_send(Msg::Stop(done)).is_ok() {
            let _ = wait.blocking_recv();
        }
        if let Some(handle) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = handle.join();
        }
        Ok(())
    }
}

fn insert_batch(conn: &mut Connection, records: &[AuditRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (at, key_id, request_id, declaration_id, model_version, score, percentile, \
             channel, shadow_version, shadow_score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for r in records {
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
                r.shadow_score
            ])?;
        }
    }
    tx.commit()
}

fn write_with_retry(conn: &mut Connection, records: &[AuditRecord], stats: &AuditStats) {
    if records.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(10);
    for attempt in 0.. {
        match insert_batch(conn, records) {
            Ok(()) => {
                stats
                    .written
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                stats.healthy.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                stats.healthy.store(false, Ordering::Relaxed);
                // Keep trying: meanwhile the bounded queue pushes back on requests instead of
                // losing decisions. Give up only after about a minute of failures.
                if attempt >= 60 {
                    tracing::error!(error = %e, lost = records.len(), "audit write failed repeatedly; records lost");
                    return;
                }
                tracing::error!(error = %e, attempt, "audit write failed; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Msg>, stats: &AuditStats) {
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    let mut stop: Option<oneshot::Sender<()>> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Records(mut r) => pending.append(&mut r),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop(ack) => stop = Some(ack),
            }
            // After a stop, keep draining whatever is already queued.
            if pending.len() >= MAX_BATCH_RECORDS && stop.is_none() {
                break;
            }
            next = rx.try_recv().ok();
        }
        write_with_retry(&mut conn, &pending, stats);
        pending.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if let Some(ack) = stop.take() {
            rx.close();
            // Anything that slipped in between the last try_recv and close().
            while let Ok(msg) = rx.try_recv() {
                if let Msg::Records(mut r) = msg {
                    pending.append(&mut r);
                }
            }
            write_with_retry(&mut conn, &pending, stats);
            let _ = ack.send(());
            return;
        }
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

/// Decisions at or after `since` (see [`parse_since`]), oldest first.
pub fn read_since(conn: &Connection, since: &str) -> Result<Vec<AuditRow>> {
    let since = parse_since(since)?;
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, key_id, request_id, declaration_id, model_version, score, percentile, channel, \
             shadow_version, shadow_score FROM audit WHERE at >= ?1 ORDER BY seq",
        )
        .map_err(ServiceError::db("reading audit"))?;
    let rows = stmt
        .query_map([since], |r| {
            Ok(AuditRow {
                seq: r.get(0)?,
                record: AuditRecord {
                    at: r.get(1)?,
                    key_id: r.get(2)?,
                    request_id: r.get(3)?,
                    declaration_id: r.get(4)?,
                    model_version: r.get(5)?,
                    score: r.get(6)?,
                    percentile: r.get(7)?,
                    channel: r.get(8)?,
                    shadow_version: r.get(9)?,
                    shadow_score: r.get(10)?,
                },
            })
        })
        .map_err(ServiceError::db("reading audit"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(ServiceError::db("reading audit"))?;
    Ok(rows)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// `customs-risk audit export --since DATE`: write decisions at or after `since` from the
/// registry file to `out`; returns the number of decisions written.
pub fn export(
    registry_path: &Path,
    since: &str,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    let conn = db::open(registry_path)?;
    let rows = read_since(&conn, since)?;
    let io = |source| ServiceError::Io {
        path: PathBuf::from("<export output>"),
        source,
    };
    if format == ExportFormat::Csv {
        writeln!(
            out,
            "seq,at,key_id,request_id,declaration_id,model_version,score,percentile,channel,shadow_version,shadow_score"
        )
        .map_err(io)?;
    }
    for row in &rows {
        let r = &row.record;
        match format {
            ExportFormat::Csv => writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                row.seq,
                csv_field(&r.at),
                csv_field(&r.key_id),
                csv_field(&r.request_id),
                csv_field(&r.declaration_id),
                csv_field(&r.model_version),
                r.score,
                opt_num(r.percentile),
                csv_field(&r.channel),
                csv_field(r.shadow_version.as_deref().unwrap_or("")),
                opt_num(r.shadow_score),
            )
            .map_err(io)?,
            ExportFormat::JsonLines => {
                let line =
                    serde_json::to_string(row).map_err(|e| ServiceError::Audit(e.to_string()))?;
                writeln!(out, "{line}").map_err(io)?;
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(rows.len() as u64)
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
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
