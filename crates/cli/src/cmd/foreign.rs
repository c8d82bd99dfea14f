//! Scoring foreign models (skl2onnx / onnxmltools exports): one float input [N, F] fed from
//! named columns of a CSV file.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use cr_data::{ColType, Column, TableWriter};
use cr_infer::{Engine, InputKind, LoadOptions, Model};

use super::score::Args;

/// Returns (rows, rejected, engine, scores kept for a budget pass). With `budget_tmp`, the ids
/// go there (u32 length + bytes each) instead of to the output.
pub fn score_foreign(
    proto: &cr_onnx::proto::ModelProto,
    opts: &LoadOptions,
    a: &Args,
    out_cols: &[(&str, ColType)],
    budget_tmp: Option<&Path>,
) -> anyhow::Result<(u64, u64, Engine, Vec<f32>)> {
    let model = Model::from_proto(proto, opts).with_context(|| format!("loading {}", a.model().display()))?;
    let InputKind::Matrix { n_features, input_name } = model.input_kind().clone() else {
        bail!(
            "{}: the model has several named inputs but no customs-risk pipeline metadata; \
             only single float-matrix models ([N, F]) and customs-risk models can be scored",
            a.model().display()
        );
    };
    let path = a.data();
    if cr_data::FileFormat::of(path)? == cr_data::FileFormat::Parquet {
        bail!("{}: foreign models are scored from CSV files (convert the Parquet file, or train a customs-risk model)", path.display());
    }
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(super::validate::delimiter_byte(a.delimiter())?)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let header: Vec<String> = rdr.headers().with_context(|| format!("{}: no header", path.display()))?.iter().map(|s| s.trim_start_matches('\u{feff}').to_string()).collect();
    let find = |name: &str| header.iter().position(|h| h == name);
    let cols: Vec<usize> = if a.features().is_empty() {
        // all numeric columns, judged on the first data row
        let mut probe = csv::ReaderBuilder::new().delimiter(super::validate::delimiter_byte(a.delimiter())?).from_path(path)?;
        let first = probe.records().next().transpose()?.context("the file has no data rows to infer numeric columns from")?;
        let id_col = a.id_column().and_then(find);
        let numeric: Vec<usize> = (0..header.len()).filter(|&i| Some(i) != id_col && first.get(i).is_some_and(|v| v.trim().is_empty() || v.trim().parse::<f64>().is_ok())).collect();
        if n_features != 0 && numeric.len() != n_features {
            bail!(
                "the model takes {n_features} features but the file has {} numeric columns ({}); name them with --features a,b,c",
                numeric.len(),
                numeric.iter().map(|&i| header[i].as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        numeric
    } else {
        let mut missing = Vec::new();
        let idx: Vec<usize> = a.features().iter().filter_map(|f| find(f).or_else(|| { missing.push(f.clone()); None })).collect();
        if !missing.is_empty() {
            bail!("{}: no column named {}", path.display(), missing.join(", "));
        }
        if n_features != 0 && idx.len() != n_features {
            bail!("--features names {} columns but the model takes {n_features}", idx.len());
        }
        idx
    };
    if !a.quiet() {
        eprintln!("input {input_name:?} [N, {}] <- {}", cols.len(), cols.iter().map(|&i| header[i].as_str()).collect::<Vec<_>>().join(", "));
    }
    let id_col = match a.id_column() {
        Some(c) => Some(find(c).with_context(|| format!("--id-column {c:?} is not a column of {}", path.display()))?),
        None => None,
    };
    let f = cols.len();
    let mut writer = if budget_tmp.is_none() { Some(TableWriter::create(a.out(), out_cols)?) } else { None };
    let mut tmp = match budget_tmp {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut kept = Vec::new();
    let (mut rows, mut line) = (0u64, 1u64);
    let mut x = Vec::with_capacity(a.batch_rows() * f);
    let mut ids = Vec::new();
    let mut flush = |x: &mut Vec<f32>, ids: &mut Vec<String>| -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let scores = model.score_matrix(x, ids.len())?;
        if let Some(w) = &mut writer {
            w.write_rows(&[Column::Str(std::mem::take(ids)), Column::F64(scores.iter().map(|&s| f64::from(s)).collect()), Column::F64(vec![f64::NAN; scores.len()])])?;
        } else if let Some(t) = &mut tmp {
            // the ids, as score.rs reads them back: u32 length + bytes
            for id in ids.drain(..) {
                let len = u32::try_from(id.len()).context("an id longer than 4 GB")?;
                t.write_all(&len.to_le_bytes())?;
                t.write_all(id.as_bytes())?;
            }
            kept.extend_from_slice(&scores);
        }
        x.clear();
        Ok(())
    };
    for rec in rdr.records() {
        line += 1;
        let rec = rec.with_context(|| format!("{}: line {line}", path.display()))?;
        for &c in &cols {
            let v = rec.get(c).unwrap_or("").trim();
            let parsed = if v.is_empty() { f32::NAN } else {
                v.parse::<f32>().ok().filter(|p| p.is_finite()).with_context(|| format!("{}: line {line}, column {:?}: value {v:?} rejected: not a finite number", path.display(), header[c]))?
            };
            x.push(parsed);
        }
        ids.push(match id_col {
            Some(c) => rec.get(c).unwrap_or("").to_string(),
            None => (rows + 1).to_string(),
        });
        rows += 1;
        if ids.len() >= a.batch_rows() {
            flush(&mut x, &mut ids)?;
        }
    }
    flush(&mut x, &mut ids)?;
    if let Some(w) = writer {
        w.finish()?;
    }
    if let Some(mut t) = tmp {
        t.flush()?;
    }
    Ok((rows, 0, model.engine_used(), kept))
}
