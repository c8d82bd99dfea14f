use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args as ClapArgs;

/// Synthetic declarations: heavy-tailed importers, an HS hierarchy with duty rates, planted fraud
/// (undervaluation, misclassification, origin fraud, risky declarants, new importers), drift in
/// the later months, and an inspection process (legacy rule + random sample) with recorded
/// propensities. Labels only on inspected rows. Deterministic by seed. The columns are those of
/// data/schemas/synthetic.toml.
///
/// Examples:
///   customs-risk generate --rows 200000 --out data.csv
///   customs-risk generate --rows 1000000 --months 24 --seed 7 --out decl.parquet
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Number of declarations.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Master seed: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Length of the period in months (from --start).
    #[arg(long, default_value_t = 18)]
    months: u32,
    /// First day, YYYY-MM-DD.
    #[arg(long, default_value = "2023-01-01")]
    start: String,
    /// Share of declarations inspected at random (the unbiased sample).
    #[arg(long, default_value_t = 0.02)]
    random_rate: f64,
    /// Output file: .csv or .parquet.
    #[arg(long)]
    out: PathBuf,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let d = chrono::NaiveDate::parse_from_str(&a.start, "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not YYYY-MM-DD", a.start))?;
    use chrono::Datelike;
    let cfg = cr_synth::SynthConfig {
        rows: a.rows,
        seed: a.seed,
        start_date: (d.year(), d.month(), d.day()),
        months: a.months,
        random_rate: a.random_rate,
        ..Default::default()
    };
    let schema = cr_synth::schema()?;
    let t0 = Instant::now();
    let batch = cr_synth::generate(&cfg, &schema)?;
    let t_gen = t0.elapsed();
    super::ensure_parent(&a.out)?;
    cr_data::write_batch(&a.out, &schema, &batch)
        .with_context(|| format!("writing {}", a.out.display()))?;
    if !a.quiet {
        let labelled = batch.label.iter().filter(|l| l.is_some()).count();
        let pos = batch.label.iter().filter(|l| **l == Some(true)).count();
        eprintln!(
            "wrote {} declarations to {} ({} inspected, {} seized) in {:.2}s (generate {:.2}s)",
            batch.len(),
            a.out.display(),
            labelled,
            pos,
            t0.elapsed().as_secs_f64(),
            t_gen.as_secs_f64()
        );
    }
    Ok(())
}
