//! Applying a fitted pipeline: [`CompiledPipeline`], the lookup form of a [`FittedPipeline`].
//!
//! Semantics are exactly those of the string definitions in [`crate::FeatureDef`]: a row's
//! risk value is its key string's table entry. The lookups go through per-column
//! vocabularies ([`crate::vocab`]): each categorical cell and HS prefix is turned into an id
//! once per block of rows, one-part keys read their slot from an array, two-part keys look up
//! the pair of ids in an integer table, longer keys build their string in a reusable buffer.
//! Tables are flat open-addressing tables ([`crate::lookup`]), used only for lookups.
//!
//! Rows are filled [`SUB_ROWS`] at a time (the scratch and that part of the output stay in
//! cache): every vocabulary's ids, then every key's slot, then each output column in one loop
//! (no per-row dispatch over the feature list).

use cr_data::{Batch, Schema};
use rayon::prelude::*;

use crate::calc::{
    day_of_week, hs_prefix, month, parse_canonical_decimal, push_key, rel_unit_value, unit_value,
    FxHashMap, POW10,
};
use crate::config::KeyPart;
use crate::error::FeatureError;
use crate::lookup::{hash_bytes, prefetch_ptr, IntKey, IntTable, StrTable};
use crate::pipeline::{FeatureDef, FittedPipeline};
use crate::vocab::{compile_keys, KeyKind, PairTable, Part, Vocabs, DENSE_DIGITS, NONE};
use crate::FeatureMatrix;

/// Rows per parallel work item (output is written in place, so results never depend on it).
const CHUNK_ROWS: usize = 2048;

enum Op {
    Numeric(usize),
    UnitValue {
        v: usize,
        m: usize,
    },
    RelUnitValue {
        v: usize,
        m: usize,
        hs4: PrefixMap<f32>,
        hs2: PrefixMap<f32>,
        global: f32,
    },
    HsPrefix(u8),
    DayOfWeek,
    Month,
    /// `values[slot]`: the def's table value, or its default where its table lacks the key
    /// (tables hold finite values) and at the last index (`n_slots`, key in no table).
    /// Written by its key's [`LookupGroup`].
    Lookup {
        key: usize,
        values: Vec<f32>,
    },
}

/// Every lookup column of one key, values interleaved by slot (`vals[slot * cols.len() + c]`
/// is column `cols[c]`'s value), so a row's rate and count share a cache line.
struct LookupGroup {
    key: usize,
    cols: Vec<usize>,
    vals: Vec<f32>,
}

/// Output column and values of each lookup op of one key.
type GroupCols<'a> = Vec<(usize, &'a [f32])>;

fn lookup_groups(ops: &[Op]) -> Vec<LookupGroup> {
    let mut groups: Vec<(usize, GroupCols)> = Vec::new();
    for (j, op) in ops.iter().enumerate() {
        if let Op::Lookup { key, values } = op {
            match groups.iter_mut().find(|g| g.0 == *key) {
                Some(g) => g.1.push((j, values)),
                None => groups.push((*key, vec![(j, values)])),
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, cols)| {
            let rows = cols.iter().map(|c| c.1.len()).min().unwrap_or(0);
            let vals = (0..rows)
                .flat_map(|s| cols.iter().map(move |c| c.1[s]))
                .collect();
            LookupGroup {
                key,
                cols: cols.iter().map(|c| c.0).collect(),
                vals,
            }
        })
        .collect()
}

/// A validated fitted pipeline turned into lookup tables. `Send + Sync`; build once with
/// [`FittedPipeline::compile`], then [`CompiledPipeline::transform`] any number of batches.
pub struct CompiledPipeline {
    schema: Schema,
    names: Vec<String>,
    /// [`FeatureDef::shifts_with_time`] of each output column.
    time_shifts: Vec<Option<&'static str>>,
    vocabs: Vocabs,
    ops: Vec<Op>,
    groups: Vec<LookupGroup>,
}

/// Checks a batch against a schema: vector lengths, column counts, HS codes below
/// `10^hs_width`.
pub(crate) fn check_batch(schema: &Schema, batch: &Batch) -> Result<(), FeatureError> {
    check_shape(schema, batch)?;
    check_hs(schema, batch, 0..batch.len())
}

/// Vector lengths and column counts (cost independent of the row count).
fn check_shape(schema: &Schema, batch: &Batch) -> Result<(), FeatureError> {
    let shape = |message: String| FeatureError::Shape {
        file: batch.source.clone(),
        schema: schema.name.clone(),
        message,
    };
    batch.check_lengths().map_err(shape)?;
    if batch.categorical.len() != schema.categorical.len() {
        return Err(shape(format!(
            "{} categorical columns, schema has {}",
            batch.categorical.len(),
            schema.categorical.len()
        )));
    }
    if batch.numeric.len() != schema.numeric.len() {
        return Err(shape(format!(
            "{} numeric columns, schema has {}",
            batch.numeric.len(),
            schema.numeric.len()
        )));
    }
    Ok(())
}

/// HS codes of `rows` (in range) below `10^hs_width`.
fn check_hs(
    schema: &Schema,
    batch: &Batch,
    rows: std::ops::Range<usize>,
) -> Result<(), FeatureError> {
    let limit = POW10[usize::from(schema.hs_width).min(12)];
    let first = rows.start;
    if let Some(k) = batch.hs[rows].iter().position(|&h| h >= limit) {
        let row = first + k;
        return Err(FeatureError::Data {
            file: batch.source.clone(),
            line: batch.lines.get(row).copied().unwrap_or(row as u64 + 1),
            column: schema.hs_code.clone(),
            message: format!(
                "HS code {} has more than {} digits",
                batch.hs[row], schema.hs_width
            ),
        });
    }
    Ok(())
}

fn median_map(t: &std::collections::BTreeMap<String, f32>, digits: u8) -> PrefixMap<f32> {
    // Keys were validated as canonical decimals; a failed parse cannot happen here.
    PrefixMap::new(
        digits,
        t.iter()
            .filter_map(|(k, &v)| parse_canonical_decimal(k).map(|k| (k, v))),
    )
}

/// HS prefix (an integer below `10^digits`, see [`hs_prefix`]) -> value: a dense array for
/// short prefixes (one load, no hashing), a hash map otherwise. Same answers either way.
enum PrefixMap<T> {
    Dense(Vec<Option<T>>),
    Map(FxHashMap<u64, T>),
}

impl<T: Copy> PrefixMap<T> {
    fn new(digits: u8, entries: impl IntoIterator<Item = (u64, T)>) -> PrefixMap<T> {
        if digits > DENSE_DIGITS {
            return PrefixMap::Map(entries.into_iter().collect());
        }
        let n = POW10[usize::from(digits)] as usize;
        let mut dense = vec![None; n];
        let mut rest = FxHashMap::default();
        for (k, v) in entries {
            match dense.get_mut(k as usize) {
                Some(d) => *d = Some(v),
                // a key with more digits than the prefix has: no row can reach it
                None => {
                    rest.insert(k, v);
                }
            }
        }
        if rest.is_empty() {
            PrefixMap::Dense(dense)
        } else {
            PrefixMap::Map(entries_union(dense, rest))
        }
    }

    #[inline]
    fn get(&self, prefix: u64) -> Option<T> {
        match self {
            PrefixMap::Dense(d) => d.get(prefix as usize).copied().flatten(),
            PrefixMap::Map(m) => m.get(&prefix).copied(),
        }
    }
}

fn entries_union<T: Copy>(dense: Vec<Option<T>>, mut rest: FxHashMap<u64, T>) -> FxHashMap<u64, T> {
    rest.extend(
        dense
            .into_iter()
            .enumerate()
            .filter_map(|(k, v)| Some((k as u64, v?))),
    );
    rest
}

impl CompiledPipeline {
    pub(crate) fn new(p: &FittedPipeline) -> Result<Self, FeatureError> {
        p.validate()?;
        // Pass 1: distinct keys and the union of their table keys -> slots.
        let mut key_parts: Vec<Vec<KeyPart>> = Vec::new();
        let mut key_slots: Vec<FxHashMap<&str, u32>> = Vec::new();
        let mut key_order: Vec<Vec<&str>> = Vec::new();
        for f in &p.features {
            if let FeatureDef::RiskRate { key, table, .. }
            | FeatureDef::RiskCount { key, table, .. } = f
            {
                let ki = match key_parts.iter().position(|k| k == key) {
                    Some(i) => i,
                    None => {
                        key_parts.push(key.clone());
                        key_slots.push(FxHashMap::default());
                        key_order.push(Vec::new());
                        key_parts.len() - 1
                    }
                };
                for k in table.keys() {
                    if !key_slots[ki].contains_key(k.as_str()) {
                        let next = u32::try_from(key_slots[ki].len())
                            .ok()
                            .filter(|&n| n < u32::MAX - 1)
                            .ok_or_else(|| {
                                FeatureError::format("more than 2^32 - 2 keys in one risk table")
                            })?;
                        key_slots[ki].insert(k.as_str(), next);
                        key_order[ki].push(k.as_str());
                    }
                }
            }
        }
        let vocabs = compile_keys(&key_parts, &key_order)?;
        // Pass 2: ops.
        let mut ops = Vec::with_capacity(p.features.len());
        for f in &p.features {
            ops.push(match f {
                FeatureDef::Numeric { index, .. } => Op::Numeric(*index),
                FeatureDef::UnitValue {
                    value_index,
                    mass_index,
                    ..
                } => Op::UnitValue {
                    v: *value_index,
                    m: *mass_index,
                },
                FeatureDef::RelUnitValue {
                    value_index,
                    mass_index,
                    hs4_median,
                    hs2_median,
                    global_median,
                    ..
                } => Op::RelUnitValue {
                    v: *value_index,
                    m: *mass_index,
                    hs4: median_map(hs4_median, 4),
                    hs2: median_map(hs2_median, 2),
                    global: *global_median,
                },
                FeatureDef::HsPrefix { digits, .. } => Op::HsPrefix(*digits),
                FeatureDef::DayOfWeek { .. } => Op::DayOfWeek,
                FeatureDef::Month { .. } => Op::Month,
                FeatureDef::RiskRate {
                    key,
                    table,
                    default,
                    ..
                }
                | FeatureDef::RiskCount {
                    key,
                    table,
                    default,
                    ..
                } => {
                    let ki = key_parts
                        .iter()
                        .position(|k| k == key)
                        .ok_or_else(|| FeatureError::format("key lost"))?;
                    let n_slots = vocabs.keys.get(ki).map_or(0, |k| k.n_slots as usize);
                    let mut values = vec![*default; n_slots + 1];
                    for (k, &v) in table {
                        if let Some(&s) = key_slots[ki].get(k.as_str()) {
                            values[s as usize] = if v.is_nan() { *default } else { v };
                        }
                    }
                    Op::Lookup { key: ki, values }
                }
            });
        }
        let groups = lookup_groups(&ops);
        for op in &mut ops {
            if let Op::Lookup { values, .. } = op {
                *values = Vec::new(); // now held by its group
            }
        }
        Ok(CompiledPipeline {
            schema: p.schema.clone(),
            names: p.feature_names(),
            time_shifts: p
                .features
                .iter()
                .map(FeatureDef::shifts_with_time)
                .collect(),
            vocabs,
            ops,
            groups,
        })
    }

    /// Output column names, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Why output column `j` shifts by construction on a time split
    /// ([`FeatureDef::shifts_with_time`]); `None` for other columns and out-of-range `j`.
    pub fn shifts_with_time(&self, j: usize) -> Option<&'static str> {
        self.time_shifts.get(j).copied().flatten()
    }

    /// The schema the pipeline was fitted for.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Features of every row of `batch`, row-major, computed in parallel over row chunks
    /// (identical output for any thread count).
    pub fn transform(&self, batch: &Batch) -> Result<FeatureMatrix, FeatureError> {
        check_batch(&self.schema, batch)?;
        let n_rows = batch.len();
        let n_cols = self.ops.len();
        let mut data = vec![0f32; n_rows * n_cols];
        if n_cols > 0 {
            data.par_chunks_mut(CHUNK_ROWS * n_cols)
                .enumerate()
                .for_each(|(c, out)| {
                    self.fill_rows(batch, c * CHUNK_ROWS, out);
                });
        }
        Ok(FeatureMatrix {
            n_rows,
            n_cols,
            data,
            names: self.names.clone(),
        })
    }

    /// Features of rows `start..start + out.len() / n_features` of `batch`, row-major, into
    /// `out` (sequential; bit-identical to the same rows of [`CompiledPipeline::transform`]).
    /// For callers that consume features a block at a time (no whole-batch matrix).
    pub fn transform_rows(
        &self,
        batch: &Batch,
        start: usize,
        out: &mut [f32],
    ) -> Result<(), FeatureError> {
        let nc = self.ops.len();
        let shape = |message: String| FeatureError::Shape {
            file: batch.source.clone(),
            schema: self.schema.name.clone(),
            message,
        };
        if nc == 0 {
            return if out.is_empty() {
                Ok(())
            } else {
                Err(shape(format!("{} output slots for 0 features", out.len())))
            };
        }
        if !out.len().is_multiple_of(nc) {
            return Err(shape(format!(
                "{} output slots is not a multiple of {nc} features",
                out.len()
            )));
        }
        let end = start
            .checked_add(out.len() / nc)
            .filter(|&e| e <= batch.len())
            .ok_or_else(|| {
                shape(format!(
                    "rows {start}..{} requested of a batch of {}",
                    start.saturating_add(out.len() / nc),
                    batch.len()
                ))
            })?;
        check_shape(&self.schema, batch)?;
        check_hs(&self.schema, batch, start..end)?;
        self.fill_rows(batch, start, out);
        Ok(())
    }

    /// Writes rows `start..start + out.len() / n_cols` into `out`, [`SUB_ROWS`] rows at a
    /// time (the scratch and that part of `out` stay in L1/L2).
    fn fill_rows(&self, batch: &Batch, start: usize, out: &mut [f32]) {
        let nc = self.ops.len();
        let n = out.len() / nc;
        let mut sc = Scratch::new(&self.vocabs, n.min(SUB_ROWS));
        for (k, o) in out.chunks_mut(SUB_ROWS * nc).enumerate() {
            self.fill_sub(batch, start + k * SUB_ROWS, o, &mut sc);
        }
    }

    /// [`CompiledPipeline::fill_rows`] for at most [`SUB_ROWS`] rows: ids of every vocabulary,
    /// then every key's slot, then each output column in one loop (no per-row dispatch over
    /// the feature list).
    fn fill_sub(&self, batch: &Batch, start: usize, out: &mut [f32], sc: &mut Scratch) {
        let nc = self.ops.len();
        let n = out.len() / nc;
        let rows = start..start + n;
        let width = self.schema.hs_width;
        let Scratch {
            cap,
            cat_ids,
            hs_ids,
            slots,
            hashes,
            keys_buf,
            ends,
        } = sc;
        let cap = (*cap).max(1);
        let hashes = &mut hashes[..n];
        // Categorical ids: cells hashed first (their bytes prefetched PREFETCH rows ahead),
        // then probed with the table line of the cell PREFETCH rows ahead already requested.
        for (v, ids) in self.vocabs.cat.iter().zip(cat_ids.chunks_exact_mut(cap)) {
            let cells = &batch.categorical[v.col][rows.clone()];
            for (r, (h, c)) in hashes.iter_mut().zip(cells).enumerate() {
                if let Some(ahead) = cells.get(r + PREFETCH) {
                    prefetch_ptr(ahead.as_ptr());
                }
                *h = hash_bytes(c.as_bytes());
            }
            probe(&v.table, NONE, &mut ids[..n], hashes, |r| {
                cells[r].as_bytes()
            });
        }
        for (v, ids) in self.vocabs.hs.iter().zip(hs_ids.chunks_exact_mut(cap)) {
            for (o, &h) in ids.iter_mut().zip(&batch.hs[rows.clone()]) {
                *o = v.map.get(hs_prefix(h, width, v.digits));
            }
        }
        let ids_of = |p: Part| -> &[u32] {
            let (all, i) = match p {
                Part::Cat(i) => (&cat_ids[..], i),
                Part::Hs(i) => (&hs_ids[..], i),
            };
            all.get(i * cap..i * cap + n).unwrap_or(&[])
        };
        for (key, s) in self.vocabs.keys.iter().zip(slots.chunks_exact_mut(cap)) {
            let none = key.n_slots;
            let s = &mut s[..n];
            match &key.kind {
                KeyKind::Single { part, by_id } => {
                    for (o, &id) in s.iter_mut().zip(ids_of(*part)) {
                        *o = by_id.get(id as usize).copied().unwrap_or(none);
                    }
                }
                KeyKind::Pair { a, b, table } => {
                    let (x, y) = (ids_of(*a), ids_of(*b));
                    match table {
                        PairTable::Narrow { shift, table } => {
                            pair_probe(table, x, y, |x, y| x << shift | y, none, s, hashes)
                        }
                        PairTable::Wide(table) => pair_probe(
                            table,
                            x,
                            y,
                            |x, y| u64::from(x) << 32 | u64::from(y),
                            none,
                            s,
                            hashes,
                        ),
                    }
                }
                KeyKind::Str { parts, table } => {
                    keys_buf.clear();
                    ends.clear();
                    for row in rows.clone() {
                        push_key(keys_buf, parts, width, batch, row);
                        ends.push(keys_buf.len());
                    }
                    let bytes = keys_buf.as_bytes();
                    let key_of = |r: usize| &bytes[if r == 0 { 0 } else { ends[r - 1] }..ends[r]];
                    for (r, h) in hashes.iter_mut().enumerate() {
                        *h = hash_bytes(key_of(r));
                    }
                    probe(table, none, s, hashes, key_of);
                }
            }
        }
        for (j, op) in self.ops.iter().enumerate() {
            match op {
                Op::Numeric(i) => col(out, j, nc)
                    .zip(&batch.numeric[*i][rows.clone()])
                    .for_each(|(o, v)| *o = *v),
                Op::UnitValue { v, m } => col(out, j, nc)
                    .zip(
                        batch.numeric[*v][rows.clone()]
                            .iter()
                            .zip(&batch.numeric[*m][rows.clone()]),
                    )
                    .for_each(|(o, (v, m))| *o = unit_value(*v, *m)),
                Op::RelUnitValue {
                    v,
                    m,
                    hs4,
                    hs2,
                    global,
                } => {
                    let vm = batch.numeric[*v][rows.clone()]
                        .iter()
                        .zip(&batch.numeric[*m][rows.clone()]);
                    for ((o, (v, m)), &hs) in col(out, j, nc).zip(vm).zip(&batch.hs[rows.clone()]) {
                        let med = hs4
                            .get(hs_prefix(hs, width, 4))
                            .or_else(|| hs2.get(hs_prefix(hs, width, 2)))
                            .unwrap_or(*global);
                        *o = rel_unit_value(unit_value(*v, *m), med);
                    }
                }
                Op::HsPrefix(d) => col(out, j, nc)
                    .zip(&batch.hs[rows.clone()])
                    .for_each(|(o, &h)| *o = hs_prefix(h, width, *d) as f32),
                Op::DayOfWeek => col(out, j, nc)
                    .zip(&batch.dates[rows.clone()])
                    .for_each(|(o, &d)| *o = day_of_week(d)),
                Op::Month => col(out, j, nc)
                    .zip(&batch.dates[rows.clone()])
                    .for_each(|(o, &d)| *o = month(d)),
                Op::Lookup { .. } => {}
            }
        }
        for g in &self.groups {
            let s = slots.get(g.key * cap..g.key * cap + n).unwrap_or(&[]);
            let rows = out.chunks_exact_mut(nc).zip(s);
            if let [a, b] = g.cols[..] {
                // the value lines of the row PREFETCH ahead requested first (the big keys'
                // values do not stay in L1/L2 next to the tables)
                for (r, (o, &sl)) in rows.enumerate() {
                    if let Some(&ahead) = s.get(r + PREFETCH) {
                        prefetch_ptr(
                            g.vals
                                .as_ptr()
                                .wrapping_add(2 * ahead as usize)
                                .cast::<u8>(),
                        );
                    }
                    let v = g
                        .vals
                        .get(2 * sl as usize..2 * sl as usize + 2)
                        .unwrap_or(&[f32::NAN; 2]);
                    o[a] = v[0];
                    o[b] = v[1];
                }
            } else {
                let w = g.cols.len();
                for (o, &s) in rows {
                    let v = g.vals.get(w * s as usize..w * s as usize + w);
                    for (c, &j) in g.cols.iter().enumerate() {
                        o[j] = v.map_or(f32::NAN, |v| v[c]);
                    }
                }
            }
        }
    }
}

/// Rows per inner block of [`CompiledPipeline::fill_rows`].
const SUB_ROWS: usize = 256;

/// Per-call buffers of [`CompiledPipeline::fill_rows`], each `cap` rows per vocabulary / key.
struct Scratch {
    cap: usize,
    cat_ids: Vec<u32>,
    hs_ids: Vec<u32>,
    slots: Vec<u32>,
    hashes: Vec<u64>,
    keys_buf: String,
    ends: Vec<usize>,
}

impl Scratch {
    fn new(v: &Vocabs, cap: usize) -> Scratch {
        Scratch {
            cap,
            cat_ids: vec![NONE; v.cat.len() * cap],
            hs_ids: vec![NONE; v.hs.len() * cap],
            slots: vec![0; v.keys.len() * cap],
            hashes: vec![0; cap],
            keys_buf: String::new(),
            ends: Vec::with_capacity(cap),
        }
    }
}

/// Column `j` of a row-major chunk with `nc` columns.
#[inline]
fn col(out: &mut [f32], j: usize, nc: usize) -> impl Iterator<Item = &mut f32> {
    out.iter_mut().skip(j).step_by(nc)
}

/// Rows ahead whose table line is prefetched.
const PREFETCH: usize = 16;

/// `s[r]` = slot of the pair `(x[r], y[r])` packed by `pack` (`none` when absent or either
/// id is `NONE`); pair tables' lines requested PREFETCH rows ahead.
#[inline]
fn pair_probe<K: IntKey>(
    table: &IntTable<K>,
    x: &[u32],
    y: &[u32],
    pack: impl Fn(u32, u32) -> K,
    none: u32,
    s: &mut [u32],
    hashes: &mut [u64],
) {
    for ((h, &x), &y) in hashes.iter_mut().zip(x).zip(y) {
        *h = pack(x, y).mix();
    }
    for (r, ((o, &x), &y)) in s.iter_mut().zip(x).zip(y).enumerate() {
        if let Some(&h) = hashes.get(r + PREFETCH) {
            table.prefetch(h);
        }
        *o = if x == NONE || y == NONE {
            none
        } else {
            table.get_hashed(pack(x, y), hashes[r]).unwrap_or(none)
        };
    }
}

/// `s[r]` = slot of key `key_of(r)` (hash `hashes[r]`), `none` when absent.
#[inline]
fn probe<'a>(
    table: &StrTable,
    none: u32,
    s: &mut [u32],
    hashes: &[u64],
    key_of: impl Fn(usize) -> &'a [u8],
) {
    for (r, o) in s.iter_mut().enumerate() {
        if let Some(&h) = hashes.get(r + PREFETCH) {
            table.prefetch(h);
        }
        *o = table.get_hashed(key_of(r), hashes[r]).unwrap_or(none);
    }
}
