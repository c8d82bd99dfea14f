use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use cr_data::{ColType, Column, OnError, ReadOptions, RejectWriter, TableWriter};
use cr_infer::{DeclarationModel, Engine, LoadOptions};

use super::validate::{delimiter_byte, OnErrorArg};

/// Score a file of declarations with an ONNX model, in parallel, streaming in batches (memory
/// stays flat whatever the file size, input order is kept).
///
/// Writes one row per accepted declaration: id, score (risk, 0..1), percentile (of the score
/// within the model's validation scores, 0..100) and, with --budget, `selected` (the top
/// share of the file: highest scores first, ties broken by file order). Rejected rows are
/// handled as in `validate` (--on-error, --rejects).
///
/// Our models (from `customs-risk train`) take the raw declaration columns named in their
/// schema. A foreign model (skl2onnx / onnxmltools) whose single input is a float tensor
/// [N, F] takes the file's columns named by --features a,b,c, or by default all numeric
/// columns of the file in order when there are exactly F of them; the mapping is printed.
///
/// Engines: native (compiled trees / linear, the default where the graph allows) or ort
/// (ONNX Runtime; needs scripts/setup-ort.sh). --engine forces one.
///
/// Example:
///   customs-risk score --model models/gbdt.onnx --data decl.csv --out scores.csv --budget 5%
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
    /// Foreign models: the id column written to the output (default: the row number).
    #[arg(long)]
    id_column: Option<String>,
    /// CSV delimiter.
    #[arg(long, default_value = ",")]
    delimiter: char,
    /// Rows per batch.
    #[arg(long, default_value_t = 65_536)]
    batch_rows: usize,
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

/// Percentile (0..100) of `score` within the reference quantiles q[0..=100].
pub fn percentile(q: &[f32], score: f32) -> Option<f64> {
    if q.len() < 2 {
        return None;
    }
    let below = q.partition_point(|&v| v <= score);
    Some(100.0 * below as f64 / q.len() as f64)
}

/// The card's reference score quantiles, if present.
pub fn card_quantiles(meta: &std::collections::BTreeMap<String, String>) -> Vec<f32> {
    meta.get(cr_infer::CARD_METADATA_KEY)
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|v| v.get("score_quantiles").cloned())
        .and_then(|q| serde_json::from_value::<Vec<f32>>(q).ok())
        .unwrap_or_default()
}

struct Sink {
    /// final output (no budget) or a temporary file (budget: selection needs all scores).
    writer: Option<TableWriter>,
    tmp: Option<BufWriter<std::fs::File>>,
    scores: Vec<f32>,
    quantiles: Vec<f32>,
}

impl Sink {
    fn push(&mut self, ids: Vec<String>, scores: Vec<f32>) -> anyhow::Result<()> {
        let pct: Vec<f64> = scores.iter().map(|&s| percentile(&self.quantiles, s).unwrap_or(f64::NAN)).collect();
        if let Some(w) = &mut self.writer {
            w.write_rows(&[Column::Str(ids), Column::F64(scores.iter().map(|&s| f64::from(s)).collect()), Column::F64(pct)])?;
        } else if let Some(t) = &mut self.tmp {
            for ((id, s), p) in ids.iter().zip(&scores).zip(&pct) {
                // id may contain anything: keep it last on the line
                writeln!(t, "{s:e}\t{p}\t{id}")?;
            }
            self.scores.extend_from_slice(&scores);
        }
        Ok(())
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.rejects.is_some() && matches!(a.on_error, OnErrorArg::Fail) {
        bail!("--rejects needs --on-error skip");
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads).build().context("starting scoring threads")?;
    pool.install(|| run_in_pool(&a))
}

fn run_in_pool(a: &Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let proto = cr_onnx::load_model(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let opts = LoadOptions { engine: a.engine.into(), threads: a.threads };
    super::ensure_parent(&a.out)?;
    let budget_tmp = a.budget.map(|_| super::with_ext(&a.out, ".scoring.tmp"));
    let out_cols: [(&str, ColType); 3] = [("id", ColType::Str), ("score", ColType::F64), ("percentile", ColType::F64)];
    let (rows, rejected, engine, scores_for_budget) = if cr_infer::is_declaration_model(&proto) {
        let model = DeclarationModel::from_proto(&proto, &opts).with_context(|| format!("loading {}", a.model.display()))?;
        let mut sink = Sink {
            writer: if budget_tmp.is_none() { Some(TableWriter::create(&a.out, &out_cols)?) } else { None },
            tmp: match &budget_tmp {
                Some(p) => Some(BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)),
                None => None,
            },
            scores: Vec::new(),
            quantiles: card_quantiles(model.metadata()),
        };
        let ropts = ReadOptions { batch_rows: a.batch_rows.max(1), delimiter: delimiter_byte(a.delimiter)?, on_error: a.on_error.into(), require_label: false, ..ReadOptions::default() };
        let reader = cr_data::open(&a.data, model.schema(), &ropts).with_context(|| format!("reading {}", a.data.display()))?;
        let mut rej = match &a.rejects {
            Some(p) => Some(RejectWriter::create(p)?),
            None => None,
        };
        let bar = crate::progress::spinner("score", a.quiet);
        // Reading and validating run on their own thread, one chunk ahead of scoring and
        // writing (a bounded channel keeps memory flat).
        let reader = std::thread::scope(|scope| -> anyhow::Result<cr_data::Reader> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<cr_data::ReadChunk, cr_data::DataError>>(2);
            let producer = scope.spawn(move || {
                let mut reader = reader;
                for chunk in &mut reader {
                    let stop = chunk.is_err();
                    if tx.send(chunk).is_err() || stop {
                        break;
                    }
                }
                reader
            });
            for chunk in rx {
                let chunk = chunk?;
                if let Some(r) = &mut rej {
                    r.write(&chunk.rejects)?;
                }
                let scores = model.score_batch(&chunk.batch)?;
                bar.inc(chunk.batch.len() as u64);
                sink.push(chunk.batch.ids, scores)?;
            }
            producer.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))
        })?;
        bar.finish_and_clear();
        if let Some(r) = rej {
            r.finish()?;
        }
        if let Some(w) = sink.writer.take() {
            w.finish()?;
        }
        if let Some(mut t) = sink.tmp.take() {
            t.flush()?;
        }
        let _ = OnError::Fail;
        (reader.accepted(), reader.rejected(), model.engine_used(), sink.scores)
    } else {
        super::foreign::score_foreign(&proto, &opts, a, &out_cols, budget_tmp.as_deref())?
    };
    if let (Some(rate), Some(tmp)) = (a.budget, &budget_tmp) {
        write_with_selection(tmp, &a.out, &scores_for_budget, rate)?;
        let _ = std::fs::remove_file(tmp);
    }
    if !a.quiet {
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "scored {rows} declarations ({rejected} rejected) with the {} engine in {secs:.2}s ({:.0} rows/s) -> {}",
            match engine {
                Engine::Ort => "ONNX Runtime",
                _ => "native",
            },
            rows as f64 / secs.max(1e-9),
            a.out.display()
        );
        if let Some(rate) = a.budget {
            let k = budget_k(rate, rows as usize);
            eprintln!("selected the top {k} declarations ({:.2} % budget)", rate * 100.0);
        }
    }
    Ok(())
}

/// k = ceil(rate × n), with products within 1e-9 of an integer taken as that integer
/// (the rule of `cr_eval::Budget::k`).
pub fn budget_k(rate: f64, n: usize) -> usize {
    cr_eval::Budget::Rate(rate).k(n)
}

/// Second pass of a budgeted run: rows in file order from the temporary file, with `selected`
/// true for the top k scores (ties by file order).
fn write_with_selection(tmp: &Path, out: &Path, scores: &[f32], rate: f64) -> anyhow::Result<()> {
    let n = scores.len();
    let k = budget_k(rate, n);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&i, &j| scores[j as usize].total_cmp(&scores[i as usize]).then(i.cmp(&j)));
    let mut selected = vec![false; n];
    for &i in order.iter().take(k) {
        selected[i as usize] = true;
    }
    drop(order);
    let cols = [("id", ColType::Str), ("score", ColType::F64), ("percentile", ColType::F64), ("selected", ColType::Bool)];
    let mut w = TableWriter::create(out, &cols)?;
    let f = std::io::BufReader::new(std::fs::File::open(tmp).with_context(|| format!("reading {}", tmp.display()))?);
    let (mut ids, mut sc, mut pc, mut sel) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, line) in f.lines().enumerate() {
        let line = line?;
        let mut parts = line.splitn(3, '\t');
        let s: f64 = parts.next().unwrap_or("").parse().context("temporary score file is corrupt")?;
        let p: f64 = parts.next().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
        ids.push(parts.next().unwrap_or("").to_string());
        sc.push(s);
        pc.push(p);
        sel.push(selected.get(i).copied().unwrap_or(false));
        if ids.len() == 65_536 {
            w.write_rows(&[Column::Str(std::mem::take(&mut ids)), Column::F64(std::mem::take(&mut sc)), Column::F64(std::mem::take(&mut pc)), Column::Bool(std::mem::take(&mut sel))])?;
        }
    }
    if !ids.is_empty() {
        w.write_rows(&[Column::Str(ids), Column::F64(sc), Column::F64(pc), Column::Bool(sel)])?;
    }
    w.finish()?;
    Ok(())
}

impl Args {
    pub fn model(&self) -> &Path {
        &self.model
    }
    pub fn data(&self) -> &Path {
        &self.data
    }
    pub fn out(&self) -> &Path {
        &self.out
    }
    pub fn delimiter(&self) -> char {
        self.delimiter
    }
    pub fn features(&self) -> &[String] {
        &self.features
    }
    pub fn id_column(&self) -> Option<&str> {
        self.id_column.as_deref()
    }
    pub fn batch_rows(&self) -> usize {
        self.batch_rows.max(1)
    }
    pub fn quiet(&self) -> bool {
        self.quiet
    }
}
