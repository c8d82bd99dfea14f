//! `serve`, `models`, `keys`, `audit`: the HTTP scoring service and its SQLite registry.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Subcommand};
use cr_service::{
    ExportFormat, LogFormat, RegisterOptions, Registry, Role, ServeConfig, ThresholdSpec,
};

/// Serve risk scores over HTTP for single declarations or batches.
///
/// The API (request and response JSON, every error code, a curl walk-through) is in the
/// README's "HTTP API" section and, machine-readable, at GET /v1/openapi.json; GET / lists
/// the endpoints.
///
/// POST /v1/score with one declaration (a JSON object keyed by the model's schema columns) or
/// {"declarations": [...]}; answers score, percentile, channel (green/yellow/red by the
/// version's thresholds), model version and request id. The registry's champion answers; a
/// challenger runs in shadow (audited, not returned). Needs an API key (header
/// `Authorization: Bearer KEY`, see `keys create`). GET /healthz, /readyz, /metrics
/// (Prometheus). Ctrl-C / SIGTERM drains in-flight requests.
///
/// Durable before answered: a decision is committed to the audit trail (group commit: many
/// requests share one SQLite transaction and one sync) before its answer is sent. When the
/// audit cannot be written (disk full, write lock held by another connection past
/// --audit-lock-deadline-ms) the request gets 503 `audit_unavailable` with Retry-After and
/// /readyz turns 503 until a write succeeds again. Model files are re-hashed every 30 s
/// (CUSTOMS_RISK_INTEGRITY_SECS): a changed champion makes /readyz 503, a changed challenger
/// is dropped from shadow scoring.
///
/// Environment (flags win): CUSTOMS_RISK_REGISTRY, CUSTOMS_RISK_ADDR, CUSTOMS_RISK_MAX_BODY_BYTES,
/// CUSTOMS_RISK_MAX_BATCH, CUSTOMS_RISK_SHUTDOWN_TIMEOUT_SECS, CUSTOMS_RISK_REFRESH_SECS,
/// CUSTOMS_RISK_INTEGRITY_SECS, CUSTOMS_RISK_MAX_CONNECTIONS, CUSTOMS_RISK_HEADER_TIMEOUT_MS,
/// CUSTOMS_RISK_BODY_TIMEOUT_MS, CUSTOMS_RISK_IDLE_TIMEOUT_SECS, CUSTOMS_RISK_MAX_ID_BYTES,
/// CUSTOMS_RISK_MAX_TEXT_BYTES, CUSTOMS_RISK_PER_KEY_CONCURRENCY,
/// CUSTOMS_RISK_AUDIT_LOCK_DEADLINE_MS, RUST_LOG.
///
/// Example:
///   customs-risk models register --registry reg.db --create --model models/gbdt.onnx --name gbdt --promote
///   customs-risk keys create --registry reg.db --role score --name pre-arrival
///   customs-risk serve --registry reg.db --addr 127.0.0.1:8080 --max-connections 4096
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Registry SQLite file. Must exist unless --create.
    #[arg(long, env = "CUSTOMS_RISK_REGISTRY")]
    registry: PathBuf,
    /// Create the registry file if it does not exist (without it a mistyped path is an error,
    /// not a new empty registry that serves nothing).
    #[arg(long)]
    create: bool,
    /// Listen address.
    #[arg(long, env = "CUSTOMS_RISK_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Log format: text (no colours when stderr is not a terminal) or json (one object a line).
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
    /// Most open client connections; more are closed at once [default: open-file limit - 256].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Milliseconds to receive a request's complete header (also ends idle keep-alive
    /// connections when shorter than --idle-timeout-secs) [default: 10000].
    #[arg(long)]
    header_timeout_ms: Option<u64>,
    /// Milliseconds to receive a complete request body; 408 after it [default: 10000].
    #[arg(long)]
    body_timeout_ms: Option<u64>,
    /// Seconds a keep-alive connection may stay idle between requests [default: 5].
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
    /// Longest declaration id in bytes; longer ones get 422 [default: 64].
    #[arg(long)]
    max_id_bytes: Option<usize>,
    /// Longest text value or field name in a declaration in bytes [default: 256].
    #[arg(long)]
    max_text_bytes: Option<usize>,
    /// Most concurrent /v1/score requests per API key; more get 429 [default: 256].
    #[arg(long)]
    per_key_concurrency: Option<usize>,
    /// Milliseconds an audit commit waits for another connection's write lock (and a request
    /// for audit queue space) before the request gets 503 [default: 2000].
    #[arg(long)]
    audit_lock_deadline_ms: Option<u64>,
    /// File holding the pseudonym key of models trained with pseudonymised identifier
    /// columns (as given to `train`); without it the environment variable CR_PSEUDONYM_KEY.
    /// Such a model without its key, or with another key, is not loaded (/readyz 503 and an
    /// error naming the key's fingerprint), never served with every identifier unseen.
    #[arg(long, value_name = "FILE")]
    pseudonym_key: Option<PathBuf>,
}

pub fn serve(a: ServeArgs) -> anyhow::Result<()> {
    use std::time::Duration;
    cr_service::init_tracing(a.log_format);
    let mut cfg = ServeConfig::new(a.registry, a.addr).apply_env()?;
    if !a.create {
        // the same refusal as `models`, `keys` and `audit`
        cr_service::db::open_existing(&cfg.registry)
            .with_context(|| format!("opening registry {}", cfg.registry.display()))?;
    }
    if let Some(n) = a.max_connections {
        cfg.connections.max_connections = n.max(1);
    }
    if let Some(ms) = a.header_timeout_ms {
        cfg.connections.header_read_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = a.body_timeout_ms {
        cfg.limits.body_read_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(s) = a.idle_timeout_secs {
        cfg.connections.idle_timeout = Duration::from_secs(s.max(1));
    }
    if let Some(n) = a.max_id_bytes {
        cfg.limits.max_id_bytes = n;
    }
    if let Some(n) = a.max_text_bytes {
        cfg.limits.max_text_bytes = n;
    }
    if let Some(n) = a.per_key_concurrency {
        cfg.limits.per_key_concurrency = n.max(1);
    }
    if let Some(ms) = a.audit_lock_deadline_ms {
        cfg.limits.audit.lock_deadline = Duration::from_millis(ms.max(1));
    }
    if a.pseudonym_key.is_some() {
        cfg.pseudonym_key = super::load_key(a.pseudonym_key.as_deref())?.map(std::sync::Arc::new);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(cr_service::run(cfg, cr_service::shutdown_signal()))?;
    Ok(())
}

/// Manage model versions in the registry: register, list, promote to champion, set a shadow
/// challenger, retire. A version stores its ONNX file's sha256 (a changed file is refused),
/// its model card, channel thresholds, who and when.
///
/// Examples:
///   customs-risk models register --registry reg.db --model models/gbdt.onnx --promote
///   customs-risk models list --registry reg.db
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct ModelsArgs {
    #[command(subcommand)]
    cmd: ModelsCmd,
}

#[derive(Subcommand, Debug)]
enum ModelsCmd {
    /// Add a model version: the file's sha256, card and channel thresholds are stored.
    ///
    /// Thresholds: yellow and red channels start at a score (--yellow-score, --red-score) or,
    /// by default, at percentiles 90 and 98 of the model's validation scores.
    ///
    /// Examples:
    ///   customs-risk models register --registry reg.db --model models/gbdt.onnx --promote
    ///   customs-risk models register --registry reg.db --model models/gbdt.onnx --name gbdt \
    ///       --version gbdt-2024-06 --yellow-score 0.2 --red-score 0.5
    ///   customs-risk models register --registry reg.db --model models/gbdt.onnx \
    ///       --policy data/policies/example.toml --promote
    #[command(verbatim_doc_comment)]
    Register {
        #[command(flatten)]
        registry: RegistryArg,
        /// The ONNX model file (from `customs-risk train`); the registry keeps its path.
        #[arg(long)]
        model: PathBuf,
        /// Model name (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Version label (default: NAME-<sha256 prefix>).
        #[arg(long)]
        version: Option<String>,
        /// Yellow channel from this score (with --red-score), or ...
        #[arg(long, requires = "red_score")]
        yellow_score: Option<f64>,
        /// Red channel from this score (with --yellow-score).
        #[arg(long)]
        red_score: Option<f64>,
        /// ... from this percentile of the model's validation scores (default 90, red 98).
        #[arg(long, conflicts_with = "yellow_score")]
        yellow_percentile: Option<f64>,
        /// Red channel from this percentile of the validation scores (default 98).
        #[arg(long, conflicts_with = "red_score")]
        red_percentile: Option<f64>,
        /// Make it the champion right away.
        #[arg(long)]
        promote: bool,
        /// Who registers, recorded in the registry (default $USER).
        #[arg(long)]
        by: Option<String>,
        /// A targeting policy (TOML, as for `select`) that `/v1/score` applies while this
        /// version is the champion: its text and sha256 are stored with the version. Checked
        /// now against the model's schema and reference scores (a rule over an unknown field,
        /// a watch list that cannot be read, a `count` capacity are refused); watch lists are
        /// read again, relative to the policy file, whenever the version is loaded.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List versions with status, thresholds and validation ROC-AUC.
    ///
    /// Example:
    ///   customs-risk models list --registry reg.db --json
    #[command(verbatim_doc_comment)]
    List {
        #[command(flatten)]
        registry: RegistryArg,
        /// Print the versions as JSON (cards included) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a version the champion (the one that answers).
    ///
    /// A running `serve` picks the change up without a restart.
    ///
    /// Example:
    ///   customs-risk models promote --registry reg.db gbdt-3f2a9c1e07b4
    #[command(verbatim_doc_comment)]
    Promote {
        #[command(flatten)]
        registry: RegistryArg,
        /// The version label (see `models list`).
        version: String,
        /// Who does it, recorded in the registry (default $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Run a version in shadow next to the champion (scored and audited, never returned).
    ///
    /// Example:
    ///   customs-risk models challenger --registry reg.db logistic-91bd07aa5c2e
    #[command(verbatim_doc_comment)]
    Challenger {
        #[command(flatten)]
        registry: RegistryArg,
        /// The version label (see `models list`).
        version: String,
        /// Who does it, recorded in the registry (default $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Take a version out of service (not the champion: promote another first).
    ///
    /// Example:
    ///   customs-risk models retire --registry reg.db logistic-91bd07aa5c2e
    #[command(verbatim_doc_comment)]
    Retire {
        #[command(flatten)]
        registry: RegistryArg,
        /// The version label (see `models list`).
        version: String,
        /// Who does it, recorded in the registry (default $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// The registry file of `models`, `keys` and `audit` commands.
#[derive(ClapArgs, Debug)]
struct RegistryArg {
    /// Registry SQLite file (models, keys, audit trail). Must exist unless --create.
    #[arg(long, env = "CUSTOMS_RISK_REGISTRY")]
    registry: PathBuf,
    /// Create the registry file if it does not exist (without it a mistyped path is an error,
    /// not a new empty registry).
    #[arg(long)]
    create: bool,
}

impl RegistryArg {
    fn open(&self) -> anyhow::Result<Registry> {
        let reg = if self.create {
            Registry::open(&self.registry)
        } else {
            Registry::open_existing(&self.registry)
        };
        reg.with_context(|| format!("opening registry {}", self.registry.display()))
    }
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn models(a: ModelsArgs) -> anyhow::Result<()> {
    match a.cmd {
        ModelsCmd::Register {
            registry,
            model,
            name,
            version,
            yellow_score,
            red_score,
            yellow_percentile,
            red_percentile,
            promote,
            by,
            policy,
        } => {
            let mut reg = registry.open()?;
            let thresholds = match (yellow_score, red_score) {
                (Some(yellow), Some(red)) => ThresholdSpec::Scores { yellow, red },
                _ => ThresholdSpec::Percentiles {
                    yellow: yellow_percentile.unwrap_or(90.0),
                    red: red_percentile.unwrap_or(98.0),
                },
            };
            let name = name.unwrap_or_else(|| super::evaluate::model_name(&model));
            let by = who(by);
            let mv = reg.register(
                &model,
                &RegisterOptions {
                    name,
                    version,
                    thresholds,
                    registered_by: by.clone(),
                    policy,
                },
            )?;
            println!(
                "registered {} ({}; yellow from {:.4}, red from {:.4})",
                mv.version, mv.sha256, mv.thresholds.yellow, mv.thresholds.red
            );
            if let Some(p) = &mv.policy {
                println!(
                    "policy {} ({}, sha256 {})",
                    p.name,
                    p.path.display(),
                    p.sha256
                );
            }
            if promote {
                reg.promote(&mv.version, &by)?;
                println!("{} is the champion", mv.version);
            }
        }
        ModelsCmd::List { registry, json } => {
            let reg = registry.open()?;
            let list = reg.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<32} {:<11} {:>8} {:>8} {:>9}  registered",
                    "version", "status", "yellow", "red", "ROC-AUC"
                );
                for m in list {
                    let auc = m
                        .card
                        .pointer("/validation/roc_auc")
                        .and_then(|v| v.as_f64())
                        .map(|v| format!("{v:.4}"))
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{:<32} {:<11} {:>8.4} {:>8.4} {:>9}  {} by {}",
                        m.version,
                        m.status.as_str(),
                        m.thresholds.yellow,
                        m.thresholds.red,
                        auc,
                        m.registered_at,
                        m.registered_by
                    );
                }
            }
        }
        ModelsCmd::Promote {
            registry,
            version,
            by,
        } => {
            registry.open()?.promote(&version, &who(by))?;
            println!("{version} is the champion");
        }
        ModelsCmd::Challenger {
            registry,
            version,
            by,
        } => {
            registry.open()?.set_challenger(&version, &who(by))?;
            println!("{version} runs in shadow");
        }
        ModelsCmd::Retire {
            registry,
            version,
            by,
        } => {
            registry.open()?.retire(&version, &who(by))?;
            println!("{version} is retired");
        }
    }
    Ok(())
}

/// API keys for the service: `create` prints the key once (only a salted hash is stored),
/// `list`, `revoke`. Roles: score (POST /v1/score) and admin (the /v1/models endpoints).
///
/// Examples:
///   customs-risk keys create --registry reg.db --role score --name pre-arrival
///   customs-risk keys list --registry reg.db
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct KeysArgs {
    #[command(subcommand)]
    cmd: KeysCmd,
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Create a key and print it once on stdout (only a salted hash is stored).
    ///
    /// Example:
    ///   KEY=$(customs-risk keys create --registry reg.db --role score --name pre-arrival)
    ///   customs-risk keys create --registry reg.db --role admin --name ops
    #[command(verbatim_doc_comment)]
    Create {
        #[command(flatten)]
        registry: RegistryArg,
        /// score (may call POST /v1/score) or admin (may call the /v1/models endpoints).
        #[arg(long)]
        role: String,
        /// Who or what uses the key.
        #[arg(long)]
        name: String,
    },
    /// List keys: id, role, name, when created and revoked (never the key itself).
    ///
    /// Example:
    ///   customs-risk keys list --registry reg.db
    #[command(verbatim_doc_comment)]
    List {
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Revoke a key: the service refuses it from its next request on.
    ///
    /// Example:
    ///   customs-risk keys revoke --registry reg.db 3f2a9c1e07b4d5a6
    #[command(verbatim_doc_comment)]
    Revoke {
        #[command(flatten)]
        registry: RegistryArg,
        /// The key id (see `keys list`), not the key.
        id: String,
    },
}

pub fn keys(a: KeysArgs) -> anyhow::Result<()> {
    match a.cmd {
        KeysCmd::Create {
            registry,
            role,
            name,
        } => {
            let Some(role) = Role::parse(&role) else {
                bail!("--role {role:?}: expected score or admin")
            };
            let k = registry.open()?.create_key(role, &name)?;
            eprintln!(
                "key {} ({}) for {:?} — shown once, store it now:",
                k.info.id,
                k.info.role.as_str(),
                k.info.name
            );
            println!("{}", k.key);
        }
        KeysCmd::List { registry } => {
            for k in registry.open()?.list_keys()? {
                println!(
                    "{} {:<6} {:<24} created {}{}",
                    k.id,
                    k.role.as_str(),
                    k.name,
                    k.created_at,
                    k.revoked_at
                        .map(|r| format!(", revoked {r}"))
                        .unwrap_or_default()
                );
            }
        }
        KeysCmd::Revoke { registry, id } => {
            registry.open()?.revoke_key(&id)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// The append-only, hash-chained audit trail of every decision the service made.
///
/// Examples:
///   customs-risk audit export --registry reg.db --since 2024-03-01 --format jsonl --out audit.jsonl
///   customs-risk audit verify --registry reg.db
///   customs-risk audit verify --registry reg.db --anchor 1234:5f1c...e9
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Export decisions since a date (YYYY-MM-DD or RFC 3339) as CSV or JSON lines, streaming
    /// (bounded memory).
    ///
    /// CSV text cells that start with = + - @ (a spreadsheet formula) get a leading ' unless
    /// --raw.
    ///
    /// Example:
    ///   customs-risk audit export --registry reg.db --since 2024-03-01 --format csv --out audit.csv
    #[command(verbatim_doc_comment)]
    Export {
        #[command(flatten)]
        registry: RegistryArg,
        /// First day (YYYY-MM-DD, UTC) or instant (RFC 3339) to export.
        #[arg(long)]
        since: String,
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: ExportFormat,
        /// CSV: write cells as stored, without neutralising spreadsheet formulas.
        #[arg(long)]
        raw: bool,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check the hash chains of the audit trail, model history and key history, and that the
    /// models and keys tables agree with their history; report the first broken link.
    ///
    /// Prints each chain's head (seq:hash). Keep the audit head somewhere else (a log system,
    /// a ticket): a later `--anchor SEQ:HASH` then detects a truncated or rewritten chain,
    /// which the chain alone cannot. Exit status 1 when anything is broken.
    ///
    /// Example:
    ///   customs-risk audit verify --registry reg.db
    ///   customs-risk audit verify --registry reg.db --anchor 1234:5f1c...e9
    #[command(verbatim_doc_comment)]
    Verify {
        #[command(flatten)]
        registry: RegistryArg,
        /// A previously printed audit head SEQ:HASH that must still be in the chain, unchanged.
        #[arg(long)]
        anchor: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn audit(a: AuditArgs) -> anyhow::Result<()> {
    match a.cmd {
        AuditCmd::Export {
            registry,
            since,
            format,
            raw,
            out,
        } => {
            registry.open()?;
            let opts = cr_service::ExportOptions { format, raw };
            let n = match out {
                Some(p) => {
                    let mut f = std::io::BufWriter::new(
                        std::fs::File::create(&p)
                            .with_context(|| format!("creating {}", p.display()))?,
                    );
                    cr_service::export_audit_with(&registry.registry, &since, opts, &mut f)?
                }
                None => cr_service::export_audit_with(
                    &registry.registry,
                    &since,
                    opts,
                    &mut std::io::BufWriter::new(std::io::stdout().lock()),
                )?,
            };
            eprintln!("{n} decisions exported");
        }
        AuditCmd::Verify {
            registry,
            anchor,
            json,
        } => {
            registry.open()?;
            let anchor = match &anchor {
                None => None,
                Some(a) => {
                    let (seq, hash) = a
                        .split_once(':')
                        .and_then(|(s, h)| Some((s.trim().parse::<i64>().ok()?, h.trim())))
                        .with_context(|| format!("--anchor {a:?}: expected SEQ:HASH"))?;
                    Some((seq, hash))
                }
            };
            let report = cr_service::verify_audit(&registry.registry, anchor)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for c in &report.chains {
                    let head = c
                        .head
                        .as_ref()
                        .map(|(s, h)| format!("{s}:{h}"))
                        .unwrap_or_else(|| "-".into());
                    let legacy = if c.legacy > 0 {
                        format!(", {} unchained rows from before the chain", c.legacy)
                    } else {
                        String::new()
                    };
                    match &c.broken {
                        None => println!(
                            "{:<13} ok      {} rows{legacy}, head {head}",
                            c.table, c.chained
                        ),
                        Some(b) => println!("{:<13} BROKEN  {b}", c.table),
                    }
                }
                for p in &report.problems {
                    println!("problem: {p}");
                }
            }
            if !report.ok() {
                bail!("the audit trail failed verification (see above)");
            }
        }
    }
    Ok(())
}
