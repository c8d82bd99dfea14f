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
///   customs-risk generate --rows 200000 --out data.csv --truth truth.csv
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
    /// Also write the ground truth of every row, inspected or not, to this CSV (columns
    /// declaration_id, fraud (1/0), mechanism (undervaluation, misclassification, origin_fraud,
    /// undeclared_goods or empty), revenue (the tax an inspection would recover; 0 when
    /// clean), rule_hit (1/0: the legacy rule flagged it)). For simulations and for scoring
    /// estimates against the truth; never a training input.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
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
    let mut truth_out = match &a.truth {
        Some(p) => {
            super::ensure_parent(p)?;
            let mut t =
                csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display()))?;
            // the id column is named as in the data file, so the two join on it
            t.write_record([
                schema.id.as_str(),
                "fraud",
                "mechanism",
                "revenue",
                "rule_hit",
            ])
            .with_context(|| format!("writing {}", p.display()))?;
            Some((t, p.clone()))
        }
        None => None,
    };
    let bar = crate::progress::bar(a.rows as u64, "generating", a.quiet);
    let (mut labelled, mut pos) = (0usize, 0usize);
    cr_synth::generate_stream(&cfg, &schema, |batch, truth| {
        labelled += batch.label.iter().filter(|l| l.is_some()).count();
        pos += batch.label.iter().filter(|l| **l == Some(true)).count();
        w.write(&batch)
            .with_context(|| format!("writing {}", a.out.display()))?;
        if let Some((t, p)) = truth_out.as_mut() {
            for (i, id) in batch.ids.iter().enumerate() {
                let m = truth.mechanism[i];
                let revenue = if m.is_some() { truth.evaded[i] } else { 0.0 };
                t.write_record([
                    id.as_str(),
                    if m.is_some() { "1" } else { "0" },
                    m.map_or("", |m| m.as_str()),
                    &revenue.to_string(),
                    if truth.rule_hit[i] { "1" } else { "0" },
                ])
                .with_context(|| format!("writing {}", p.display()))?;
            }
        }
        bar.inc(batch.len() as u64);
        Ok::<(), anyhow::Error>(())
    })?;
    let rows = w.rows();
    w.finish()
        .with_context(|| format!("writing {}", a.out.display()))?;
    if let Some((mut t, p)) = truth_out {
        t.flush()
            .with_context(|| format!("writing {}", p.display()))?;
    }
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
