//! Rejected rows: what was wrong, where, and the original cells.

use serde::{Deserialize, Serialize};

/// Longest value kept in a [`Problem`] / [`Reject`] (longer values are cut, with "...").
pub(crate) const MAX_VALUE_CHARS: usize = 200;

/// One bad cell (or a row-level problem such as a wrong number of fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Column name as in the file; `None` for row-level problems.
    pub column: Option<String>,
    /// The cell as read (cut to 200 characters); `None` for row-level problems.
    pub value: Option<String>,
    /// Short, value-free category used for counting (e.g. `"below minimum"`, `"duplicate id"`).
    pub category: String,
    /// Full reason, e.g. `"below minimum 0"` or `"duplicate id (first seen on line 5)"`.
    pub reason: String,
}

/// A rejected row. A row with several bad cells gives one `Reject` listing all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// 1-based physical line (CSV; the header is line 1) or record number (Parquet, JSON).
    pub line: u64,
    /// Column of the first problem.
    pub column: Option<String>,
    /// Value of the first problem.
    pub value: Option<String>,
    /// The reason of a single problem, or every problem joined with "; " (each naming its
    /// column and value).
    pub reason: String,
    /// The original cells of the row (CSV: every field, invalid UTF-8 replaced by U+FFFD;
    /// Parquet: the schema's columns; JSON: the record as JSON text). Reject files hold them
    /// as one field, [`Reject::raw_line`].
    pub raw: Vec<String>,
    /// Every problem of the row, in column order of the schema.
    pub problems: Vec<Problem>,
}

impl Problem {
    /// A problem; `value` is cut to 200 characters.
    pub fn new(
        column: Option<&str>,
        value: Option<&str>,
        category: &str,
        reason: impl Into<String>,
    ) -> Problem {
        Problem {
            column: column.map(str::to_string),
            value: value.map(cut),
            category: category.to_string(),
            reason: reason.into(),
        }
    }

    /// `column "Net Mass": value "-3" rejected: below minimum 0`
    pub fn describe(&self) -> String {
        match (&self.column, &self.value) {
            (Some(c), Some(v)) => format!("column {c:?}: value {v:?} rejected: {}", self.reason),
            (Some(c), None) => format!("column {c:?}: {}", self.reason),
            (None, Some(v)) => format!("value {v:?} rejected: {}", self.reason),
            (None, None) => self.reason.clone(),
        }
    }
}

impl Reject {
    /// Build a reject from its problems (at least one): column and value of the first, the
    /// reasons joined.
    pub fn from_problems(line: u64, problems: Vec<Problem>, raw: Vec<String>) -> Reject {
        let (column, value) = match problems.first() {
            Some(p) => (p.column.clone(), p.value.clone()),
            None => (None, None),
        };
        let reason = match problems.as_slice() {
            [] => "rejected".to_string(),
            [one] => one.reason.clone(),
            many => many
                .iter()
                .map(Problem::describe)
                .collect::<Vec<_>>()
                .join("; "),
        };
        Reject {
            line,
            column,
            value,
            reason,
            raw,
            problems,
        }
    }

    /// One-line message naming the file, line, columns, values and reasons, e.g.
    /// `data/x.csv: line 17, column "Net Mass": value "-3" rejected: below minimum 0`.
    pub fn describe(&self, source: &str) -> String {
        if self.problems.is_empty() {
            return format!("{source}: line {}: {}", self.line, self.reason);
        }
        let parts: Vec<String> = self.problems.iter().map(Problem::describe).collect();
        format!("{source}: line {}, {}", self.line, parts.join("; "))
    }
}

impl Reject {
    /// The original cells as one comma-separated CSV line (no line end), each field quoted
    /// (quotes doubled) only when it holds a comma, a quote, `\r` or `\n`, whatever the
    /// delimiter of the input was: any CSV parser turns it back into [`Reject::raw`]. A row
    /// of one empty field is `""` (an empty line would read as no fields).
    pub fn raw_line(&self) -> String {
        if let [only] = self.raw.as_slice() {
            if only.is_empty() {
                return "\"\"".to_string();
            }
        }
        let mut out = Vec::new();
        for (j, f) in self.raw.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            crate::table::push_csv_field(&mut out, f.as_bytes(), b',');
        }
        // Only whole UTF-8 fields and ASCII bytes were pushed.
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Cut a value to [`MAX_VALUE_CHARS`] characters.
pub(crate) fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        None => s.to_string(),
        Some((i, _)) => format!("{}...", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_single_and_many() {
        let p = Problem::new(
            Some("Net Mass"),
            Some("-3"),
            "below minimum",
            "below minimum 0",
        );
        let r = Reject::from_problems(17, vec![p.clone()], vec![]);
        assert_eq!(r.reason, "below minimum 0");
        assert_eq!(
            r.describe("data/x.csv"),
            "data/x.csv: line 17, column \"Net Mass\": value \"-3\" rejected: below minimum 0"
        );
        let q = Problem::new(Some("Date"), Some("x"), "bad date", "not a date");
        let r = Reject::from_problems(3, vec![p, q], vec![]);
        assert_eq!(r.column.as_deref(), Some("Net Mass"));
        assert!(
            r.reason.contains("below minimum 0") && r.reason.contains("\"Date\""),
            "{}",
            r.reason
        );
        let row = Reject::from_problems(
            4,
            vec![Problem::new(
                None,
                None,
                "fields",
                "expected 3 fields, found 2",
            )],
            vec![],
        );
        assert_eq!(row.describe("f"), "f: line 4, expected 3 fields, found 2");
    }

    #[test]
    fn raw_line_reads_back_as_the_cells() {
        let raw = |cells: &[&str]| {
            Reject::from_problems(2, vec![], cells.iter().map(|c| c.to_string()).collect())
                .raw_line()
        };
        assert_eq!(raw(&["A", "1.5", "", "x"]), "A,1.5,,x");
        assert_eq!(
            raw(&["a,b", "say \"hi\"", "two\nlines", "semi;colon"]),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",semi;colon"
        );
        assert_eq!(raw(&[""]), "\"\"");
        assert_eq!(raw(&["", ""]), ",");
        assert_eq!(raw(&[]), "");
        // the csv crate (an independent parser) gives the cells back
        for cells in [
            &["a,b", "say \"hi\"", "two\r\nlines", "", "é"][..],
            &[""][..],
            &["x"][..],
        ] {
            let line = raw(cells);
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let rec = r.records().next().unwrap().unwrap();
            assert_eq!(rec.iter().collect::<Vec<_>>(), cells, "{line}");
        }
    }

    #[test]
    fn cut_long_values() {
        let long = "é".repeat(300);
        let c = cut(&long);
        assert_eq!(c.chars().count(), MAX_VALUE_CHARS + 3);
        assert_eq!(cut("abc"), "abc");
    }
}
