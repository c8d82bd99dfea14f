//! One module per subcommand: `Args` (clap) and `run(args) -> anyhow::Result<()>`.

pub mod compare;
pub mod demo;
pub mod evaluate;
pub mod generate;
pub mod score;
pub mod select;
pub mod service;
pub mod train;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::Context;
use cr_data::Schema;

/// The pseudonym key: the file given, else the environment variable `CR_PSEUDONYM_KEY`, else
/// none (an error later only where the schema pseudonymises columns).
pub fn load_key(file: Option<&Path>) -> anyhow::Result<Option<cr_data::PseudonymKey>> {
    cr_data::PseudonymKey::load(file).context("loading the pseudonym key")
}

/// Load a schema file, or the bundled synthetic schema when none is given.
pub fn load_schema(path: Option<&Path>) -> anyhow::Result<Schema> {
    match path {
        Some(p) => Schema::from_path(p).with_context(|| format!("loading schema {}", p.display())),
        None => cr_synth::schema().context("bundled synthetic schema"),
    }
}

/// Parse "5%", "5", "0.05" into a rate in (0, 1].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, pct) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate like 5% or 0.05"))?;
    let r = if pct || v > 1.0 { v / 100.0 } else { v };
    if !(r > 0.0 && r <= 1.0) {
        return Err(format!("{s:?} is not a rate in (0, 100%]"));
    }
    Ok(r)
}

pub fn ensure_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    Ok(())
}

#[allow(dead_code)]
pub fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}
