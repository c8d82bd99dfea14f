//! Whole-file validation summary (`customs-risk validate`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::domain::Unseen;
use crate::error::DataError;
use crate::read::{open, ReadOptions};
use crate::schema::ymd_from_days;
use crate::spool::RejectSpool;
use crate::table::RejectWriter;

/// Counts over one file. With [`crate::OnError::Skip`], `accepted + rejected == rows_read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub file: String,
    pub schema: String,
    pub rows_read: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Bad cells (or row-level problems) by category, e.g. `"below minimum"`.
    pub by_reason: BTreeMap<String, u64>,
    /// Bad cells by column (`"(row)"` for row-level problems such as a wrong field count).
    pub by_column: BTreeMap<String, u64>,
    /// Accepted rows with a label.
    pub labelled: u64,
    /// Accepted rows with a positive label.
    pub positives: u64,
    /// Earliest / latest date among accepted rows (`YYYY-MM-DD`), `None` without rows.
    pub date_min: Option<String>,
    pub date_max: Option<String>,
    /// Warnings: per categorical column with a declared domain (`values` / `pattern`), the
    /// kept cells outside it (with `strict_categories` they are rejects instead, category
    /// `"unseen category"`, and these counts are 0).
    pub unseen: BTreeMap<String, Unseen>,
    /// Categorical columns without a declared domain: their unseen categories cannot be
    /// found from the file and the schema alone (a model does not keep a list of its
    /// categories either: rare ones are left out of its risk tables).
    pub no_domain: Vec<String>,
}

/// Read a whole file with `opts`, counting accepted and rejected rows; rejects are streamed to
/// `rejects_out` (CSV, see [`crate::write_rejects`]) when given. Memory stays bounded by a few
/// chunks plus the duplicate-id state (see [`crate::DuplicateCheck`]; with the deferred check
/// the rejects wait in a [`crate::RejectSpool`] beside `rejects_out` and the duplicates are
/// merged into them in line order, so the reject file and the counts are the immediate
/// check's, except that the label and date counts include the late duplicates). Column mismatches, unreadable files and (with
/// [`crate::OnError::Fail`]) the first bad row are errors.
pub fn validate_file(
    path: &Path,
    schema: &crate::Schema,
    opts: &ReadOptions,
    rejects_out: Option<&Path>,
) -> Result<ValidationReport, DataError> {
    let mut reader = open(path, schema, opts)?;
    let mut out = match rejects_out {
        Some(p) => Some(RejectSpool::create(
            spool_path(p),
            RejectWriter::create(p, reader.source())?,
            &reader.problem_order(),
        )?),
        None => None,
    };
    match read_counting(&mut reader, schema, &mut out) {
        Ok(rep) => {
            let (rep, late) = rep;
            if let Some(s) = out {
                s.finish(&late)?;
            }
            Ok(rep)
        }
        Err(e) => {
            if let Some(s) = out {
                s.discard();
            }
            Err(e)
        }
    }
}

/// The temporary spool beside the reject file `p`.
fn spool_path(p: &Path) -> std::path::PathBuf {
    let mut name = p.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    p.with_file_name(name)
}

/// [`validate_file`]'s pass over the chunks: the report and the late duplicates.
fn read_counting(
    reader: &mut crate::Reader,
    schema: &crate::Schema,
    out: &mut Option<RejectSpool>,
) -> Result<(ValidationReport, Vec<crate::LateDuplicate>), DataError> {
    let mut rep = ValidationReport {
        file: reader.source().to_string(),
        schema: schema.name.clone(),
        rows_read: 0,
        accepted: 0,
        rejected: 0,
        by_reason: BTreeMap::new(),
        by_column: BTreeMap::new(),
        labelled: 0,
        positives: 0,
        date_min: None,
        date_max: None,
        unseen: schema
            .categorical
            .iter()
            .filter(|c| c.has_domain())
            .map(|c| (c.name.clone(), Unseen::default()))
            .collect(),
        no_domain: schema
            .categorical
            .iter()
            .filter(|c| !c.has_domain())
            .map(|c| c.name.clone())
            .collect(),
    };
    let (mut dmin, mut dmax) = (i32::MAX, i32::MIN);
    while let Some(chunk) = reader.next() {
        let chunk = chunk?;
        let b = &chunk.batch;
        rep.accepted += b.len() as u64;
        rep.rejected += chunk.rejects.len() as u64;
        rep.labelled += b.label.iter().filter(|l| l.is_some()).count() as u64;
        rep.positives += b.label.iter().filter(|l| **l == Some(true)).count() as u64;
        for &d in &b.dates {
            dmin = dmin.min(d);
            dmax = dmax.max(d);
        }
        for r in &chunk.rejects {
            for p in &r.problems {
                *rep.by_reason.entry(p.category.clone()).or_default() += 1;
                *rep.by_column
                    .entry(p.column.clone().unwrap_or_else(|| "(row)".into()))
                    .or_default() += 1;
            }
        }
        for (c, u) in schema.categorical.iter().zip(&chunk.unseen) {
            if let Some(acc) = rep.unseen.get_mut(&c.name) {
                acc.merge(u);
            }
        }
        if let Some(w) = out.as_mut() {
            w.push(&chunk.rejects)?;
        }
        reader.recycle(chunk.batch);
    }
    let late = reader.finish_duplicates()?;
    for d in &late {
        // a duplicate on a row rejected anyway is one more problem of that row
        if d.ordinal.is_some() {
            rep.accepted -= 1;
            rep.rejected += 1;
        }
        for p in &d.reject.problems {
            *rep.by_reason.entry(p.category.clone()).or_default() += 1;
            *rep.by_column
                .entry(p.column.clone().unwrap_or_else(|| "(row)".into()))
                .or_default() += 1;
        }
    }
    rep.rows_read = reader.rows_read();
    if dmin <= dmax {
        rep.date_min = Some(ymd_from_days(dmin));
        rep.date_max = Some(ymd_from_days(dmax));
    }
    Ok((rep, late))
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (schema {}): {} rows read, {} accepted, {} rejected",
            self.file, self.schema, self.rows_read, self.accepted, self.rejected
        )?;
        if let (Some(a), Some(b)) = (&self.date_min, &self.date_max) {
            writeln!(f, "  dates {a} .. {b}")?;
        }
        writeln!(
            f,
            "  labelled {}, positive {}",
            self.labelled, self.positives
        )?;
        for (k, v) in &self.by_reason {
            writeln!(f, "  reason {k}: {v}")?;
        }
        for (k, v) in &self.by_column {
            writeln!(f, "  column {k}: {v}")?;
        }
        for (k, u) in &self.unseen {
            if u.cells == 0 {
                continue;
            }
            let mut top: Vec<(&String, &u64)> = u.values.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let shown: Vec<String> = top
                .iter()
                .take(10)
                .map(|(v, n)| format!("{v:?} x{n}"))
                .collect();
            let more = if top.len() > 10 { ", ..." } else { "" };
            writeln!(
                f,
                "  warning: column {k}: {} cells with unseen categories (not in the declared values / pattern; kept, --strict-categories rejects them): {}{more}",
                u.cells,
                shown.join(", ")
            )?;
        }
        if !self.no_domain.is_empty() {
            writeln!(
                f,
                "  note: unseen categories not checked for {} (no values / pattern in the schema)",
                self.no_domain.join(", ")
            )?;
        }
        Ok(())
    }
}
