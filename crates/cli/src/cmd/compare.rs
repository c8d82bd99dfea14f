use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use cr_data::ReadOptions;
use cr_infer::{DeclarationModel, LoadOptions};

use super::evaluate::{config, eval_rows, model_name};
use super::score::EngineArg;
use super::validate::OnErrorArg;

/// Compare model versions on the same declarations: champion (the first --model) against each
/// challenger. Paired bootstrap confidence intervals for the differences in hit rate, recall and
/// revenue caught at each budget and in ROC-AUC (with DeLong's test too), how much the top-k
/// sets overlap, and one plain sentence per budget, e.g. "B finds 3.1 more seizures per 100
/// inspections at 5 % [1.2, 5.0]". Selection-aware like `evaluate`.
///
/// Example:
///   customs-risk compare --model models/champion.onnx --model models/challenger.onnx \
///       --data recent.csv --report cmp.html
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Two or more ONNX models; the first is the baseline (champion).
    #[arg(long = "model", required = true, num_args = 1)]
    models: Vec<PathBuf>,
    /// Declarations with outcomes, read with the first model's schema.
    #[arg(long)]
    data: PathBuf,
    /// HTML report to write.
    #[arg(long)]
    report: PathBuf,
    /// Also write the numbers as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An extra inspection budget (the headline), e.g. 3%.
    #[arg(long, value_parser = super::parse_rate)]
    budget: Option<f64>,
    /// Bootstrap replicates.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap resampling: the same seed gives the same intervals.
    #[arg(long, default_value_t = 20_240_917)]
    seed: u64,
    /// auto (native when the graph allows, else ONNX Runtime), native or ort.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// What to do with a row that fails validation: fail (stop, exit 1) or skip (count it).
    #[arg(long, value_enum, default_value_t = OnErrorArg::Fail)]
    on_error: OnErrorArg,
    /// No progress bar or summary.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.models.len() < 2 {
        bail!("give at least two --model files (the first is the baseline)");
    }
    let loaded: Vec<DeclarationModel> = a
        .models
        .iter()
        .map(|p| {
            DeclarationModel::load(
                p,
                &LoadOptions {
                    engine: a.engine.into(),
                    threads: 0,
                },
            )
            .with_context(|| format!("loading {}", p.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let schema = loaded[0].schema().clone();
    let opts = ReadOptions {
        on_error: a.on_error.into(),
        // models trained on pseudonymised columns: the key from CR_PSEUDONYM_KEY
        pseudonym_key: super::load_key(None)?,
        ..ReadOptions::default()
    };
    let (batch, rejects) = cr_data::read_all(&a.data, &schema, &opts)
        .with_context(|| format!("reading {}", a.data.display()))?;
    if !rejects.is_empty() && !a.quiet {
        eprintln!(
            "{}: {} rows rejected and left out",
            a.data.display(),
            rejects.len()
        );
    }
    let mut names: Vec<String> = Vec::new();
    let mut scored = Vec::new();
    for (p, m) in a.models.iter().zip(&loaded) {
        if m.schema() != &schema {
            // the same file must validate for every model: require the same schema
            bail!(
                "{} was trained with schema {:?}, {} with {:?}: compare models on one schema",
                a.models[0].display(),
                schema.name,
                p.display(),
                m.schema().name
            );
        }
        let mut name = model_name(p);
        while names.contains(&name) {
            name.push('\'');
        }
        names.push(name.clone());
        let s: Vec<f64> = m.score_batch(&batch)?.into_iter().map(f64::from).collect();
        scored.push((name, s));
    }
    let mut cfg = config(a.budget, a.seed);
    cfg.bootstrap_reps = a.bootstrap;
    let report =
        cr_eval::compare(&scored, &eval_rows(&schema, &batch), &cfg).context("comparing")?;
    super::ensure_parent(&a.report)?;
    std::fs::write(&a.report, cr_eval::render_comparison_html(&report))
        .with_context(|| format!("writing {}", a.report.display()))?;
    if let Some(j) = &a.json {
        super::ensure_parent(j)?;
        std::fs::write(j, report.to_json())?;
    }
    if !a.quiet {
        for p in &report.pairs {
            for s in &p.sentences {
                println!("{s}");
            }
        }
        eprintln!("report: {}", a.report.display());
    }
    Ok(())
}
