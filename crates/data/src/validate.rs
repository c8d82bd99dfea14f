//! Cell- and row-level validation shared by the CSV, Parquet and JSON paths.
//!
//! Every reader turns a row into [`Cell`]s (borrowed, no allocation) and hands it to
//! [`Checker::check`], which writes the row into a slot of a [`crate::Batch`] and lists every
//! bad cell; the reader then keeps the row or turns it into a [`crate::Reject`]. The rules
//! are documented on each `check_*` function.

use std::sync::Arc;

use crate::columns::ColumnMap;
use crate::domain::{Domain, Domains, Unseen};
use crate::ids::id_key;
use crate::reject::Problem;
use crate::schema::{
    ymd_from_days, CategoricalColumn, HsLonger, LabelColumn, NumericColumn, Schema, Selection,
};
use crate::slots::Slots;

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
    Bad {
        category,
        reason: reason.into(),
    }
}

fn missing() -> Bad {
    bad(
        "missing value",
        "empty (missing values are not allowed in this column)",
    )
}

fn bad_type(what: &str) -> Bad {
    bad("bad type", format!("expected {what}"))
}

/// `str::trim` (Unicode whitespace), with a fast path for the usual cell that starts and
/// ends with a visible ASCII character.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&b)) if (0x21..0x80).contains(&a) && (0x21..0x80).contains(&b) => s,
        _ => s.trim(),
    }
}

/// `f` is a whole number that fits an i64.
fn integral(f: f64) -> Option<i64> {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
        Some(f as i64)
    } else {
        None
    }
}

/// `digits[.digits]` with at most 15 digits in all, exactly as `str::parse::<f64>` reads it:
/// the digits as an integer `w < 10^15 < 2^53` and `10^k` (k <= 15) are exact doubles, so
/// `w / 10^k` is one correctly rounded division, the correctly rounded value of the text
/// (Clinger's fast path). `None` for anything else (signs, exponents, more digits, ...).
fn parse_simple_decimal(t: &str) -> Option<f64> {
    const P10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let b = t.as_bytes();
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let (mut w, mut frac, mut point, mut digits) = (0u64, 0usize, false, 0usize);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                w = w * 10 + u64::from(c - b'0');
                digits += 1;
                frac += usize::from(point);
            }
            // a point between digits only ("5." and ".5" go to the general parser)
            b'.' if !point && i > 0 && i + 1 < b.len() => point = true,
            _ => return None,
        }
    }
    if digits > 15 {
        return None;
    }
    Some(w as f64 / P10[frac])
}

/// Parse a trimmed, non-empty numeric text; NaN and infinities are rejected.
fn parse_finite(t: &str) -> Result<f64, Bad> {
    if let Some(v) = parse_simple_decimal(t) {
        return Ok(v);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(bad(
            "not finite",
            "NaN and infinite values are not accepted",
        )),
        Err(_) => Err(bad("not a number", "not a number")),
    }
}

/// A finite number from a cell; `Ok(None)` for an empty cell.
fn number(cell: Cell) -> Result<Option<f64>, Bad> {
    match cell {
        Cell::Str(s) => {
            let t = trim(s);
            if t.is_empty() {
                Ok(None)
            } else {
                parse_finite(t).map(Some)
            }
        }
        Cell::Int(i) => Ok(Some(i as f64)),
        Cell::UInt(u) => Ok(Some(u as f64)),
        Cell::Float(f) if f.is_finite() => Ok(Some(f)),
        Cell::Float(_) => Err(bad(
            "not finite",
            "NaN and infinite values are not accepted",
        )),
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
        t[r].iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u32)
        })
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

/// What a file's rows are checked against: the schema and where its columns sit. Shared,
/// read-only, by the threads validating one file.
pub(crate) struct Rules {
    pub schema: Schema,
    pub map: ColumnMap,
    /// Categorical case, domain and pseudonym rules.
    pub domains: Arc<Domains>,
}

impl Rules {
    /// The problem of a row whose id was first seen on line `first`.
    pub(crate) fn duplicate(&self, id: &str, first: u64) -> Problem {
        Problem::new(
            Some(&self.map.names[self.map.id]),
            Some(id),
            "duplicate id",
            format!("duplicate id (first seen on line {first})"),
        )
    }
}

/// Per-thread validation state: a date cache and the problems of the last checked row.
pub(crate) struct Checker {
    dates: DateParser,
    /// Problems of the last row given to [`Checker::check`] (empty: the row is good).
    pub problems: Vec<Problem>,
    /// Unseen categories met so far, per categorical column (warnings; with strict
    /// categories they are problems instead). Drained by the reader into its chunk.
    pub unseen: Vec<Unseen>,
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
                let t = trim(s);
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
            return Err(bad(
                "date out of range",
                format!("before {}", ymd_from_days(self.min)),
            ));
        }
        if days > self.max {
            return Err(bad(
                "date out of range",
                format!("after {}", ymd_from_days(self.max)),
            ));
        }
        Ok(days)
    }

    fn parse(&mut self, t: &str) -> Result<i32, Bad> {
        if t == self.last_date {
            return Ok(self.last_days);
        }
        let days = if self.iso {
            parse_iso(t.as_bytes())
        } else {
            None
        }
        .or_else(|| parse_with_format(t, &self.format))
        .ok_or_else(|| bad("bad date", format!("not a date in format {}", self.format)))?;
        self.last_date.clear();
        self.last_date.push_str(t);
        self.last_days = days;
        Ok(days)
    }
}

impl Checker {
    pub(crate) fn new(schema: &Schema) -> Checker {
        Checker {
            dates: DateParser {
                format: schema.date_format.clone(),
                iso: schema.date_format == "%Y-%m-%d",
                min: schema.date_min,
                max: schema.date_max,
                last_date: String::new(),
                last_days: 0,
            },
            problems: Vec::new(),
            unseen: vec![Unseen::default(); schema.categorical.len()],
        }
    }

    /// Identifier: trimmed, non-empty text (integers accepted as their decimal text), written
    /// to `out`.
    fn check_id(cell: Cell, out: &mut String) -> Result<(), Bad> {
        out.clear();
        match cell {
            Cell::Str(s) => {
                let t = trim(s);
                if t.is_empty() {
                    return Err(missing());
                }
                out.push_str(t);
            }
            Cell::Int(i) => push_display(out, i),
            Cell::UInt(u) => push_display(out, u),
            Cell::Float(f) => match integral(f) {
                Some(i) => push_display(out, i),
                None => return Err(bad_type("text or an integer")),
            },
            Cell::Null | Cell::Absent => return Err(missing()),
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Bool(_) | Cell::Date(_) | Cell::Nested(_) => {
                return Err(bad_type("text or an integer"))
            }
        }
        Ok(())
    }

    /// HS code: digits only (`71080.0`, an integral float from a float-typed export, is
    /// 71080), stored as an integer with leading zeros implied. HS-based codes have an even
    /// number of digits, so a code of odd length that does not start with 0 lost exactly one
    /// leading zero (an integer-typed export) and gets it back; then a code of `width`
    /// digits is kept, a longer one is cut to its first `width` digits when the schema says
    /// `longer = "truncate"` (else rejected), and a shorter one is rejected: an 8-digit CN
    /// code in a 10-digit column is not padded into chapter 00.
    fn check_hs(cell: Cell, width: u8, longer: HsLonger) -> Result<u64, Bad> {
        let owned;
        let digits: &str = match cell {
            Cell::Str(s) => {
                let t = trim(s);
                if t.is_empty() {
                    return Err(missing());
                }
                let (int_part, frac) = match t.split_once('.') {
                    Some((a, b)) => (a, b),
                    None => (t, ""),
                };
                if int_part.is_empty()
                    || !int_part.bytes().all(|b| b.is_ascii_digit())
                    || !frac.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad("bad HS code", "HS code must contain digits only"));
                }
                if !frac.bytes().all(|b| b == b'0') {
                    return Err(bad("bad HS code", "HS code is not a whole number"));
                }
                int_part
            }
            Cell::Int(i) if i >= 0 => {
                owned = i.to_string();
                &owned
            }
            Cell::UInt(v) => {
                owned = v.to_string();
                &owned
            }
            Cell::Float(f) => match integral(f) {
                Some(i) if i >= 0 => {
                    owned = i.to_string();
                    &owned
                }
                _ => {
                    return Err(bad(
                        "bad HS code",
                        "HS code is not a non-negative whole number",
                    ))
                }
            },
            Cell::Int(_) => return Err(bad("bad HS code", "HS code is negative")),
            Cell::Null | Cell::Absent => return Err(missing()),
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Bool(_) | Cell::Date(_) | Cell::Nested(_) => return Err(bad_type("an HS code")),
        };
        hs_from_digits(digits, width, longer)
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

    /// Categorical: trimmed text (numbers as their text), folded by the column's `case`,
    /// written to `out`; empty -> "" where allowed. Then the domain (see [`crate::domain`]):
    /// an unseen category is counted in `unseen`, or is a bad cell when `strict`; last the
    /// pseudonym.
    fn check_cat(
        cell: Cell,
        col: &CategoricalColumn,
        dom: &Domain,
        strict: bool,
        unseen: &mut Unseen,
        out: &mut String,
    ) -> Result<(), Bad> {
        Self::cat_text(cell, col, out)?;
        if !dom.fold_and_check(out) {
            if strict {
                return Err(bad(
                    "unseen category",
                    "not in the column's declared values / pattern (--strict-categories)",
                ));
            }
            dom.pseudonymise(out);
            unseen.add(out, 1);
            return Ok(());
        }
        dom.pseudonymise(out);
        Ok(())
    }

    fn cat_text(cell: Cell, col: &CategoricalColumn, out: &mut String) -> Result<(), Bad> {
        out.clear();
        match cell {
            Cell::Str(s) => out.push_str(trim(s)),
            Cell::Int(i) => push_display(out, i),
            Cell::UInt(u) => push_display(out, u),
            Cell::Float(f) if f.is_nan() => {}
            Cell::Float(f) => out.push_str(&float_text(f)),
            Cell::Bool(b) => push_display(out, b),
            Cell::Date(d) => out.push_str(&ymd_from_days(d)),
            Cell::Null | Cell::Absent => {}
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Nested(_) => return Err(bad_type("text")),
        }
        if out.is_empty() && !col.allow_missing {
            return Err(missing());
        }
        Ok(())
    }

    /// Label: one of the positive / negative values; empty -> `None` where allowed.
    fn check_label(cell: Cell, l: &LabelColumn) -> Result<Option<bool>, Bad> {
        let owned;
        let s: &str = match cell {
            Cell::Str(s) => trim(s),
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
                if l.positive.iter().chain(&l.negative).any(|v| v == word) {
                    word
                } else {
                    digit
                }
            }
            Cell::Null | Cell::Absent => "",
            Cell::BadUtf8(_) => return Err(bad("invalid UTF-8", "invalid UTF-8")),
            Cell::Date(_) | Cell::Nested(_) => return Err(bad_type("a label value")),
        };
        if s.is_empty() {
            return if l.allow_missing {
                Ok(None)
            } else {
                Err(missing())
            };
        }
        if l.positive.iter().any(|v| v == s) {
            Ok(Some(true))
        } else if l.negative.iter().any(|v| v == s) {
            Ok(Some(false))
        } else {
            Err(bad(
                "bad label",
                format!(
                    "not a label value (positive: {}; negative: {})",
                    l.positive.join(", "),
                    l.negative.join(", ")
                ),
            ))
        }
    }

    /// Revenue: finite, >= 0, fits f32; empty -> `None`.
    fn check_revenue(cell: Cell) -> Result<Option<f32>, Bad> {
        number(cell)?
            .map(|v| in_range(v, Some(0.0), None))
            .transpose()
    }

    /// Inspected: 0/1, true/false, yes/no (any case); empty -> `None` (falls back to the label).
    fn check_inspected(cell: Cell) -> Result<Option<bool>, Bad> {
        let what = "0/1, true/false or yes/no";
        match cell {
            Cell::Str(s) => {
                let t = trim(s);
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
            Cell::Str(s) if trim(s).is_empty() => Ok(None),
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

    /// Validate one row into slot `i` of `out`. Afterwards `self.problems` lists every bad
    /// cell in schema column order (empty: the row is good and slot `i` holds it; otherwise
    /// the slot holds leftovers). Returns the id's key when the id itself is valid; the
    /// duplicate-id rule is the caller's (see [`crate::ids`]).
    pub(crate) fn check<R: Row>(
        &mut self,
        rules: &Rules,
        row: &R,
        line: u64,
        out: &mut Slots,
        i: usize,
    ) -> Option<u128> {
        let Rules {
            schema,
            map,
            domains,
        } = rules;
        let Checker {
            dates,
            problems,
            unseen,
        } = self;
        problems.clear();

        // Record a bad cell; an absent field (JSON) is a problem of its own.
        fn note(problems: &mut Vec<Problem>, name: &str, cell: Cell, b: Bad) {
            let (category, reason) = match cell {
                Cell::Absent => ("missing field", "field is absent".to_string()),
                _ => (b.category, b.reason),
            };
            problems.push(Problem::new(
                Some(name),
                cell.display().as_deref(),
                category,
                reason,
            ));
        }

        let cell = row.cell(map.id);
        let key = match Self::check_id(cell, &mut out.ids[i]) {
            Ok(()) => Some(id_key(&out.ids[i])),
            Err(b) => {
                note(problems, &map.names[map.id], cell, b);
                None
            }
        };

        let cell = row.cell(map.date);
        match dates.check(cell) {
            Ok(d) => out.dates[i] = d,
            Err(b) => note(problems, &map.names[map.date], cell, b),
        }

        let cell = row.cell(map.hs);
        match Self::check_hs(cell, schema.hs_width, schema.hs_longer) {
            Ok(v) => out.hs[i] = v,
            Err(b) => note(problems, &map.names[map.hs], cell, b),
        }

        for ((((col, &idx), dst), dom), seen) in schema
            .categorical
            .iter()
            .zip(&map.categorical)
            .zip(out.categorical.iter_mut())
            .zip(&domains.columns)
            .zip(unseen.iter_mut())
        {
            let cell = row.cell(idx);
            if let Err(b) = Self::check_cat(cell, col, dom, domains.strict, seen, &mut dst[i]) {
                note(problems, &map.names[idx], cell, b);
            }
        }
        for ((col, &idx), dst) in schema
            .numeric
            .iter()
            .zip(&map.numeric)
            .zip(out.numeric.iter_mut())
        {
            let cell = row.cell(idx);
            match Self::check_num(cell, col) {
                Ok(v) => dst[i] = v,
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

        out.lines[i] = line;
        out.inspected[i] = inspected.unwrap_or(label.is_some());
        out.label[i] = label;
        out.revenue[i] = revenue;
        out.selection[i] = selection;
        out.propensity[i] = propensity;
        key
    }
}

/// The HS rule of [`Checker::check_hs`] on a code's decimal digits.
fn hs_from_digits(digits: &str, width: u8, longer: HsLonger) -> Result<u64, Bad> {
    let w = usize::from(width);
    let n = digits.len();
    let lost_zero = n % 2 == 1 && !digits.starts_with('0');
    let full = n + usize::from(lost_zero);
    let wrong = |what: &str| {
        let hint = if n % 2 == 1 && digits.starts_with('0') {
            " (an odd number of digits starting with 0)"
        } else {
            ""
        };
        bad(
            "bad HS code",
            format!("HS code has {n} digits{hint}; this column holds {width}-digit codes{what}"),
        )
    };
    if n % 2 == 1 && !lost_zero {
        return Err(wrong(""));
    }
    if full < w {
        return Err(wrong(""));
    }
    // The first `w` digits of the full (zero-restored) code.
    let keep = if full > w {
        if longer != HsLonger::Truncate {
            return Err(wrong(" (longer = \"truncate\" keeps the first digits)"));
        }
        &digits[..w - usize::from(lost_zero)]
    } else {
        digits
    };
    keep.parse::<u64>()
        .map_err(|_| bad("bad HS code", "HS code must contain digits only"))
}

/// Append `v`'s text to `out`.
fn push_display(out: &mut String, v: impl std::fmt::Display) {
    use std::fmt::Write as _;
    let _ = write!(out, "{v}");
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
                    assert_eq!(
                        days_from_civil(y, m, d),
                        days_from_ymd(y as i32, m, d).unwrap() as i64
                    );
                }
            }
        }
        assert_eq!(parse_iso(b"2020-02-29"), days_from_ymd(2020, 2, 29));
        assert_eq!(parse_iso(b"2021-02-29"), None);
        assert_eq!(parse_iso(b"2021-13-01"), None);
        assert_eq!(parse_iso(b"2021-1-01x"), None);
        assert_eq!(
            parse_with_format("01/02/2021", "%d/%m/%Y"),
            days_from_ymd(2021, 2, 1)
        );
    }

    /// The fast decimal path reads exactly what `str::parse::<f64>` reads (random digit
    /// strings with and without a point, up to and past 15 digits), and declines the rest.
    #[test]
    fn simple_decimals_equal_std_parse() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..200_000 {
            let n = 1 + next(17) as usize;
            let mut t: String = (0..n).map(|_| char::from(b'0' + next(10) as u8)).collect();
            if n > 1 && next(3) > 0 {
                let at = 1 + next(n as u64 - 1) as usize;
                t.insert(at, '.');
            }
            let want = t.parse::<f64>().unwrap();
            if let Some(v) = parse_simple_decimal(&t) {
                assert_eq!(v.to_bits(), want.to_bits(), "{t}");
            }
            assert_eq!(parse_finite(&t).unwrap().to_bits(), want.to_bits(), "{t}");
        }
        for t in [
            "5.",
            ".5",
            "-1",
            "+1",
            "1e5",
            "1.2.3",
            "",
            "1_0",
            "0x1",
            "inf",
            "1234567890123456",
        ] {
            assert_eq!(parse_simple_decimal(t), None, "{t}");
        }
        assert_eq!(parse_simple_decimal("6538.33"), Some(6538.33));
        assert_eq!(parse_simple_decimal("007"), Some(7.0));
    }

    #[test]
    fn numbers() {
        let col = NumericColumn {
            name: "m".into(),
            kind: crate::NumericKind::Mass,
            min: Some(0.0),
            max: Some(10.0),
            allow_missing: false,
        };
        assert_eq!(Checker::check_num(Cell::Str(" 2.5 "), &col), Ok(2.5));
        for s in ["nan", "NaN", "inf", "-inf", "Infinity"] {
            assert_eq!(
                Checker::check_num(Cell::Str(s), &col).unwrap_err().category,
                "not finite",
                "{s}"
            );
        }
        assert_eq!(
            Checker::check_num(Cell::Str("1,5"), &col)
                .unwrap_err()
                .category,
            "not a number"
        );
        assert_eq!(
            Checker::check_num(Cell::Str("-3"), &col)
                .unwrap_err()
                .reason,
            "below minimum 0"
        );
        assert_eq!(
            Checker::check_num(Cell::Str("11"), &col)
                .unwrap_err()
                .reason,
            "above maximum 10"
        );
        assert_eq!(
            Checker::check_num(Cell::Str(""), &col)
                .unwrap_err()
                .category,
            "missing value"
        );
        let open = NumericColumn {
            min: None,
            max: None,
            allow_missing: true,
            ..col
        };
        assert!(Checker::check_num(Cell::Str(""), &open).unwrap().is_nan());
        assert!(Checker::check_num(Cell::Null, &open).unwrap().is_nan());
        assert_eq!(
            Checker::check_num(Cell::Str("1e39"), &open)
                .unwrap_err()
                .category,
            "overflows f32"
        );
        assert_eq!(Checker::check_num(Cell::Int(-4), &open), Ok(-4.0));
    }

    #[test]
    fn hs_codes() {
        let s = Schema::from_toml(
            "name='t'\nid={column='i'}\ndate={column='d'}\nhs_code={column='h', width=6}\n",
        )
        .unwrap();
        let (w, r) = (s.hs_width, s.hs_longer);
        assert_eq!(r, HsLonger::Reject, "default");
        assert_eq!(Checker::check_hs(Cell::Str("71080"), w, r), Ok(71080));
        assert_eq!(Checker::check_hs(Cell::Str("071080"), w, r), Ok(71080));
        assert_eq!(Checker::check_hs(Cell::Str("71080.0"), w, r), Ok(71080));
        assert_eq!(Checker::check_hs(Cell::Float(71080.0), w, r), Ok(71080));
        assert_eq!(Checker::check_hs(Cell::Int(999_999), w, r), Ok(999_999));
        assert_eq!(Checker::check_hs(Cell::Int(10_121), w, r), Ok(10_121));
        assert!(Checker::check_hs(Cell::Int(1_000_000), w, r).is_err());
        assert!(Checker::check_hs(Cell::Str("71080.5"), w, r).is_err());
        assert!(Checker::check_hs(Cell::Str("7108a"), w, r).is_err());
        assert!(Checker::check_hs(Cell::Str("-71080"), w, r).is_err());
        assert!(Checker::check_hs(Cell::Str("0071080"), w, r).is_err());
        assert!(Checker::check_hs(Cell::Str("7.1e4"), w, r).is_err());
        assert!(Checker::check_hs(Cell::Str(""), w, r).is_err());
    }

    /// Every length of a code against widths 6 and 10, from the rule's statement: a code of
    /// `width` digits is kept; `width - 1` digits not starting with 0 lost one zero; other
    /// lengths are rejected, except longer ones with `truncate` (first `width` digits of the
    /// zero-restored code). An 8-digit CN code in a 10-digit column is never "00xxxxxxxx".
    #[test]
    fn hs_lengths_from_first_principles() {
        let digits = "12345678901234";
        for width in [6u8, 10] {
            let w = usize::from(width);
            for n in 1..=14usize {
                for lead_zero in [false, true] {
                    let code = if lead_zero {
                        format!("0{}", &digits[..n - 1])
                    } else {
                        digits[..n].to_string()
                    };
                    // the code with its leading zero back, when one was lost
                    let full = if n % 2 == 1 && !lead_zero {
                        format!("0{code}")
                    } else {
                        code.clone()
                    };
                    let ok_len = n % 2 == 0 || !lead_zero;
                    for longer in [HsLonger::Reject, HsLonger::Truncate] {
                        let want: Option<u64> = if !ok_len || full.len() < w {
                            None
                        } else if full.len() == w {
                            Some(full.parse().unwrap())
                        } else if longer == HsLonger::Truncate {
                            Some(full[..w].parse().unwrap())
                        } else {
                            None
                        };
                        let got = Checker::check_hs(Cell::Str(&code), width, longer).ok();
                        assert_eq!(got, want, "code {code} width {width} {longer:?}");
                        if !lead_zero {
                            // an integer-typed cell holds the same digits
                            let v: i64 = code.parse().unwrap();
                            let got = Checker::check_hs(Cell::Int(v), width, longer).ok();
                            assert_eq!(got, want, "int {code} width {width} {longer:?}");
                        }
                    }
                }
            }
        }
        // the cases named in the issue
        let cn = Checker::check_hs(Cell::Str("85171300"), 10, HsLonger::Reject).unwrap_err();
        assert!(cn.reason.contains("8 digits"), "{}", cn.reason);
        assert_eq!(
            Checker::check_hs(Cell::Str("8517130000"), 6, HsLonger::Truncate),
            Ok(851_713)
        );
        assert_eq!(
            Checker::check_hs(Cell::Int(101_210_000), 6, HsLonger::Truncate),
            Ok(10_121),
            "a 10-digit code of chapter 01 that lost its zero keeps chapter 01"
        );
    }

    #[test]
    fn labels_and_flags() {
        let l = LabelColumn {
            name: "f".into(),
            positive: vec!["1".into(), "Y".into()],
            negative: vec!["0".into()],
            allow_missing: true,
        };
        assert_eq!(Checker::check_label(Cell::Str(" Y "), &l), Ok(Some(true)));
        assert_eq!(Checker::check_label(Cell::Int(0), &l), Ok(Some(false)));
        assert_eq!(Checker::check_label(Cell::Float(1.0), &l), Ok(Some(true)));
        assert_eq!(Checker::check_label(Cell::Bool(true), &l), Ok(Some(true)));
        assert_eq!(Checker::check_label(Cell::Str(""), &l), Ok(None));
        assert_eq!(
            Checker::check_label(Cell::Str("2"), &l)
                .unwrap_err()
                .category,
            "bad label"
        );
        assert_eq!(Checker::check_inspected(Cell::Str("Yes")), Ok(Some(true)));
        assert_eq!(
            Checker::check_inspected(Cell::Str("FALSE")),
            Ok(Some(false))
        );
        assert!(Checker::check_inspected(Cell::Str("2")).is_err());
        assert_eq!(
            Checker::check_selection(Cell::Str("Random")),
            Ok(Some(Selection::Random))
        );
        assert!(Checker::check_selection(Cell::Str("lottery")).is_err());
        assert_eq!(Checker::check_propensity(Cell::Str("1")), Ok(Some(1.0)));
        assert!(Checker::check_propensity(Cell::Str("0")).is_err());
        assert!(Checker::check_propensity(Cell::Str("1.5")).is_err());
        assert_eq!(Checker::check_revenue(Cell::Str("")), Ok(None));
        assert!(Checker::check_revenue(Cell::Str("-1")).is_err());
    }
}
