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
    super::ensure_parent(&a.out)?;
    // Batch by batch into the file: memory stays flat whatever --rows (see benches/memory).
    let mut w = cr_data::BatchWriter::create(&a.out, &schema)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let bar = crate::progress::bar(a.rows as u64, "generating", a.quiet);
    let (mut labelled, mut pos) = (0usize, 0usize);
    cr_synth::generate_stream(&cfg, &schema, |batch, _truth| {
        labelled += batch.label.iter().filter(|l| l.is_some()).count();
        pos += batch.label.iter().filter(|l| **l == Some(true)).count();
        w.write(&batch)
            .with_context(|| format!("writing {}", a.out.display()))?;
        bar.inc(batch.len() as u64);
        Ok::<(), anyhow::Error>(())
    })?;
    let rows = w.rows();
    w.finish()
        .with_context(|| format!("writing {}", a.out.display()))?;
    bar.finish_and_clear();
    if !a.quiet {
        eprintln!(
            "wrote {} declarations to {} ({} inspected, {} seized) in {:.2}s",
            rows,
            a.out.display(),
            labelled,
            pos,
            t0.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}
