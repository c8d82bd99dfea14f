//! Errors of the policy crate. Every problem found while loading a policy (TOML, rule
//! expressions, watch lists) names the file, the 1-based line and column and, inside a rule,
//! the rule's name; nothing is deferred to scoring time.

use std::fmt;
use std::path::PathBuf;

/// Where in which file a load error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// What went wrong, coarsely, so callers and tests can branch without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The policy TOML is not valid TOML or does not match the policy format.
    Toml,
    /// A rule expression does not parse.
    Syntax,
    /// A rule expression is ill-typed (unknown field or list, a country compared with a
    /// number, ...).
    Type,
    /// A policy value is out of range or inconsistent (channels, capacity, dates).
    Invalid,
    /// A watch list file is malformed.
    WatchList,
    /// A file could not be read or written.
    Io,
    /// Selection met data it cannot handle (e.g. a NaN score).
    Select,
}

/// A policy error: kind, location (when it is a load error), the rule involved and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub kind: ErrorKind,
    pub at: Option<Location>,
    /// The name of the rule the error is in, when it is in one.
    pub rule: Option<String>,
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> PolicyError {
        PolicyError {
            kind,
            at: None,
            rule: None,
            message: message.into(),
        }
    }
    pub(crate) fn at(mut self, at: Location) -> PolicyError {
        self.at = Some(at);
        self
    }
    pub(crate) fn in_rule(mut self, rule: Option<&str>) -> PolicyError {
        self.rule = rule.map(str::to_string);
        self
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        if let Some(r) = &self.rule {
            write!(f, "rule \"{r}\": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut off = offset;
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncdé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 7), (2, 4));
    }
}
