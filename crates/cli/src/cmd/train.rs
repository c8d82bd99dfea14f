use std::path::PathBuf;

use anyhow::Context;
use clap::{Args as ClapArgs, ValueEnum};
use cr_train::{Algo, Event, TrainConfig, TrainObjective};
use serde::Deserialize;

/// Train a risk model on inspection outcomes and export it as one self-contained ONNX file.
///
/// Only inspected (labelled) declarations are learned from. Validation is by time: the model
/// is trained on declarations before --valid-from and measured on the labelled ones from that
/// day on (default: the start of the month holding the latest ~20 % of labelled rows). Writes
/// OUT.onnx (feature pipeline + model; raw declaration fields in) and OUT.card.json (data hash,
/// schema, parameters, seed, versions, timings, validation ROC-AUC, PR-AUC, precision and
/// recall at 1/2/5/10 % inspection rates). The same data and seed give the same model for any
/// --threads.
///
/// Example:
///   customs-risk train --data decl.csv --schema data/schemas/synthetic.toml --out models/gbdt
///   customs-risk train --data decl.csv --out models/gbdt --monotone risk_importer_rate=+1
///   customs-risk train --data decl.csv --out models/old --no-refit
///   customs-risk train --data decl.csv --out models/revenue --objective revenue
///   customs-risk train --config train.toml
///
/// --objective revenue fits expected revenue recovered instead of the seizure probability: a
/// GBDT with the Tweedie objective (variance power 1.5, log link) on the schema's revenue
/// column, clean inspections counting 0. Rounds are chosen by Tweedie deviance on the
/// validation period; the card reports that deviance and the share of the validation revenue
/// caught at 1/2/5/10 % budgets; `score` writes its prediction as `expected_revenue`.
///
/// By default the rounds (GBDT) are chosen on the validation period, then the pipeline and
/// the model are fitted again on every labelled row with that setting (--no-refit ships the
/// model trained without the validation rows); the card keeps the validation metrics of the
/// first fit and describes the refit.
#[derive(ClapArgs, Debug, Default)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// TOML file with any of these options (flags given on the command line win). Keys are the
    /// flag names with underscores, e.g. `learning_rate = 0.05`. See data/train.example.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Declarations with inspection outcomes (.csv or .parquet).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Schema TOML. Default: the bundled synthetic schema.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// gbdt (gradient-boosted trees) or logistic (L2 logistic regression).
    #[arg(long, value_enum)]
    algo: Option<AlgoArg>,
    /// What to fit: binary (seized or not; the score is a probability) or revenue (the revenue
    /// an inspection recovers, Tweedie GBDT on the schema's revenue column, clean inspections
    /// 0; `score` writes expected_revenue). revenue needs --algo gbdt. Default binary.
    #[arg(long, value_enum)]
    objective: Option<ObjectiveArg>,
    /// Output base path: writes OUT.onnx and OUT.card.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Boosting rounds (maximum; early stopping may keep fewer). Default 300.
    #[arg(long)]
    trees: Option<usize>,
    /// Maximum leaves per tree. Default 31.
    #[arg(long)]
    leaves: Option<usize>,
    /// Shrinkage per tree. Default 0.05.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Histogram bins per feature, at most 255. Default 255.
    #[arg(long)]
    max_bin: Option<usize>,
    /// Minimum declarations per leaf. Default 20.
    #[arg(long)]
    min_data_in_leaf: Option<usize>,
    /// Share of features tried per tree, (0, 1]. Default 0.9.
    #[arg(long)]
    feature_fraction: Option<f64>,
    /// Share of rows sampled per round, (0, 1]. Default 0.9.
    #[arg(long)]
    bagging_fraction: Option<f64>,
    /// Stop when the validation metric has not improved for this many rounds (0 = never). Default 30.
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Weight of seized declarations relative to clean ones (class imbalance). Default 1.
    #[arg(long)]
    pos_weight: Option<f64>,
    /// L2 penalty of the logistic regression. Default 1.
    #[arg(long)]
    l2: Option<f64>,
    /// First day of the validation period, YYYY-MM-DD.
    #[arg(long)]
    valid_from: Option<String>,
    /// Worker threads (0 = all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Master seed. Default 42.
    #[arg(long)]
    seed: Option<u64>,
    /// Refuse to train with fewer than this many seized, or this many not-seized, labelled
    /// rows before the validation start. Default 20.
    #[arg(long, value_name = "N")]
    min_per_class: Option<usize>,
    /// Skip rows that fail validation (counted in the card) instead of stopping.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Ship the model trained before the validation period instead of refitting on every
    /// labelled row with the rounds chosen on validation.
    #[arg(long)]
    no_refit: bool,
    /// GBDT monotone constraint, FEATURE=+1 (score never decreases as the feature grows) or
    /// FEATURE=-1; repeatable. FEATURE is a pipeline feature name as listed in the card's
    /// `features` (e.g. risk_importer_rate).
    #[arg(long, value_name = "FEATURE=+1|-1")]
    monotone: Vec<String>,
    /// Row weights: none, or ipw (1 / the schema's propensity column, so inspected rows stand
    /// for all declarations instead of those the legacy rules picked; clipped at
    /// --ipw-max-weight, counted in the card). Default none.
    #[arg(long, value_enum)]
    sample_weight: Option<SampleWeightArg>,
    /// Largest inverse-propensity weight; larger ones are clipped to it. Default 100.
    #[arg(long)]
    ipw_max_weight: Option<f64>,
    /// Risk-profile entries (an importer, a declarant, an importer x HS4 pair, ...) with fewer
    /// labelled training declarations than this are not stored in the model: they read as
    /// unseen (the prior), as their smoothed rate nearly is anyway. Default 5. TOML:
    /// `[risk_profile] min_count = 5`.
    #[arg(long)]
    risk_min_count: Option<u32>,
    /// Key of the schema's `pseudonymise = true` columns (a text file, >= 16 bytes; default:
    /// the environment variable CR_PSEUDONYM_KEY). The model holds pseudonyms only and records
    /// the key's fingerprint; scoring needs the same key.
    #[arg(long, value_name = "FILE")]
    pseudonym_key: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SampleWeightArg {
    None,
    Ipw,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveArg {
    Binary,
    Revenue,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlgoArg {
    Gbdt,
    Logistic,
}

/// The TOML form of the same options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArgs {
    data: Option<PathBuf>,
    schema: Option<PathBuf>,
    algo: Option<AlgoArg>,
    objective: Option<ObjectiveArg>,
    out: Option<PathBuf>,
    trees: Option<usize>,
    leaves: Option<usize>,
    learning_rate: Option<f64>,
    max_bin: Option<usize>,
    min_data_in_leaf: Option<usize>,
    feature_fraction: Option<f64>,
    bagging_fraction: Option<f64>,
    early_stopping: Option<usize>,
    pos_weight: Option<f64>,
    l2: Option<f64>,
    valid_from: Option<String>,
    threads: Option<usize>,
    seed: Option<u64>,
    min_per_class: Option<usize>,
    skip_bad_rows: Option<bool>,
    no_refit: Option<bool>,
    monotone: Option<Vec<String>>,
    sample_weight: Option<SampleWeightArg>,
    ipw_max_weight: Option<f64>,
    risk_profile: Option<RiskProfileArgs>,
    pseudonym_key: Option<PathBuf>,
}

/// `[risk_profile]` of the TOML form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskProfileArgs {
    min_count: Option<u32>,
}

fn merge(mut a: Args) -> anyhow::Result<Args> {
    let Some(path) = a.config.clone() else {
        return Ok(a);
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let f: FileArgs =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    macro_rules! fill { ($($k:ident),*) => { $( if a.$k.is_none() { a.$k = f.$k; } )* } }
    fill!(
        data,
        schema,
        algo,
        objective,
        out,
        trees,
        leaves,
        learning_rate,
        max_bin,
        min_data_in_leaf,
        feature_fraction,
        bagging_fraction,
        early_stopping,
        pos_weight,
        l2,
        valid_from,
        threads,
        seed,
        sample_weight,
        ipw_max_weight,
        min_per_class
    );
    a.skip_bad_rows |= f.skip_bad_rows.unwrap_or(false);
    a.no_refit |= f.no_refit.unwrap_or(false);
    if a.monotone.is_empty() {
        a.monotone = f.monotone.unwrap_or_default();
    }
    if a.risk_min_count.is_none() {
        a.risk_min_count = f.risk_profile.and_then(|r| r.min_count);
    }
    if a.pseudonym_key.is_none() {
        a.pseudonym_key = f.pseudonym_key;
    }
    Ok(a)
}

pub fn config_from(a: Args) -> anyhow::Result<(TrainConfig, bool)> {
    let a = merge(a)?;
    let data = a
        .data
        .context("--data is required (or `data = ...` in --config)")?;
    let out = a
        .out
        .context("--out is required (or `out = ...` in --config)")?;
    let key = super::load_key(a.pseudonym_key.as_deref())?;
    let schema = super::load_schema(a.schema.as_deref())?
        .keyed(key.as_ref())
        .context("the schema pseudonymises columns")?;
    let algo = match a.algo.unwrap_or(AlgoArg::Gbdt) {
        AlgoArg::Gbdt => Algo::Gbdt,
        AlgoArg::Logistic => Algo::Logistic,
    };
    let mut cfg = TrainConfig::new(data, schema, algo, out);
    cfg.objective = match a.objective.unwrap_or(ObjectiveArg::Binary) {
        ObjectiveArg::Binary => TrainObjective::Binary,
        ObjectiveArg::Revenue => TrainObjective::Revenue,
    };
    let g = cfg.gbdt.clone();
    cfg.gbdt = g
        .num_trees(a.trees.unwrap_or(300))
        .num_leaves(a.leaves.unwrap_or(31))
        .learning_rate(a.learning_rate.unwrap_or(0.05))
        .max_bin(a.max_bin.unwrap_or(255))
        .min_data_in_leaf(a.min_data_in_leaf.unwrap_or(20))
        .feature_fraction(a.feature_fraction.unwrap_or(0.9))
        .bagging_fraction(a.bagging_fraction.unwrap_or(0.9))
        .bagging_freq(1)
        .early_stopping_rounds(a.early_stopping.unwrap_or(30));
    if let Some(l2) = a.l2 {
        cfg.logistic.l2 = l2;
    }
    cfg.pos_weight = a.pos_weight.unwrap_or(1.0);
    cfg.seed = a.seed.unwrap_or(42);
    cfg.threads = a.threads.unwrap_or(0);
    cfg.skip_bad_rows = a.skip_bad_rows;
    cfg.refit = !a.no_refit;
    cfg.sample_weight = match a.sample_weight.unwrap_or(SampleWeightArg::None) {
        SampleWeightArg::None => cr_train::SampleWeight::None,
        SampleWeightArg::Ipw => cr_train::SampleWeight::Ipw,
    };
    if let Some(m) = a.ipw_max_weight {
        cfg.ipw_max_weight = m;
    }
    cfg.monotone = a
        .monotone
        .iter()
        .map(|m| cr_train::config::parse_monotone(m))
        .collect::<Result<_, _>>()?;
    if let Some(m) = a.min_per_class {
        cfg.min_per_class = m;
    }
    cfg.pseudonym_key = key;
    if let Some(m) = a.risk_min_count {
        cfg.pipeline.min_count = m;
    }
    if let Some(v) = &a.valid_from {
        let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .with_context(|| format!("--valid-from {v:?} is not YYYY-MM-DD"))?;
        use chrono::Datelike;
        cfg.valid_from = cr_data::schema::days_from_ymd(d.year(), d.month(), d.day());
    }
    cfg.check()?;
    Ok((cfg, a.quiet))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (cfg, quiet) = config_from(a)?;
    let outcome = train_with_progress(&cfg, quiet)?;
    if !quiet {
        print_summary(&outcome);
    }
    Ok(())
}

pub fn train_with_progress(
    cfg: &TrainConfig,
    quiet: bool,
) -> anyhow::Result<cr_train::TrainOutcome> {
    let bar = crate::progress::bar(cfg.gbdt.num_trees as u64, "train", quiet);
    let mut on_event = |e: Event| match e {
        Event::Stage(s) => bar.set_message(s.to_string()),
        Event::Loaded {
            rows,
            rejected,
            labelled,
        } => bar.println(format!(
            "read {rows} declarations ({rejected} rejected, {labelled} labelled)"
        )),
        Event::Split {
            valid_from,
            train_rows,
            valid_rows,
        } => bar.println(format!(
            "train on {train_rows} labelled rows before {valid_from}, validate on {valid_rows}"
        )),
        Event::Round {
            round,
            total,
            valid_metric,
            metric,
        } => {
            bar.set_length(total as u64);
            bar.set_position(round as u64);
            if let Some(v) = valid_metric {
                bar.set_message(format!("valid {metric} {v:.4}"));
            }
        }
    };
    let out = cr_train::run(cfg, &mut on_event)
        .with_context(|| format!("training on {}", cfg.data.display()))?;
    bar.finish_and_clear();
    Ok(out)
}

pub fn print_summary(o: &cr_train::TrainOutcome) {
    let c = &o.card;
    println!("model    {}", o.onnx_path.display());
    println!("card     {}", o.card_path.display());
    println!(
        "algo     {} {} ({} features{})",
        c.algo,
        c.objective,
        c.features.len(),
        c.best_iteration
            .map(|b| format!(", {b} trees"))
            .unwrap_or_default()
    );
    println!(
        "split    train {} rows ({} seized) | validate from {}: {} rows ({} seized)",
        c.split.train_rows,
        c.split.train_positives,
        c.split.valid_from,
        c.split.valid_rows,
        c.split.valid_positives
    );
    if let Some(v) = &c.validation {
        let f = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into());
        match v.tweedie_deviance {
            Some(d) => println!(
                "valid    Tweedie deviance {d:.4}  ROC-AUC {} (predicted revenue vs seizure)  PR-AUC {}",
                f(v.roc_auc),
                f(v.pr_auc)
            ),
            None => println!(
                "valid    ROC-AUC {}  PR-AUC {}  log loss {}",
                f(v.roc_auc),
                f(v.pr_auc),
                f(v.log_loss)
            ),
        }
        // Budgets are shares of the labelled validation rows; labelled the way `evaluate` and
        // `compare` label theirs (cr_eval::Budget::label), which count all rows of their file.
        println!(
            "         budgets below are shares of the {} labelled validation rows",
            c.split.valid_rows
        );
        for b in &v.at_budget {
            println!(
                "         at {:>4} ({:>6} inspections): hit rate {}  recall {}  revenue caught {}",
                cr_eval::Budget::Rate(b.rate).label(),
                b.k,
                f(b.precision),
                f(b.recall),
                f(b.revenue_share)
            );
        }
    }
    let Some(run) = &c.run else { return };
    let total: f64 = run
        .timings
        .iter()
        .filter(|(k, _)| !k.contains('.'))
        .map(|(_, v)| v)
        .sum();
    println!(
        "time     {total:.2}s ({})",
        run.timings
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
