//! Reading the labelled data and the time split.

use std::io::Read;
use std::path::Path;

use cr_data::schema::ymd_from_days;
use cr_data::{Batch, OnError, ReadOptions, Reject};
use sha2::{Digest, Sha256};

use crate::config::TrainConfig;
use crate::TrainError;

/// The whole input file, validated.
pub(crate) struct Loaded {
    pub batch: Batch,
    pub rejects: Vec<Reject>,
    /// Rows with an inspection outcome, and how many of them were positive.
    pub labelled: usize,
    pub positives: usize,
    pub sha256: String,
}

impl Loaded {
    pub fn rows_read(&self) -> usize {
        self.batch.len() + self.rejects.len()
    }
}

pub(crate) fn read(cfg: &TrainConfig) -> Result<Loaded, TrainError> {
    let opts = ReadOptions {
        on_error: if cfg.skip_bad_rows {
            OnError::Skip
        } else {
            OnError::Fail
        },
        require_label: true,
        pseudonym_key: cfg.pseudonym_key.clone(),
        ..ReadOptions::default()
    };
    let (batch, rejects) = cr_data::read_all(&cfg.data, &cfg.schema, &opts)?;
    let labelled = batch.label.iter().filter(|l| l.is_some()).count();
    let positives = batch.label.iter().filter(|l| **l == Some(true)).count();
    Ok(Loaded {
        batch,
        rejects,
        labelled,
        positives,
        sha256: sha256_file(&cfg.data)?,
    })
}

fn sha256_file(path: &Path) -> Result<String, TrainError> {
    let io = |source: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        what: "cannot read",
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Training rows (all rows dated before `valid_from`: unlabelled ones feed the pipeline's
/// statistics) and the labelled validation rows (dated on or after it).
pub(crate) struct TimeSplit {
    /// First validation day (days since 1970-01-01).
    pub valid_from: i32,
    pub train: Batch,
    pub valid: Batch,
}

impl TimeSplit {
    pub fn new(cfg: &TrainConfig, batch: &Batch) -> Result<TimeSplit, TrainError> {
        let Some(valid_from) = cfg.valid_from.or_else(|| default_valid_from(batch)) else {
            return Err(TrainError::Split(
                "cannot choose a validation period".into(),
            ));
        };
        let train_idx: Vec<usize> = (0..batch.len())
            .filter(|&i| batch.dates[i] < valid_from)
            .collect();
        let valid_idx: Vec<usize> = (0..batch.len())
            .filter(|&i| batch.dates[i] >= valid_from && batch.label[i].is_some())
            .collect();
        let train = batch.take(&train_idx);
        if train.label.iter().all(|l| l.is_none()) {
            return Err(TrainError::Split(format!(
                "no labelled rows before the validation start {}: choose an earlier --valid-from",
                ymd_from_days(valid_from)
            )));
        }
        Ok(TimeSplit {
            valid_from,
            train,
            valid: batch.take(&valid_idx),
        })
    }
}

/// First day of the month holding the 80th percentile of labelled dates.
fn default_valid_from(batch: &Batch) -> Option<i32> {
    let mut dates: Vec<i32> = batch
        .dates
        .iter()
        .zip(&batch.label)
        .filter(|(_, l)| l.is_some())
        .map(|(d, _)| *d)
        .collect();
    if dates.is_empty() {
        return None;
    }
    dates.sort_unstable();
    let q = dates[(dates.len() * 4 / 5).min(dates.len() - 1)];
    let ymd = ymd_from_days(q);
    let first = format!("{}-01", &ymd[..7]);
    let d = chrono::NaiveDate::parse_from_str(&first, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    let days = cr_data::schema::days_from_ymd(d.year(), d.month(), 1)?;
    // If the month start would leave no training rows, fall back to the quantile date itself.
    Some(if days <= dates[0] { q } else { days })
}
