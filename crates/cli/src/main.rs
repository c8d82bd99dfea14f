//! `customs-risk`: the command-line entry point. Argument parsing and wiring only; every piece
//! of logic lives in a library crate (see ARCHITECTURE.md).

mod cmd;
mod progress;

#[cfg(test)]
mod help_check;

use clap::{Parser, Subcommand};

/// mimalloc: validation and scoring allocate many small strings (categorical cells, ids);
/// glibc malloc spent over half of `validate`'s time in malloc/free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Machine-learning risk targeting for customs: learn from inspection outcomes which import
/// declarations to inspect, export models as ONNX, score files and single declarations, and
/// compare model versions at inspection budgets.
///
/// A first run, on generated demo data:
///
///   customs-risk demo                       # generate → train → score → evaluate, in ./out/demo
///
/// The same by hand:
///
///   customs-risk generate --rows 200000 --out data.csv
///   customs-risk validate --data data.csv --schema data/schemas/synthetic.toml
///   customs-risk train --data data.csv --schema data/schemas/synthetic.toml --out models/gbdt
///   customs-risk score --model models/gbdt.onnx --data data.csv --out scores.csv --budget 5%
///   customs-risk evaluate --model models/gbdt.onnx --data data.csv --report report.html
#[derive(Parser, Debug)]
#[command(
    name = "customs-risk",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Each variant's `about` is the one-line summary in `customs-risk --help`; the long help
/// (`customs-risk CMD --help`) is the doc comment of the command's `Args` (a doc comment here
/// would replace it).
#[derive(Subcommand, Debug)]
enum Command {
    #[command(
        about = "The whole loop on generated demo data: generate, train, score, evaluate, compare."
    )]
    Demo(cmd::demo::Args),
    #[command(
        about = "Generate synthetic declarations (CSV or Parquet) with planted fraud and an inspection process."
    )]
    Generate(cmd::generate::Args),
    #[command(
        about = "Check a declarations file against a schema; print counts, optionally write rejected rows."
    )]
    Validate(cmd::validate::Args),
    #[command(
        about = "Train a GBDT or logistic model on inspection outcomes; export it as ONNX with a model card."
    )]
    Train(cmd::train::Args),
    #[command(
        about = "Score a file of declarations with an ONNX model (ours or skl2onnx / onnxmltools exports)."
    )]
    Score(cmd::score::Args),
    #[command(
        about = "Decide channels under a policy: officer rules, watch lists, capacity, logged random floor."
    )]
    Select(cmd::select::Args),
    #[command(
        about = "Evaluate a model at inspection budgets, selection-aware; HTML report with plots, JSON."
    )]
    Evaluate(cmd::evaluate::Args),
    #[command(about = "Compare model versions on the same rows with paired confidence intervals.")]
    Compare(cmd::compare::Args),
    #[command(
        about = "Serve scores over HTTP (champion/challenger from the registry, API keys, audit trail)."
    )]
    Serve(cmd::service::ServeArgs),
    #[command(
        about = "Register, list, promote, shadow and retire model versions in the SQLite registry."
    )]
    Models(cmd::service::ModelsArgs),
    #[command(about = "Create, list and revoke API keys.")]
    Keys(cmd::service::KeysArgs),
    #[command(about = "Export the audit trail of decisions.")]
    Audit(cmd::service::AuditArgs),
}

/// Point ONNX Runtime at the library `scripts/setup-ort.sh` installs when ORT_DYLIB_PATH is not
/// set: `.ort/libonnxruntime.so` in the working directory or above the executable.
fn find_onnxruntime() {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        return;
    }
    let mut candidates = vec![std::path::PathBuf::from(".ort/libonnxruntime.so")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(
            exe.ancestors()
                .skip(1)
                .map(|d| d.join(".ort/libonnxruntime.so")),
        );
    }
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        let abs = std::fs::canonicalize(&found).unwrap_or(found);
        // Set before any other thread exists.
        std::env::set_var("ORT_DYLIB_PATH", abs);
    }
}

fn main() {
    find_onnxruntime();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Score(a) => cmd::score::run(a),
        Command::Select(a) => cmd::select::run(a),
        Command::Evaluate(a) => cmd::evaluate::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Serve(a) => cmd::service::serve(a),
        Command::Models(a) => cmd::service::models(a),
        Command::Keys(a) => cmd::service::keys(a),
        Command::Audit(a) => cmd::service::audit(a),
    };
    if let Err(err) = result {
        for line in error_lines(&err) {
            eprintln!("{line}");
        }
        std::process::exit(1);
    }
}

/// `error: ...` then one `  caused by: ...` per cause in the chain, except a cause whose text
/// the line before already ends with (an error that prints its source in its own message).
fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut last = err.to_string();
    let mut lines = vec![format!("error: {last}")];
    for cause in err.chain().skip(1) {
        let msg = cause.to_string();
        if !last.ends_with(&msg) {
            lines.push(format!("  caused by: {msg}"));
        }
        last = msg;
    }
    lines
}

#[cfg(test)]
#[test]
fn each_cause_is_printed_once() {
    #[derive(Debug)]
    struct Echo(std::io::Error);
    impl std::fmt::Display for Echo {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "reading x.csv: {}", self.0)
        }
    }
    impl std::error::Error for Echo {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    let err = anyhow::Error::new(Echo(io)).context("scoring x.csv");
    assert_eq!(
        error_lines(&err),
        vec![
            "error: scoring x.csv".to_string(),
            "  caused by: reading x.csv: no such file".to_string(),
        ]
    );
}
