//! `customs-risk select`: arguments, progress and the per-office summary; the pipeline is
//! [`cr_infer::bulk::select_file`], the decisions [`cr_policy`].

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use cr_infer::bulk::{BulkOptions, Progress, SelectSummary};
use indicatif::ProgressBar;

use super::score::EngineArg;
use super::validate::{delimiter_byte, OnErrorArg};

/// Turn scores into inspection decisions under a policy: officer rules, watch lists, an
/// inspection capacity per office and day filled by the model, and a random floor whose
/// exact inclusion probabilities are written out.
///
/// Per office and day: declarations on which a mandatory rule fires are selected (outside
/// capacity); the capacity (share or count from the policy, rounded up as `score --budget`
/// does) goes to declarations on which an advisory rule fires, then to the highest scores;
/// of the rest, ceil(rate × m) are drawn by systematic sampling in random order with
/// probabilities >= the floor. Ranking is by score (the policy's `expected_revenue`
/// ranking is not available yet).
///
/// Writes one row per accepted declaration, in input order: id, score, channel, stratum
/// (rule | model | random | none), propensity (the probability the declaration had of being
/// selected: 1 for rule and model selections, the design's exact inclusion probability
/// otherwise — what `evaluate --decisions` uses for inverse-propensity weighting), rules
/// (names of the rules that fired, `;`-separated) and rank (model selections: 1 = highest
/// score of its office and day). Prints a summary per office: capacity, used, by stratum and
/// channel. Rejected rows are handled as in `score`. Same --seed and data: the same
/// decisions, for any --threads.
///
/// Example:
///   customs-risk select --model models/gbdt.onnx --policy data/policies/example.toml \
///       --data decl.csv --out decisions.csv --seed 7
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The ONNX model (a customs-risk model: rules are checked against its schema).
    #[arg(long)]
    model: PathBuf,
    /// The policy file (TOML; see data/policies/example.toml).
    #[arg(long)]
    policy: PathBuf,
    /// Declarations to decide (.csv, .tsv or .parquet).
    #[arg(long)]
    data: PathBuf,
    /// Output file (.csv or .parquet).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the random floor's draw (ChaCha8).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads (0 = all cores). Decisions do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// auto (native when supported, else ONNX Runtime), native or ort.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// What to do with a row that fails validation.
    #[arg(long, value_enum, default_value_t = OnErrorArg::Fail)]
    on_error: OnErrorArg,
    /// With --on-error skip: write rejected rows with their reasons here (CSV).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// CSV delimiter.
    #[arg(long, default_value = ",")]
    delimiter: char,
    /// Rows per batch.
    #[arg(long, default_value_t = 16_384)]
    batch_rows: usize,
    /// Refuse a file with columns the model's schema does not know (by default they are
    /// left unread). Missing columns are an error either way.
    #[arg(long)]
    strict_columns: bool,
    /// Key of the schema's `pseudonymise = true` columns (a text file, >= 16 bytes; default:
    /// the environment variable CR_PSEUDONYM_KEY). See the README, "Pseudonymised columns".
    #[arg(long, value_name = "FILE")]
    pseudonym_key: Option<PathBuf>,
    /// No progress bar or summary.
    #[arg(long)]
    quiet: bool,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn rows(&self, rows: u64) {
        self.0.inc(rows);
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.rejects.is_some() && matches!(a.on_error, OnErrorArg::Fail) {
        bail!("--rejects needs --on-error skip");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("starting threads")?;
    let opts = BulkOptions {
        delimiter: delimiter_byte(a.delimiter)?,
        batch_rows: a.batch_rows.max(1),
        on_error: a.on_error.into(),
        rejects: a.rejects.clone(),
        engine: a.engine.into(),
        threads: a.threads,
        extra_columns: if a.strict_columns {
            cr_data::ExtraColumns::Refuse
        } else {
            cr_data::ExtraColumns::Ignore
        },
        pseudonym_key: super::load_key(a.pseudonym_key.as_deref())?,
        ..BulkOptions::new(&a.data, &a.out)
    };
    let bar = Bar(crate::progress::spinner("select", a.quiet));
    let summary = cr_infer::bulk::select_file(&a.model, &a.policy, &opts, a.seed, &pool, &bar);
    bar.0.finish_and_clear();
    let summary = summary?;
    if !a.quiet {
        eprintln!(
            "decided {} declarations ({} rejected) in {:.2}s -> {}",
            summary.rows,
            summary.rejected,
            summary.seconds,
            a.out.display()
        );
        eprint!("{}", summary_table(&summary));
    }
    Ok(())
}

/// The per-office table printed after a run.
pub fn summary_table(s: &SelectSummary) -> String {
    let mut out = String::new();
    let mut head = format!(
        "{:<18} {:>5} {:>9} {:>8} {:>6} {:>9} {:>8} {:>6} {:>7} {:>8}",
        "office",
        "days",
        "decl",
        "capacity",
        "used",
        "mandatory",
        "advisory",
        "model",
        "random",
        "none"
    );
    for c in &s.channels {
        head.push_str(&format!(" {c:>8}"));
    }
    out.push_str(&head);
    out.push('\n');
    for o in &s.offices {
        let name = if o.office.is_empty() {
            "(all)"
        } else {
            &o.office
        };
        let mut line = format!(
            "{:<18} {:>5} {:>9} {:>8} {:>6} {:>9} {:>8} {:>6} {:>7} {:>8}",
            name,
            o.days,
            o.declarations,
            o.capacity,
            o.used,
            o.mandatory,
            o.advisory,
            o.model,
            o.random,
            o.none
        );
        for n in &o.by_channel {
            line.push_str(&format!(" {n:>8}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
