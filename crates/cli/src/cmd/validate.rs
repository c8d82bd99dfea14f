use std::path::PathBuf;

use anyhow::Context;
use clap::{Args as ClapArgs, ValueEnum};
use cr_data::{OnError, ReadOptions};

/// Check a declarations file against a schema before training or scoring. Every rejected value
/// is reported with file, line, column, value and reason. With `--on-error fail` (default) the
/// first bad row stops the run with a non-zero exit; with `--on-error skip` bad rows are counted
/// (and written to `--rejects`, one line per bad cell), and accepted + rejected = rows read.
/// Categorical cells outside a column's declared `values` / `pattern` are warnings with
/// counts per column (rejects with --strict-categories); columns without a declared domain
/// are named as not checked. Memory stays flat whatever the file size: rows are read in
/// chunks, and duplicate ids are settled after the last row with sorted runs on disk (a
/// duplicate is reported then, naming both lines; in --rejects it sits at its line, listed
/// with the row's other problems, as an immediate check would write it).
///
/// Examples:
///   customs-risk validate --data decl.csv --schema data/schemas/synthetic.toml
///   customs-risk validate --data kcs.csv --schema data/schemas/kcs.toml --on-error skip --rejects rejects.csv
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Declarations file (.csv, .tsv or .parquet).
    #[arg(long)]
    data: PathBuf,
    /// Schema TOML (see data/schemas/). Default: the bundled synthetic schema.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// What to do with a bad row: fail (stop at the first, exit 1) or skip (count it, go on).
    #[arg(long, value_enum, default_value_t = OnErrorArg::Fail)]
    on_error: OnErrorArg,
    /// With --on-error skip: write rejected rows with their reasons to this CSV file.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// CSV delimiter (one byte), e.g. ';'.
    #[arg(long, default_value = ",")]
    delimiter: char,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Reject categorical cells outside the schema's `values` / `pattern` (default: keep
    /// them and report them as warnings, with counts per column).
    #[arg(long)]
    strict_categories: bool,
    /// Key of the schema's `pseudonymise = true` columns (a text file, >= 16 bytes; default:
    /// the environment variable CR_PSEUDONYM_KEY). See the README, "Pseudonymised columns".
    #[arg(long, value_name = "FILE")]
    pseudonym_key: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum OnErrorArg {
    Fail,
    Skip,
}

impl From<OnErrorArg> for OnError {
    fn from(a: OnErrorArg) -> OnError {
        match a {
            OnErrorArg::Fail => OnError::Fail,
            OnErrorArg::Skip => OnError::Skip,
        }
    }
}

pub fn delimiter_byte(c: char) -> anyhow::Result<u8> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        anyhow::bail!("--delimiter {c:?} must be one ASCII character")
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let schema = super::load_schema(a.schema.as_deref())?;
    let opts = ReadOptions {
        on_error: a.on_error.into(),
        delimiter: delimiter_byte(a.delimiter)?,
        // Duplicate ids with sorted runs on disk, settled after the last row: memory stays
        // flat whatever the file size (as in `score`).
        duplicates: cr_data::DuplicateCheck::deferred(),
        strict_categories: a.strict_categories,
        pseudonym_key: super::load_key(a.pseudonym_key.as_deref())?,
        ..ReadOptions::default()
    };
    if a.rejects.is_some() && matches!(a.on_error, OnErrorArg::Fail) {
        anyhow::bail!(
            "--rejects needs --on-error skip (with fail, the first bad row stops the run)"
        );
    }
    let rep = cr_data::validate_file(&a.data, &schema, &opts, a.rejects.as_deref())
        .with_context(|| format!("validating {}", a.data.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!("{rep}");
    }
    if rep.rejected > 0 {
        if let Some(r) = &a.rejects {
            eprintln!("{} rejected rows written to {}", rep.rejected, r.display());
        }
    }
    Ok(())
}
