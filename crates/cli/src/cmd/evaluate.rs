use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use cr_data::{Batch, CategoricalKind, ReadOptions};
use cr_eval::{
    EvalConfig, EvalInput, EvalRows, FeatureDriftInput, Period, SegmentColumn, SelectionKind,
};
use cr_infer::{DeclarationModel, LoadOptions};

use super::score::EngineArg;
use super::validate::OnErrorArg;

/// Evaluate a model on a file of declarations with inspection outcomes, honestly about
/// selection bias: every number says whether it comes from all inspected rows (biased toward
/// whoever chose them), the random-selection sample (unbiased) or inverse-propensity weighting
/// of the recorded selection propensities — each with a confidence interval.
///
/// Reports hit rate (precision), recall and revenue caught at 1/2/5/10 % inspection budgets
/// (and --budget), ROC-AUC, PR-AUC, log loss, Brier, calibration, per-month and per-segment
/// (office, HS chapter, origin) views, and feature drift against the training data (PSI per
/// feature on the training bins; flagged at >= 0.2). Writes one self-contained HTML file with
/// plots (no network needed) and, with --json, the same numbers for machines.
///
/// With --decisions (the output of `customs-risk select` on the same declarations, or the
/// service's `customs-risk audit export` of them, CSV or .jsonl) the inspection record is the
/// policy's, so the IPW estimate uses the logged propensities.
///
/// Example:
///   customs-risk evaluate --model models/gbdt.onnx --data new.csv --report eval.html --json eval.json
///   customs-risk evaluate --model models/gbdt.onnx --data outcomes.csv \
///       --decisions decisions.csv --report loop.html
///   customs-risk audit export --registry reg.db --since 2024-06-01 --out audit.csv
///   customs-risk evaluate --model models/gbdt.onnx --data outcomes.csv --decisions audit.csv
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The ONNX model (a customs-risk model: its schema and training distribution are inside).
    #[arg(long)]
    model: PathBuf,
    /// Declarations with outcomes (.csv, .tsv or .parquet).
    #[arg(long)]
    data: PathBuf,
    /// HTML report to write.
    #[arg(long)]
    report: PathBuf,
    /// Also write the numbers as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An extra inspection budget to report, e.g. 3%.
    #[arg(long, value_parser = super::parse_rate)]
    budget: Option<f64>,
    /// Only rows dated on or after this day (YYYY-MM-DD), e.g. the period after training.
    #[arg(long)]
    from: Option<String>,
    /// auto (native when the graph allows, else ONNX Runtime), native or ort.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// What to do with a row that fails validation: fail (stop, exit 1) or skip (count it).
    #[arg(long, value_enum, default_value_t = OnErrorArg::Fail)]
    on_error: OnErrorArg,
    /// Scoring threads (0 = all cores). The numbers do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Decisions for these declarations, written by `customs-risk select` (CSV) or by
    /// `customs-risk audit export` of a service whose champion had a policy (CSV or .jsonl;
    /// a resubmitted declaration counts once): the inspection record comes from them (stratum none = not inspected, its label ignored;
    /// propensity = the logged inclusion probability, used by the IPW estimate) instead of the
    /// data's inspection columns. Every declaration needs a decision; selected ones a label.
    #[arg(long)]
    decisions: Option<PathBuf>,
    /// Seed of the bootstrap intervals.
    #[arg(long, default_value_t = 20_240_917)]
    seed: u64,
    /// No progress bar or summary.
    #[arg(long)]
    quiet: bool,
}

/// Everything the evaluation needs about the rows, from a batch (the scores aside).
pub fn eval_rows(schema: &cr_data::Schema, b: &Batch) -> EvalRows {
    let mut segments = Vec::new();
    if let Some(i) = schema.categorical_index(CategoricalKind::Office) {
        segments.push(SegmentColumn {
            name: "office".into(),
            values: b.categorical[i].clone(),
        });
    }
    let shift = u32::from(schema.hs_width.saturating_sub(2));
    segments.push(SegmentColumn {
        name: "HS chapter".into(),
        values: b
            .hs
            .iter()
            .map(|&h| format!("{:02}", h / 10u64.pow(shift)))
            .collect(),
    });
    if let Some(i) = schema.categorical_index(CategoricalKind::CountryOfOrigin) {
        segments.push(SegmentColumn {
            name: "origin".into(),
            values: b.categorical[i].clone(),
        });
    }
    EvalRows {
        label: b.label.clone(),
        inspected: b.inspected.clone(),
        selection: b
            .selection
            .iter()
            .map(|s| s.and_then(|s| SelectionKind::parse(s.as_str())))
            .collect(),
        propensity: b.propensity.clone(),
        revenue: b.revenue.iter().map(|r| r.map(f64::from)).collect(),
        period: Some(Period::DaysSinceEpoch(b.dates.clone())),
        segments,
    }
}

/// Load a model and read + score a labelled file with it.
pub fn load_and_score(
    model: &Path,
    data: &Path,
    a_engine: EngineArg,
    on_error: OnErrorArg,
    from: Option<&str>,
) -> anyhow::Result<(DeclarationModel, Batch, Vec<f64>)> {
    let m = DeclarationModel::load(
        model,
        &LoadOptions {
            engine: a_engine.into(),
            threads: 0,
        },
    )
    .with_context(|| format!("loading {}", model.display()))?;
    let opts = ReadOptions {
        on_error: on_error.into(),
        // models trained on pseudonymised columns: the key from CR_PSEUDONYM_KEY
        pseudonym_key: super::load_key(None)?,
        ..ReadOptions::default()
    };
    let (mut batch, rejects) = cr_data::read_all(data, m.schema(), &opts)
        .with_context(|| format!("reading {}", data.display()))?;
    if !rejects.is_empty() {
        eprintln!(
            "{}: {} rows rejected and left out of the evaluation",
            data.display(),
            rejects.len()
        );
    }
    if let Some(f) = from {
        let d = chrono::NaiveDate::parse_from_str(f, "%Y-%m-%d")
            .with_context(|| format!("--from {f:?} is not YYYY-MM-DD"))?;
        use chrono::Datelike;
        let day = cr_data::schema::days_from_ymd(d.year(), d.month(), d.day())
            .context("--from out of range")?;
        let keep: Vec<usize> = (0..batch.len())
            .filter(|&i| batch.dates[i] >= day)
            .collect();
        batch = batch.take(&keep);
    }
    if batch.is_empty() {
        bail!("{}: no rows to evaluate", data.display());
    }
    let scores = m.score_batch(&batch)?.into_iter().map(f64::from).collect();
    Ok((m, batch, scores))
}

/// Feature drift inputs: the card's training bins against this file's features; calendar
/// features are marked as shifting by construction (see `FeatureDef::shifts_with_time`).
pub fn drift_inputs(
    m: &DeclarationModel,
    batch: &Batch,
) -> anyhow::Result<(Vec<FeatureDriftInput>, Option<Vec<f64>>)> {
    let reference = m
        .reference()
        .map(|r| r.as_slice().to_vec())
        .filter(|q| q.len() > 1);
    let bins = m.card().map_or(&[][..], |c| &c.feature_bins[..]);
    if bins.is_empty() {
        return Ok((Vec::new(), reference));
    }
    let pipeline = m.pipeline();
    let x = pipeline
        .transform(batch)
        .context("computing features for drift")?;
    let mut features = cr_eval::feature_inputs(bins, |name| {
        let j = x.column_index(name)?;
        Some(x.column(j).into_iter().map(f64::from).collect())
    })?;
    for f in &mut features {
        if let Some(j) = x.column_index(&f.name) {
            f.expected_shift = pipeline.shifts_with_time(j).map(str::to_string);
        }
    }
    Ok((features, reference))
}

/// The evaluation settings of `--budget` and `--seed`.
pub fn config(budget: Option<f64>, seed: u64) -> EvalConfig {
    EvalConfig::with_headline(budget.map(cr_eval::Budget::Rate), seed)
}

pub fn model_name(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    pool.install(|| {
        let (m, batch, scores) =
            load_and_score(&a.model, &a.data, a.engine, a.on_error, a.from.as_deref())?;
        let (features, reference_scores) = drift_inputs(&m, &batch)?;
        let mut rows = eval_rows(m.schema(), &batch);
        if let Some(d) = &a.decisions {
            let logged = cr_policy::read_decisions(d)?;
            cr_policy::apply_decisions(&mut rows, &batch.ids, &logged, d)?;
        }
        let input = EvalInput {
            model: model_name(&a.model),
            scores,
            rows,
            reference_scores,
            features,
        };
        let report = cr_eval::evaluate(&input, &config(a.budget, a.seed)).context("evaluating")?;
        super::ensure_parent(&a.report)?;
        std::fs::write(&a.report, cr_eval::render_evaluation_html(&report))
            .with_context(|| format!("writing {}", a.report.display()))?;
        if let Some(j) = &a.json {
            super::ensure_parent(j)?;
            std::fs::write(j, report.to_json())
                .with_context(|| format!("writing {}", j.display()))?;
        }
        if !a.quiet {
            print!("{}", report.headline());
            eprintln!("report: {}", a.report.display());
        }
        Ok(())
    })
}
