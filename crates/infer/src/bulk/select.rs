//! Targeting a whole file under a policy (`customs-risk select`): the same read → validate →
//! score pipeline as [`super::score_file`] (`declarations::pipe`), each scored chunk handed
//! to [`cr_policy::Collected`] (rules evaluated on the pool, ~20 bytes a row kept), then
//! [`cr_policy::select`] decides every declaration and [`cr_policy::write_decisions`]
//! writes them in input order. Only our raw-field models: rules name the schema's fields.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cr_policy::{Collected, OfficeSummary, Policy};

use super::declarations::{load_and_start, pipe, read_options};
use super::{BulkError, BulkOptions, Progress};
use crate::{Engine, LoadOptions};

/// What a finished `select` run did.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectSummary {
    /// Declarations decided (written).
    pub rows: u64,
    /// Rows rejected (late duplicate ids included).
    pub rejected: u64,
    pub engine: Engine,
    /// The policy's channels, in order (indices of [`OfficeSummary::by_channel`]).
    pub channels: Vec<String>,
    pub offices: Vec<OfficeSummary>,
    /// Wall time, model loading included.
    pub seconds: f64,
}

/// Score `opts.data` with `model` and decide every declaration under the policy file
/// `policy` (compiled against the model's schema), writing `opts.out` (`.csv` / `.parquet`)
/// and, with skip, `opts.rejects`. `opts.budget` is not used (the policy's capacity is).
/// Deterministic in `seed`; independent of the thread count. On error no output is left.
pub fn select_file(
    model: &Path,
    policy: &Path,
    opts: &BulkOptions,
    seed: u64,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<SelectSummary, BulkError> {
    let t0 = Instant::now();
    let proto = cr_onnx::load_model(model)
        .map_err(|e| BulkError::other(format!("loading {}", model.display()), e))?;
    if !crate::is_declaration_model(&proto) {
        return Err(BulkError::Invalid(format!(
            "{}: select needs a customs-risk model (its schema names the fields rules use); \
             this is a foreign float-matrix model",
            model.display()
        )));
    }
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| BulkError::other(format!("creating {}", dir.display()), e))?;
    }
    let load = LoadOptions {
        engine: opts.engine,
        threads: opts.threads,
    };
    let (m, start) = load_and_start(model, opts, pool, &proto, &load, &read_options(opts))?;
    drop(proto);
    if m.prediction() != cr_model::meta::Prediction::Risk {
        // a policy's `score` (rules, thresholds, the random floor's weights) is a risk
        // probability: an amount in its place would select silently by other rules
        return Err(BulkError::Invalid(format!(
            "{}: select needs a risk model (train --objective binary); this model predicts \
             {} (train --objective revenue), and ranking a policy by expected revenue is not \
             supported yet",
            model.display(),
            m.prediction().as_str()
        )));
    }
    let pol = Policy::load(policy, m.schema()).map_err(|e| policy_err(policy, e))?;
    let mut rows = Collected::default();
    let piped = pipe(opts, pool, &m, start, progress, &mut |batch, scores| {
        rows.push(&pol, batch, scores)
            .map_err(|e| policy_err(policy, e))
    })?;
    rows.remove(&piped.dups);
    let sel = cr_policy::select(&pol, &rows, seed).map_err(|e| policy_err(policy, e))?;
    let written = cr_policy::write_decisions(&opts.out, &pol, &rows, &sel);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&opts.out);
        return Err(policy_err(policy, e));
    }
    Ok(SelectSummary {
        rows: rows.len() as u64,
        rejected: piped.rejected,
        engine: m.engine_used(),
        channels: pol.channels.clone(),
        offices: sel.offices,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn policy_err(path: &Path, source: cr_policy::PolicyError) -> BulkError {
    BulkError::Policy {
        path: PathBuf::from(path),
        source: Box::new(source),
    }
}
