//! Watch lists: CSV files of importers, declarants, sellers, countries or HS prefixes, each
//! entry with optional validity dates.
//!
//! Format: a header line `value[,valid_from][,valid_to]` (any order of the two date columns,
//! both optional), one entry per line; dates are `YYYY-MM-DD`, inclusive, an empty cell is an
//! open end. An entry may repeat with other windows (it applies when any window covers the
//! declaration's date). Any malformed line (wrong number of fields, empty value, bad date,
//! `valid_from` after `valid_to`, an HS prefix that is not 1 to `hs_width` digits) is a load
//! error naming the file and the line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::error::{ErrorKind, Location, PolicyError};

/// What a watch list holds, and so which fields it can be applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Importer,
    Declarant,
    Seller,
    /// ISO country codes: applies to origin and departure country fields.
    Country,
    /// HS code prefixes (digits): applies to `hs_code`, matching by prefix.
    HsPrefix,
}

impl ListKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Importer => "importer",
            ListKind::Declarant => "declarant",
            ListKind::Seller => "seller",
            ListKind::Country => "country",
            ListKind::HsPrefix => "hs_prefix",
        }
    }
}

/// Inclusive day windows (days since 1970-01-01); `[(MIN, MAX)]` = always.
pub(crate) type Windows = Vec<(i32, i32)>;

pub(crate) fn covers(w: &Windows, day: i32) -> bool {
    w.iter().any(|&(a, b)| a <= day && day <= b)
}

/// A loaded watch list.
#[derive(Debug, Clone)]
pub struct WatchList {
    pub name: String,
    pub kind: ListKind,
    pub file: PathBuf,
    /// Entries read (lines after the header).
    pub entries: usize,
    /// Categorical lists: value -> validity windows.
    pub(crate) values: HashMap<Box<str>, Windows, Xxh3DefaultBuilder>,
    /// HS prefix lists: per prefix length L (digits), `hs / 10^(width - L)` -> windows.
    pub(crate) prefixes: Vec<(u64, HashMap<u64, Windows, Xxh3DefaultBuilder>)>,
}

impl WatchList {
    /// Whether the categorical `value` is on the list on `day`.
    #[inline]
    pub(crate) fn has_value(&self, value: &str, day: i32) -> bool {
        self.values.get(value).is_some_and(|w| covers(w, day))
    }

    /// Whether some prefix on the list starts `hs` (an HS code of the schema's width) on `day`.
    #[inline]
    pub(crate) fn has_prefix_of(&self, hs: u64, day: i32) -> bool {
        self.prefixes
            .iter()
            .any(|(div, m)| m.get(&(hs / div)).is_some_and(|w| covers(w, day)))
    }

    /// Read a list from CSV; `hs_width` is the schema's HS width (for prefixes).
    pub fn load(
        name: &str,
        kind: ListKind,
        path: &Path,
        hs_width: u8,
    ) -> Result<WatchList, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::new(
                ErrorKind::Io,
                format!("watch list \"{name}\": reading {}: {e}", path.display()),
            )
        })?;
        WatchList::parse(name, kind, path, &text, hs_width)
    }

    /// Parse list text (`path` names it in errors).
    pub fn parse(
        name: &str,
        kind: ListKind,
        path: &Path,
        text: &str,
        hs_width: u8,
    ) -> Result<WatchList, PolicyError> {
        let err = |line: usize, column: usize, msg: String| {
            PolicyError::new(
                ErrorKind::WatchList,
                format!("watch list \"{name}\": {msg}"),
            )
            .at(Location {
                file: path.to_path_buf(),
                line,
                column,
            })
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = rdr.records();
        let header = match records.next() {
            Some(Ok(h)) => h,
            Some(Err(e)) => return Err(err(1, 1, format!("not valid CSV: {e}"))),
            None => {
                return Err(err(
                    1,
                    1,
                    "the file is empty (expected a header `value[,valid_from][,valid_to]`)".into(),
                ))
            }
        };
        let mut col_value = None;
        let mut col_from = None;
        let mut col_to = None;
        for (i, h) in header.iter().enumerate() {
            let slot = match h.trim() {
                "value" => &mut col_value,
                "valid_from" => &mut col_from,
                "valid_to" => &mut col_to,
                other => {
                    return Err(err(
                        1,
                        i + 1,
                        format!(
                            "unknown column `{other}` in the header (expected value, valid_from, valid_to)"
                        ),
                    ))
                }
            };
            if slot.is_some() {
                return Err(err(
                    1,
                    i + 1,
                    format!("column `{}` appears twice", h.trim()),
                ));
            }
            *slot = Some(i);
        }
        let Some(col_value) = col_value else {
            return Err(err(1, 1, "the header has no `value` column".into()));
        };
        let width = header.len();
        let mut list = WatchList {
            name: name.to_string(),
            kind,
            file: path.to_path_buf(),
            entries: 0,
            values: HashMap::default(),
            prefixes: Vec::new(),
        };
        for rec in records {
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                err(line, 1, format!("not valid CSV: {e}"))
            })?;
            let line = rec.position().map_or(0, |p| p.line() as usize);
            if rec.len() == 1 && rec.get(0).is_some_and(|s| s.trim().is_empty()) {
                continue; // blank line
            }
            if rec.len() != width {
                return Err(err(
                    line,
                    1,
                    format!("{} fields, the header has {width}", rec.len()),
                ));
            }
            let value = rec.get(col_value).unwrap_or("").trim();
            if value.is_empty() {
                return Err(err(line, col_value + 1, "empty value".into()));
            }
            let date = |col: Option<usize>, open: i32| -> Result<i32, PolicyError> {
                let Some(c) = col else { return Ok(open) };
                let cell = rec.get(c).unwrap_or("").trim();
                if cell.is_empty() {
                    return Ok(open);
                }
                parse_day(cell)
                    .ok_or_else(|| err(line, c + 1, format!("`{cell}` is not a date (YYYY-MM-DD)")))
            };
            let from = date(col_from, i32::MIN)?;
            let to = date(col_to, i32::MAX)?;
            if from > to {
                return Err(err(
                    line,
                    col_from.map_or(1, |c| c + 1),
                    "valid_from is after valid_to".into(),
                ));
            }
            if kind == ListKind::HsPrefix {
                let digits = value.len();
                if !value.bytes().all(|b| b.is_ascii_digit())
                    || digits == 0
                    || digits > hs_width as usize
                {
                    return Err(err(
                        line,
                        col_value + 1,
                        format!("`{value}` is not an HS prefix (1 to {hs_width} digits)"),
                    ));
                }
                let Ok(v) = value.parse::<u64>() else {
                    return Err(err(line, col_value + 1, format!("`{value}` is too long")));
                };
                let div = 10u64.pow(u32::from(hs_width) - digits as u32);
                let slot = match list.prefixes.iter().position(|(d, _)| *d == div) {
                    Some(i) => i,
                    None => {
                        list.prefixes.push((div, HashMap::default()));
                        list.prefixes.len() - 1
                    }
                };
                list.prefixes[slot].1.entry(v).or_default().push((from, to));
            } else {
                list.values
                    .entry(value.into())
                    .or_default()
                    .push((from, to));
            }
            list.entries += 1;
        }
        Ok(list)
    }
}

/// `YYYY-MM-DD` -> days since 1970-01-01.
pub(crate) fn parse_day(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_windows() {
        let l = WatchList::parse(
            "w",
            ListKind::Importer,
            Path::new("w.csv"),
            "value,valid_from,valid_to\nIMP1,,\nIMP2,2024-01-01,2024-01-31\n\nIMP2,2024-03-01,\n",
            6,
        )
        .expect("valid");
        assert_eq!(l.entries, 3);
        let d = |s| parse_day(s).expect("date");
        assert!(l.has_value("IMP1", d("1999-01-01")));
        assert!(l.has_value("IMP2", d("2024-01-31")));
        assert!(!l.has_value("IMP2", d("2024-02-01")));
        assert!(l.has_value("IMP2", d("2030-02-01")));
        assert!(!l.has_value("IMP3", d("2024-01-15")));
    }

    #[test]
    fn hs_prefixes_match_by_prefix() {
        let l = WatchList::parse(
            "h",
            ListKind::HsPrefix,
            Path::new("h.csv"),
            "value\n93\n240220\n0710\n",
            6,
        )
        .expect("valid");
        assert!(l.has_prefix_of(930100, 0));
        assert!(l.has_prefix_of(240220, 0));
        assert!(!l.has_prefix_of(240221, 0));
        assert!(l.has_prefix_of(71080, 0)); // "071080"
        assert!(!l.has_prefix_of(710, 0));
    }
}
