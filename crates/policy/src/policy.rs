//! The policy file (TOML): parsed into [`RawPolicy`] (serde, `deny_unknown_fields`, spans
//! kept) and validated once, against the model's schema, into [`Policy`]. Every error names
//! the file, line, column and, inside a rule, the rule's name. See `data/policies/example.toml`
//! for a commented example.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use cr_data::{Batch, CategoricalKind, Schema};
use cr_eval::Budget;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{line_col, ErrorKind, Location, PolicyError};
use crate::rules::{compile, Ctx, Env, Node, BLOCK};
use crate::syntax::{parse, CmpOp};
use crate::watch::{parse_day, ListKind, WatchList};

// ------------------------------------------------------------------ raw (file) form

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Channels from least to most intrusive; the first is the release channel.
    pub channels: Spanned<Vec<Spanned<String>>>,
    pub capacity: Spanned<RawCapacity>,
    #[serde(default)]
    pub ranking: Option<RawRanking>,
    pub random: Spanned<RawRandom>,
    #[serde(default, rename = "watch_list")]
    pub watch_lists: Vec<RawWatchList>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapacity {
    /// Share of an office's declarations of the day, in (0, 1].
    #[serde(default)]
    pub share: Option<Spanned<f64>>,
    /// Or a number of declarations per office per day.
    #[serde(default)]
    pub count: Option<Spanned<i64>>,
    /// Channel of model selections.
    pub channel: Spanned<String>,
    /// Per-office overrides: `[capacity.office.NAME] share = ... | count = ...`.
    #[serde(default)]
    pub office: BTreeMap<String, Spanned<RawOfficeCapacity>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOfficeCapacity {
    #[serde(default)]
    pub share: Option<Spanned<f64>>,
    #[serde(default)]
    pub count: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRanking {
    /// `score` (default) or `expected_revenue`.
    pub by: Spanned<String>,
    /// The revenue model (for `expected_revenue`).
    #[serde(default)]
    pub revenue_model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRandom {
    /// Smallest inclusion probability of any declaration not selected otherwise, in (0, 1].
    pub floor: Spanned<f64>,
    /// Expected share drawn at random among those declarations (>= floor); default floor.
    #[serde(default)]
    pub rate: Option<Spanned<f64>>,
    /// `uniform` or `score` (default): above the floor, probabilities grow with the score.
    #[serde(default)]
    pub weight: Option<Spanned<String>>,
    pub channel: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatchList {
    pub name: Spanned<String>,
    pub kind: Spanned<ListKind>,
    /// CSV file, relative to the policy file.
    pub file: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Spanned<String>,
    pub when: Spanned<String>,
    pub channel: Spanned<String>,
    #[serde(default)]
    pub mandatory: bool,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub valid_from: Option<Spanned<String>>,
    #[serde(default)]
    pub valid_to: Option<Spanned<String>>,
}

// ------------------------------------------------------------------ validated form

/// How the model ranks declarations inside the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Score,
}

/// How the random floor spreads its probability above the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Uniform,
    Score,
}

/// The random floor.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomFloor {
    pub floor: f64,
    pub rate: f64,
    pub weight: Weight,
    pub channel: u8,
}

/// Inspection capacity per office per day.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub default: Budget,
    pub offices: BTreeMap<String, Budget>,
    /// Channel of model selections.
    pub channel: u8,
}

impl Capacity {
    /// The budget of `office`.
    pub fn budget(&self, office: &str) -> Budget {
        self.offices.get(office).copied().unwrap_or(self.default)
    }
}

/// One officer rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub channel: u8,
    /// Applies outside capacity (always selected) rather than competing for it.
    pub mandatory: bool,
    pub text: Option<String>,
    pub(crate) node: Node,
}

/// A validated policy, compiled against one schema.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub file: PathBuf,
    pub channels: Vec<String>,
    pub capacity: Capacity,
    pub ranking: Ranking,
    pub random: RandomFloor,
    pub rules: Vec<Rule>,
    pub lists: Vec<WatchList>,
    /// The schema's office column (categorical of kind office), if any.
    pub office_column: Option<usize>,
}

/// Most rules a policy may hold (rule indices are u16).
pub const MAX_RULES: usize = 4096;

struct Ld<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ld<'_> {
    fn loc(&self, offset: usize) -> Location {
        let (line, column) = line_col(self.text, offset);
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }
    fn err(&self, kind: ErrorKind, span: Range<usize>, msg: impl Into<String>) -> PolicyError {
        PolicyError::new(kind, msg).at(self.loc(span.start))
    }
    fn invalid(&self, span: Range<usize>, msg: impl Into<String>) -> PolicyError {
        self.err(ErrorKind::Invalid, span, msg)
    }
    /// Byte offset in the file of the first character of a TOML string value at `span`.
    fn string_start(&self, span: &Range<usize>) -> usize {
        let s = self.text.get(span.start..).unwrap_or("");
        if s.starts_with("'''") || s.starts_with("\"\"\"") {
            let rest = &s[3..];
            // a newline right after the opening delimiter is not part of the string
            let nl = if rest.starts_with("\r\n") {
                2
            } else if rest.starts_with('\n') {
                1
            } else {
                0
            };
            span.start + 3 + nl
        } else {
            span.start + 1
        }
    }
}

impl Policy {
    /// Load a policy file and compile it against `schema` (the model's). Watch list files are
    /// read relative to the policy file's folder.
    pub fn load(path: &Path, schema: &Schema) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::new(ErrorKind::Io, format!("reading {}: {e}", path.display()))
        })?;
        Policy::parse(&text, path, schema)
    }

    /// Parse policy `text`; `path` names it in errors and anchors relative watch list paths.
    pub fn parse(text: &str, path: &Path, schema: &Schema) -> Result<Policy, PolicyError> {
        let ld = Ld { file: path, text };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ld.err(ErrorKind::Toml, span, e.message().trim().to_string())
        })?;

        // channels
        let mut channels: Vec<String> = Vec::new();
        for c in raw.channels.get_ref() {
            let name = c.get_ref().trim();
            if name.is_empty() {
                return Err(ld.invalid(c.span(), "a channel name is empty"));
            }
            if channels.iter().any(|x| x == name) {
                return Err(ld.invalid(c.span(), format!("channel \"{name}\" appears twice")));
            }
            channels.push(name.to_string());
        }
        if channels.len() < 2 {
            return Err(ld.invalid(
                raw.channels.span(),
                "name at least two channels, least intrusive first (e.g. [\"green\", \"red\"])",
            ));
        }
        if channels.len() > usize::from(u8::MAX) {
            return Err(ld.invalid(raw.channels.span(), "more than 255 channels"));
        }
        let channel = |c: &Spanned<String>| -> Result<u8, PolicyError> {
            channels
                .iter()
                .position(|x| x == c.get_ref().trim())
                .map(|i| i as u8)
                .ok_or_else(|| {
                    ld.invalid(
                        c.span(),
                        format!(
                            "unknown channel \"{}\" (channels: {})",
                            c.get_ref(),
                            channels.join(", ")
                        ),
                    )
                })
        };

        // capacity
        let cap = raw.capacity.get_ref();
        let budget = |share: &Option<Spanned<f64>>,
                      count: &Option<Spanned<i64>>,
                      span: Range<usize>|
         -> Result<Budget, PolicyError> {
            match (share, count) {
                (Some(s), None) => {
                    let v = *s.get_ref();
                    if v > 0.0 && v <= 1.0 {
                        Ok(Budget::Rate(v))
                    } else {
                        Err(ld.invalid(s.span(), format!("share {v} must be in (0, 1]")))
                    }
                }
                (None, Some(c)) => {
                    let v = *c.get_ref();
                    if v >= 0 {
                        Ok(Budget::Count(v as usize))
                    } else {
                        Err(ld.invalid(c.span(), format!("count {v} must be >= 0")))
                    }
                }
                (Some(_), Some(c)) => {
                    Err(ld.invalid(c.span(), "give either `share` or `count`, not both"))
                }
                (None, None) => Err(ld.invalid(span, "give `share` or `count`")),
            }
        };
        let mut offices = BTreeMap::new();
        for (name, o) in &cap.office {
            let r = o.get_ref();
            offices.insert(name.clone(), budget(&r.share, &r.count, o.span())?);
        }
        let capacity = Capacity {
            default: budget(&cap.share, &cap.count, raw.capacity.span())?,
            offices,
            channel: channel(&cap.channel)?,
        };
        let office_column = schema.categorical_index(CategoricalKind::Office);
        if office_column.is_none() && !capacity.offices.is_empty() {
            return Err(ld.invalid(
                raw.capacity.span(),
                format!(
                    "per-office capacity, but schema \"{}\" has no categorical column of kind office",
                    schema.name
                ),
            ));
        }

        // ranking
        let ranking =
            match &raw.ranking {
                None => Ranking::Score,
                Some(r) => match r.by.get_ref().as_str() {
                    "score" => Ranking::Score,
                    "expected_revenue" => return Err(ld.invalid(
                        r.by.span(),
                        "ranking by expected_revenue needs a revenue model, which this version \
                         cannot load yet; use `score`",
                    )),
                    other => {
                        return Err(ld.invalid(
                            r.by.span(),
                            format!("unknown ranking \"{other}\" (score | expected_revenue)"),
                        ))
                    }
                },
            };

        // random floor
        let rr = raw.random.get_ref();
        let floor = *rr.floor.get_ref();
        if !(floor > 0.0 && floor <= 1.0) {
            return Err(ld.invalid(
                rr.floor.span(),
                format!("random floor {floor} must be in (0, 1]"),
            ));
        }
        let rate = match &rr.rate {
            None => floor,
            Some(r) => {
                let v = *r.get_ref();
                if !(v >= floor && v <= 1.0) {
                    return Err(ld.invalid(
                        r.span(),
                        format!("random rate {v} must be in [floor = {floor}, 1]"),
                    ));
                }
                v
            }
        };
        let weight = match rr.weight.as_ref().map(|w| (w.get_ref().as_str(), w.span())) {
            None | Some(("score", _)) => Weight::Score,
            Some(("uniform", _)) => Weight::Uniform,
            Some((other, span)) => {
                return Err(ld.invalid(
                    span,
                    format!("unknown random weight \"{other}\" (uniform | score)"),
                ))
            }
        };
        let random = RandomFloor {
            floor,
            rate,
            weight,
            channel: channel(&rr.channel)?,
        };

        // watch lists
        let base = path.parent().unwrap_or(Path::new(""));
        let mut lists: Vec<WatchList> = Vec::new();
        for w in &raw.watch_lists {
            let name = w.name.get_ref();
            if !valid_name(name) {
                return Err(ld.invalid(
                    w.name.span(),
                    format!("watch list name \"{name}\" must be letters, digits and _"),
                ));
            }
            if lists.iter().any(|l| &l.name == name) {
                return Err(ld.invalid(
                    w.name.span(),
                    format!("watch list \"{name}\" is declared twice"),
                ));
            }
            let file = base.join(w.file.get_ref());
            let list =
                WatchList::load(name, *w.kind.get_ref(), &file, schema.hs_width).map_err(|e| {
                    if e.at.is_none() {
                        // unreadable file: point at the `file` key
                        PolicyError {
                            at: Some(ld.loc(w.file.span().start)),
                            ..e
                        }
                    } else {
                        e
                    }
                })?;
            lists.push(list);
        }

        // rules
        let env = Env::new(schema, &lists);
        let mut rules: Vec<Rule> = Vec::new();
        for r in &raw.rules {
            let name = r.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(ld.invalid(r.name.span(), "a rule name is empty"));
            }
            if name.contains(';') {
                return Err(ld
                    .invalid(r.name.span(), "a rule name may not contain `;`")
                    .in_rule(Some(&name)));
            }
            if rules.iter().any(|x| x.name == name) {
                return Err(ld
                    .invalid(r.name.span(), "a rule of this name is already declared")
                    .in_rule(Some(&name)));
            }
            let start = ld.string_start(&r.when.span());
            let expr = parse(r.when.get_ref()).map_err(|e| {
                ld.err(ErrorKind::Syntax, start + e.span.start..start, e.message)
                    .in_rule(Some(&name))
            })?;
            let mut node = compile(&expr, &env).map_err(|e| {
                ld.err(ErrorKind::Type, start + e.span.start..start, e.message)
                    .in_rule(Some(&name))
            })?;
            let day = |d: &Option<Spanned<String>>| -> Result<Option<i32>, PolicyError> {
                let Some(d) = d else { return Ok(None) };
                parse_day(d.get_ref()).map(Some).ok_or_else(|| {
                    ld.invalid(
                        d.span(),
                        format!("\"{}\" is not a date (YYYY-MM-DD)", d.get_ref()),
                    )
                    .in_rule(Some(&name))
                })
            };
            let from = day(&r.valid_from)?;
            let to = day(&r.valid_to)?;
            if let (Some(a), Some(b), Some(span)) = (from, to, r.valid_to.as_ref()) {
                if a > b {
                    return Err(ld
                        .invalid(span.span(), "valid_to is before valid_from")
                        .in_rule(Some(&name)));
                }
            }
            let mut window = Vec::new();
            if let Some(a) = from {
                window.push(Node::Date(CmpOp::Ge, a));
            }
            if let Some(b) = to {
                window.push(Node::Date(CmpOp::Le, b));
            }
            if !window.is_empty() {
                window.push(node);
                node = Node::And(window);
            }
            rules.push(Rule {
                name,
                channel: channel(&r.channel).map_err(|e| e.in_rule(Some(r.name.get_ref())))?,
                mandatory: r.mandatory,
                text: r.text.clone(),
                node,
            });
            if rules.len() > MAX_RULES {
                return Err(ld.invalid(r.name.span(), format!("more than {MAX_RULES} rules")));
            }
        }
        Ok(Policy {
            name: raw.name.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
            file: path.to_path_buf(),
            channels,
            capacity,
            ranking,
            random,
            rules,
            lists,
            office_column,
        })
    }

    /// The rules that fire on each row of `batch` (with the model's `scores`), as rule indices
    /// in policy order: row `i`'s are `fired[offsets[i]..offsets[i + 1]]`. Runs on the current
    /// rayon pool in blocks of 4096 rows; the result does not depend on the thread count.
    pub fn fire(&self, batch: &Batch, scores: &[f32]) -> Fired {
        use rayon::prelude::*;
        let n = batch.len().min(scores.len());
        let cx = Ctx {
            batch,
            scores,
            lists: &self.lists,
        };
        let blocks: Vec<(Vec<u32>, Vec<u16>)> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let lo = b * BLOCK;
                let hi = (lo + BLOCK).min(n);
                let words = (hi - lo).div_ceil(64);
                let mut masks = vec![0u64; words * self.rules.len()];
                for (r, rule) in self.rules.iter().enumerate() {
                    rule.node
                        .eval(&cx, lo, hi, &mut masks[r * words..(r + 1) * words]);
                }
                let mut counts = vec![0u32; hi - lo];
                let mut fired = Vec::new();
                // row-major output from rule-major masks
                let mut per_row: Vec<Vec<u16>> = Vec::new();
                let any: Vec<u64> = (0..words)
                    .map(|w| (0..self.rules.len()).fold(0, |a, r| a | masks[r * words + w]))
                    .collect();
                if any.iter().any(|&w| w != 0) {
                    per_row = vec![Vec::new(); hi - lo];
                    for r in 0..self.rules.len() {
                        for w in 0..words {
                            let mut m = masks[r * words + w];
                            while m != 0 {
                                let bit = m.trailing_zeros() as usize;
                                per_row[w * 64 + bit].push(r as u16);
                                m &= m - 1;
                            }
                        }
                    }
                }
                for (i, v) in per_row.iter().enumerate() {
                    counts[i] = v.len() as u32;
                    fired.extend_from_slice(v);
                }
                (counts, fired)
            })
            .collect();
        let mut out = Fired {
            offsets: Vec::with_capacity(n + 1),
            rules: Vec::new(),
        };
        out.offsets.push(0);
        for (counts, fired) in blocks {
            let mut at = out.rules.len() as u32;
            for c in counts {
                at += c;
                out.offsets.push(at);
            }
            out.rules.extend(fired);
        }
        out
    }

    /// The watch list called `name`.
    pub fn list(&self, name: &str) -> Option<&WatchList> {
        self.lists.iter().find(|l| l.name == name)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Rules fired per row (see [`Policy::fire`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    /// `rows + 1` offsets into `rules`.
    pub offsets: Vec<u32>,
    pub rules: Vec<u16>,
}

impl Fired {
    pub fn row(&self, i: usize) -> &[u16] {
        &self.rules[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
