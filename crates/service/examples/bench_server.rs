//! Benchmark server (used by `benches/service/load.sh`): registers and promotes MODEL in a
//! fresh registry DB, writes a new score key to KEY_FILE, then serves on ADDR until Ctrl-C /
//! SIGTERM. The same code path as `customs-risk serve` ([`cr_service::run`]).
//!
//! Usage: bench_server DB MODEL ADDR KEY_FILE [INLINE_MAX] [AUDIT=durable|queued]
//!
//! `durable` (the default, what `customs-risk serve` does) answers after the decision's group
//! commit; `queued` answers once the decision is queued for the writer (the pre-durability
//! behaviour: a crash loses what is queued), only to measure what durability costs.

use cr_service::{
    init_tracing, run, shutdown_signal, LogFormat, RegisterOptions, Registry, Role, ServeConfig,
    ThresholdSpec,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err(
            "usage: bench_server DB MODEL ADDR KEY_FILE [INLINE_MAX] [AUDIT=durable|queued]".into(),
        );
    }
    init_tracing(LogFormat::Text);
    let (db, model, addr, key_file) = (&args[1], &args[2], args[3].parse()?, &args[4]);
    bind_graph_digest(model.as_ref())?;
    {
        let mut reg = Registry::open(db.as_ref())?;
        let opts = RegisterOptions {
            name: "bench".into(),
            version: Some("bench-1".into()),
            thresholds: ThresholdSpec::default(),
            registered_by: "bench".into(),
            policy: None,
        };
        if reg.get("bench-1").is_err() {
            reg.register(model.as_ref(), &opts)?;
        }
        reg.promote("bench-1", "bench")?;
        std::fs::write(key_file, reg.create_key(Role::Score, "bench")?.key)?;
    }
    let mut config = ServeConfig::new(db, addr).apply_env()?;
    if let Some(n) = args.get(5) {
        config.limits.inline_max_declarations = n.parse()?;
    }
    match args.get(6).map(String::as_str) {
        None | Some("durable") => {}
        Some("queued") => config.limits.audit.durable = false,
        Some(other) => return Err(format!("unknown audit mode {other:?}").into()),
    }
    run(config, shutdown_signal()).await?;
    Ok(())
}

/// The benchmark's model is made by scikit-learn + skl2onnx with our pipeline metadata
/// (crates/service/tests/support/make_model.py), so it lacks the graph digest our exporter
/// writes, without which the native engine refuses a raw-field model.
fn bind_graph_digest(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut m = cr_onnx::load_model(path)?;
    cr_onnx::bind_graph_digest(&mut m)?;
    cr_onnx::save_model(path, &m)?;
    Ok(())
}
