//! Serving: configuration (flags and environment), logging, the listener, periodic registry
//! refresh, graceful shutdown that drains in-flight requests and flushes the audit trail.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::app;
use crate::error::{Result, ServiceError};
use crate::state::{AppState, Limits};

/// Environment variables read by [`ServeConfig::apply_env`] (flags take precedence: the CLI
/// should give clap `env = ...` with these names, or call `apply_env` before applying flags).
pub const ENV_REGISTRY: &str = "CUSTOMS_RISK_REGISTRY";
pub const ENV_ADDR: &str = "CUSTOMS_RISK_ADDR";
pub const ENV_LOG_FORMAT: &str = "CUSTOMS_RISK_LOG_FORMAT";
pub const ENV_MAX_BODY_BYTES: &str = "CUSTOMS_RISK_MAX_BODY_BYTES";
pub const ENV_MAX_BATCH: &str = "CUSTOMS_RISK_MAX_BATCH";
pub const ENV_SHUTDOWN_TIMEOUT_SECS: &str = "CUSTOMS_RISK_SHUTDOWN_TIMEOUT_SECS";
pub const ENV_REFRESH_SECS: &str = "CUSTOMS_RISK_REFRESH_SECS";
pub const ENV_MAX_CONNECTIONS: &str = "CUSTOMS_RISK_MAX_CONNECTIONS";
pub const ENV_HEADER_TIMEOUT_MS: &str = "CUSTOMS_RISK_HEADER_TIMEOUT_MS";
pub const ENV_BODY_TIMEOUT_MS: &str = "CUSTOMS_RISK_BODY_TIMEOUT_MS";
pub const ENV_IDLE_TIMEOUT_SECS: &str = "CUSTOMS_RISK_IDLE_TIMEOUT_SECS";
pub const ENV_MAX_ID_BYTES: &str = "CUSTOMS_RISK_MAX_ID_BYTES";
pub const ENV_MAX_TEXT_BYTES: &str = "CUSTOMS_RISK_MAX_TEXT_BYTES";
pub const ENV_PER_KEY_CONCURRENCY: &str = "CUSTOMS_RISK_PER_KEY_CONCURRENCY";
pub const ENV_INTEGRITY_SECS: &str = "CUSTOMS_RISK_INTEGRITY_SECS";
pub const ENV_AUDIT_LOCK_DEADLINE_MS: &str = "CUSTOMS_RISK_AUDIT_LOCK_DEADLINE_MS";

/// Everything `customs-risk serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Registry SQLite file (models, keys, audit). Env `CUSTOMS_RISK_REGISTRY`.
    pub registry: PathBuf,
    /// Listen address, default `127.0.0.1:8080`. Env `CUSTOMS_RISK_ADDR`.
    pub addr: SocketAddr,
    pub limits: Limits,
    /// How long graceful shutdown waits for in-flight requests (default 30 s).
    pub shutdown_timeout: Duration,
    /// How often keys and the champion/challenger are re-read from the registry, so changes
    /// made with the CLI take effect without a restart (default 5 s; `None` disables).
    pub refresh_interval: Option<Duration>,
    /// How often the deployed champion's and challenger's files are re-hashed against the
    /// registry (default 30 s; `None` disables). See [`AppState::check_models_blocking`].
    pub integrity_interval: Option<Duration>,
    /// Connection limits and timeouts.
    pub connections: ConnectionLimits,
    /// The key for models that pseudonymise identifier columns (`serve --pseudonym-key`);
    /// `None`: `CR_PSEUDONYM_KEY` from the environment (see [`crate::InferLoader`]).
    pub pseudonym_key: Option<std::sync::Arc<cr_data::PseudonymKey>>,
}

/// What one client connection may hold. A client that opens connections and sends nothing (or
/// a header a byte at a time) is cut off by the header timeout and, beyond
/// [`ConnectionLimits::max_connections`], refused at once, so it cannot exhaust the file
/// descriptors and stop keyed clients from being served.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at most; more are accepted and closed at once (default: the process's
    /// open-file limit minus 256 for the registry, models and logs, at most 65,536).
    pub max_connections: usize,
    /// Time to receive a request's complete header, counted from when the connection is ready
    /// for the next request (default 10 s; hyper's `header_read_timeout`). An idle keep-alive
    /// connection is closed after this too when it is shorter than `idle_timeout`.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in flight for this long is closed (default 5 s).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// The soft open-file limit minus a reserve of 256, between 64 and 65,536.
fn default_max_connections() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    soft.saturating_sub(256).clamp(64, 65_536)
}

impl ServeConfig {
    pub fn new(registry: impl Into<PathBuf>, addr: SocketAddr) -> ServeConfig {
        ServeConfig {
            registry: registry.into(),
            addr,
            limits: Limits::default(),
            shutdown_timeout: Duration::from_secs(30),
            refresh_interval: Some(Duration::from_secs(5)),
            integrity_interval: Some(Duration::from_secs(30)),
            connections: ConnectionLimits::default(),
            pseudonym_key: None,
        }
    }

    /// Override fields from the environment variables that are set (`ENV_*` constants).
    pub fn apply_env(mut self) -> Result<ServeConfig> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
            v.trim()
                .parse()
                .map_err(|_| ServiceError::Invalid(format!("{name}={v:?} is not valid")))
        }
        if let Some(v) = var(ENV_REGISTRY) {
            self.registry = PathBuf::from(v);
        }
        if let Some(v) = var(ENV_ADDR) {
            self.addr = parse(ENV_ADDR, &v)?;
        }
        if let Some(v) = var(ENV_MAX_BODY_BYTES) {
            self.limits.max_body_bytes = parse(ENV_MAX_BODY_BYTES, &v)?;
        }
        if let Some(v) = var(ENV_MAX_BATCH) {
            self.limits.max_batch = parse(ENV_MAX_BATCH, &v)?;
        }
        if let Some(v) = var(ENV_SHUTDOWN_TIMEOUT_SECS) {
            self.shutdown_timeout = Duration::from_secs(parse(ENV_SHUTDOWN_TIMEOUT_SECS, &v)?);
        }
        if let Some(v) = var(ENV_AUDIT_LOCK_DEADLINE_MS) {
            let ms: u64 = parse(ENV_AUDIT_LOCK_DEADLINE_MS, &v)?;
            self.limits.audit.lock_deadline = Duration::from_millis(ms.max(1));
        }
        if let Some(v) = var(ENV_MAX_CONNECTIONS) {
            self.connections.max_connections = parse::<usize>(ENV_MAX_CONNECTIONS, &v)?.max(1);
        }
        if let Some(v) = var(ENV_HEADER_TIMEOUT_MS) {
            self.connections.header_read_timeout =
                Duration::from_millis(parse::<u64>(ENV_HEADER_TIMEOUT_MS, &v)?.max(1));
        }
        if let Some(v) = var(ENV_BODY_TIMEOUT_MS) {
            self.limits.body_read_timeout =
                Duration::from_millis(parse::<u64>(ENV_BODY_TIMEOUT_MS, &v)?.max(1));
        }
        if let Some(v) = var(ENV_IDLE_TIMEOUT_SECS) {
            self.connections.idle_timeout =
                Duration::from_secs(parse::<u64>(ENV_IDLE_TIMEOUT_SECS, &v)?.max(1));
        }
        if let Some(v) = var(ENV_MAX_ID_BYTES) {
            self.limits.max_id_bytes = parse(ENV_MAX_ID_BYTES, &v)?;
        }
        if let Some(v) = var(ENV_MAX_TEXT_BYTES) {
            self.limits.max_text_bytes = parse(ENV_MAX_TEXT_BYTES, &v)?;
        }
        if let Some(v) = var(ENV_PER_KEY_CONCURRENCY) {
            self.limits.per_key_concurrency = parse::<usize>(ENV_PER_KEY_CONCURRENCY, &v)?.max(1);
        }
        if let Some(v) = var(ENV_INTEGRITY_SECS) {
            let secs: u64 = parse(ENV_INTEGRITY_SECS, &v)?;
            self.integrity_interval = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(v) = var(ENV_REFRESH_SECS) {
            let secs: u64 = parse(ENV_REFRESH_SECS, &v)?;
            self.refresh_interval = (secs > 0).then(|| Duration::from_secs(secs));
        }
        Ok(self)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per event (for log shippers).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "pretty" | "plain" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?} (expected text or json)")),
        }
    }
}

/// Install a global `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default
/// `info`). Does nothing if one is already installed.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log redirected to a file stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `customs-risk serve`: open the registry, bind `config.addr`, serve until `shutdown`
/// resolves, drain in-flight requests (at most `config.shutdown_timeout`), flush the audit
/// trail. Pass [`shutdown_signal()`] for Ctrl-C / SIGTERM.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let path = config.registry.clone();
    let limits = config.limits.clone();
    let loader = crate::infer::InferLoader {
        pseudonym_key: config.pseudonym_key.clone(),
        ..Default::default()
    };
    let state = tokio::task::spawn_blocking(move || {
        AppState::open_with_loader(&path, limits, std::sync::Arc::new(loader))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("startup task failed: {e}")))??;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServiceError::Io {
            path: PathBuf::from(config.addr.to_string()),
            source,
        })?;
    serve(state, listener, &config, shutdown).await
}

/// Serve `state` on an already bound listener (tests bind `127.0.0.1:0`). Closes the audit
/// writer before returning.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local = listener
        .local_addr()
        .map_or_else(|_| config.addr.to_string(), |a| a.to_string());
    tracing::info!(
        addr = %local,
        registry = %config.registry.display(),
        champion = state.deployment().champion.as_ref().map(|c| c.meta.version.as_str()).unwrap_or("-"),
        "serving"
    );
    let refresher = config.refresh_interval.map(|every| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = state.refresh().await {
                    tracing::error!(error = %e, "registry refresh failed; keeping the current deployment");
                }
            }
        })
    });
    let checker = config.integrity_interval.map(|every| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                state.check_models().await;
            }
        })
    });
    let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = fired_tx.send(());
    };
    let server = accept_loop(
        listener,
        app(state.clone()),
        state.clone(),
        config.connections.clone(),
        signal,
    );
    let timeout = config.shutdown_timeout;
    let drained = tokio::select! {
        () = server => true,
        _ = async {
            if fired_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(timeout).await;
        } => false,
    };
    if !drained {
        tracing::warn!(
            in_flight = state.metrics().in_flight(),
            "drain timeout reached; closing remaining connections"
        );
    }
    for task in [refresher, checker].into_iter().flatten() {
        task.abort();
    }
    state.audit().close().await?;
    tracing::info!("stopped; audit trail flushed");
    Ok(())
}

/// Accept connections until `shutdown` resolves, then let the open ones finish their current
/// request and return when all are closed. Enforces [`ConnectionLimits`].
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tower::ServiceExt;

    let max = limits.max_connections.clamp(1, 1 << 20);
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a transient error: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the limit: close at once so the descriptor is free again.
            state.metrics().connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        state.metrics().connection_opened();
        let (http, router, state, mut stop_rx) = (
            Arc::clone(&http),
            router.clone(),
            state.clone(),
            stop_rx.clone(),
        );
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            // Requests in flight on this connection and when the last one ended.
            let busy = Arc::new(AtomicUsize::new(0));
            let last = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
            let service = {
                let (busy, last) = (Arc::clone(&busy), Arc::clone(&last));
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    let (busy, last) = (Arc::clone(&busy), Arc::clone(&last));
                    busy.fetch_add(1, Ordering::AcqRel);
                    async move {
                        let resp = router.oneshot(req.map(axum::body::Body::new)).await;
                        if let Ok(mut l) = last.lock() {
                            *l = tokio::time::Instant::now();
                        }
                        busy.fetch_sub(1, Ordering::AcqRel);
                        resp
                    }
                })
            };
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let mut closing = false;
            loop {
                let idle_check = tokio::time::sleep(idle.min(Duration::from_secs(1)));
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = stop_rx.changed(), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    () = idle_check, if !closing => {
                        let since = last.lock().map(|l| l.elapsed()).unwrap_or_default();
                        if busy.load(Ordering::Acquire) == 0 && since >= idle {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            state.metrics().connection_closed();
        });
    }
    let _ = stop_tx.send(true);
    drop(stop_rx);
    // Every connection task holds a slot: all slots back means all connections are done.
    let _ = slots.acquire_many(max as u32).await;
}
