//! Declaration schema: which column of a file plays which role.
//!
//! A schema is a TOML file (see `data/schemas/*.toml` and the README). It is parsed into
//! [`RawSchema`] (serde, `deny_unknown_fields`) and validated once into [`Schema`], the only
//! type the rest of the code sees.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Semantic kind of a categorical column. The feature pipeline uses it to decide which risk
/// profiles and pairs to build; `Other` columns still get a risk profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalKind {
    Office,
    Importer,
    Declarant,
    Seller,
    Courier,
    CountryOfOrigin,
    CountryOfDeparture,
    TransportMode,
    TaxType,
    Other,
}

/// Semantic kind of a numeric column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericKind {
    /// Declared customs value (any currency).
    Value,
    /// Net mass in kg.
    Mass,
    Quantity,
    /// Duty / tax rate in percent.
    TaxRate,
    Other,
}

/// How a declaration was selected for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Selected by a (legacy) risk rule.
    Rule,
    /// Selected by the random sample: the unbiased subset.
    Random,
    /// Selected by a model.
    Model,
    /// Inspected, reason unknown or other.
    Other,
}

impl Selection {
    pub fn parse(s: &str) -> Option<Selection> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rule" => Some(Selection::Rule),
            "random" => Some(Selection::Random),
            "model" => Some(Selection::Model),
            "other" => Some(Selection::Other),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::Rule => "rule",
            Selection::Random => "random",
            Selection::Model => "model",
            Selection::Other => "other",
        }
    }
}

// ---------------------------------------------------------------- raw (file) form

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchema {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub id: RawColumn,
    pub date: RawDate,
    pub hs_code: RawHs,
    #[serde(default)]
    pub categorical: Vec<RawCategorical>,
    #[serde(default)]
    pub numeric: Vec<RawNumeric>,
    #[serde(default)]
    pub label: Option<RawLabel>,
    #[serde(default)]
    pub revenue: Option<RawColumn>,
    #[serde(default)]
    pub inspection: Option<RawInspection>,
    /// Columns present in files but deliberately not used (e.g. a second label).
    #[serde(default)]
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    pub column: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDate {
    pub column: String,
    /// chrono format string; default `%Y-%m-%d`.
    #[serde(default)]
    pub format: Option<String>,
    /// Earliest accepted date (inclusive), default 1990-01-01.
    #[serde(default)]
    pub min: Option<String>,
    /// Latest accepted date (inclusive), default 2100-12-31.
    #[serde(default)]
    pub max: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHs {
    pub column: String,
    /// Number of digits of the code (6 for HS6, 10 for a national tariff line). A code of
    /// `width - 1` digits lost its leading zero (an integer-typed export) and is padded with
    /// one zero; any other length is a reject (see `longer`).
    pub width: u8,
    /// What to do with codes of more than `width` digits: `"reject"` (default) or
    /// `"truncate"` (keep the first `width` digits, e.g. 8-digit CN codes in an HS6 schema).
    #[serde(default)]
    pub longer: Option<HsLonger>,
}

/// What happens to an HS code with more digits than the schema's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HsLonger {
    /// The row is rejected.
    #[default]
    Reject,
    /// The code is cut to its first `width` digits (the HS prefix of a longer national code).
    Truncate,
}

/// Case folding of a categorical column, applied before every other rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// Cells are kept as they are (after trimming).
    #[default]
    Keep,
    /// ASCII letters are upper-cased (`"cn"` -> `"CN"`).
    Upper,
    /// ASCII letters are lower-cased.
    Lower,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategorical {
    pub column: String,
    #[serde(default)]
    pub kind: Option<CategoricalKind>,
    /// Empty cells allowed (kept as the missing category). Default true.
    #[serde(default)]
    pub allow_missing: Option<bool>,
    /// The known values (after `case`). A cell outside them is an unseen category: a warning
    /// counted by `validate`, a reject with `--strict-categories`.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// A regular expression (Rust `regex` syntax) every value must match as a whole (after
    /// `case`); a cell that does not is an unseen category, as for `values`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// `"upper"`, `"lower"` or `"keep"` (default): ASCII case folding before any other rule.
    #[serde(default)]
    pub case: Option<Case>,
    /// Replace every value by its keyed pseudonym when reading (HMAC-SHA256, see
    /// [`crate::pseudonym`]); the model, audit and reports then hold pseudonyms only.
    #[serde(default)]
    pub pseudonymise: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNumeric {
    pub column: String,
    #[serde(default)]
    pub kind: Option<NumericKind>,
    /// Smallest accepted value (inclusive). Default 0 for value, mass, quantity, tax rate.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Empty cells allowed (kept as NaN = missing). Default false.
    #[serde(default)]
    pub allow_missing: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabel {
    pub column: String,
    /// Cell values meaning seized / fraud. Default ["1"].
    #[serde(default)]
    pub positive: Option<Vec<String>>,
    /// Cell values meaning inspected and clean. Default ["0"].
    #[serde(default)]
    pub negative: Option<Vec<String>>,
    /// Empty cells allowed (= not inspected, no label). Default true.
    #[serde(default)]
    pub allow_missing: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInspection {
    /// 0/1 (or true/false) column: was the declaration physically inspected.
    #[serde(default)]
    pub inspected: Option<String>,
    /// rule | random | model | other (empty when not inspected).
    #[serde(default)]
    pub selection: Option<String>,
    /// Probability that the declaration was selected for inspection, in (0, 1].
    #[serde(default)]
    pub propensity: Option<String>,
}

// ---------------------------------------------------------------- validated form

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    pub name: String,
    pub kind: CategoricalKind,
    pub allow_missing: bool,
    /// Known values (after `case`), sorted, no duplicates; `None`: no list declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Whole-value regular expression (validated when the schema is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Case::is_keep")]
    pub case: Case,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pseudonymise: bool,
}

impl CategoricalColumn {
    /// A plain column: no domain, no case folding, no pseudonym.
    pub fn plain(name: &str, kind: CategoricalKind, allow_missing: bool) -> CategoricalColumn {
        CategoricalColumn {
            name: name.to_string(),
            kind,
            allow_missing,
            values: None,
            pattern: None,
            case: Case::Keep,
            pseudonymise: false,
        }
    }

    /// A domain (`values` or `pattern`) is declared, so unseen categories can be found.
    pub fn has_domain(&self) -> bool {
        self.values.is_some() || self.pattern.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    pub name: String,
    pub kind: NumericKind,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allow_missing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelColumn {
    pub name: String,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
    pub allow_missing: bool,
}

/// A validated schema. Column order inside each role is the order of the TOML file and is
/// the order of the corresponding vectors in [`crate::Batch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    pub id: String,
    pub date: String,
    pub date_format: String,
    /// Days since 1970-01-01, inclusive bounds.
    pub date_min: i32,
    pub date_max: i32,
    pub hs_code: String,
    pub hs_width: u8,
    /// Codes longer than `hs_width`: rejected or truncated.
    #[serde(default, skip_serializing_if = "HsLonger::is_reject")]
    pub hs_longer: HsLonger,
    pub categorical: Vec<CategoricalColumn>,
    pub numeric: Vec<NumericColumn>,
    pub label: Option<LabelColumn>,
    pub revenue: Option<String>,
    pub inspected: Option<String>,
    pub selection: Option<String>,
    pub propensity: Option<String>,
    pub ignore: Vec<String>,
    /// Fingerprint of the pseudonym key a model was trained with ([`Schema::keyed`]); a
    /// reader given another key refuses to read. Never set from a TOML file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym_fingerprint: Option<String>,
}

/// Days since 1970-01-01 of a calendar date.
pub fn days_from_ymd(y: i32, m: u32, d: u32) -> Option<i32> {
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// ISO `YYYY-MM-DD` string of days since 1970-01-01.
pub fn ymd_from_days(days: i32) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (epoch + chrono::Duration::days(days as i64))
        .format("%Y-%m-%d")
        .to_string()
}

fn parse_bound(s: &Option<String>, default: (i32, u32, u32), what: &str) -> Result<i32, DataError> {
    match s {
        None => days_from_ymd(default.0, default.1, default.2)
            .ok_or_else(|| DataError::schema(format!("bad default {what}"))),
        Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| {
                use chrono::Datelike;
                days_from_ymd(d.year(), d.month(), d.day())
            })
            .ok_or_else(|| DataError::schema(format!("date.{what} = {s:?} is not YYYY-MM-DD"))),
    }
}

/// Validate one `[[categorical]]` entry: values folded by `case`, sorted and deduplicated;
/// the pattern compiles and every listed value matches it.
fn categorical_column(c: &RawCategorical) -> Result<CategoricalColumn, DataError> {
    let case = c.case.unwrap_or_default();
    let values = c.values.as_ref().map(|vs| {
        let mut v: Vec<String> = vs.iter().map(|x| case.apply(x.trim())).collect();
        v.sort();
        v.dedup();
        v
    });
    if let Some(p) = &c.pattern {
        let re = crate::domain::whole_match(p).map_err(|e| {
            DataError::schema(format!(
                "categorical {:?}: pattern {p:?} is not a valid regular expression: {e}",
                c.column
            ))
        })?;
        if let Some(v) = values.iter().flatten().find(|v| !re.is_match(v)) {
            return Err(DataError::schema(format!(
                "categorical {:?}: listed value {v:?} does not match the pattern {p:?}",
                c.column
            )));
        }
    }
    if values.as_ref().is_some_and(|v| v.is_empty()) {
        return Err(DataError::schema(format!(
            "categorical {:?}: values = [] lists no value (leave it out instead)",
            c.column
        )));
    }
    Ok(CategoricalColumn {
        name: c.column.clone(),
        kind: c.kind.unwrap_or(CategoricalKind::Other),
        allow_missing: c.allow_missing.unwrap_or(true),
        values,
        pattern: c.pattern.clone(),
        case,
        pseudonymise: c.pseudonymise.unwrap_or(false),
    })
}

impl HsLonger {
    fn is_reject(&self) -> bool {
        *self == HsLonger::Reject
    }
}

impl Case {
    fn is_keep(&self) -> bool {
        *self == Case::Keep
    }

    /// `s` folded by this rule.
    pub fn apply(self, s: &str) -> String {
        match self {
            Case::Keep => s.to_string(),
            Case::Upper => s.to_ascii_uppercase(),
            Case::Lower => s.to_ascii_lowercase(),
        }
    }
}

impl Schema {
    /// The schema a model trained with `key` records: with the key's fingerprint when the
    /// schema pseudonymises columns (an error without a key), unchanged otherwise.
    pub fn keyed(mut self, key: Option<&crate::PseudonymKey>) -> Result<Schema, DataError> {
        if self.pseudonymised().is_empty() {
            return Ok(self);
        }
        let key = key.ok_or_else(|| crate::domain::no_key_error(&self))?;
        self.pseudonym_fingerprint = Some(key.fingerprint().to_string());
        Ok(self)
    }

    /// Categorical columns whose values are pseudonymised when read.
    pub fn pseudonymised(&self) -> Vec<&str> {
        self.categorical
            .iter()
            .filter(|c| c.pseudonymise)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Read and validate a schema TOML file.
    pub fn from_path(path: &Path) -> Result<Schema, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            DataError::io_source(format!("cannot read schema {}", path.display()), e)
        })?;
        Schema::from_toml(&text).map_err(|mut e| {
            e.message = format!("schema {}: {}", path.display(), e.message);
            e
        })
    }

    /// Parse and validate schema TOML text.
    pub fn from_toml(text: &str) -> Result<Schema, DataError> {
        let raw: RawSchema = toml::from_str(text).map_err(|e| DataError::schema(e.to_string()))?;
        Schema::from_raw(raw)
    }

    /// The one place schema validation happens.
    pub fn from_raw(raw: RawSchema) -> Result<Schema, DataError> {
        if let Some(f) = &raw.date.format {
            chrono::format::StrftimeItems::new(f).parse().map_err(|e| {
                DataError::schema(format!(
                    "date.format = {f:?} is not a valid chrono format: {e}"
                ))
            })?;
        }
        let date_min = parse_bound(&raw.date.min, (1990, 1, 1), "min")?;
        let date_max = parse_bound(&raw.date.max, (2100, 12, 31), "max")?;
        if date_min > date_max {
            return Err(DataError::schema("date.min is after date.max"));
        }
        if raw.hs_code.width == 0 || raw.hs_code.width > 12 || raw.hs_code.width & 1 == 1 {
            return Err(DataError::schema(format!(
                "hs_code.width = {} must be an even number of digits from 2 to 12",
                raw.hs_code.width
            )));
        }
        let categorical: Vec<CategoricalColumn> = raw
            .categorical
            .iter()
            .map(categorical_column)
            .collect::<Result<_, _>>()?;
        let numeric: Vec<NumericColumn> = raw
            .numeric
            .iter()
            .map(|n| {
                let kind = n.kind.unwrap_or(NumericKind::Other);
                let default_min = match kind {
                    NumericKind::Other => None,
                    _ => Some(0.0),
                };
                NumericColumn {
                    name: n.column.clone(),
                    kind,
                    min: n.min.or(default_min),
                    max: n.max,
                    allow_missing: n.allow_missing.unwrap_or(false),
                }
            })
            .collect();
        for kind in [NumericKind::Value, NumericKind::Mass] {
            if numeric.iter().filter(|n| n.kind == kind).count() > 1 {
                return Err(DataError::schema(format!(
                    "more than one numeric column of kind {kind:?}"
                )));
            }
        }
        let label = raw.label.map(|l| LabelColumn {
            name: l.column,
            positive: l.positive.unwrap_or_else(|| vec!["1".into()]),
            negative: l.negative.unwrap_or_else(|| vec!["0".into()]),
            allow_missing: l.allow_missing.unwrap_or(true),
        });
        if let Some(l) = &label {
            if let Some(v) = l.positive.iter().find(|v| l.negative.contains(v)) {
                return Err(DataError::schema(format!(
                    "label value {v:?} is both positive and negative"
                )));
            }
        }
        let insp = raw.inspection.unwrap_or(RawInspection {
            inspected: None,
            selection: None,
            propensity: None,
        });
        let schema = Schema {
            name: raw.name,
            id: raw.id.column,
            date: raw.date.column,
            date_format: raw.date.format.unwrap_or_else(|| "%Y-%m-%d".into()),
            date_min,
            date_max,
            hs_code: raw.hs_code.column,
            hs_width: raw.hs_code.width,
            hs_longer: raw.hs_code.longer.unwrap_or_default(),
            categorical,
            numeric,
            label,
            revenue: raw.revenue.map(|r| r.column),
            inspected: insp.inspected,
            selection: insp.selection,
            propensity: insp.propensity,
            ignore: raw.ignore,
            pseudonym_fingerprint: None,
        };
        let mut seen = BTreeSet::new();
        let mut dups = Vec::new();
        for c in schema.all_columns() {
            if !seen.insert(c) {
                dups.push(c.to_string());
            }
        }
        if !dups.is_empty() {
            return Err(DataError::schema(format!(
                "columns named more than once: {}",
                dups.join(", ")
            )));
        }
        Ok(schema)
    }

    /// Every column the schema names (used ones first, then ignored), in a stable order.
    pub fn all_columns(&self) -> Vec<&str> {
        let mut v: Vec<&str> = vec![&self.id, &self.date, &self.hs_code];
        v.extend(self.categorical.iter().map(|c| c.name.as_str()));
        v.extend(self.numeric.iter().map(|c| c.name.as_str()));
        v.extend(self.label.iter().map(|c| c.name.as_str()));
        v.extend(self.revenue.as_deref());
        v.extend(self.inspected.as_deref());
        v.extend(self.selection.as_deref());
        v.extend(self.propensity.as_deref());
        v.extend(self.ignore.iter().map(|s| s.as_str()));
        v
    }

    /// Columns a model needs at scoring time (no label, revenue or inspection columns).
    pub fn scoring_columns(&self) -> Vec<&str> {
        let mut v: Vec<&str> = vec![&self.id, &self.date, &self.hs_code];
        v.extend(self.categorical.iter().map(|c| c.name.as_str()));
        v.extend(self.numeric.iter().map(|c| c.name.as_str()));
        v
    }

    pub fn numeric_index(&self, kind: NumericKind) -> Option<usize> {
        self.numeric.iter().position(|n| n.kind == kind)
    }

    pub fn categorical_index(&self, kind: CategoricalKind) -> Option<usize> {
        self.categorical.iter().position(|c| c.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
name = "mini"
id = { column = "id" }
date = { column = "date" }
hs_code = { column = "hs", width = 6 }
categorical = [ { column = "importer", kind = "importer" }, { column = "office" } ]
numeric = [ { column = "value", kind = "value" }, { column = "mass", kind = "mass" } ]
label = { column = "fraud" }
"#;

    #[test]
    fn parses_and_defaults() {
        let s = Schema::from_toml(MINI).expect("valid");
        assert_eq!(s.categorical[1].kind, CategoricalKind::Other);
        assert_eq!(s.numeric[0].min, Some(0.0));
        assert_eq!(
            s.label.as_ref().map(|l| l.positive.clone()),
            Some(vec!["1".to_string()])
        );
        assert_eq!(s.date_min, days_from_ymd(1990, 1, 1).unwrap());
        assert_eq!(ymd_from_days(s.date_min), "1990-01-01");
    }

    #[test]
    fn rejects_unknown_keys_and_duplicates() {
        let bad = MINI.replace("name = \"mini\"", "name = \"mini\"\ncolour = 1");
        assert!(Schema::from_toml(&bad).is_err());
        let dup = MINI.replace("{ column = \"office\" }", "{ column = \"importer\" }");
        let err = Schema::from_toml(&dup).unwrap_err();
        assert!(err.message.contains("importer"), "{err}");
        let odd = MINI.replace("width = 6", "width = 5");
        assert!(Schema::from_toml(&odd).is_err());
        let fmt = MINI.replace(
            "{ column = \"date\" }",
            "{ column = \"date\", format = \"%Y-%Q\" }",
        );
        assert!(Schema::from_toml(&fmt)
            .unwrap_err()
            .message
            .contains("date.format"));
    }
}
