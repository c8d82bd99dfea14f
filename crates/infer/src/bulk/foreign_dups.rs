//! Duplicate ids of foreign models, settled after the last block with bounded memory:
//! every row with a valid id is logged into [`cr_data::DeferredIds`] (sorted runs on disk);
//! the rejects of the run wait in a spool beside the output (one JSON line each) and are
//! merged with the duplicates in line order at the end, so the reject file is the one the
//! immediate check (a set of every id seen) would have written:
//! - a duplicate among accepted rows: its own reject, and the row leaves the output;
//! - a duplicate on a row rejected for bad cells: the duplicate joins that row's problems
//!   (in column order, as the immediate check lists them);
//! - a duplicate on a row the model gave no score: the duplicate replaces "no score" (the
//!   immediate check would have rejected the row before scoring it).
//!
//! The cells of the duplicate rows are read from the file again (one pass, only when there
//! are duplicates).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use cr_data::{Found, Problem, Reject, RejectWriter};
use serde::{Deserialize, Serialize};

use super::BulkError;

/// A rejected row as the block check made it, before duplicates are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Pending {
    pub reject: Reject,
    /// File column of each of `reject.problems` (same order, ascending; `usize::MAX` for a
    /// row-level problem, empty for `no_score`).
    pub cols: Vec<usize>,
    /// Rejected because the model gave no score (its cells were fine).
    pub no_score: bool,
}

impl Pending {
    /// The reject once the row is known to be the duplicate `dup` (problem at column `id_col`).
    pub fn with_duplicate(&self, id_col: usize, dup: Problem) -> Reject {
        if self.no_score {
            return Reject::from_problems(self.reject.line, vec![dup], self.reject.raw.clone());
        }
        let mut problems: Vec<(usize, Problem)> = self
            .cols
            .iter()
            .copied()
            .zip(self.reject.problems.iter().cloned())
            .collect();
        // after the cell problems of its column, as the immediate check pushes it
        problems.push((id_col, dup));
        problems.sort_by_key(|p| p.0);
        Reject::from_problems(
            self.reject.line,
            problems.into_iter().map(|p| p.1).collect(),
            self.reject.raw.clone(),
        )
    }
}

/// The rejects of a run in line order, on disk until the duplicates are known, and the
/// reject file they go to (created at the start, so a bad path fails early).
pub(super) struct RejectSpool {
    path: PathBuf,
    w: BufWriter<std::fs::File>,
    dest: RejectWriter,
}

fn spool_err(path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BulkError {
    BulkError::other(format!("temporary reject file {}", path.display()), e)
}

impl RejectSpool {
    pub fn create(path: PathBuf, dest: RejectWriter) -> Result<RejectSpool, BulkError> {
        let f = std::fs::File::create(&path).map_err(|e| spool_err(&path, e))?;
        Ok(RejectSpool {
            path,
            w: BufWriter::with_capacity(1 << 16, f),
            dest,
        })
    }

    pub fn push(&mut self, p: &Pending) -> Result<(), BulkError> {
        serde_json::to_writer(&mut self.w, p).map_err(|e| spool_err(&self.path, e))?;
        self.w
            .write_all(b"\n")
            .map_err(|e| spool_err(&self.path, e))
    }

    /// Write the final reject file: the spooled rejects and the `dups` (line order) merged
    /// by line, `recs` the re-read cells of each duplicate. Removes the spool.
    pub fn finish(
        self,
        dups: &[Found],
        recs: &[csv::ByteRecord],
        header: &[String],
        id_col: usize,
    ) -> Result<(), BulkError> {
        let RejectSpool { path, mut w, dest } = self;
        let result = match w.flush() {
            Ok(()) => {
                drop(w);
                merge(&path, dest, dups, recs, header, id_col)
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

/// The spooled rejects and the duplicates merged by line into `w`.
fn merge(
    path: &Path,
    mut w: RejectWriter,
    dups: &[Found],
    recs: &[csv::ByteRecord],
    header: &[String],
    id_col: usize,
) -> Result<(), BulkError> {
    let mut d = dups.iter().zip(recs).peekable();
    let mut block: Vec<Reject> = Vec::new();
    let f = std::fs::File::open(path).map_err(|e| spool_err(path, e))?;
    for line in BufReader::with_capacity(1 << 16, f).lines() {
        let p: Pending = serde_json::from_str(&line.map_err(|e| spool_err(path, e))?)
            .map_err(|e| spool_err(path, e))?;
        while let Some((dup, rec)) = d.next_if(|(dup, _)| dup.line < p.reject.line) {
            block.push(duplicate_reject(dup, rec, header, id_col));
        }
        match d.next_if(|(dup, _)| dup.line == p.reject.line) {
            Some((dup, rec)) => {
                block.push(p.with_duplicate(id_col, duplicate_problem(dup, rec, header, id_col)))
            }
            None => block.push(p.reject),
        }
        if block.len() >= 4096 {
            w.write(&block)?;
            block.clear();
        }
    }
    block.extend(d.map(|(dup, rec)| duplicate_reject(dup, rec, header, id_col)));
    w.write(&block)?;
    w.finish()?;
    Ok(())
}

/// The duplicate problem of a row: its id (trimmed) and the first line of that id.
pub(super) fn duplicate_problem(
    dup: &Found,
    rec: &csv::ByteRecord,
    header: &[String],
    id_col: usize,
) -> Problem {
    let cell = String::from_utf8_lossy(rec.get(id_col).unwrap_or_default());
    Problem::new(
        Some(&header[id_col]),
        Some(cell.trim()),
        "duplicate id",
        format!("duplicate id (first seen on line {})", dup.first_line),
    )
}

/// The reject of a row whose only problem is its duplicate id.
pub(super) fn duplicate_reject(
    dup: &Found,
    rec: &csv::ByteRecord,
    header: &[String],
    id_col: usize,
) -> Reject {
    Reject::from_problems(
        dup.line,
        vec![duplicate_problem(dup, rec, header, id_col)],
        super::foreign::raw(rec),
    )
}

/// The records starting on `lines` (ascending) of the CSV file at `path`, read again as the
/// scoring pass read it (header skipped, rows of any width).
pub(super) fn records_at(
    path: &Path,
    delimiter: u8,
    lines: &[u64],
) -> Result<Vec<csv::ByteRecord>, BulkError> {
    let mut rdr = super::foreign::reader(path, delimiter)?;
    let mut out = Vec::with_capacity(lines.len());
    let mut rec = csv::ByteRecord::new();
    let mut want = lines.iter().peekable();
    while let Some(&&line) = want.peek() {
        if !rdr
            .read_byte_record(&mut rec)
            .map_err(|e| super::foreign::read_error(path, e))?
        {
            return Err(BulkError::Invalid(format!(
                "{}: line {line} is gone (was the file changed while it was scored?)",
                path.display()
            )));
        }
        let at = rec.position().map_or(0, csv::Position::line);
        if at == line {
            out.push(rec.clone());
            want.next();
        } else if at > line {
            return Err(BulkError::Invalid(format!(
                "{}: no record starts on line {line} (was the file changed while it was scored?)",
                path.display()
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(col: &str, reason: &str) -> Problem {
        Problem::new(Some(col), Some("v"), "c", reason)
    }

    /// The duplicate joins a row's cell problems in column order, after the problems of
    /// its own column; it replaces "no score".
    #[test]
    fn duplicate_joins_or_replaces_the_row_problems() {
        let raw = vec!["a".to_string(), "b".to_string()];
        let cells = Pending {
            reject: Reject::from_problems(
                7,
                vec![problem("x", "bad x"), problem("z", "bad z")],
                raw.clone(),
            ),
            cols: vec![0, 4],
            no_score: false,
        };
        let dup = problem("id", "duplicate id (first seen on line 2)");
        let r = cells.with_duplicate(2, dup.clone());
        assert_eq!(
            r,
            Reject::from_problems(
                7,
                vec![problem("x", "bad x"), dup.clone(), problem("z", "bad z")],
                raw.clone()
            )
        );
        let r = cells.with_duplicate(0, dup.clone());
        assert_eq!(
            r.problems,
            vec![problem("x", "bad x"), dup.clone(), problem("z", "bad z")]
        );
        let nan = Pending {
            reject: Reject::from_problems(9, vec![problem("x", "no score")], raw.clone()),
            cols: vec![0],
            no_score: true,
        };
        assert_eq!(
            nan.with_duplicate(3, dup.clone()),
            Reject::from_problems(9, vec![dup], raw)
        );
    }

    #[test]
    fn records_are_found_by_their_first_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.csv");
        std::fs::write(&p, "id,x\na,1\n\"b\nb\",2\nc\nd,4\n").unwrap();
        let recs = records_at(&p, b',', &[3, 5, 6]).unwrap();
        let got: Vec<Vec<&[u8]>> = recs.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(
            got,
            vec![vec![&b"b\nb"[..], b"2"], vec![b"c"], vec![b"d", b"4"]]
        );
        assert!(
            records_at(&p, b',', &[4]).is_err(),
            "line 4 is inside a record"
        );
        assert!(records_at(&p, b',', &[9]).is_err());
    }
}
