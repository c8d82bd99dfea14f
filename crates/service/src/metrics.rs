//! Prometheus metrics with plain atomics (no registry, no locks on the request path).
//!
//! Exposed series:
//! - `customs_risk_http_requests_total{route, status}` (counter)
//! - `customs_risk_http_request_duration_seconds{route}` (histogram)
//! - `customs_risk_http_in_flight` (gauge)
//! - `customs_risk_declarations_scored_total` (counter)
//! - `customs_risk_model_info{version, role}` (gauge, 1 per loaded champion / challenger)
//! - `customs_risk_audit_records_written_total`, `customs_risk_audit_write_errors_total`,
//!   `customs_risk_audit_healthy`
//! - `customs_risk_http_connections` (gauge), `customs_risk_http_connections_refused_total`
//! - `customs_risk_model_integrity_failures_total{role}` (failed model file checks)
//! - `customs_risk_audit_queue_records`, `customs_risk_audit_queue_bytes` (gauges: waiting for
//!   their commit), `customs_risk_audit_commit_seconds` (gauge: the last group commit),
//!   `customs_risk_audit_commit_seconds_sum` / `_count` (counters: all commits)

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::audit::AuditStats;
use std::time::Duration;

/// Routes we count separately (anything else is `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Score,
    Admin,
    Health,
    Metrics,
    Other,
}

const ROUTES: [(Route, &str); 5] = [
    (Route::Score, "score"),
    (Route::Admin, "admin"),
    (Route::Health, "health"),
    (Route::Metrics, "metrics"),
    (Route::Other, "other"),
];

/// Status codes the service produces; anything else is counted under its class.
const STATUSES: [u16; 16] = [
    200, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 499, 500, 503, 0,
];

/// Latency bucket upper bounds in microseconds (10 µs .. 2.5 s): a single declaration is
/// answered in tens of microseconds, a durable one in a few hundred.
const BUCKETS_US: [u64; 18] = [
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    u64::MAX,
];

#[derive(Debug, Default)]
struct RouteMetrics {
    by_status: [AtomicU64; STATUSES.len()],
    buckets: [AtomicU64; BUCKETS_US.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// Which deployed model a check concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    Champion,
    Challenger,
}

#[derive(Debug, Default)]
pub struct Metrics {
    routes: [RouteMetrics; ROUTES.len()],
    in_flight: AtomicI64,
    pub declarations_scored: AtomicU64,
    /// Failed model file checks (missing, changed, unloadable): champion, challenger.
    integrity_failures: [AtomicU64; 2],
    connections: AtomicI64,
    connections_refused: AtomicU64,
}

fn route_index(r: Route) -> usize {
    ROUTES
        .iter()
        .position(|(x, _)| *x == r)
        .unwrap_or(ROUTES.len() - 1)
}

fn status_index(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len() - 1)
}

impl Metrics {
    pub fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn leave(&self, route: Route, status: u16, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let m = &self.routes[route_index(route)];
        m.by_status[status_index(status)].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_US
            .iter()
            .position(|&ub| us <= ub)
            .unwrap_or(BUCKETS_US.len() - 1);
        m.buckets[b].fetch_add(1, Ordering::Relaxed);
        m.sum_us.fetch_add(us, Ordering::Relaxed);
        m.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection closed at once because the connection limit was reached.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Open client connections.
    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Count a failed model file check.
    pub fn integrity_failure(&self, role: ModelRole) {
        self.integrity_failures[role as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Failed model file checks so far for `role`.
    pub fn integrity_failures(&self, role: ModelRole) -> u64 {
        self.integrity_failures[role as usize].load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition (format 0.0.4). `models` is `(version, role)` of each loaded
    /// model; `audit` the audit writer's counters.
    pub fn render(&self, models: &[(&str, &str)], audit: &AuditStats) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP customs_risk_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE customs_risk_http_requests_total counter");
        for (ri, (_, rname)) in ROUTES.iter().enumerate() {
            for (si, status) in STATUSES.iter().enumerate() {
                let n = self.routes[ri].by_status[si].load(Ordering::Relaxed);
                if n > 0 {
                    let status = if *status == 0 {
                        "other".to_string()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(out, "customs_risk_http_requests_total{{route=\"{rname}\",status=\"{status}\"}} {n}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP customs_risk_http_request_duration_seconds Request latency."
        );
        let _ = writeln!(
            out,
            "# TYPE customs_risk_http_request_duration_seconds histogram"
        );
        for (ri, (_, rname)) in ROUTES.iter().enumerate() {
            let m = &self.routes[ri];
            let count = m.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bi, ub) in BUCKETS_US.iter().enumerate() {
                cumulative += m.buckets[bi].load(Ordering::Relaxed);
                let le = if *ub == u64::MAX {
                    "+Inf".to_string()
                } else {
                    format!("{}", *ub as f64 / 1e6)
                };
                let _ = writeln!(
                    out,
                    "customs_risk_http_request_duration_seconds_bucket{{route=\"{rname}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = m.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "customs_risk_http_request_duration_seconds_sum{{route=\"{rname}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "customs_risk_http_request_duration_seconds_count{{route=\"{rname}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP customs_risk_http_in_flight Requests being handled."
        );
        let _ = writeln!(out, "# TYPE customs_risk_http_in_flight gauge");
        let _ = writeln!(out, "customs_risk_http_in_flight {}", self.in_flight());
        let _ = writeln!(
            out,
            "# HELP customs_risk_declarations_scored_total Declarations scored by the champion."
        );
        let _ = writeln!(out, "# TYPE customs_risk_declarations_scored_total counter");
        let _ = writeln!(
            out,
            "customs_risk_declarations_scored_total {}",
            self.declarations_scored.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP customs_risk_model_info Loaded model versions (1 per version and role)."
        );
        let _ = writeln!(out, "# TYPE customs_risk_model_info gauge");
        for (version, role) in models {
            let _ = writeln!(
                out,
                "customs_risk_model_info{{version=\"{}\",role=\"{role}\"}} 1",
                escape_label(version)
            );
        }
        let _ = writeln!(
            out,
            "# HELP customs_risk_model_integrity_failures_total Failed model file checks (missing, changed or unloadable file)."
        );
        let _ = writeln!(
            out,
            "# TYPE customs_risk_model_integrity_failures_total counter"
        );
        for (role, name) in [
            (ModelRole::Champion, "champion"),
            (ModelRole::Challenger, "challenger"),
        ] {
            let _ = writeln!(
                out,
                "customs_risk_model_integrity_failures_total{{role=\"{name}\"}} {}",
                self.integrity_failures(role)
            );
        }
        let written = audit.written.load(Ordering::Relaxed);
        let errors = audit.write_errors.load(Ordering::Relaxed);
        let healthy = audit.healthy.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP customs_risk_audit_records_written_total Decisions committed to the audit trail.");
        let _ = writeln!(
            out,
            "# TYPE customs_risk_audit_records_written_total counter"
        );
        let _ = writeln!(out, "customs_risk_audit_records_written_total {written}");
        let _ = writeln!(
            out,
            "# HELP customs_risk_audit_write_errors_total Failed audit transactions (retried)."
        );
        let _ = writeln!(out, "# TYPE customs_risk_audit_write_errors_total counter");
        let _ = writeln!(out, "customs_risk_audit_write_errors_total {errors}");
        let _ = writeln!(
            out,
            "# HELP customs_risk_audit_healthy 1 when the last audit write succeeded."
        );
        let _ = writeln!(out, "# TYPE customs_risk_audit_healthy gauge");
        let _ = writeln!(out, "customs_risk_audit_healthy {}", u8::from(healthy));
        let gauges = [
            (
                "customs_risk_http_connections",
                "Open client connections.",
                "gauge",
                self.connections().max(0) as f64,
            ),
            (
                "customs_risk_http_connections_refused_total",
                "Connections closed at once because the connection limit was reached.",
                "counter",
                self.connections_refused.load(Ordering::Relaxed) as f64,
            ),
            (
                "customs_risk_audit_queue_records",
                "Decisions waiting for their audit commit.",
                "gauge",
                audit.queued_records.load(Ordering::Relaxed).max(0) as f64,
            ),
            (
                "customs_risk_audit_queue_bytes",
                "Bytes of decisions waiting for their audit commit.",
                "gauge",
                audit.queued_bytes.load(Ordering::Relaxed).max(0) as f64,
            ),
            (
                "customs_risk_audit_commit_seconds",
                "Duration of the last audit group commit.",
                "gauge",
                audit.last_commit_us.load(Ordering::Relaxed) as f64 / 1e6,
            ),
            (
                "customs_risk_audit_commit_seconds_sum",
                "Total time spent in audit group commits.",
                "counter",
                audit.commit_us_sum.load(Ordering::Relaxed) as f64 / 1e6,
            ),
            (
                "customs_risk_audit_commit_seconds_count",
                "Audit group commits.",
                "counter",
                audit.commits.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.enter();
        m.leave(Route::Score, 200, Duration::from_micros(100));
        m.enter();
        m.leave(Route::Score, 401, Duration::from_millis(3));
        let audit = AuditStats::default();
        audit.queued_records.store(3, Ordering::Relaxed);
        audit.last_commit_us.store(1500, Ordering::Relaxed);
        let text = m.render(&[("v1", "champion")], &audit);
        assert!(text.contains("customs_risk_http_requests_total{route=\"score\",status=\"200\"} 1"));
        assert!(text.contains("customs_risk_http_requests_total{route=\"score\",status=\"401\"} 1"));
        // 100 µs lands in the 100 µs bucket, not below it.
        assert!(text.contains(
            "customs_risk_http_request_duration_seconds_bucket{route=\"score\",le=\"0.00005\"} 0"
        ));
        assert!(text.contains(
            "customs_risk_http_request_duration_seconds_bucket{route=\"score\",le=\"0.0001\"} 1"
        ));
        assert!(text.contains(
            "customs_risk_http_request_duration_seconds_bucket{route=\"score\",le=\"0.00001\"} 0"
        ));
        assert!(text.contains(
            "customs_risk_http_request_duration_seconds_bucket{route=\"score\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "customs_risk_http_request_duration_seconds_bucket{route=\"score\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("customs_risk_http_in_flight 0"));
        assert!(text.contains("customs_risk_model_info{version=\"v1\",role=\"champion\"} 1"));
        assert!(text.contains("customs_risk_audit_queue_records 3\n"));
        assert!(text.contains("customs_risk_audit_commit_seconds 0.0015\n"));
    }
}
