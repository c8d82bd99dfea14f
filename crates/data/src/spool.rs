//! The rejects of a run with the deferred duplicate check ([`crate::DuplicateCheck::Deferred`]):
//! held on disk (one JSON line each, in line order) until the last chunk, then merged with the
//! late duplicates ([`crate::LateDuplicate`]) into the reject file, so that it is the file the
//! immediate check (a set of every id seen) would have written:
//! - a duplicate among accepted rows: its own reject, at its line;
//! - a duplicate on a row rejected for bad cells: the duplicate joins that row's problems, in
//!   column order (after the problems of its own column);
//! - a duplicate on a row rejected after validation ([`RejectSpool::push_unscored`], e.g. the
//!   model gave it no score): the duplicate replaces those problems (the immediate check
//!   would have rejected the row before it was scored).
//!
//! Memory stays flat: one block of rejects at a time. Both scoring paths of `cr-infer`
//! (customs-risk models and foreign float-matrix models) write their rejects through it.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::read::LateDuplicate;
use crate::reject::{Problem, Reject};
use crate::table::RejectWriter;

/// A spooled reject and whether it was made after validation.
#[derive(Debug, Serialize, Deserialize)]
struct Spooled {
    reject: Reject,
    unscored: bool,
}

/// The rejects of a run in line order, on disk until the duplicates are known, and the reject
/// file they go to (created by the caller at the start, so a bad path fails early).
pub struct RejectSpool {
    path: PathBuf,
    w: BufWriter<std::fs::File>,
    dest: RejectWriter,
    columns: Vec<String>,
}

fn spool_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> DataError {
    DataError::io_source(format!("temporary reject file {}", path.display()), e)
}

impl RejectSpool {
    /// A spool at `path` (a temporary file, removed by [`RejectSpool::finish`] or
    /// [`RejectSpool::discard`]) for the reject file `dest`. `columns` are the file's columns
    /// in file order: the order of a row's problems.
    pub fn create(
        path: PathBuf,
        dest: RejectWriter,
        columns: &[String],
    ) -> Result<RejectSpool, DataError> {
        let f = std::fs::File::create(&path).map_err(|e| spool_err(&path, e))?;
        Ok(RejectSpool {
            path,
            w: BufWriter::with_capacity(1 << 16, f),
            dest,
            columns: columns.to_vec(),
        })
    }

    fn push_one(&mut self, reject: &Reject, unscored: bool) -> Result<(), DataError> {
        let s = SpooledRef { reject, unscored };
        serde_json::to_writer(&mut self.w, &s).map_err(|e| spool_err(&self.path, e))?;
        self.w
            .write_all(b"\n")
            .map_err(|e| spool_err(&self.path, e))
    }

    /// Rejects of validation (bad cells, rows), after every earlier line's.
    pub fn push(&mut self, rejects: &[Reject]) -> Result<(), DataError> {
        rejects.iter().try_for_each(|r| self.push_one(r, false))
    }

    /// A row rejected after validation (its cells were fine), after every earlier line's.
    pub fn push_unscored(&mut self, reject: &Reject) -> Result<(), DataError> {
        self.push_one(reject, true)
    }

    /// Writes the reject file: the spooled rejects and `late` (line order) merged by line.
    /// Removes the spool.
    pub fn finish(self, late: &[LateDuplicate]) -> Result<(), DataError> {
        let RejectSpool {
            path,
            mut w,
            dest,
            columns,
        } = self;
        let result = match w.flush() {
            Ok(()) => {
                drop(w);
                merge(&path, dest, late, &columns)
            }
            Err(e) => Err(spool_err(&path, e)),
        };
        let _ = std::fs::remove_file(&path);
        result
    }

    /// After an error: remove the spool.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Serialize)]
struct SpooledRef<'a> {
    reject: &'a Reject,
    unscored: bool,
}

/// `reject` once its row is known to be the duplicate `dup`: the duplicate problem joins the
/// row's problems in `columns` order (after the problems of its own column; row-level
/// problems first), or replaces them when the row was rejected after validation (`unscored`).
pub fn join_duplicate(
    reject: &Reject,
    unscored: bool,
    dup: &LateDuplicate,
    columns: &[String],
) -> Reject {
    let problem = dup_problem(dup);
    if unscored {
        return Reject::from_problems(reject.line, vec![problem], reject.raw.clone());
    }
    let at = |p: &Problem| {
        p.column
            .as_ref()
            .and_then(|c| columns.iter().position(|h| h == c))
    };
    let mut problems: Vec<Problem> = reject.problems.clone();
    problems.push(problem);
    // stable: the duplicate stays after the problems of its own column
    problems.sort_by_key(|p| at(p));
    Reject::from_problems(reject.line, problems, reject.raw.clone())
}

fn dup_problem(dup: &LateDuplicate) -> Problem {
    dup.reject.problems.first().cloned().unwrap_or_else(|| {
        Problem::new(
            dup.reject.column.as_deref(),
            dup.reject.value.as_deref(),
            "duplicate id",
            dup.reject.reason.clone(),
        )
    })
}

/// The spooled rejects and the duplicates merged by line into `w`.
fn merge(
    path: &Path,
    mut w: RejectWriter,
    late: &[LateDuplicate],
    columns: &[String],
) -> Result<(), DataError> {
    let mut d = late.iter().peekable();
    let mut block: Vec<Reject> = Vec::new();
    let f = std::fs::File::open(path).map_err(|e| spool_err(path, e))?;
    for line in BufReader::with_capacity(1 << 16, f).lines() {
        let s: Spooled = serde_json::from_str(&line.map_err(|e| spool_err(path, e))?)
            .map_err(|e| spool_err(path, e))?;
        while let Some(dup) = d.next_if(|dup| dup.reject.line < s.reject.line) {
            block.push(dup.reject.clone());
        }
        match d.next_if(|dup| dup.reject.line == s.reject.line) {
            Some(dup) => block.push(join_duplicate(&s.reject, s.unscored, dup, columns)),
            None => block.push(s.reject),
        }
        if block.len() >= 4096 {
            w.write(&block)?;
            block.clear();
        }
    }
    block.extend(d.map(|dup| dup.reject.clone()));
    w.write(&block)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(col: &str, reason: &str) -> Problem {
        Problem::new(Some(col), Some("v"), "c", reason)
    }

    fn dup(line: u64) -> LateDuplicate {
        let p = Problem::new(
            Some("id"),
            Some("a"),
            "duplicate id",
            "duplicate id (first seen on line 2)",
        );
        LateDuplicate {
            ordinal: None,
            first_line: 2,
            reject: Reject::from_problems(line, vec![p], vec!["a".into()]),
        }
    }

    /// The duplicate joins a row's cell problems in column order, after the problems of its
    /// own column; it replaces the problems of a row rejected after validation.
    #[test]
    fn duplicate_joins_or_replaces_the_row_problems() {
        let columns: Vec<String> = ["x", "id", "z"].iter().map(|s| s.to_string()).collect();
        let raw = vec!["a".to_string(), "b".to_string()];
        let cells = Reject::from_problems(
            7,
            vec![problem("x", "bad x"), problem("z", "bad z")],
            raw.clone(),
        );
        let d = dup(7);
        let r = join_duplicate(&cells, false, &d, &columns);
        let dp = d.reject.problems[0].clone();
        assert_eq!(
            r,
            Reject::from_problems(
                7,
                vec![problem("x", "bad x"), dp.clone(), problem("z", "bad z")],
                raw.clone()
            )
        );
        let own = Reject::from_problems(7, vec![problem("id", "bad id")], raw.clone());
        assert_eq!(
            join_duplicate(&own, false, &d, &columns).problems,
            vec![problem("id", "bad id"), dp.clone()]
        );
        let nan = Reject::from_problems(9, vec![problem("x", "no score")], raw.clone());
        assert_eq!(
            join_duplicate(&nan, true, &d, &columns),
            Reject::from_problems(9, vec![dp], raw)
        );
    }

    /// Spooled rejects and late duplicates come out merged by line.
    #[test]
    fn rejects_and_duplicates_merge_in_line_order() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("rejects.csv");
        let columns: Vec<String> = ["x", "id"].iter().map(|s| s.to_string()).collect();
        let w = RejectWriter::create(&out, "f.csv").unwrap();
        let mut s = RejectSpool::create(d.path().join("spool"), w, &columns).unwrap();
        let r = |line| Reject::from_problems(line, vec![problem("x", "bad x")], vec![]);
        s.push(&[r(3), r(5)]).unwrap();
        s.push_unscored(&r(8)).unwrap();
        s.finish(&[dup(2), dup(5), dup(8), dup(11)]).unwrap();
        assert!(!d.path().join("spool").exists());
        let text = std::fs::read_to_string(&out).unwrap();
        let got: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[1].to_string(), f[2].to_string())
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("2", "id"),
            ("3", "x"),
            ("5", "x"),
            ("5", "id"),
            ("8", "id"),
            ("11", "id"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want, "{text}");
    }
}
