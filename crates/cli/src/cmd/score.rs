use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use cr_data::{ColType, ColumnRef, DuplicateCheck, ReadChunk, ReadOptions, RejectWriter, TableWriter};
use cr_infer::{DeclarationModel, Engine, LoadOptions};

use super::validate::{delimiter_byte, OnErrorArg};

/// Score a file of declarations with an ONNX model, in parallel, streaming in batches (memory
/// stays flat whatever the file size, input order is kept).
///
/// Writes one row per accepted declaration: id, score (risk, 0..1), percentile (of the score
/// within the model's validation scores, 0..100) and, with --budget, `selected` (the top
/// share of the file: highest scores first, ties broken by file order). Rejected rows are
/// handled as in `validate` (--on-error, --rejects), except that duplicate ids are settled
/// after the last batch (so memory stays flat): with --on-error fail a duplicate stops the
/// run, naming both lines, and no output is left; with skip the later rows are removed from
/// the output and written to --rejects after the other rejects.
///
/// Our models (from `customs-risk train`) take the raw declaration columns named in their
/// schema. A foreign model (skl2onnx / onnxmltools) whose single input is a float tensor
/// [N, F] takes the file's columns named by --features a,b,c, or by default all numeric
/// columns of the file in order when there are exactly F of them (a column is numeric when
/// every non-empty cell of the first 1000 data rows is a finite number); the mapping is
/// printed. Empty feature cells go to the model as NaN (missing), as pandas would feed them;
/// a row the model scores as NaN is rejected ("no score") rather than written.
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
    /// Rows per batch (memory holds about three batches).
    #[arg(long, default_value_t = 16_384)]
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

/// Where scored rows go: the output table directly, or (with a budget) an id file beside it,
/// since selection needs every score first. Only the scores stay in memory (4 bytes a row).
/// Shared by our models and foreign ones (`foreign.rs`).
pub(super) enum Sink {
    Table(TableWriter),
    Budget { ids: IdSpool, scores: Scores, rate: f64 },
}

/// Scores in blocks of 2^20 (no reallocation peak while the vector grows).
#[derive(Default)]
pub(super) struct Scores {
    blocks: Vec<Vec<f32>>,
    len: usize,
}

const SCORE_BLOCK: usize = 1 << 20;

impl Scores {
    fn extend(&mut self, mut s: &[f32]) {
        while !s.is_empty() {
            if self.blocks.last().is_none_or(|b| b.len() == SCORE_BLOCK) {
                self.blocks.push(Vec::with_capacity(SCORE_BLOCK));
            }
            let Some(b) = self.blocks.last_mut() else { return };
            let take = (SCORE_BLOCK - b.len()).min(s.len());
            b.extend_from_slice(&s[..take]);
            s = &s[take..];
            self.len += take;
        }
    }
    fn len(&self) -> usize {
        self.len
    }
    fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        self.blocks.iter().flatten().copied()
    }
}

/// Ids of the scored rows in a binary temporary file (u32 length + bytes each), read back
/// once for the budgeted output.
pub(super) struct IdSpool {
    path: PathBuf,
    w: BufWriter<std::fs::File>,
}

impl IdSpool {
    fn create(path: PathBuf) -> anyhow::Result<IdSpool> {
        let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(IdSpool { path, w: BufWriter::with_capacity(1 << 18, f) })
    }

    fn push(&mut self, id: &str) -> anyhow::Result<()> {
        let len = u32::try_from(id.len()).context("an id longer than 4 GB")?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(id.as_bytes())?;
        Ok(())
    }

    /// Close for writing; returns a reader of the ids in order.
    fn into_reader(self) -> anyhow::Result<(PathBuf, BufReader<std::fs::File>)> {
        let f = self.w.into_inner().map_err(|e| e.into_error())?;
        drop(f);
        let f = std::fs::File::open(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
        Ok((self.path, BufReader::with_capacity(1 << 18, f)))
    }
}

fn next_id(r: &mut impl Read, buf: &mut Vec<u8>) -> anyhow::Result<String> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).context("temporary id file is short")?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf).context("temporary id file is short")?;
    String::from_utf8(std::mem::take(buf)).context("temporary id file is corrupt")
}

const OUT_COLS: [(&str, ColType); 3] = [("id", ColType::Str), ("score", ColType::F64), ("percentile", ColType::F64)];
const BUDGET_COLS: [(&str, ColType); 4] = [("id", ColType::Str), ("score", ColType::F64), ("percentile", ColType::F64), ("selected", ColType::Bool)];

impl Sink {
    pub(super) fn create(out: &Path, budget: Option<f64>) -> anyhow::Result<Sink> {
        Ok(match budget {
            Some(rate) => Sink::Budget { ids: IdSpool::create(super::with_ext(out, ".ids.tmp"))?, scores: Scores::default(), rate },
            None => Sink::Table(TableWriter::create(out, &OUT_COLS)?),
        })
    }

    /// Write scored rows (`quantiles` empty: percentiles are NaN).
    pub(super) fn push(&mut self, ids: &[String], scores: &[f32], quantiles: &[f32]) -> anyhow::Result<()> {
        match self {
            Sink::Table(w) => {
                let (sc, pct) = score_columns(scores, quantiles);
                w.write_columns(&[ColumnRef::Str(ids), ColumnRef::F64(&sc), ColumnRef::F64(&pct)])?;
            }
            Sink::Budget { ids: spool, scores: kept, .. } => {
                for id in ids {
                    spool.push(id)?;
                }
                kept.extend(scores);
            }
        }
        Ok(())
    }

    /// After an error: remove what this sink wrote (the output table or the temporary ids).
    pub(super) fn discard(self, out: &Path) {
        let _ = std::fs::remove_file(match &self {
            Sink::Table(_) => out,
            Sink::Budget { ids, .. } => &ids.path,
        });
    }

    /// Close the output: the table, less the rows at accepted-row ordinals `dups` (ascending;
    /// late duplicate ids), or with a budget the whole output written from the spooled ids
    /// with the selection. The temporary id file is removed either way.
    pub(super) fn finish(self, out: &Path, pool: &rayon::ThreadPool, quantiles: &[f32], dups: &[u64]) -> anyhow::Result<()> {
        match self {
            Sink::Table(w) => {
                w.finish()?;
                if !dups.is_empty() {
                    cr_data::remove_table_rows(out, dups).with_context(|| format!("removing duplicate ids from {}", out.display()))?;
                }
            }
            Sink::Budget { ids, scores, rate } => {
                let (tmp, ids) = ids.into_reader()?;
                let written = pool.install(|| write_with_selection(ids, out, &scores, quantiles, rate, dups));
                let _ = std::fs::remove_file(&tmp);
                written?;
            }
        }
        Ok(())
    }
}

/// Scores as f64 and their percentiles (NaN without reference quantiles).
fn score_columns(scores: &[f32], quantiles: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let sc = scores.iter().map(|&s| f64::from(s)).collect();
    let pct = scores.iter().map(|&s| percentile(quantiles, s).unwrap_or(f64::NAN)).collect();
    (sc, pct)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.rejects.is_some() && matches!(a.on_error, OnErrorArg::Fail) {
        bail!("--rejects needs --on-error skip");
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads).build().context("starting scoring threads")?;
    let t0 = Instant::now();
    let proto = cr_onnx::load_model(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let opts = LoadOptions { engine: a.engine.into(), threads: a.threads };
    super::ensure_parent(&a.out)?;
    let summary = if cr_infer::is_declaration_model(&proto) {
        let ropts = ReadOptions {
            batch_rows: a.batch_rows.max(1),
            delimiter: delimiter_byte(a.delimiter)?,
            on_error: a.on_error.into(),
            require_label: false,
            duplicates: DuplicateCheck::deferred(),
        };
        let (model, start) = load_and_start(&a, &pool, &proto, &opts, &ropts)?;
        drop(proto);
        let result = score_declarations(&a, &pool, &model, start);
        if result.is_err() {
            // no partial output
            let _ = std::fs::remove_file(&a.out);
        }
        result?
    } else {
        let (rows, rejected, engine) = pool.install(|| super::foreign::score_foreign(&proto, &opts, &a, &pool))?;
        Summary { rows, rejected, engine }
    };
    if !a.quiet {
        let secs = t0.elapsed().as_secs_f64();
        let rows = summary.rows;
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
        if let Some(rate) = a.budget {
            let k = budget_k(rate, rows as usize);
            eprintln!("selected the top {k} declarations ({:.2} % budget)", rate * 100.0);
        }
    }
    Ok(())
}

struct Summary {
    rows: u64,
    rejected: u64,
    engine: Engine,
}

/// Chunks read while the model compiles (at most; memory holds them until scored).
const READ_AHEAD: usize = 3;

/// An open reader and the chunks already read from it, in order.
struct Started {
    reader: cr_data::Reader,
    ahead: std::collections::VecDeque<Result<ReadChunk, cr_data::DataError>>,
}

/// Load the model and open the data. When the schema can be read from the pipeline metadata
/// on its own (a few microseconds: it comes first), reading starts on the pool while the
/// rest of the pipeline (its tables) and the core compile, up to [`READ_AHEAD`] chunks;
/// the chunks are the ones a plain read gives, so nothing in the output changes. A model
/// error wins over a data error, as in the sequential order.
fn load_and_start(
    a: &Args,
    pool: &rayon::ThreadPool,
    proto: &cr_onnx::proto::ModelProto,
    opts: &LoadOptions,
    ropts: &ReadOptions,
) -> anyhow::Result<(DeclarationModel, Started)> {
    let load = || DeclarationModel::from_proto(proto, opts).with_context(|| format!("loading {}", a.model.display()));
    let open = |schema: &cr_data::Schema| -> anyhow::Result<cr_data::Reader> {
        cr_data::open(&a.data, schema, ropts).with_context(|| format!("reading {}", a.data.display()))
    };
    let Some(schema) = peek_schema(proto) else {
        let model = load()?;
        let reader = open(model.schema())?;
        return Ok((model, Started { reader, ahead: Default::default() }));
    };
    let ready = std::sync::atomic::AtomicBool::new(false);
    let (model, started) = pool.install(|| {
        rayon::join(
            || {
                let m = load();
                ready.store(true, std::sync::atomic::Ordering::Release);
                m
            },
            || -> anyhow::Result<Started> {
                let mut reader = open(&schema)?;
                let mut ahead = std::collections::VecDeque::new();
                while ahead.len() < READ_AHEAD && !ready.load(std::sync::atomic::Ordering::Acquire) {
                    let Some(chunk) = reader.next() else { break };
                    let failed = chunk.is_err();
                    ahead.push_back(chunk);
                    if failed {
                        break;
                    }
                }
                Ok(Started { reader, ahead })
            },
        )
    });
    let model = model?;
    if model.schema() != &schema {
        bail!("{}: the pipeline's schema reads differently on its own (internal error)", a.model.display());
    }
    Ok((model, started?))
}

/// The `schema` member of our pipeline metadata (JSON), read without the rest; `None` when
/// absent or not plausible (then the model is loaded first, as usual, and reports it).
fn peek_schema(proto: &cr_onnx::proto::ModelProto) -> Option<cr_data::Schema> {
    use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
    struct Peek<'a>(&'a mut Option<cr_data::Schema>);
    impl<'de> Visitor<'de> for Peek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
            while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                if k == "schema" {
                    *self.0 = Some(m.next_value()?);
                    // stop here: the tables after it are not needed
                    return Err(M::Error::custom("schema found"));
                }
                m.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Peek<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    let json = proto.metadata_props.iter().rev().find(|p| p.key() == cr_infer::PIPELINE_METADATA_KEY)?.value();
    let mut found = None;
    let _ = Peek(&mut found).deserialize(&mut serde_json::Deserializer::from_str(json));
    found.filter(|s: &cr_data::Schema| (2..=12).contains(&s.hs_width) && s.hs_width.is_multiple_of(2) && s.date_min <= s.date_max)
}

/// Our models: read, validate, score and write in a pipeline on `pool`. While chunk N is
/// scored and written, chunk N+1 is read and validated (`rayon::join`), so memory holds
/// about three chunks. Duplicate ids are checked with bounded memory (sorted runs on disk)
/// and settled after the last chunk: with --on-error fail a duplicate is an error; with skip
/// the duplicate rows leave the output and go to --rejects (after the other rejects).
fn score_declarations(a: &Args, pool: &rayon::ThreadPool, model: &DeclarationModel, start: Started) -> anyhow::Result<Summary> {
    let quantiles = card_quantiles(model.metadata());
    let Started { mut reader, mut ahead } = start;
    let mut rej = match &a.rejects {
        Some(p) => Some(RejectWriter::create(p)?),
        None => None,
    };
    let mut sink = Sink::create(&a.out, a.budget)?;
    let bar = crate::progress::spinner("score", a.quiet);
    let data = || format!("reading {}", a.data.display());
    let piped = pool.install(|| -> anyhow::Result<Vec<cr_data::LateDuplicate>> {
        // Duplicates are settled as soon as the reader is exhausted, while the last chunk is
        // scored.
        let mut late = None;
        let read_next = |reader: &mut cr_data::Reader, late: &mut Option<Result<_, cr_data::DataError>>| {
            let next = reader.next();
            if next.is_none() && late.is_none() {
                *late = Some(reader.finish_duplicates());
            }
            next
        };
        let mut next = match ahead.pop_front() {
            Some(c) => Some(c),
            None => read_next(&mut reader, &mut late),
        };
        while let Some(chunk) = next {
            let chunk = chunk.with_context(data)?;
            // read-ahead chunks first; the reader's thread meanwhile helps scoring
            let queued = ahead.pop_front();
            let has_queued = queued.is_some();
            let (following, done) = rayon::join(
                || if has_queued { queued } else { read_next(&mut reader, &mut late) },
                || -> anyhow::Result<()> {
                    if let Some(r) = &mut rej {
                        r.write(&chunk.rejects)?;
                    }
                    let scores = model.score_batch(&chunk.batch)?;
                    sink.push(&chunk.batch.ids, &scores, &quantiles)?;
                    Ok(())
                },
            );
            done?;
            bar.inc(chunk.batch.len() as u64);
            reader.recycle(chunk.batch);
            next = following;
        }
        match late {
            Some(l) => l.with_context(data),
            None => reader.finish_duplicates().with_context(data),
        }
    });
    bar.finish_and_clear();
    let late = match piped {
        Ok(l) => l,
        Err(e) => {
            sink.discard(&a.out);
            return Err(e);
        }
    };
    // Rows accepted in their chunk that turned out to be duplicates: out of the output.
    let dups: Vec<u64> = late.iter().filter_map(|d| d.ordinal).collect();
    if let Some(r) = &mut rej {
        let late_rejects: Vec<cr_data::Reject> = late.iter().filter(|d| d.ordinal.is_some()).map(|d| d.reject.clone()).collect();
        r.write(&late_rejects)?;
    }
    if let Some(r) = rej {
        r.finish()?;
    }
    sink.finish(&a.out, pool, &quantiles, &dups)?;
    Ok(Summary { rows: reader.accepted(), rejected: reader.rejected(), engine: model.engine_used() })
}

/// k = ceil(rate × n), with products within 1e-9 of an integer taken as that integer
/// (the rule of `cr_eval::Budget::k`).
pub fn budget_k(rate: f64, n: usize) -> usize {
    cr_eval::Budget::Rate(rate).k(n)
}

/// Order-preserving key of an f32 under `total_cmp`.
fn order_key(s: f32) -> u32 {
    let b = s.to_bits();
    if b & 0x8000_0000 != 0 { !b } else { b | 0x8000_0000 }
}

/// The rows not in `skip` (ascending ordinals): (ordinal, score).
fn live<'a>(scores: &'a Scores, skip: &'a [u64]) -> impl Iterator<Item = (usize, f32)> + 'a {
    let mut s = skip.iter().peekable();
    scores.iter().enumerate().filter(move |(i, _)| {
        while s.peek().is_some_and(|&&d| d < *i as u64) {
            s.next();
        }
        s.peek() != Some(&&(*i as u64))
    })
}

/// The selection rule of a budget: the top `k` scores, ties by file order. Returns the
/// order key of the k-th highest score and how many rows at exactly that key are selected
/// (the first ones in file order). Two histogram passes over 16-bit halves of the keys; no
/// copy of the scores.
fn threshold(scores: &Scores, skip: &[u64], k: usize) -> Option<(u32, usize)> {
    if k == 0 {
        return None;
    }
    let mut hist = vec![0usize; 1 << 16];
    for (_, s) in live(scores, skip) {
        hist[(order_key(s) >> 16) as usize] += 1;
    }
    // from the top: the bucket holding the k-th highest key
    let (mut above, mut hi) = (0usize, None);
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= k {
            hi = Some(b as u32);
            break;
        }
        above += hist[b];
    }
    let hi = hi?; // fewer than k rows: every row is selected (see below)
    hist.iter_mut().for_each(|h| *h = 0);
    for (_, s) in live(scores, skip) {
        let key = order_key(s);
        if key >> 16 == hi {
            hist[(key & 0xFFFF) as usize] += 1;
        }
    }
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= k {
            return Some(((hi << 16) | b as u32, k - above));
        }
        above += hist[b];
    }
    None
}

/// Second pass of a budgeted run: rows in file order (ids from `ids`, scores in memory,
/// duplicates in `skip` left out), with `selected` true for the top k scores (ties by file
/// order).
fn write_with_selection(mut ids: impl Read, out: &Path, scores: &Scores, quantiles: &[f32], rate: f64, skip: &[u64]) -> anyhow::Result<()> {
    let n = scores.len() - skip.len();
    let k = budget_k(rate, n);
    let cut = if k >= n { None } else { threshold(scores, skip, k) };
    let mut ties_left = cut.map_or(0, |(_, t)| t);
    let mut w = TableWriter::create(out, &BUDGET_COLS)?;
    let (mut id_block, mut sc_block, mut sel) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut s = skip.iter().peekable();
    for (i, score) in scores.iter().enumerate() {
        let id = next_id(&mut ids, &mut buf)?;
        if s.peek() == Some(&&(i as u64)) {
            s.next();
            continue;
        }
        let selected = match cut {
            None => k >= n,
            Some((t, _)) => {
                let key = order_key(score);
                key > t || (key == t && ties_left > 0 && {
                    ties_left -= 1;
                    true
                })
            }
        };
        id_block.push(id);
        sc_block.push(score);
        sel.push(selected);
        if id_block.len() == 65_536 {
            let (sc, pct) = score_columns(&sc_block, quantiles);
            w.write_columns(&[ColumnRef::Str(&id_block), ColumnRef::F64(&sc), ColumnRef::F64(&pct), ColumnRef::Bool(&sel)])?;
            id_block.clear();
            sc_block.clear();
            sel.clear();
        }
    }
    if !id_block.is_empty() {
        let (sc, pct) = score_columns(&sc_block, quantiles);
        w.write_columns(&[ColumnRef::Str(&id_block), ColumnRef::F64(&sc), ColumnRef::F64(&pct), ColumnRef::Bool(&sel)])?;
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
    pub fn on_error(&self) -> (OnErrorArg, Option<&Path>) { (self.on_error, self.rejects.as_deref()) }
    pub fn budget(&self) -> Option<f64> {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule by its definition: sort by score (descending, `total_cmp`), ties by file
    /// order, take k.
    fn blocks(scores: &[f32]) -> Scores {
        let mut s = Scores::default();
        // uneven pieces, as chunks arrive
        for piece in scores.chunks(37) {
            s.extend(piece);
        }
        s
    }

    fn by_sorting(scores: &[f32], skip: &[u64], k: usize) -> Vec<bool> {
        let mut order: Vec<usize> = (0..scores.len()).filter(|i| !skip.contains(&(*i as u64))).collect();
        order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
        let mut sel = vec![false; scores.len()];
        for &i in order.iter().take(k) {
            sel[i] = true;
        }
        (0..scores.len()).filter(|i| !skip.contains(&(*i as u64))).map(|i| sel[i]).collect()
    }

    fn by_threshold(scores: &[f32], skip: &[u64], k: usize) -> Vec<bool> {
        let scores = &blocks(scores);
        assert_eq!(scores.iter().collect::<Vec<_>>().len(), scores.len());
        let n = scores.len() - skip.len();
        let cut = if k >= n { None } else { threshold(scores, skip, k) };
        let mut ties = cut.map_or(0, |c| c.1);
        live(scores, skip)
            .map(|(_, s)| match cut {
                None => k >= n,
                Some((t, _)) => {
                    let key = order_key(s);
                    key > t || (key == t && ties > 0 && {
                        ties -= 1;
                        true
                    })
                }
            })
            .collect()
    }

    #[test]
    fn threshold_selection_equals_sorting() {
        let mut x: u64 = 42;
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        for n in [0usize, 1, 2, 7, 100, 1000] {
            // few distinct values (many ties), tiny differences in the low bits, and -0.0 / 0.0
            let scores: Vec<f32> = (0..n)
                .map(|_| match next() % 4 {
                    0 => (next() % 5) as f32 / 4.0,
                    1 => f32::from_bits(0x3F00_0000 + (next() % 3) as u32),
                    2 => if next() % 2 == 0 { 0.0 } else { -0.0 },
                    _ => (next() % 1000) as f32 / 1000.0,
                })
                .collect();
            let skip: Vec<u64> = (0..n as u64).filter(|_| next() % 10 == 0).collect();
            for k in [0, 1, 2, n / 20, n / 2, n.saturating_sub(skip.len() + 1), n, n + 5] {
                assert_eq!(by_threshold(&scores, &skip, k), by_sorting(&scores, &skip, k), "n {n} k {k}");
            }
        }
    }

    #[test]
    fn score_blocks_keep_order_across_blocks() {
        let v: Vec<f32> = (0..2 * SCORE_BLOCK + 12_345).map(|i| i as f32).collect();
        let mut s = Scores::default();
        for piece in v.chunks(300_001) {
            s.extend(piece);
        }
        assert_eq!(s.len(), v.len());
        assert_eq!(s.blocks.len(), 3);
        assert!(s.iter().eq(v.iter().copied()));
    }

    #[test]
    fn id_spool_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let mut s = IdSpool::create(d.path().join("ids")).unwrap();
        let ids = ["a", "", "x,\"y\"\nz", "ü"];
        for id in ids {
            s.push(id).unwrap();
        }
        let (_, mut r) = s.into_reader().unwrap();
        let mut buf = Vec::new();
        for id in ids {
            assert_eq!(next_id(&mut r, &mut buf).unwrap(), id);
        }
        assert!(next_id(&mut r, &mut buf).is_err());
    }

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
        cli(&["generate", "--rows", "3000", "--seed", "5", "--months", "6", "--out", &p("d.csv"), "--quiet"]).unwrap();
        cli(&["train", "--data", &p("d.csv"), "--out", &p("m"), "--trees", "5", "--leaves", "7", "--early-stopping", "0", "--quiet"]).unwrap();
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

        let err = cli(&["score", "--model", &model, "--data", &p("dup.csv"), "--out", &p("fail.csv"), "--batch-rows", "500", "--quiet"]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("line 1501") && msg.contains("duplicate id (first seen on line 5)"), "{msg}");
        assert!(!d.path().join("fail.csv").exists(), "no output is left after a failure");

        for (out, extra) in [("s.csv", &[][..]), ("b.parquet", &["--budget", "5%"][..]), ("b.csv", &["--budget", "0.3"][..])] {
            let mut args = vec!["score", "--model", &model, "--data", &dup_csv, "--batch-rows", "500", "--quiet", "--on-error", "skip"];
            let (o, r, reference) = (p(out), p(&format!("{out}.rejects.csv")), p(&format!("ref.{out}")));
            args.extend_from_slice(&["--out", &o, "--rejects", &r]);
            args.extend_from_slice(extra);
            cli(&args).unwrap();
            let mut args = vec!["score", "--model", &model, "--data", &d_csv, "--out", &reference, "--quiet"];
            args.extend_from_slice(extra);
            cli(&args).unwrap();
            assert!(std::fs::read(&o).unwrap() == std::fs::read(&reference).unwrap(), "{out}: differs from the run without duplicates");
            // the same rejects as the immediate check
            let schema = crate::cmd::load_schema(None).unwrap();
            let opts = cr_data::ReadOptions { on_error: cr_data::OnError::Skip, ..cr_data::ReadOptions::default() };
            let rep = cr_data::validate_file(Path::new(&p("dup.csv")), &schema, &opts, Some(Path::new(&p("v.csv")))).unwrap();
            assert_eq!(rep.rejected, 3);
            assert_eq!(std::fs::read_to_string(&r).unwrap(), std::fs::read_to_string(p("v.csv")).unwrap());
        }
    }
}
