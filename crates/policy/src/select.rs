//! Selection under capacity (bulk): a whole file of declarations (a day, a week) becomes one
//! decision per declaration.
//!
//! Per group (office × day; one office when the schema has no office column), in this order:
//! 1. **Mandatory rules**: a declaration on which a mandatory rule fires is selected
//!    (stratum `rule`, propensity 1), outside capacity; its channel is the most intrusive
//!    channel of the rules that fired on it.
//! 2. **Capacity**: `k = budget.k(group size)` with the office's [`cr_eval::Budget`] (the
//!    rule `score --budget` uses; a count is capped at the declarations left). The `k` slots go
//!    to the other declarations ranked by score (ties by input order), declarations on which an
//!    advisory rule fires first: those are stratum `rule` (channel: their rules' most intrusive
//!    one), the rest stratum `model` (the capacity's channel) with their `rank` 1, 2, ...
//!    Propensity 1: given the file, the choice is deterministic. Exactly
//!    `min(k, declarations left)` slots are used.
//! 3. **Random floor**: the `m` declarations left draw `Budget::Rate(rate).k(m)` of them by a
//!    fixed-size design (`design.rs`: systematic sampling in random order) with exact
//!    inclusion probabilities `π_i >= floor`, written out for every one of them: stratum
//!    `random` when drawn (the random channel), `none` otherwise (the first channel).
//!
//! Groups are processed in (office name, day) order with one ChaCha8 stream seeded by
//! `seed`: the decisions depend on the data and the seed only, not on threads or chunking.

use std::collections::HashMap;
use std::path::Path;

use cr_data::{Batch, ColType, ColumnRef, TableWriter};
use cr_eval::Budget;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::design::{inclusion_probabilities, systematic};
use crate::error::{ErrorKind, PolicyError};
use crate::policy::{Policy, Weight};

/// How a declaration came to its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stratum {
    Rule,
    Model,
    Random,
    None,
}

impl Stratum {
    pub fn as_str(self) -> &'static str {
        match self {
            Stratum::Rule => "rule",
            Stratum::Model => "model",
            Stratum::Random => "random",
            Stratum::None => "none",
        }
    }
}

/// One declaration's decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub stratum: Stratum,
    /// Index into [`Policy::channels`].
    pub channel: u8,
    /// Probability that this declaration is selected under the policy, in (0, 1]: 1 for
    /// rule and model selections, the exact inclusion probability of the random design
    /// otherwise (whether drawn or not).
    pub propensity: f64,
    /// Model selections: 1-based rank in its group's capacity; 0 otherwise.
    pub rank: u32,
}

/// The rows of a file as selection needs them, in input order, gathered chunk by chunk: the
/// id, office, day, score and the rules that fired (about 20 bytes a row plus the id).
#[derive(Debug, Default)]
pub struct Collected {
    ids: String,
    id_end: Vec<usize>,
    office: Vec<u32>,
    office_names: Vec<String>,
    office_index: HashMap<String, u32>,
    day: Vec<i32>,
    score: Vec<f32>,
    fired_end: Vec<u32>,
    fired: Vec<u16>,
}

impl Collected {
    pub fn len(&self) -> usize {
        self.score.len()
    }
    pub fn is_empty(&self) -> bool {
        self.score.is_empty()
    }
    pub fn id(&self, i: usize) -> &str {
        let a = if i == 0 { 0 } else { self.id_end[i - 1] };
        &self.ids[a..self.id_end[i]]
    }
    pub fn score(&self, i: usize) -> f32 {
        self.score[i]
    }
    pub fn office(&self, i: usize) -> &str {
        &self.office_names[self.office[i] as usize]
    }
    pub fn day(&self, i: usize) -> i32 {
        self.day[i]
    }
    pub fn fired(&self, i: usize) -> &[u16] {
        let a = if i == 0 {
            0
        } else {
            self.fired_end[i - 1] as usize
        };
        &self.fired[a..self.fired_end[i] as usize]
    }

    /// Evaluate the policy's rules on a scored chunk and keep what selection needs. Runs
    /// the rules on the current rayon pool.
    pub fn push(
        &mut self,
        policy: &Policy,
        batch: &Batch,
        scores: &[f32],
    ) -> Result<(), PolicyError> {
        if scores.len() != batch.len() {
            return Err(PolicyError::new(
                ErrorKind::Select,
                format!("{} scores for {} rows", scores.len(), batch.len()),
            ));
        }
        if let Some(i) = scores.iter().position(|s| s.is_nan()) {
            return Err(PolicyError::new(
                ErrorKind::Select,
                format!(
                    "{} line {}: the model's score is NaN; cannot rank",
                    batch.source,
                    batch.lines.get(i).copied().unwrap_or(0)
                ),
            ));
        }
        let fired = policy.fire(batch, scores);
        for (i, &score) in scores.iter().enumerate() {
            self.ids.push_str(&batch.ids[i]);
            self.id_end.push(self.ids.len());
            let office = policy
                .office_column
                .map_or("", |c| batch.categorical[c][i].as_str());
            let o = match self.office_index.get(office) {
                Some(&o) => o,
                None => {
                    let o = self.office_names.len() as u32;
                    self.office_names.push(office.to_string());
                    self.office_index.insert(office.to_string(), o);
                    o
                }
            };
            self.office.push(o);
            self.day.push(batch.dates[i]);
            self.score.push(score);
            self.fired.extend_from_slice(fired.row(i));
            self.fired_end.push(self.fired.len() as u32);
        }
        Ok(())
    }

    /// Drop the rows at ascending input ordinals `drop` (late duplicate ids).
    pub fn remove(&mut self, drop: &[u64]) {
        if drop.is_empty() {
            return;
        }
        let old = std::mem::take(self);
        let mut d = drop.iter().peekable();
        let mut out = Collected {
            office_names: old.office_names.clone(),
            office_index: old.office_index.clone(),
            ..Collected::default()
        };
        for i in 0..old.len() {
            if d.peek().is_some_and(|&&x| x == i as u64) {
                d.next();
                continue;
            }
            out.ids.push_str(old.id(i));
            out.id_end.push(out.ids.len());
            out.office.push(old.office[i]);
            out.day.push(old.day[i]);
            out.score.push(old.score[i]);
            out.fired.extend_from_slice(old.fired(i));
            out.fired_end.push(out.fired.len() as u32);
        }
        *self = out;
    }
}

/// Per office (over all its days): capacity and what was used, by stratum and channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OfficeSummary {
    pub office: String,
    pub days: u64,
    pub declarations: u64,
    /// Σ over days of the capacity `k`.
    pub capacity: u64,
    /// Capacity slots used (advisory rules + model).
    pub used: u64,
    pub mandatory: u64,
    pub advisory: u64,
    pub model: u64,
    pub random: u64,
    pub none: u64,
    /// Declarations per channel (index into the policy's channels).
    pub by_channel: Vec<u64>,
}

/// The decisions for a file, in input order, and the per-office summary.
#[derive(Debug, Clone)]
pub struct Selection {
    pub decisions: Vec<Decision>,
    pub offices: Vec<OfficeSummary>,
}

/// Decide every collected declaration (see the module doc). Deterministic in `seed`.
pub fn select(policy: &Policy, rows: &Collected, seed: u64) -> Result<Selection, PolicyError> {
    let n = rows.len();
    let mut dec = vec![
        Decision {
            stratum: Stratum::None,
            channel: 0,
            propensity: 0.0,
            rank: 0,
        };
        n
    ];
    // groups in (office name, day) order, rows within in input order
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        rows.office(a)
            .cmp(rows.office(b))
            .then(rows.day[a].cmp(&rows.day[b]))
            .then(a.cmp(&b))
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut offices: Vec<OfficeSummary> = Vec::new();
    let mut g0 = 0;
    while g0 < n {
        let (o, d) = (rows.office[order[g0]], rows.day[order[g0]]);
        let mut g1 = g0;
        while g1 < n && rows.office[order[g1]] == o && rows.day[order[g1]] == d {
            g1 += 1;
        }
        let group = &order[g0..g1];
        let office = rows.office(group[0]);
        if offices.last().is_none_or(|s| s.office != office) {
            offices.push(OfficeSummary {
                office: office.to_string(),
                by_channel: vec![0; policy.channels.len()],
                ..OfficeSummary::default()
            });
        }
        let Some(sum) = offices.last_mut() else {
            break;
        };
        decide_group(policy, rows, group, &mut dec, sum, &mut rng);
        g0 = g1;
    }
    Ok(Selection {
        decisions: dec,
        offices,
    })
}

fn decide_group(
    policy: &Policy,
    rows: &Collected,
    group: &[usize],
    dec: &mut [Decision],
    sum: &mut OfficeSummary,
    rng: &mut ChaCha8Rng,
) {
    let rule_channel = |i: usize| {
        rows.fired(i)
            .iter()
            .map(|&r| policy.rules[r as usize].channel)
            .max()
            .unwrap_or(0)
    };
    sum.days += 1;
    sum.declarations += group.len() as u64;
    // 1. mandatory
    let mut rest: Vec<usize> = Vec::with_capacity(group.len());
    for &i in group {
        if rows
            .fired(i)
            .iter()
            .any(|&r| policy.rules[r as usize].mandatory)
        {
            dec[i] = Decision {
                stratum: Stratum::Rule,
                channel: rule_channel(i),
                propensity: 1.0,
                rank: 0,
            };
            sum.mandatory += 1;
        } else {
            rest.push(i);
        }
    }
    // 2. capacity: advisory hits first, then by score; ties by input order
    let budget = policy.capacity.budget(rows.office(group[0]));
    let k = match budget {
        Budget::Rate(_) => budget.k(group.len()),
        Budget::Count(_) => budget.k(rest.len()),
    };
    sum.capacity += k as u64;
    let take = k.min(rest.len());
    rest.sort_by(|&a, &b| {
        let adv_a = !rows.fired(a).is_empty();
        let adv_b = !rows.fired(b).is_empty();
        adv_b
            .cmp(&adv_a)
            .then(rows.score[b].total_cmp(&rows.score[a]))
            .then(a.cmp(&b))
    });
    let mut rank = 0;
    for &i in &rest[..take] {
        dec[i] = if rows.fired(i).is_empty() {
            rank += 1;
            sum.model += 1;
            Decision {
                stratum: Stratum::Model,
                channel: policy.capacity.channel,
                propensity: 1.0,
                rank,
            }
        } else {
            sum.advisory += 1;
            Decision {
                stratum: Stratum::Rule,
                channel: rule_channel(i),
                propensity: 1.0,
                rank: 0,
            }
        };
    }
    sum.used += take as u64;
    // 3. random floor over the rest, in input order
    let mut left: Vec<usize> = rest[take..].to_vec();
    left.sort_unstable();
    if !left.is_empty() {
        let r = &policy.random;
        let n_draw = Budget::Rate(r.rate).k(left.len());
        let weights: Vec<f64> = match r.weight {
            Weight::Uniform => vec![1.0; left.len()],
            Weight::Score => left.iter().map(|&i| f64::from(rows.score[i])).collect(),
        };
        let pi = inclusion_probabilities(r.floor, n_draw, &weights);
        let drawn = systematic(&pi, rng);
        for (j, &i) in left.iter().enumerate() {
            dec[i] = if drawn[j] {
                sum.random += 1;
                Decision {
                    stratum: Stratum::Random,
                    channel: r.channel,
                    propensity: pi[j],
                    rank: 0,
                }
            } else {
                sum.none += 1;
                Decision {
                    stratum: Stratum::None,
                    channel: 0,
                    propensity: pi[j],
                    rank: 0,
                }
            };
        }
    }
    for &i in group {
        sum.by_channel[dec[i].channel as usize] += 1;
    }
}

/// The output columns of `customs-risk select`, in order.
pub const OUTPUT_COLUMNS: [(&str, ColType); 7] = [
    ("id", ColType::Str),
    ("score", ColType::F64),
    ("channel", ColType::Str),
    ("stratum", ColType::Str),
    ("propensity", ColType::F64),
    ("rules", ColType::Str),
    ("rank", ColType::Str),
];

/// Write the decisions in input order (`.csv` or `.parquet` by extension): id, score,
/// channel, stratum, propensity, rules (fired rule names joined by `;`, in policy order),
/// rank (model selections; empty otherwise).
pub fn write_decisions(
    path: &Path,
    policy: &Policy,
    rows: &Collected,
    sel: &Selection,
) -> Result<(), PolicyError> {
    let io = |e: cr_data::DataError| {
        PolicyError::new(
            ErrorKind::Io,
            format!("writing {}: {}", path.display(), e.message),
        )
    };
    let mut w = TableWriter::create(path, &OUTPUT_COLUMNS).map_err(io)?;
    const CHUNK: usize = 8192;
    let mut start = 0;
    while start < rows.len() {
        let end = (start + CHUNK).min(rows.len());
        let ids: Vec<String> = (start..end).map(|i| rows.id(i).to_string()).collect();
        let scores: Vec<f64> = (start..end).map(|i| f64::from(rows.score[i])).collect();
        let d = &sel.decisions[start..end];
        let channels: Vec<String> = d
            .iter()
            .map(|x| policy.channels[x.channel as usize].clone())
            .collect();
        let strata: Vec<String> = d.iter().map(|x| x.stratum.as_str().to_string()).collect();
        let props: Vec<f64> = d.iter().map(|x| x.propensity).collect();
        let fired: Vec<String> = (start..end)
            .map(|i| {
                let names: Vec<&str> = rows
                    .fired(i)
                    .iter()
                    .map(|&r| policy.rules[r as usize].name.as_str())
                    .collect();
                names.join(";")
            })
            .collect();
        let ranks: Vec<String> = d
            .iter()
            .map(|x| {
                if x.rank > 0 {
                    x.rank.to_string()
                } else {
                    String::new()
                }
            })
            .collect();
        w.write_columns(&[
            ColumnRef::Str(&ids),
            ColumnRef::F64(&scores),
            ColumnRef::Str(&channels),
            ColumnRef::Str(&strata),
            ColumnRef::F64(&props),
            ColumnRef::Str(&fired),
            ColumnRef::Str(&ranks),
        ])
        .map_err(io)?;
        start = end;
    }
    w.finish().map_err(io)
}

/// One row of a decisions file as `evaluate` needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedDecision {
    pub id: String,
    pub stratum: Stratum,
    pub propensity: f64,
    /// 1-based line in the file.
    pub line: u64,
}

/// Read the decisions of a `select` run or of the service's audit trail, as `evaluate
/// --decisions` needs them: the id, `stratum` and `propensity` of each declaration.
///
/// - `select` output ([`write_decisions`], CSV): columns `id`, `stratum`, `propensity`;
/// - `customs-risk audit export` (CSV, or JSON lines when the file ends in `.jsonl`): columns
///   / fields `declaration_id`, `stratum`, `propensity` (rows decided under the champion's
///   policy). A declaration answered more than once (a resubmission) must have the same
///   stratum and propensity each time — the service's draw is a function of the id — and
///   counts once; different decisions for one id, or a row decided without a policy (no
///   stratum), are errors naming the line.
///
/// Any malformed row is an error naming the line and column; other columns are ignored.
pub fn read_decisions(path: &Path) -> Result<Vec<LoggedDecision>, PolicyError> {
    let err = |line: u64, msg: String| {
        PolicyError::new(ErrorKind::Io, format!("{}:{line}: {msg}", path.display()))
    };
    let parse = |line: u64, id: &str, stratum: &str, p: &str| {
        let stratum = match stratum {
            "rule" => Stratum::Rule,
            "model" => Stratum::Model,
            "random" => Stratum::Random,
            "none" => Stratum::None,
            "" => {
                return Err(err(
                    line,
                    format!(
                        "declaration {id} has no stratum: it was decided without a targeting                          policy (export only the days the champion had one, with --since)"
                    ),
                ))
            }
            other => {
                return Err(err(
                    line,
                    format!("column stratum: `{other}` is not rule | model | random | none"),
                ))
            }
        };
        let propensity: f64 = p
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| *x > 0.0 && *x <= 1.0)
            .ok_or_else(|| err(line, format!("column propensity: `{p}` is not in (0, 1]")))?;
        Ok(LoggedDecision {
            id: id.to_string(),
            stratum,
            propensity,
            line,
        })
    };
    let jsonl = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let (out, audit) = if jsonl {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let line = i as u64 + 1;
            if l.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(l).map_err(|e| err(line, format!("not JSON: {e}")))?;
            let field = |k: &str| match v.get(k) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                None | Some(serde_json::Value::Null) => Ok(String::new()),
                Some(other) => Err(err(line, format!("field {k}: {other} is not text"))),
            };
            let id = field("declaration_id")?;
            if id.is_empty() {
                return Err(err(
                    line,
                    "no `declaration_id` (is this `audit export`?)".into(),
                ));
            }
            out.push(parse(line, &id, &field("stratum")?, &field("propensity")?)?);
        }
        (out, true)
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .from_path(path)
            .map_err(|e| err(0, format!("cannot read: {e}")))?;
        let header = rdr.headers().map_err(|e| err(1, e.to_string()))?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (ci, audit) = match (col("id"), col("declaration_id")) {
            (Some(i), _) => (i, false),
            (None, Some(i)) => (i, true),
            (None, None) => return Err(err(
                1,
                "no `id` or `declaration_id` column (is this `select` output or `audit export`?)"
                    .into(),
            )),
        };
        let need = |name: &str| {
            col(name)
                .ok_or_else(|| err(1, format!("no `{name}` column (is this `select` output?)")))
        };
        let (cs, cp) = (need("stratum")?, need("propensity")?);
        let mut out = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
            let line = rec.position().map_or(0, |p| p.line());
            out.push(parse(
                line,
                rec.get(ci).unwrap_or(""),
                rec.get(cs).unwrap_or(""),
                rec.get(cp).unwrap_or(""),
            )?);
        }
        (out, audit)
    };
    if !audit {
        return Ok(out);
    }
    // the audit trail: one decision per declaration, resubmissions agreeing
    let mut first: HashMap<String, usize> = HashMap::with_capacity(out.len());
    let mut kept: Vec<LoggedDecision> = Vec::with_capacity(out.len());
    for d in out {
        match first.get(&d.id) {
            Some(&k) => {
                let f = &kept[k];
                if f.stratum != d.stratum || f.propensity != d.propensity {
                    return Err(err(
                        d.line,
                        format!(
                            "declaration {} was decided twice differently ({} with propensity {} \
                             at line {}, {} with propensity {} here): export one model \
                             version's decisions",
                            d.id,
                            f.stratum.as_str(),
                            f.propensity,
                            f.line,
                            d.stratum.as_str(),
                            d.propensity
                        ),
                    ));
                }
            }
            None => {
                first.insert(d.id.clone(), kept.len());
                kept.push(d);
            }
        }
    }
    Ok(kept)
}

/// Close the loop: replace the inspection record of `rows` (declarations `ids`, outcomes in
/// `rows.label`) with the decisions of a `select` run. Declarations in stratum `none` were not
/// inspected under the policy: their label is dropped (whatever the outcomes file says), their
/// propensity kept. Selected ones are inspected with `selection` = their stratum (`random`
/// is the unbiased sample) and must have a label. Every declaration must have exactly one
/// decision and every decision a declaration, else an error naming the id.
pub fn apply_decisions(
    rows: &mut cr_eval::EvalRows,
    ids: &[String],
    decisions: &[LoggedDecision],
    source: &Path,
) -> Result<(), PolicyError> {
    use cr_eval::SelectionKind;
    let bad =
        |msg: String| PolicyError::new(ErrorKind::Select, format!("{}: {msg}", source.display()));
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(decisions.len());
    for (k, d) in decisions.iter().enumerate() {
        if by_id.insert(d.id.as_str(), k).is_some() {
            return Err(bad(format!("line {}: id {} decided twice", d.line, d.id)));
        }
    }
    if ids.len() != rows.label.len() {
        return Err(bad(format!(
            "{} ids for {} rows",
            ids.len(),
            rows.label.len()
        )));
    }
    let mut used = 0usize;
    for (i, id) in ids.iter().enumerate() {
        let Some(&k) = by_id.get(id.as_str()) else {
            return Err(bad(format!(
                "declaration {id} of the outcomes has no decision"
            )));
        };
        used += 1;
        let d = &decisions[k];
        rows.propensity[i] = Some(d.propensity);
        if d.stratum == Stratum::None {
            rows.label[i] = None;
            rows.inspected[i] = false;
            rows.selection[i] = None;
            rows.revenue[i] = None;
            continue;
        }
        if rows.label[i].is_none() {
            return Err(bad(format!(
                "line {}: declaration {id} was selected ({}) but the outcomes have no label for it",
                d.line,
                d.stratum.as_str()
            )));
        }
        rows.inspected[i] = true;
        rows.selection[i] = Some(match d.stratum {
            Stratum::Rule => SelectionKind::Rule,
            Stratum::Model => SelectionKind::Model,
            _ => SelectionKind::Random,
        });
    }
    if used != decisions.len() {
        return Err(bad(format!(
            "{} decisions name declarations the outcomes file does not hold",
            decisions.len() - used
        )));
    }
    Ok(())
}
