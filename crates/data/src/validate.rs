//! Cell- and row-level validation shared by the CSV, Parquet and JSON paths.
//!
//! Every reader turns a row into [`Cell`]s (borrowed, no allocation) and hands it to
//! [`Validator::push`], which either appends the row to a [`Batch`] or returns a [`Reject`]
//! listing every bad cell. The rules are documented on each `check_*` function.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::batch::Batch;
use crate::columns::ColumnMap;
use crate::reject::{Problem, Reject};
use crate::schema::{ymd_from_days, CategoricalColumn, LabelColumn, NumericColumn, Schema, Selection};

/// One cell as it arrives from a file or request, before validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Field absent from a JSON record.
    Absent,
    /// Null (Parquet, JSON).
    Null,
    Str(&'a str),
    /// CSV bytes that are not UTF-8.
    BadUtf8(&'a [u8]),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// A JSON array or object: never a valid cell.
    Nested(&'a serde_json::Value),
}

impl Cell<'_> {
    /// The cell as text, for reject reports (`None` for an absent field).
    pub(crate) fn display(&self) -> Option<String> {
        Some(match *self {
            Cell::Absent => return None,
            Cell::Null => String::new(),
            Cell::Str(s) => s.to_string(),
            Cell::BadUtf8(b) => String::from_utf8_lossy(b).into_owned(),
            Cell::Int(i) => i.to_string(),
            Cell::UInt(u) => u.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Date(d) => ymd_from_days(d),
            Cell::Nested(v) => v.to_string(),
        })
    }
}

/// A row of cells, indexed by the position in [`ColumnMap::names`].
pub(crate) trait Row {
    fn cell(&self, idx: usize) -> Cell<'_>;
    /// The original cells, for the reject file.
    fn raw(&self) -> Vec<String>;
}

/// Why a cell was rejected: a value-free category (for counting) and a full reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bad {
    pub category: &'static str,
    pub reason: String,
}

fn bad(category: &'static str, reason: impl Into<String>) -> Bad {
    Bad { category, reason: reason.into() }
}

fn missing() -> Bad {
    bad("missing value", "empty (missing values are not allowed in this column)")
}

fn bad_type(what: &str) -> Bad {
    bad("bad type", format!("expected {what}"))
}

/// `f` is a whole number that fits an i64.
fn integral(f: f64) -> Option<i64> {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
        Some(f as i64)
    } else {
        None
    }
}

/// Parse a trimmed, non-empty numeric text; NaN and infinities are rejected.
fn parse_finite(t: &str) -> Result<f64, Bad> {
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(bad("not finite", "NaN and infinite values are not accepted")),
        Err(_) => Err(bad("not a number", "not a number")),
    }
}

/// A finite number from a cell; `Ok(None)` for an empty cell.
fn number(cell: Cell) -> Result<Option<f64>, Bad> {
    match cell {
        Cell::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else {
                parse_finite(t).map(Some)
            }
        }
        Cell::Int(i) => Ok(Some(i as f64)),
        Cell::UInt(u) => Ok(Some(u as f64)),
        Cell::Float(f) if f.is_finite() => Ok(Some(f)),
        Cell::Float(_) => Err(bad("not finite", "NaN and infinite values are not accepted")),
        Cell::Null | Cell::Absent => Ok(None),
        Cell::BadUtf8(_) => Err(bad("invalid UTF-8", "invalid UTF-8")),
        Cell::Bool(_) | Cell::Date(_) | Cell::Nested(_) => Err(bad_type("a number")),
    }
}

/// Check a finite value against optional bounds and the f32 range.
fn in_range(v: f64, min: Option<f64>, max: Option<f64>) -> Result<f32, Bad> {
    if let Some(m) = min {
        if v < m {
            return Err(bad("below minimum", format!("below minimum {m}")));
        }
    }
    if let Some(m) = max {
        if v > m {
            return Err(bad("above maximum", format!("above maximum {m}")));
        }
    }
    if v.abs() > f32::MAX as f64 {
        return Err(bad("overflows f32", "too large for a 32-bit float"));
    }
    Ok(v as f32)
}

/// Text of an integral float the way an integer column would have written it.
fn float_text(f: f64) -> String {
    match integral(f) {
        Some(i) => i.to_string(),
        None => f.to_string(),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Fast path for exactly `YYYY-MM-DD` (same result as chrono with `%Y-%m-%d` on such text).
fn parse_iso(t: &[u8]) -> Option<i32> {
    if t.len() != 10 || t[4] != b'-' || t[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        t[r].iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u32))
    };
    let (y, m, d) = (num(0..4)? as i64, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

/// Parse a date with a chrono format.
fn parse_with_format(t: &str, format: &str) -> Option<i32> {
    use chrono::Datelike;
    let d = chrono::NaiveDate::parse_from_str(t, format).ok()?;
    i32::try_from(days_from_civil(d.year() as i64, d.month(), d.day())).ok()
}

/// 128-bit key of an id: two SipHash-1-3 values (fixed keys, so deterministic) of the text
/// with different prefixes.
fn id_key(id: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |tag: u8| {
        let mut h = std::hash::DefaultHasher::new();
        tag.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// Validates rows of one source (file or request) against a schema and a column layout.
pub(crate) struct Validator {
    schema: Schema,
    map: ColumnMap,
    /// 128-bit hash of an id -> line where it first appeared (all rows with a valid id,
    /// accepted or not). Hashing instead of keeping the text halves the allocations per row
    /// and bounds the memory at 24 bytes per id; two distinct ids collide with probability
    /// about n^2 / 2^129 (1e-22 for a billion rows).
    ids: HashMap<u128, u64>,
    dates: DateParser,
    problems: Vec<Problem>,
    cats: Vec<String>,
    nums: Vec<f32>,
}

/// Date checks with a one-entry cache (files are usually sorted by date).
struct DateParser {
    format: String,
    iso: bool,
    min: i32,
    max: i32,
    last_date: String,
    last_days: i32,
}

impl DateParser {
    /// Date: text in the schema's format (or a Parquet date), within `[date_min, date_max]`.
    fn check(&mut self, cell: Cell) -> Result<i32, Bad> {
        let days = match cell {
            Cell::Date(d) => d,
            Cell::Str(s) => {
                let t = s.trim();
                if t.is_empty() {
                    return Err(missing());
                }
                self.parse(t)?
            }
            Cell::Int(i) => self.parse(&i.to_string())?,
            Cell::UInt(u) => self.parse(&u.to_string())?,
            Cell::Null | Cell::Absent => return Err(missing()),
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Float(_) | Cell::Bool(_) | Cell::Nested(_) => return Err(bad_type("a date")),
        };
        if days < self.min {
            return Err(bad("date out of range", format!("before {}", ymd_from_days(self.min))));
        }
        if days > self.max {
            return Err(bad("date out of range", format!("after {}", ymd_from_days(self.max))));
        }
        Ok(days)
    }

    fn parse(&mut self, t: &str) -> Result<i32, Bad> {
        if t == self.last_date {
            return Ok(self.last_days);
        }
        let days = if self.iso { parse_iso(t.as_bytes()) } else { None }
            .or_else(|| parse_with_format(t, &self.format))
            .ok_or_else(|| bad("bad date", format!("not a date in format {}", self.format)))?;
        self.last_date.clear();
        self.last_date.push_str(t);
        self.last_days = days;
        Ok(days)
    }
}

impl Validator {
    pub(crate) fn new(schema: &Schema, map: ColumnMap) -> Validator {
        Validator {
            schema: schema.clone(),
            map,
            ids: HashMap::new(),
            dates: DateParser {
                format: schema.date_format.clone(),
                iso: schema.date_format == "%Y-%m-%d",
                min: schema.date_min,
                max: schema.date_max,
                last_date: String::new(),
                last_days: 0,
            },
            problems: Vec::new(),
            cats: Vec::with_capacity(schema.categorical.len()),
            nums: Vec::with_capacity(schema.numeric.len()),
        }
    }

    /// Identifier: trimmed, non-empty text (integers accepted as their decimal text).
    fn check_id(cell: Cell) -> Result<String, Bad> {
        match cell {
            Cell::Str(s) => {
                let t = s.trim();
                if t.is_empty() {
                    Err(missing())
                } else {
                    Ok(t.to_string())
                }
            }
            Cell::Int(i) => Ok(i.to_string()),
            Cell::UInt(u) => Ok(u.to_string()),
            Cell::Float(f) => integral(f).map(|i| i.to_string()).ok_or_else(|| bad_type("text or an integer")),
            Cell::Null | Cell::Absent => Err(missing()),
            Cell::BadUtf8(_) => Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Bool(_) | Cell::Date(_) | Cell::Nested(_) => Err(bad_type("text or an integer")),
        }
    }

    /// HS code: digits only, at most `hs_width` of them; `71080.0` (an integral float from a
    /// float-typed export) is accepted as 71080; stored as an integer (leading zeros implied).
    fn check_hs(cell: Cell, width: u8) -> Result<u64, Bad> {
        let hs_max = 10u64.pow(u32::from(width));
        let too_long = |v: u64| bad("bad HS code", format!("HS code {v} has more than {width} digits"));
        match cell {
            Cell::Str(s) => {
                let t = s.trim();
                if t.is_empty() {
                    return Err(missing());
                }
                let (int_part, frac) = match t.split_once('.') {
                    Some((a, b)) => (a, b),
                    None => (t, ""),
                };
                if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("bad HS code", "HS code must contain digits only"));
                }
                if !frac.bytes().all(|b| b == b'0') {
                    return Err(bad("bad HS code", "HS code is not a whole number"));
                }
                if int_part.len() > width as usize {
                    return Err(bad("bad HS code", format!("HS code has {} digits, more than {width}", int_part.len())));
                }
                int_part.parse::<u64>().map_err(|_| bad("bad HS code", "HS code must contain digits only"))
            }
            Cell::Int(i) if i >= 0 => {
                let v = i as u64;
                if v < hs_max { Ok(v) } else { Err(too_long(v)) }
            }
            Cell::UInt(v) => {
                if v < hs_max { Ok(v) } else { Err(too_long(v)) }
            }
            Cell::Float(f) => match integral(f) {
                Some(i) if i >= 0 && (i as u64) < hs_max => Ok(i as u64),
                Some(i) if i >= 0 => Err(too_long(i as u64)),
                _ => Err(bad("bad HS code", "HS code is not a non-negative whole number")),
            },
            Cell::Int(_) => Err(bad("bad HS code", "HS code is negative")),
            Cell::Null | Cell::Absent => Err(missing()),
            Cell::BadUtf8(_) => Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Bool(_) | Cell::Date(_) | Cell::Nested(_) => Err(bad_type("an HS code")),
        }
    }

    /// Numeric: finite, within the column's bounds and the f32 range; empty -> NaN only where
    /// the column allows missing values.
    fn check_num(cell: Cell, col: &NumericColumn) -> Result<f32, Bad> {
        match number(cell)? {
            None if col.allow_missing => Ok(f32::NAN),
            None => Err(missing()),
            Some(v) => in_range(v, col.min, col.max),
        }
    }

    /// Categorical: trimmed text (numbers as their text); empty -> "" where allowed.
    fn check_cat(cell: Cell, col: &CategoricalColumn) -> Result<String, Bad> {
        let s = match cell {
            Cell::Str(s) => s.trim().to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::UInt(u) => u.to_string(),
            Cell::Float(f) if f.is_nan() => String::new(),
            Cell::Float(f) => float_text(f),
            Cell::Bool(b) => b.to_string(),
            Cell::Date(d) => ymd_from_days(d),
            Cell::Null | Cell::Absent => String::new(),
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Nested(_) => return Err(bad_type("text")),
        };
        if s.is_empty() && !col.allow_missing {
            return Err(missing());
        }
        Ok(s)
    }

    /// Label: one of the positive / negative values; empty -> `None` where allowed.
    fn check_label(cell: Cell, l: &LabelColumn) -> Result<Option<bool>, Bad> {
        let owned;
        let s: &str = match cell {
            Cell::Str(s) => s.trim(),
            Cell::Int(i) => {
                owned = i.to_string();
                &owned
            }
            Cell::UInt(u) => {
                owned = u.to_string();
                &owned
            }
            Cell::Float(f) if f.is_nan() => "",
            Cell::Float(f) => {
                owned = float_text(f);
                &owned
            }
            Cell::Bool(b) => {
                let (word, digit) = if b { ("true", "1") } else { ("false", "0") };
                if l.positive.iter().chain(&l.negative).any(|v| v == word) { word } else { digit }
            }
            Cell::Null | Cell::Absent => "",
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Date(_) | Cell::Nested(_) => return Err(bad_type("a label value")),
        };
        if s.is_empty() {
            return if l.allow_missing { Ok(None) } else { Err(missing()) };
        }
        if l.positive.iter().any(|v| v == s) {
            Ok(Some(true))
        } else if l.negative.iter().any(|v| v == s) {
            Ok(Some(false))
        } else {
            Err(bad(
                "bad label",
                format!("not a label value (positive: {}; negative: {})", l.positive.join(", "), l.negative.join(", ")),
            ))
        }
    }

    /// Revenue: finite, >= 0, fits f32; empty -> `None`.
    fn check_revenue(cell: Cell) -> Result<Option<f32>, Bad> {
        number(cell)?.map(|v| in_range(v, Some(0.0), None)).transpose()
    }

    /// Inspected: 0/1, true/false, yes/no (any case); empty -> `None` (falls back to the label).
    fn check_inspected(cell: Cell) -> Result<Option<bool>, Bad> {
        let what = "0/1, true/false or yes/no";
        match cell {
            Cell::Str(s) => {
                let t = s.trim();
                let is = |w: &str| t.eq_ignore_ascii_case(w);
                if t.is_empty() {
                    Ok(None)
                } else if is("1") || is("true") || is("yes") {
                    Ok(Some(true))
                } else if is("0") || is("false") || is("no") {
                    Ok(Some(false))
                } else {
                    Err(bad("bad boolean", format!("expected {what}")))
                }
            }
            Cell::Bool(b) => Ok(Some(b)),
            Cell::Int(i) if i == 0 || i == 1 => Ok(Some(i == 1)),
            Cell::UInt(u) if u <= 1 => Ok(Some(u == 1)),
            Cell::Float(f) if f == 0.0 || f == 1.0 => Ok(Some(f == 1.0)),
            Cell::Float(f) if f.is_nan() => Ok(None),
            Cell::Null | Cell::Absent => Ok(None),
            Cell::BadUtf8(_) => Err(bad("invalid UTF-8", "invalid UTF-8")),
            _ => Err(bad("bad boolean", format!("expected {what}"))),
        }
    }

    /// Selection: rule / random / model / other (any case); empty -> `None`.
    fn check_selection(cell: Cell) -> Result<Option<Selection>, Bad> {
        match cell {
            Cell::Str(s) if s.trim().is_empty() => Ok(None),
            Cell::Str(s) => Selection::parse(s)
                .map(Some)
                .ok_or_else(|| bad("bad selection", "expected rule, random, model or other")),
            Cell::Null | Cell::Absent => Ok(None),
            Cell::BadUtf8(_) => Err(bad("invalid UTF-8", "invalid UTF-8")),
            _ => Err(bad_type("rule, random, model or other")),
        }
    }

    /// Propensity: a probability in (0, 1]; empty -> `None`.
    fn check_propensity(cell: Cell) -> Result<Option<f64>, Bad> {
        match number(cell)? {
            None => Ok(None),
            Some(p) if p > 0.0 && p <= 1.0 => Ok(Some(p)),
            Some(_) => Err(bad("bad propensity", "propensity must be in (0, 1]")),
        }
    }

    /// Validate one row. On success the row is appended to `batch` (shaped for the schema) and
    /// `None` is returned; otherwise nothing is appended and the row's [`Reject`] is returned.
    pub(crate) fn push<R: Row>(&mut self, row: &R, line: u64, batch: &mut Batch) -> Option<Reject> {
        let Validator { schema, map, ids, dates, problems, cats, nums } = self;
        problems.clear();
        cats.clear();
        nums.clear();

        // Record a bad cell; an absent field (JSON) is a problem of its own.
        fn note(problems: &mut Vec<Problem>, name: &str, cell: Cell, b: Bad) {
            let (category, reason) = match cell {
                Cell::Absent => ("missing field", "field is absent".to_string()),
                _ => (b.category, b.reason),
            };
            problems.push(Problem::new(Some(name), cell.display().as_deref(), category, reason));
        }

        let cell = row.cell(map.id);
        let id = match Self::check_id(cell) {
            Ok(id) => Some(id),
            Err(b) => {
                note(problems, &map.names[map.id], cell, b);
                None
            }
        };
        if let Some(id) = &id {
            match ids.entry(id_key(id)) {
                Entry::Occupied(first) => problems.push(Problem::new(
                    Some(&map.names[map.id]),
                    Some(id),
                    "duplicate id",
                    format!("duplicate id (first seen on line {})", first.get()),
                )),
                Entry::Vacant(v) => {
                    v.insert(line);
                }
            }
        }

        let cell = row.cell(map.date);
        let date = match dates.check(cell) {
            Ok(d) => Some(d),
            Err(b) => {
                note(problems, &map.names[map.date], cell, b);
                None
            }
        };

        let cell = row.cell(map.hs);
        let hs = match Self::check_hs(cell, schema.hs_width) {
            Ok(v) => Some(v),
            Err(b) => {
                note(problems, &map.names[map.hs], cell, b);
                None
            }
        };

        for (col, &idx) in schema.categorical.iter().zip(&map.categorical) {
            let cell = row.cell(idx);
            match Self::check_cat(cell, col) {
                Ok(s) => cats.push(s),
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
        }
        for (col, &idx) in schema.numeric.iter().zip(&map.numeric) {
            let cell = row.cell(idx);
            match Self::check_num(cell, col) {
                Ok(v) => nums.push(v),
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
        }

        let mut label = None;
        if let (Some(l), Some(idx)) = (&schema.label, map.label) {
            let cell = row.cell(idx);
            match Self::check_label(cell, l) {
                Ok(v) => label = v,
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
        }
        let mut revenue = None;
        if let Some(idx) = map.revenue {
            let cell = row.cell(idx);
            match Self::check_revenue(cell) {
                Ok(v) => revenue = v,
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
        }
        let mut inspected = None;
        if let Some(idx) = map.inspected {
            let cell = row.cell(idx);
            match Self::check_inspected(cell) {
                Ok(v) => inspected = v,
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
            if inspected == Some(false) && label.is_some() {
                problems.push(Problem::new(
                    Some(&map.names[idx]),
                    cell.display().as_deref(),
                    "inconsistent inspection",
                    "not inspected, but the row has a label",
                ));
            }
        }
        let mut selection = None;
        if let Some(idx) = map.selection {
            let cell = row.cell(idx);
            match Self::check_selection(cell) {
                Ok(v) => selection = v,
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
        }
        let mut propensity = None;
        if let Some(idx) = map.propensity {
            let cell = row.cell(idx);
            match Self::check_propensity(cell) {
                Ok(v) => propensity = v,
                Err(b) => note(problems, &map.names[idx], cell, b),
            }
        }

        match (id, date, hs) {
            (Some(id), Some(date), Some(hs)) if problems.is_empty() => {
                batch.lines.push(line);
                batch.ids.push(id);
                batch.dates.push(date);
                batch.hs.push(hs);
                for (dst, v) in batch.categorical.iter_mut().zip(cats.drain(..)) {
                    dst.push(v);
                }
                for (dst, &v) in batch.numeric.iter_mut().zip(nums.iter()) {
                    dst.push(v);
                }
                batch.inspected.push(inspected.unwrap_or(label.is_some()));
                batch.label.push(label);
                batch.revenue.push(revenue);
                batch.selection.push(selection);
                batch.propensity.push(propensity);
                None
            }
            _ => Some(Reject::from_problems(line, std::mem::take(problems), row.raw())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::days_from_ymd;

    #[test]
    fn civil_days_match_chrono() {
        for y in [1900, 1969, 1970, 1999, 2000, 2020, 2021, 2100] {
            for m in 1..=12 {
                for d in [1, 15, 28] {
                    assert_eq!(days_from_civil(y, m, d), days_from_ymd(y as i32, m, d).unwrap() as i64);
                }
            }
        }
        assert_eq!(parse_iso(b"2020-02-29"), days_from_ymd(2020, 2, 29));
        assert_eq!(parse_iso(b"2021-02-29"), None);
        assert_eq!(parse_iso(b"2021-13-01"), None);
        assert_eq!(parse_iso(b"2021-1-01x"), None);
        assert_eq!(parse_with_format("01/02/2021", "%d/%m/%Y"), days_from_ymd(2021, 2, 1));
    }

    #[test]
    fn numbers() {
        let col = NumericColumn { name: "m".into(), kind: crate::NumericKind::Mass, min: Some(0.0), max: Some(10.0), allow_missing: false };
        assert_eq!(Validator::check_num(Cell::Str(" 2.5 "), &col), Ok(2.5));
        for s in ["nan", "NaN", "inf", "-inf", "Infinity"] {
            assert_eq!(Validator::check_num(Cell::Str(s), &col).unwrap_err().category, "not finite", "{s}");
        }
        assert_eq!(Validator::check_num(Cell::Str("1,5"), &col).unwrap_err().category, "not a number");
        assert_eq!(Validator::check_num(Cell::Str("-3"), &col).unwrap_err().reason, "below minimum 0");
        assert_eq!(Validator::check_num(Cell::Str("11"), &col).unwrap_err().reason, "above maximum 10");
        assert_eq!(Validator::check_num(Cell::Str(""), &col).unwrap_err().category, "missing value");
        let open = NumericColumn { min: None, max: None, allow_missing: true, ..col };
        assert!(Validator::check_num(Cell::Str(""), &open).unwrap().is_nan());
        assert!(Validator::check_num(Cell::Null, &open).unwrap().is_nan());
        assert_eq!(Validator::check_num(Cell::Str("1e39"), &open).unwrap_err().category, "overflows f32");
        assert_eq!(Validator::check_num(Cell::Int(-4), &open), Ok(-4.0));
    }

    #[test]
    fn hs_codes() {
        let s = Schema::from_toml(
            "name='t'\nid={column='i'}\ndate={column='d'}\nhs_code={column='h', width=6}\n",
        )
        .unwrap();
        let w = s.hs_width;
        assert_eq!(Validator::check_hs(Cell::Str("71080"), w), Ok(71080));
        assert_eq!(Validator::check_hs(Cell::Str("071080"), w), Ok(71080));
        assert_eq!(Validator::check_hs(Cell::Str("71080.0"), w), Ok(71080));
        assert_eq!(Validator::check_hs(Cell::Float(71080.0), w), Ok(71080));
        assert_eq!(Validator::check_hs(Cell::Int(999_999), w), Ok(999_999));
        assert!(Validator::check_hs(Cell::Int(1_000_000), w).is_err());
        assert!(Validator::check_hs(Cell::Str("71080.5"), w).is_err());
        assert!(Validator::check_hs(Cell::Str("7108a"), w).is_err());
        assert!(Validator::check_hs(Cell::Str("-71080"), w).is_err());
        assert!(Validator::check_hs(Cell::Str("0071080"), w).is_err());
        assert!(Validator::check_hs(Cell::Str("7.1e4"), w).is_err());
        assert!(Validator::check_hs(Cell::Str(""), w).is_err());
    }

    #[test]
    fn labels_and_flags() {
        let l = LabelColumn { name: "f".into(), positive: vec!["1".into(), "Y".into()], negative: vec!["0".into()], allow_missing: true };
        assert_eq!(Validator::check_label(Cell::Str(" Y "), &l), Ok(Some(true)));
        assert_eq!(Validator::check_label(Cell::Int(0), &l), Ok(Some(false)));
        assert_eq!(Validator::check_label(Cell::Float(1.0), &l), Ok(Some(true)));
        assert_eq!(Validator::check_label(Cell::Bool(true), &l), Ok(Some(true)));
        assert_eq!(Validator::check_label(Cell::Str(""), &l), Ok(None));
        assert_eq!(Validator::check_label(Cell::Str("2"), &l).unwrap_err().category, "bad label");
        assert_eq!(Validator::check_inspected(Cell::Str("Yes")), Ok(Some(true)));
        assert_eq!(Validator::check_inspected(Cell::Str("FALSE")), Ok(Some(false)));
        assert!(Validator::check_inspected(Cell::Str("2")).is_err());
        assert_eq!(Validator::check_selection(Cell::Str("Random")), Ok(Some(Selection::Random)));
        assert!(Validator::check_selection(Cell::Str("lottery")).is_err());
        assert_eq!(Validator::check_propensity(Cell::Str("1")), Ok(Some(1.0)));
        assert!(Validator::check_propensity(Cell::Str("0")).is_err());
        assert!(Validator::check_propensity(Cell::Str("1.5")).is_err());
        assert_eq!(Validator::check_revenue(Cell::Str("")), Ok(None));
        assert!(Validator::check_revenue(Cell::Str("-1")).is_err());
    }
}
