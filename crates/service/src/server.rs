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
}

impl ServeConfig {
    pub fn new(registry: impl Into<PathBuf>, addr: SocketAddr) -> ServeConfig {
        ServeConfig {
            registry: registry.into(),
            addr,
            limits: Limits::default(),
            shutdown_timeout: Duration::from_secs(30),
            refresh_interval: Some(Duration::from_secs(5)),
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
    let state = tokio::task::spawn_blocking(move || AppState::open(&path, limits))
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
    let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = fired_tx.send(());
    };
    let server = axum::serve(listener, app(state.clone())).with_graceful_shutdown(signal);
    let timeout = config.shutdown_timeout;
    let drained = tokio::select! {
        res = server => {
            res.map_err(|source| ServiceError::Io { path: PathBuf::from("<http server>"), source })?;
            true
        }
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
    if let Some(r) = refresher {
        r.abort();
    }
    state.audit().close().await?;
    tracing::info!("stopped; audit trail flushed");
    Ok(())
}
