//! Reasons on raw declaration fields: per-feature contributions (e.g. exact SHAP values in
//! log-odds, one per pipeline output column) summed per group of raw fields, each with an
//! officer-facing sentence built from the pipeline's own tables.
//!
//! A feature's *fields* are the raw columns it reads ([`FeatureDef::inputs`]); features with
//! the same fields form one group, named by the fields joined with `" × "`: `importer`
//! (its risk rate and count), `importer × declarant` (the pair's rate and count: a pair is
//! reported as the pair, never split), `value × mass × hs` (the relative unit value), ...
//! A group's contribution is the sum of its features' contributions, so the groups' sum is
//! the features' sum.
//!
//! ```no_run
//! # fn demo(p: &cr_features::FittedPipeline, batch: &cr_data::Batch, phi: &[f64]) {
//! let groups = cr_features::ReasonGroups::new(p);
//! for r in groups.top(p, batch, 0, phi, 3) {
//!     println!("{:+.3} {}", r.contribution, r.text); // "+0.412 importer IMP7: seizure rate ..."
//! }
//! # }
//! ```

use cr_data::{Batch, Schema};

use crate::calc::{civil_from_days, hs_prefix, push_key, rel_unit_value, unit_value};
use crate::config::KeyPart;
use crate::pipeline::{FeatureDef, FittedPipeline};

/// One reason: a group of raw fields, their values on the row, the summed contribution of
/// the group's features and a sentence for an officer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// The raw fields, joined with `" × "` (e.g. `importer × declarant`).
    pub field: String,
    /// The row's values of those fields, joined with `" × "`.
    pub value: String,
    /// Sum of the group's feature contributions.
    pub contribution: f64,
    /// The sentence, e.g. `importer IMP7: seizure rate 18.0 % over 44 labelled inspections,
    /// typical 3.0 %`.
    pub text: String,
}

/// A raw field a feature reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Categorical(usize),
    Numeric(usize),
    Hs,
    Date,
}

impl Field {
    fn name(self, s: &Schema) -> String {
        match self {
            Field::Date => s.date.clone(),
            Field::Hs => s.hs_code.clone(),
            Field::Categorical(i) => s.categorical[i].name.clone(),
            Field::Numeric(i) => s.numeric[i].name.clone(),
        }
    }

    fn value(self, s: &Schema, b: &Batch, row: usize) -> String {
        match self {
            Field::Date => {
                let (y, m, d) = civil_from_days(b.dates[row]);
                format!("{y:04}-{m:02}-{d:02}")
            }
            Field::Hs => hs_text(b.hs[row], s.hs_width),
            Field::Categorical(i) => match b.categorical[i][row].as_str() {
                "" => "(missing)".into(),
                v => v.to_string(),
            },
            Field::Numeric(i) => num_text(b.numeric[i][row]),
        }
    }
}

fn hs_text(code: u64, digits: u8) -> String {
    format!("{code:0w$}", w = usize::from(digits))
}

fn num_text(v: f32) -> String {
    if v.is_nan() {
        "(missing)".into()
    } else {
        format!("{v}")
    }
}

fn pct(v: f32) -> String {
    format!("{:.1} %", f64::from(v) * 100.0)
}

fn key_fields(key: &[KeyPart]) -> Vec<Field> {
    key.iter()
        .map(|p| match p {
            KeyPart::Categorical(c) => Field::Categorical(*c),
            KeyPart::Hs(_) => Field::Hs,
        })
        .collect()
}

impl FeatureDef {
    /// Names of the raw schema fields this feature reads, deduplicated, in a fixed order
    /// (categorical, then numeric columns in schema order, the HS code, the date).
    pub fn inputs(&self, schema: &Schema) -> Vec<String> {
        self.fields().iter().map(|f| f.name(schema)).collect()
    }

    fn fields(&self) -> Vec<Field> {
        let mut f = match self {
            FeatureDef::Numeric { index, .. } => vec![Field::Numeric(*index)],
            FeatureDef::UnitValue {
                value_index,
                mass_index,
                ..
            } => vec![Field::Numeric(*value_index), Field::Numeric(*mass_index)],
            FeatureDef::RelUnitValue {
                value_index,
                mass_index,
                ..
            } => vec![
                Field::Numeric(*value_index),
                Field::Numeric(*mass_index),
                Field::Hs,
            ],
            FeatureDef::HsPrefix { .. } => vec![Field::Hs],
            FeatureDef::DayOfWeek { .. } | FeatureDef::Month { .. } => vec![Field::Date],
            FeatureDef::RiskRate { key, .. } | FeatureDef::RiskCount { key, .. } => key_fields(key),
        };
        f.sort_unstable();
        f.dedup();
        f
    }

    /// For a `RelUnitValue`: the median the row's HS code looks up (HS4 table, else HS2,
    /// else global) as (digits of the matched prefix, 0 for the global median; the median).
    /// `None` for other features.
    pub fn median_for(&self, hs: u64, width: u8) -> Option<(u8, f32)> {
        let FeatureDef::RelUnitValue {
            hs4_median,
            hs2_median,
            global_median,
            ..
        } = self
        else {
            return None;
        };
        let key = |d: u8| hs_prefix(hs, width, d).to_string();
        if width >= 4 {
            if let Some(m) = hs4_median.get(&key(4)) {
                return Some((4, *m));
            }
        }
        if let Some(m) = hs2_median.get(&key(2)) {
            return Some((2, *m));
        }
        Some((0, *global_median))
    }
}

#[derive(Debug, Clone)]
struct Group {
    fields: Vec<Field>,
    name: String,
    features: Vec<usize>,
}

/// The raw-field groups of a pipeline's features (see the module docs).
#[derive(Debug, Clone)]
pub struct ReasonGroups {
    groups: Vec<Group>,
    /// Group of each feature.
    of_feature: Vec<usize>,
}

impl ReasonGroups {
    pub fn new(p: &FittedPipeline) -> ReasonGroups {
        let mut groups: Vec<Group> = Vec::new();
        let mut of_feature = Vec::with_capacity(p.features.len());
        for (j, f) in p.features.iter().enumerate() {
            let fields = f.fields();
            let g = match groups.iter().position(|g| g.fields == fields) {
                Some(g) => g,
                None => {
                    let name = fields
                        .iter()
                        .map(|x| x.name(&p.schema))
                        .collect::<Vec<_>>()
                        .join(" × ");
                    groups.push(Group {
                        fields,
                        name,
                        features: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[g].features.push(j);
            of_feature.push(g);
        }
        ReasonGroups { groups, of_feature }
    }

    /// Group names, in order of their first feature.
    pub fn names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    /// Group of feature `j`.
    pub fn group_of(&self, j: usize) -> usize {
        self.of_feature[j]
    }

    /// Per-group sums of one row's feature contributions (`phi[j]` for feature `j`).
    pub fn sums(&self, phi: &[f64]) -> Vec<f64> {
        let mut s = vec![0.0; self.groups.len()];
        for (j, &v) in phi.iter().enumerate().take(self.of_feature.len()) {
            s[self.of_feature[j]] += v;
        }
        s
    }

    /// The `k` groups of largest |contribution| for `row` of `batch` (ties: group order),
    /// each with its values and sentence. `phi` holds the row's feature contributions.
    /// `batch` must be shaped for `p.schema` (as `transform` checks) and `row` in range.
    pub fn top(
        &self,
        p: &FittedPipeline,
        batch: &Batch,
        row: usize,
        phi: &[f64],
        k: usize,
    ) -> Vec<Reason> {
        let sums = self.sums(phi);
        let mut order: Vec<usize> = (0..sums.len()).collect();
        order.sort_by(|&a, &b| sums[b].abs().total_cmp(&sums[a].abs()).then(a.cmp(&b)));
        order
            .into_iter()
            .take(k)
            .map(|g| self.reason(p, batch, row, g, sums[g]))
            .collect()
    }

    fn reason(&self, p: &FittedPipeline, b: &Batch, row: usize, g: usize, c: f64) -> Reason {
        let gr = &self.groups[g];
        let s = &p.schema;
        let value = gr
            .fields
            .iter()
            .map(|f| f.value(s, b, row))
            .collect::<Vec<_>>()
            .join(" × ");
        let mut parts: Vec<String> = Vec::new();
        for &j in &gr.features {
            if let Some(t) = phrase(p, b, row, j) {
                if !parts.contains(&t) {
                    parts.push(t);
                }
            }
        }
        let text = if parts.is_empty() {
            format!("{} {value}", gr.name)
        } else {
            format!("{} {value}: {}", gr.name, parts.join("; "))
        };
        Reason {
            field: gr.name.clone(),
            value,
            contribution: c,
            text,
        }
    }
}

/// The phrase of feature `j` for `row`, from the pipeline's tables; `None` for a feature
/// whose phrase another one of its group gives (a risk count beside its rate).
fn phrase(p: &FittedPipeline, b: &Batch, row: usize, j: usize) -> Option<String> {
    let s = &p.schema;
    let w = s.hs_width;
    match &p.features[j] {
        FeatureDef::RiskRate {
            key,
            table,
            default,
            ..
        } => {
            let mut k = String::new();
            push_key(&mut k, key, w, b, row);
            let count = p.features.iter().find_map(|f| match f {
                FeatureDef::RiskCount {
                    key: ck, table: ct, ..
                } if ck == key => Some(ct.get(&k).copied()),
                _ => None,
            });
            let scope = if key.len() > 1 { "pair's " } else { "" };
            Some(match (table.get(&k), count.flatten()) {
                (Some(r), Some(n)) => format!(
                    "{scope}seizure rate {} over {n} labelled inspections, typical {}",
                    pct(*r),
                    pct(*default)
                ),
                (Some(r), None) => {
                    format!("{scope}seizure rate {}, typical {}", pct(*r), pct(*default))
                }
                (None, _) => format!(
                    "too few labelled inspections for a {scope}rate of its own (typical {} used)",
                    pct(*default)
                ),
            })
        }
        FeatureDef::RiskCount { key, table, .. } => {
            if p.features
                .iter()
                .any(|f| matches!(f, FeatureDef::RiskRate { key: rk, .. } if rk == key))
            {
                return None;
            }
            let mut k = String::new();
            push_key(&mut k, key, w, b, row);
            let n = table.get(&k).copied().unwrap_or(0.0);
            Some(format!("{n} labelled inspections"))
        }
        f @ FeatureDef::RelUnitValue {
            value_index,
            mass_index,
            ..
        } => {
            let uv = unit_value(b.numeric[*value_index][row], b.numeric[*mass_index][row]);
            let (digits, median) = f.median_for(b.hs[row], w)?;
            if uv.is_nan() {
                return Some("no unit value (value or mass missing, or mass 0)".into());
            }
            let ratio = rel_unit_value(uv, median);
            let of = match digits {
                0 => "all goods".to_string(),
                d => format!("HS {}", hs_text(hs_prefix(b.hs[row], w, d), d)),
            };
            Some(format!(
                "declared unit value {ratio:.2} × the median for {of} ({median})"
            ))
        }
        FeatureDef::UnitValue {
            value_index,
            mass_index,
            ..
        } => {
            let uv = unit_value(b.numeric[*value_index][row], b.numeric[*mass_index][row]);
            Some(format!("unit value {}", num_text(uv)))
        }
        FeatureDef::Numeric { .. } | FeatureDef::HsPrefix { .. } => None,
        FeatureDef::DayOfWeek { .. } => {
            const DAYS: [&str; 7] = [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ];
            let d = crate::calc::day_of_week(b.dates[row]) as usize;
            Some(format!("declared on a {}", DAYS[d.min(6)]))
        }
        FeatureDef::Month { .. } => None,
    }
}
