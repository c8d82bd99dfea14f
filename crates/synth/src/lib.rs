//! Synthetic import declarations for demos, tests and benchmarks.
//!
//! Owns: a seeded generator of realistic-looking declarations with planted, documented fraud
//! mechanisms and a legacy inspection policy (labels only where a declaration was inspected).
//! Must not: read or write files (callers use `cr_data` writers), know about features or
//! models. Output is a [`cr_data::Batch`] laid out by a [`cr_data::Schema`]; the matching
//! schema ships as [`SCHEMA_TOML`] (`data/schemas/synthetic.toml`).
//!
//! ```
//! let schema = cr_synth::schema().expect("bundled schema is valid");
//! let cfg = cr_synth::SynthConfig { rows: 2_000, seed: 7, ..Default::default() };
//! let batch = cr_synth::generate(&cfg, &schema).expect("valid config");
//! assert_eq!(batch.len(), 2_000);
//! ```
//!
//! # The world
//! Built once per `(seed, rows)` from fixed tables: 25 HS chapters, each with 3–6 headings of
//! 2–5 subheadings (≈ 400 HS6 lines), each line with an MFN duty rate, a preferential rate
//! (0 or half the MFN) for free-trade partners, and a log-normal unit-value norm (currency per
//! kg; log-sd 0.45–0.8). 32 origin countries (15 FTA partners), 6 transit hubs, 12 offices
//! tied to 5 transport modes, 6 express couriers (only on small air and postal consignments,
//! so the column is mostly empty), tax types `STD`/`EXC`/`TQ`/`AD`.
//! Importers: `4000 · (rows/100k)^0.7` (≥ 30), Zipf-like volume (weight `1/(rank+20)`),
//! 62 % trading from before the period, the rest appearing at a uniform day inside it; each
//! trades 1–3 chapters, 1–4 sellers (sellers have a country, which is the true origin), one
//! usual declarant (10 % file themselves: declarant empty) used on 85 % of their rows.
//! Declarants (customs brokers): `150 · (rows/100k)^0.5` (≥ 12), shared, Zipf popularity.
//! Departure country = origin on 95 % of rows, else a transit hub.
//! Rows per day follow a multinomial with a weekday pattern (weekends 35 % / 15 %) and 25 %
//! growth over the period; the batch is sorted by date, ids `D000000001`… in that order.
//!
//! # Fraud (planted mechanisms)
//! Each row has a latent risk logit: importer effect (N(0, 0.5); 4 % "bad actors" +2.3, fewer among the top 2 % traders),
//! declarant effect (≈ 3 % risky declarants +1.4, never among the 5 largest, used by 60 % of
//! bad actors: the risky broker network; their rows run at 25–37 % fraud vs a 2.1 % median, at 1M rows), new-importer effect (+1.3 decaying to 0 over the first 120 days of activity: ≈ 4.2 % fraud
//! on such rows vs 2.6 % for established importers, at 1M rows),
//! duty incentive (+0.05 per duty point above 8 %), origin offset (±0.5), courier offset,
//! N(0, 0.5) noise. At most one mechanism applies, tried in this order (rates are over all
//! rows, measured at 200k rows, seed 42):
//! - **Origin fraud** (≈ 0.46 %): goods from CN/BD/PK/IN on a line with a preferential rate,
//!   declared as originating in an FTA partner (VN/TH before the drift day, mostly MY after),
//!   preferential claim `Y`; the departure country stays the true origin in 70 % of cases
//!   (departure ≠ origin), else equals the false origin.
//! - **Misclassification** (≈ 0.41 %): declared HS6 is a line of the same chapter whose MFN duty
//!   is ≥ 2.5 points lower (only without a preferential claim); value, mass and quantity stay
//!   those of the true goods, so the unit value is off the declared line's norm.
//! - **Undervaluation** (≈ 1.44 %): declared value = true value × e^-U(0.3, 1.4) (a factor 0.25
//!   to 0.74), i.e. well below norm × mass but overlapping the benign spread.
//! - **Undeclared goods** (≈ 0.24 %): extra goods not on the declaration, invisible in the
//!   declared fields (irreducible noise driven only by the latent risk).
//!
//! Overall ≈ 2.6 % at seed 42 (2.6–4.4 % over seeds 1–8 at 100k rows, ≈ 2.8 % at 1M rows, seed 42;
//! the `rates_and_unbiased_random_sample` test asserts [2 %, 5 %]). With the drift, chapter-85
//! undervaluation goes from ≈ 1.1 % to ≈ 5.1 % of that chapter's rows.
//! Difficulty: a LightGBM on raw columns + unit-value deviation, trained on inspected rows of
//! the first 2/3 of a 1M-row batch, reaches ROC-AUC ≈ 0.82–0.84 on later inspected rows; the
//! best single feature reaches ≈ 0.68.
//! Revenue recovered (duty + 10 % VAT on value + duty) is the tax evaded: value gap × tax
//! share (undervaluation), value × tax-share difference (misclassification, origin fraud),
//! hidden value × tax share (undeclared goods); 0 for clean inspected rows, empty otherwise.
//!
//! **Drift** (`drift = true`, from 2/3 of the period on): undervaluation in chapter 85
//! (electrical) gets +1.8 logits (a new pattern), and origin fraud shifts its false origin
//! from VN/TH to MY.
//!
//! # Inspection (the legacy policy that produced the labels)
//! A rule flags a row when any clause holds; the clause's own inspection probability `q` is
//! used (the largest if several): declared duty ≥ 20 % and origin on the rule's list
//! (CN, VN, TR, BD, PK) `q = 0.75`; importer active < 21 days `q = 0.85`; preferential claim with
//! departure ≠ origin `q = 0.8`; declared value ≥ 5 000 000 `q = 0.7`. About 7–8 % of rows are
//! flagged and 7.5–8.5 % inspected in all. Independently a random
//! sample takes `random_rate` (default 2 %) of all rows (`selection = random`, these are the
//! unbiased rows); otherwise a flagged row is inspected with probability `q`
//! (`selection = rule`). `propensity` = P(inspected) = `r + (1 − r)·q` (0 < q) or `r`, recorded
//! on every row. Labels (`fraud`) and revenue exist only on inspected rows. Inspection finds
//! the fraud when there is one (no missed detections).
//!
//! # Determinism and speed
//! All randomness is `ChaCha8Rng` from the master seed: stream 0 builds the world, stream 1
//! draws the per-day counts, stream `2 + c` generates chunk `c` of 8192 rows. Chunks run in
//! parallel (rayon) and are concatenated in order, so the output does not depend on the
//! thread count. [`generate_stream`] hands the rows on in batches of 16 chunks, so a file of
//! any size is written in flat memory (`customs-risk generate` does). Speed: 1M rows in
//! ≈ 1 s on 2 shared cores (see `benches/generate.rs`).

mod assemble;
mod catalog;
mod rows;
mod world;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;

use cr_data::schema::days_from_ymd;
use cr_data::{Batch, Schema};

pub use assemble::PREFERENTIAL_CLAIM_COLUMN;

/// Text of `data/schemas/synthetic.toml`, the schema the generator's output matches.
pub const SCHEMA_TOML: &str = include_str!("../../../data/schemas/synthetic.toml");

/// Rows per generation chunk (fixed, so results do not depend on the thread count).
const CHUNK_ROWS: usize = 8192;
const _: () = assert!(STREAM_BATCH_ROWS.is_multiple_of(CHUNK_ROWS));

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    #[error("invalid synth config: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("schema does not fit the generator: {reason}")]
    Schema { reason: String },
    #[error("bundled schema is invalid: {0}")]
    BundledSchema(#[from] cr_data::DataError),
}

/// Generator settings. Validate with [`SynthConfig::check`] (done by [`generate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of declarations (exact). Default 100 000; at most 100 000 000.
    pub rows: usize,
    /// Master seed. Default 42.
    pub seed: u64,
    /// First day (year, month, day). Default 2023-01-01.
    pub start_date: (i32, u32, u32),
    /// Length of the period in calendar months (1..=240). Default 18.
    pub months: u32,
    /// Share of all declarations inspected at random, in (0, 1). Default 0.02.
    pub random_rate: f64,
    /// Plant the drift patterns in the last third of the period. Default true.
    pub drift: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            rows: 100_000,
            seed: 42,
            start_date: (2023, 1, 1),
            months: 18,
            random_rate: 0.02,
            drift: true,
        }
    }
}

impl SynthConfig {
    /// The one place config validation happens. Returns the first and last day (days since
    /// 1970-01-01, inclusive).
    pub fn check(&self) -> Result<(i32, i32), SynthError> {
        let bad = |field, reason: String| SynthError::Config { field, reason };
        if self.rows > 100_000_000 {
            return Err(bad(
                "rows",
                format!("{} is more than 100 000 000", self.rows),
            ));
        }
        if self.months == 0 || self.months > 240 {
            return Err(bad("months", format!("{} is not in 1..=240", self.months)));
        }
        if !(self.random_rate > 0.0 && self.random_rate < 1.0) {
            return Err(bad(
                "random_rate",
                format!("{} is not in (0, 1)", self.random_rate),
            ));
        }
        let (y, m, d) = self.start_date;
        let start = chrono::NaiveDate::from_ymd_opt(y, m, d)
            .ok_or_else(|| bad("start_date", format!("{y:04}-{m:02}-{d:02} is not a date")))?;
        let end = start
            .checked_add_months(chrono::Months::new(self.months))
            .and_then(|e| e.pred_opt())
            .ok_or_else(|| bad("months", "period end is out of range".into()))?;
        use chrono::Datelike;
        let first =
            days_from_ymd(y, m, d).ok_or_else(|| bad("start_date", "out of range".into()))?;
        let last = days_from_ymd(end.year(), end.month(), end.day())
            .ok_or_else(|| bad("months", "period end is out of range".into()))?;
        Ok((first, last))
    }
}

/// The planted fraud mechanism of a row (ground truth, see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    Undervaluation,
    Misclassification,
    OriginFraud,
    UndeclaredGoods,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Undervaluation => "undervaluation",
            Mechanism::Misclassification => "misclassification",
            Mechanism::OriginFraud => "origin_fraud",
            Mechanism::UndeclaredGoods => "undeclared_goods",
        }
    }
}

/// Ground truth for every row (inspected or not), in batch row order. For evaluation on the
/// whole population and for tests; never part of a training file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    pub mechanism: Vec<Option<Mechanism>>,
    /// Tax evaded (0 for clean rows).
    pub evaded: Vec<f32>,
    /// Whether the legacy rule flagged the row (whether or not it was then inspected).
    pub rule_hit: Vec<bool>,
}

impl Truth {
    pub fn is_fraud(&self, row: usize) -> bool {
        self.mechanism.get(row).is_some_and(|m| m.is_some())
    }
}

/// The bundled schema, parsed and validated.
pub fn schema() -> Result<Schema, SynthError> {
    Ok(Schema::from_toml(SCHEMA_TOML)?)
}

/// Generate `cfg.rows` declarations laid out for `schema`, sorted by date.
pub fn generate(cfg: &SynthConfig, schema: &Schema) -> Result<Batch, SynthError> {
    generate_with_truth(cfg, schema).map(|(b, _)| b)
}

/// [`generate`], plus the ground truth of every row.
pub fn generate_with_truth(
    cfg: &SynthConfig,
    schema: &Schema,
) -> Result<(Batch, Truth), SynthError> {
    let mut all: Option<(Batch, Truth)> = None;
    generate_stream(cfg, schema, |batch, truth| {
        match &mut all {
            None => all = Some((batch, truth)),
            Some((b, t)) => {
                b.extend(batch);
                t.mechanism.extend(truth.mechanism);
                t.evaded.extend(truth.evaded);
                t.rule_hit.extend(truth.rule_hit);
            }
        }
        Ok::<(), SynthError>(())
    })?;
    // rows = 0 is a valid request: an empty batch with the schema's columns
    Ok(all.unwrap_or_else(|| {
        let source = format!("synthetic(seed={}, rows={})", cfg.seed, cfg.rows);
        let truth = Truth {
            mechanism: Vec::new(),
            evaded: Vec::new(),
            rule_hit: Vec::new(),
        };
        (Batch::empty(schema, source), truth)
    }))
}

/// Rows per batch that [`generate_stream`] hands on (16 generation chunks; the last batch
/// is shorter).
pub const STREAM_BATCH_ROWS: usize = 16 * CHUNK_ROWS;

/// The rows of [`generate_with_truth`], handed to `sink` in order in batches of
/// [`STREAM_BATCH_ROWS`] with the truth of their rows: memory holds the world, one day
/// index per row (4 bytes) and one batch, not the whole file. Ids and `lines` continue
/// across batches, so the concatenated batches are exactly [`generate`]'s batch. The first
/// error of `sink` stops the generation and is returned.
pub fn generate_stream<E: From<SynthError>>(
    cfg: &SynthConfig,
    schema: &Schema,
    mut sink: impl FnMut(Batch, Truth) -> Result<(), E>,
) -> Result<(), E> {
    let (first, last) = cfg.check()?;
    if first < schema.date_min || last > schema.date_max {
        return Err(SynthError::Schema {
            reason: format!(
                "period {}..{} is outside the schema's date bounds {}..{}",
                cr_data::schema::ymd_from_days(first),
                cr_data::schema::ymd_from_days(last),
                cr_data::schema::ymd_from_days(schema.date_min),
                cr_data::schema::ymd_from_days(schema.date_max)
            ),
        }
        .into());
    }
    let layout = assemble::layout(schema)?;
    let n_days = last - first + 1;

    let mut world_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    world_rng.set_stream(0);
    let world = world::build(
        &mut world_rng,
        &world::WorldParams {
            rows: cfg.rows,
            n_days,
            drift: cfg.drift,
            random_rate: cfg.random_rate,
        },
    );

    let mut day_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    day_rng.set_stream(1);
    let days = row_days(&mut day_rng, cfg.rows, first, n_days)?;

    let source = format!("synthetic(seed={}, rows={})", cfg.seed, cfg.rows);
    for (g, group) in days.chunks(STREAM_BATCH_ROWS).enumerate() {
        // chunk c of the whole file keeps its own stream 2 + c, whatever the batch size
        let first_chunk = g * (STREAM_BATCH_ROWS / CHUNK_ROWS);
        let rows: Vec<rows::Row> = group
            .par_chunks(CHUNK_ROWS)
            .enumerate()
            .map(|(c, chunk)| {
                let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
                rng.set_stream(2 + (first_chunk + c) as u64);
                rows::gen_chunk(&world, chunk, &mut rng)
            })
            .collect::<Vec<_>>()
            .concat();
        let first_row = g * STREAM_BATCH_ROWS;
        let batch = assemble::assemble(&world, &rows, &layout, first, first_row, source.clone());
        let truth = Truth {
            mechanism: rows.iter().map(|r| r.mechanism).collect(),
            evaded: rows.iter().map(|r| r.evaded).collect(),
            rule_hit: rows.iter().map(|r| r.rule_hit).collect(),
        };
        sink(batch, truth)?;
    }
    Ok(())
}

/// Day index (from the first day) of every row, sorted: a multinomial over days with a weekday
/// pattern and linear growth, drawn as sequential binomials.
fn row_days(
    rng: &mut ChaCha8Rng,
    rows: usize,
    first: i32,
    n_days: i32,
) -> Result<Vec<i32>, SynthError> {
    // 1970-01-01 was a Thursday: weekday index 0 = Monday.
    let weight = |d: i32| -> f64 {
        let wd = (first + d + 3).rem_euclid(7);
        let w = match wd {
            5 => 0.35,
            6 => 0.15,
            _ => 1.0,
        };
        w * (1.0 + 0.25 * f64::from(d) / f64::from(n_days.max(1)))
    };
    let mut remaining_w: f64 = (0..n_days).map(weight).sum();
    let mut remaining = rows as u64;
    let mut out = Vec::with_capacity(rows);
    for d in 0..n_days {
        let w = weight(d);
        let k = if d == n_days - 1 || remaining == 0 {
            remaining
        } else {
            let p = (w / remaining_w).clamp(0.0, 1.0);
            Binomial::new(remaining, p)
                .map_err(|e| SynthError::Config {
                    field: "rows",
                    reason: format!("day sampling: {e}"),
                })?
                .sample(rng)
        };
        remaining_w -= w;
        remaining -= k;
        out.extend(std::iter::repeat_n(d, k as usize));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
