//! `customs-risk score`: arguments, progress bar and summary; the pipeline is
//! [`cr_infer::bulk`].

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use cr_infer::bulk::{BulkOptions, Progress};
use cr_infer::Engine;
use indicatif::ProgressBar;

use super::validate::{delimiter_byte, OnErrorArg};

/// Score a file of declarations with an ONNX model, in parallel, streaming in batches (memory
/// stays flat whatever the file size, input order is kept).
///
/// Writes one row per accepted declaration: id, score (risk, 0..1), percentile (of the score
/// within the model's validation scores, 0..100) and, with --budget, `selected` (the top
/// share of the file: highest scores first, ties broken by file order). A revenue model
/// (`train --objective revenue`) writes expected_revenue (the revenue an inspection is
/// expected to recover) instead of score; percentiles and --budget rank by it. Rejected rows are
/// handled as in `validate` (--on-error, --rejects), except that duplicate ids are settled
/// after the last batch (so memory stays flat): with --on-error fail a duplicate stops the
/// run, naming both lines, and no output is left; with skip the later rows are removed from
/// the output and merged into --rejects in line order (a duplicate on a row rejected anyway
/// is listed with that row's problems), as an immediate check would have written them.
///
/// Our models (from `customs-risk train`) take the raw declaration columns named in their
/// schema. A foreign model (skl2onnx / onnxmltools) whose single input is a float tensor
/// [N, F] takes the file's columns named by --features a,b,c, or by default all numeric
/// columns of the file in order when there are exactly F of them (a column is numeric when
/// every non-empty cell of the first 1000 data rows is a finite number); the mapping is
/// printed. Empty feature cells go to the model as NaN (missing), as pandas would feed them;
/// a row the model scores as NaN is rejected ("no score") rather than written. A foreign
/// model with one [N, 1] input per column (e.g. a scikit-learn ColumnTransformer pipeline
/// from skl2onnx) takes each input from the column of the same name, or the one --map
/// input=column names, typed as the input declares it (string, float, double, int64); a
/// cell that does not fit its input's type is a reject. It runs on ONNX Runtime.
///
/// Columns: the file must have every column the model's schema names (the label, revenue and
/// inspection columns aside); other columns are left unread and named once on stderr, or
/// refused with --strict-columns. A file separated by ';' (or tab, '|') needs --delimiter; a
/// header that reads as one column says which delimiter fits.
///
/// Engines: native (compiled trees / linear, the default where the graph allows) or ort
/// (ONNX Runtime; needs scripts/setup-ort.sh). --engine forces one.
///
/// Examples:
///   customs-risk score --model models/gbdt.onnx --data decl.csv --out scores.csv --budget 5%
///   customs-risk score --model sklearn_pipeline.onnx --data decl.csv --out scores.csv \
///       --id-column declaration_id --map origin=origin_country,value=customs_value
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Declarations to score (.csv, .tsv or .parquet).
    #[arg(long)]
    data: PathBuf,
    /// Output file (.csv or .parquet).
    #[arg(long)]
    out: PathBuf,
    /// Inspection budget: mark the top share of the file as selected, e.g. 5% or 0.05.
    #[arg(long, value_parser = super::parse_rate)]
    budget: Option<f64>,
    /// Scoring threads (0 = all cores). Scores do not depend on it.
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
    /// Foreign models: the file's columns feeding the model's [N, F] input, in order.
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Foreign models with named inputs: feed input INPUT from file column COLUMN
    /// (INPUT=COLUMN, comma-separated); other inputs take the column of their own name.
    #[arg(long, value_delimiter = ',', value_parser = parse_map, value_name = "INPUT=COLUMN")]
    map: Vec<(String, String)>,
    /// Foreign models: the id column written to the output (default: the row number).
    #[arg(long)]
    id_column: Option<String>,
    /// CSV delimiter.
    #[arg(long, default_value = ",")]
    delimiter: char,
    /// Refuse a file with columns the model's schema does not know (by default they are
    /// left unread and named once). Missing columns are an error either way.
    #[arg(long)]
    strict_columns: bool,
    /// Rows per batch (memory holds about three batches).
    #[arg(long, default_value_t = 16_384)]
    batch_rows: usize,
    /// Key of the schema's `pseudonymise = true` columns (a text file, >= 16 bytes; default:
    /// the environment variable CR_PSEUDONYM_KEY). See the README, "Pseudonymised columns".
    #[arg(long, value_name = "FILE")]
    pseudonym_key: Option<PathBuf>,
    /// No progress bar or summary.
    #[arg(long)]
    quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineArg {
    Auto,
    Native,
    Ort,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Engine {
        match e {
            EngineArg::Auto => Engine::Auto,
            EngineArg::Native => Engine::Native,
            EngineArg::Ort => Engine::Ort,
        }
    }
}

/// The spinner, and the foreign mapping printed above it (unless --quiet).
struct Bar {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress for Bar {
    fn rows(&self, rows: u64) {
        self.bar.inc(rows);
    }
    fn mapping(&self, line: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }
    fn ignored_columns(&self, names: &[String]) {
        if !self.quiet {
            let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            self.bar.suspend(|| {
                eprintln!(
                    "ignored {} column(s) the model's schema does not use: {} \
                     (--strict-columns refuses them)",
                    names.len(),
                    list.join(", ")
                )
            });
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.rejects.is_some() && matches!(a.on_error, OnErrorArg::Fail) {
        bail!("--rejects needs --on-error skip");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("starting scoring threads")?;
    let opts = BulkOptions {
        delimiter: delimiter_byte(a.delimiter)?,
        batch_rows: a.batch_rows.max(1),
        budget: a.budget,
        on_error: a.on_error.into(),
        rejects: a.rejects.clone(),
        features: a.features.clone(),
        map: a.map.clone(),
        id_column: a.id_column.clone(),
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
    let progress = Bar {
        bar: crate::progress::spinner("score", a.quiet),
        quiet: a.quiet,
    };
    let summary = cr_infer::bulk::score_file(&a.model, &opts, &pool, &progress);
    progress.bar.finish_and_clear();
    let summary = summary?;
    if !a.quiet {
        let (secs, rows) = (summary.seconds, summary.rows);
        eprintln!(
            "scored {rows} declarations ({} rejected) with the {} engine in {secs:.2}s ({:.0} rows/s) -> {}",
            summary.rejected,
            match summary.engine {
                Engine::Ort => "ONNX Runtime",
                _ => "native",
            },
            rows as f64 / secs.max(1e-9),
            a.out.display()
        );
        if summary.mapping.is_some() {
            eprintln!(
                "percentile is NaN in every row: a foreign model carries no validation scores to \
                 rank against (models from `customs-risk train` do)"
            );
        }
        if let Some(why) = &summary.native_refused {
            eprintln!("ONNX Runtime scored because the native engine refused the model: {why}");
        }
        if let (Some(rate), Some(k)) = (a.budget, summary.selected) {
            eprintln!(
                "selected the top {k} declarations ({:.2} % budget)",
                rate * 100.0
            );
        }
    }
    Ok(())
}

/// `INPUT=COLUMN` of --map.
fn parse_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((i, c)) if !i.trim().is_empty() && !c.trim().is_empty() => {
            Ok((i.trim().to_string(), c.trim().to_string()))
        }
        _ => Err(format!(
            "{s:?}: expected INPUT=COLUMN, e.g. origin=origin_country"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The subcommands this test drives, parsed as the binary parses them.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        c: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Generate(crate::cmd::generate::Args),
        Train(crate::cmd::train::Args),
        Score(Args),
    }

    fn cli(args: &[&str]) -> anyhow::Result<()> {
        use clap::Parser;
        match Cli::try_parse_from(std::iter::once("customs-risk").chain(args.iter().copied()))?.c {
            Sub::Generate(a) => crate::cmd::generate::run(a),
            Sub::Train(a) => crate::cmd::train::run(a),
            Sub::Score(a) => run(a),
        }
    }

    /// Duplicate ids are settled after the last batch: the output and the rejects equal those
    /// of the file without the duplicate rows, and what the immediate check (validate) says.
    #[test]
    fn duplicate_ids_found_at_the_end() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
        cli(&[
            "generate",
            "--rows",
            "3000",
            "--seed",
            "5",
            "--months",
            "6",
            "--out",
            &p("d.csv"),
            "--quiet",
        ])
        .unwrap();
        cli(&[
            "train",
            "--data",
            &p("d.csv"),
            "--out",
            &p("m"),
            "--trees",
            "5",
            "--leaves",
            "7",
            "--early-stopping",
            "0",
            "--quiet",
        ])
        .unwrap();
        // data rows 4 and 9 (lines 5 and 10) again, one in the middle, one at the end, and
        // data row 2 (line 3) at the end
        let text = std::fs::read_to_string(p("d.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut dup: Vec<&str> = lines[..1500].to_vec();
        dup.push(lines[4]);
        dup.extend_from_slice(&lines[1500..]);
        dup.extend_from_slice(&[lines[9], lines[2]]);
        std::fs::write(p("dup.csv"), dup.join("\n") + "\n").unwrap();
        let (model, dup_csv, d_csv) = (p("m.onnx"), p("dup.csv"), p("d.csv"));

        let err = cli(&[
            "score",
            "--model",
            &model,
            "--data",
            &p("dup.csv"),
            "--out",
            &p("fail.csv"),
            "--batch-rows",
            "500",
            "--quiet",
        ])
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("line 1501") && msg.contains("duplicate id (first seen on line 5)"),
            "{msg}"
        );
        assert!(
            !d.path().join("fail.csv").exists(),
            "no output is left after a failure"
        );

        for (out, extra) in [
            ("s.csv", &[][..]),
            ("b.parquet", &["--budget", "5%"][..]),
            ("b.csv", &["--budget", "0.3"][..]),
        ] {
            let mut args = vec![
                "score",
                "--model",
                &model,
                "--data",
                &dup_csv,
                "--batch-rows",
                "500",
                "--quiet",
                "--on-error",
                "skip",
            ];
            let (o, r, reference) = (
                p(out),
                p(&format!("{out}.rejects.csv")),
                p(&format!("ref.{out}")),
            );
            args.extend_from_slice(&["--out", &o, "--rejects", &r]);
            args.extend_from_slice(extra);
            cli(&args).unwrap();
            let mut args = vec![
                "score", "--model", &model, "--data", &d_csv, "--out", &reference, "--quiet",
            ];
            args.extend_from_slice(extra);
            cli(&args).unwrap();
            assert!(
                std::fs::read(&o).unwrap() == std::fs::read(&reference).unwrap(),
                "{out}: differs from the run without duplicates"
            );
            // the same rejects as the immediate check
            let schema = crate::cmd::load_schema(None).unwrap();
            let opts = cr_data::ReadOptions {
                on_error: cr_data::OnError::Skip,
                ..cr_data::ReadOptions::default()
            };
            let rep = cr_data::validate_file(
                Path::new(&p("dup.csv")),
                &schema,
                &opts,
                Some(Path::new(&p("v.csv"))),
            )
            .unwrap();
            assert_eq!(rep.rejected, 3);
            assert_eq!(
                std::fs::read_to_string(&r).unwrap(),
                std::fs::read_to_string(p("v.csv")).unwrap()
            );
        }
    }
}
