//! The training workflow, stage by stage.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cr_data::schema::ymd_from_days;
use cr_data::{Batch, OnError, ReadOptions};
use cr_eval::budget::Budget;
use cr_gbdt::{ImportanceType, Objective};
use ndarray::ArrayView2;
use sha2::{Digest, Sha256};

use crate::card::{
    BudgetMetrics, DataInfo, FeatureBins, Importance, ModelCard, SchemaInfo, SplitInfo,
    ValidationMetrics, CARD_VERSION,
};
use crate::config::{Algo, TrainConfig};
use crate::export::{self, Trained};
use crate::TrainError;

/// Progress of a run, for progress bars and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A stage started ("read", "features", "train", "validate", "export").
    Stage(&'static str),
    /// Data read.
    Loaded {
        rows: u64,
        rejected: u64,
        labelled: u64,
    },
    /// Time split chosen.
    Split {
        valid_from: String,
        train_rows: usize,
        valid_rows: usize,
    },
    /// A boosting round finished.
    Round {
        round: usize,
        total: usize,
        valid_metric: Option<f64>,
        metric: String,
    },
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub onnx_path: PathBuf,
    pub card_path: PathBuf,
    pub card: ModelCard,
    /// The trained GBDT (for `Algo::Gbdt`).
    pub gbdt: Option<cr_gbdt::GbdtModel>,
    /// The trained logistic model (for `Algo::Logistic`).
    pub logistic: Option<cr_linear::LogisticModel>,
}

/// Inspection rates reported in every card.
pub const CARD_RATES: [f64; 4] = [0.01, 0.02, 0.05, 0.10];

/// Runs one training job end to end and writes `<out>.onnx` and `<out>.card.json`.
pub fn run(
    cfg: &TrainConfig,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<TrainOutcome, TrainError> {
    cfg.check()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()
        .map_err(|e| TrainError::Config(format!("thread pool: {e}")))?;
    pool.install(|| run_in_pool(cfg, on_event))
}

fn sha256_file(path: &Path) -> Result<String, TrainError> {
    let io = |e: std::io::Error| TrainError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
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

fn run_in_pool(
    cfg: &TrainConfig,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<TrainOutcome, TrainError> {
    let mut timings = BTreeMap::new();
    let name = cfg
        .out
        .file_name()
        .map(|s| s.to_string_lossy().trim_end_matches(".onnx").to_string())
        .unwrap_or_default();

    // ---- read
    on_event(Event::Stage("read"));
    let t = Instant::now();
    let opts = ReadOptions {
        on_error: if cfg.skip_bad_rows {
            OnError::Skip
        } else {
            OnError::Fail
        },
        require_label: true,
        ..ReadOptions::default()
    };
    let (batch, rejects) = cr_data::read_all(&cfg.data, &cfg.schema, &opts)?;
    let labelled = batch.label.iter().filter(|l| l.is_some()).count();
    let positives = batch.label.iter().filter(|l| **l == Some(true)).count();
    on_event(Event::Loaded {
        rows: (batch.len() + rejects.len()) as u64,
        rejected: rejects.len() as u64,
        labelled: labelled as u64,
    });
    if labelled == 0 {
        return Err(TrainError::Split(format!(
            "{}: no labelled (inspected) rows to learn from",
            cfg.data.display()
        )));
    }
    let data_sha = sha256_file(&cfg.data)?;
    timings.insert("read".to_string(), t.elapsed().as_secs_f64());

    // ---- time split
    let valid_from = match cfg.valid_from.or_else(|| default_valid_from(&batch)) {
        Some(v) => v,
        None => {
            return Err(TrainError::Split(
                "cannot choose a validation period".into(),
            ))
        }
    };
    let train_idx: Vec<usize> = (0..batch.len())
        .filter(|&i| batch.dates[i] < valid_from)
        .collect();
    let valid_idx: Vec<usize> = (0..batch.len())
        .filter(|&i| batch.dates[i] >= valid_from && batch.label[i].is_some())
        .collect();
    let train = batch.take(&train_idx);
    let train_lab: Vec<usize> = (0..train.len())
        .filter(|&i| train.label[i].is_some())
        .collect();
    if train_lab.is_empty() {
        return Err(TrainError::Split(format!(
            "no labelled rows before the validation start {}: choose an earlier --valid-from",
            ymd_from_days(valid_from)
        )));
    }
    let valid = batch.take(&valid_idx);
    on_event(Event::Split {
        valid_from: ymd_from_days(valid_from),
        train_rows: train_lab.len(),
        valid_rows: valid.len(),
    });

    // ---- features
    on_event(Event::Stage("features"));
    let t = Instant::now();
    let mut pcfg = cfg.pipeline.clone();
    pcfg.seed = cfg.seed;
    let (pipeline, oof) = cr_features::fit(&cfg.schema, &train, &pcfg)?;
    let nf = oof.n_cols;
    let mut xtr = Vec::with_capacity(train_lab.len() * nf);
    for &i in &train_lab {
        xtr.extend_from_slice(oof.row(i));
    }
    let ytr: Vec<bool> = train_lab
        .iter()
        .map(|&i| train.label[i] == Some(true))
        .collect();
    let xva = pipeline.transform(&valid)?;
    let yva: Vec<bool> = valid.label.iter().map(|l| *l == Some(true)).collect();
    timings.insert("features".to_string(), t.elapsed().as_secs_f64());
    let xtr_v = ArrayView2::from_shape((train_lab.len(), nf), &xtr)
        .map_err(|e| TrainError::Config(e.to_string()))?;
    let xva_v = ArrayView2::from_shape((valid.len(), nf), &xva.data)
        .map_err(|e| TrainError::Config(e.to_string()))?;

    // ---- train
    on_event(Event::Stage("train"));
    let t = Instant::now();
    let names = pipeline.feature_names();
    let (valid_scores, params_json, importance, best_iteration, gbdt, logistic) = match cfg.algo {
        Algo::Gbdt => {
            let params = cfg
                .gbdt
                .clone()
                .objective(Objective::Binary {
                    scale_pos_weight: cfg.pos_weight,
                })
                .seed(cfg.seed)
                .num_threads(cfg.threads);
            let y: Vec<f32> = ytr.iter().map(|&b| f32::from(u8::from(b))).collect();
            let yv: Vec<f32> = yva.iter().map(|&b| f32::from(u8::from(b))).collect();
            let valid_arg = (!valid.is_empty()).then_some((xva_v, yv.as_slice()));
            let mut cb = |p: &cr_gbdt::Progress| {
                on_event(Event::Round {
                    round: p.round,
                    total: p.total_rounds,
                    valid_metric: p.valid_metric,
                    metric: format!("{:?}", p.metric),
                })
            };
            let model = cr_gbdt::train(&params, xtr_v, &y, None, valid_arg, Some(&mut cb))?
                .with_feature_names(names.clone())?;
            let stats = model.train_stats;
            timings.insert("train.binning".to_string(), stats.binning_s);
            timings.insert("train.histograms".to_string(), stats.histogram_s);
            timings.insert("train.splits".to_string(), stats.split_s);
            let vs: Vec<f64> = if valid.is_empty() {
                vec![]
            } else {
                model.predict_proba(xva_v)?
            };
            let gain = model.feature_importance(ImportanceType::Gain);
            let split = model.feature_importance(ImportanceType::Split);
            let mut imp: Vec<Importance> = names
                .iter()
                .enumerate()
                .map(|(j, f)| Importance {
                    feature: f.clone(),
                    gain: gain[j],
                    splits: split[j],
                })
                .collect();
            imp.sort_by(|a, b| {
                b.gain
                    .total_cmp(&a.gain)
                    .then_with(|| a.feature.cmp(&b.feature))
            });
            let pj = serde_json::to_value(&params).unwrap_or_default();
            let best = model.best_iteration;
            (vs, pj, imp, best, Some(model), None)
        }
        Algo::Logistic => {
            let mut params = cfg.logistic.clone();
            params.class_weight_pos = cfg.pos_weight;
            if params.log_features.is_empty() {
                params.log_features = default_log_features(&pipeline);
            }
            let model = cr_linear::fit(&params, xtr_v, &ytr, None)?;
            let vs: Vec<f64> = if valid.is_empty() {
                vec![]
            } else {
                model
                    .predict_proba(xva_v)?
                    .into_iter()
                    .map(f64::from)
                    .collect()
            };
            let pj = serde_json::to_value(&params).unwrap_or_default();
            (vs, pj, Vec::new(), None, None, Some(model))
        }
    };
    timings.insert("train".to_string(), t.elapsed().as_secs_f64());

    // ---- validate
    on_event(Event::Stage("validate"));
    let t = Instant::now();
    let revenue: Option<Vec<f64>> = if valid.revenue.iter().any(|r| r.is_some()) {
        Some(
            valid
                .revenue
                .iter()
                .map(|r| f64::from(r.unwrap_or(0.0)))
                .collect(),
        )
    } else {
        None
    };
    let validation = validation_metrics(&valid_scores, &yva, revenue.as_deref())?;
    let score_quantiles = quantiles(&valid_scores);
    let feature_bins = feature_bins(&names, &xtr, nf)?;
    timings.insert("validate".to_string(), t.elapsed().as_secs_f64());

    // ---- card + export
    on_event(Event::Stage("export"));
    let t = Instant::now();
    let schema_json = serde_json::to_string(&cfg.schema).unwrap_or_default();
    let (dmin, dmax) = (
        batch.dates.iter().min().copied(),
        batch.dates.iter().max().copied(),
    );
    let mut card = ModelCard {
        card_version: CARD_VERSION,
        name,
        algo: cfg.algo.as_str().to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        customs_risk_version: env!("CARGO_PKG_VERSION").to_string(),
        data: DataInfo {
            file: cfg.data.display().to_string(),
            sha256: data_sha,
            rows_read: (batch.len() + rejects.len()) as u64,
            rows_rejected: rejects.len() as u64,
            labelled: labelled as u64,
            positives: positives as u64,
            date_min: dmin.map(ymd_from_days).unwrap_or_default(),
            date_max: dmax.map(ymd_from_days).unwrap_or_default(),
        },
        schema: SchemaInfo {
            name: cfg.schema.name.clone(),
            sha256: hex::encode(Sha256::digest(schema_json.as_bytes())),
        },
        split: SplitInfo {
            valid_from: ymd_from_days(valid_from),
            train_rows: train_lab.len() as u64,
            train_positives: ytr.iter().filter(|&&b| b).count() as u64,
            valid_rows: valid.len() as u64,
            valid_positives: yva.iter().filter(|&&b| b).count() as u64,
        },
        params: params_json,
        pipeline: serde_json::to_value(&pcfg).unwrap_or_default(),
        seed: cfg.seed,
        threads: cfg.threads,
        timings: timings.clone(),
        validation,
        features: names,
        importance,
        best_iteration,
        score_quantiles,
        feature_bins,
    };
    let trained = match (&gbdt, &logistic) {
        (Some(m), _) => Trained::Gbdt(m),
        (_, Some(m)) => Trained::Logistic(m),
        _ => return Err(TrainError::Config("no model was trained".into())),
    };
    let onnx_path = cfg.onnx_path();
    let card_path = cfg.card_path();
    if let Some(dir) = onnx_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
    timings.insert("export".to_string(), t.elapsed().as_secs_f64());
    card.timings = timings;
    let proto = export::to_onnx(&pipeline, trained, &card)?;
    cr_onnx::save_model(&onnx_path, &proto)?;
    let card_json =
        serde_json::to_string_pretty(&card).map_err(|e| TrainError::Export(e.to_string()))?;
    std::fs::write(&card_path, card_json).map_err(|e| TrainError::Io {
        path: card_path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(TrainOutcome {
        onnx_path,
        card_path,
        card,
        gbdt,
        logistic,
    })
}

/// 10 quantile bins per feature over the training matrix, with the share of each bin.
fn feature_bins(names: &[String], x: &[f32], nf: usize) -> Result<Vec<FeatureBins>, TrainError> {
    let n = x.len().checked_div(nf).unwrap_or(0);
    let err = |e: cr_eval::EvalError| TrainError::Export(format!("feature bins: {e}"));
    names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let col: Vec<f64> = (0..n).map(|i| f64::from(x[i * nf + j])).collect();
            let edges = cr_eval::drift::quantile_edges(&col, 10);
            let expected = cr_eval::drift::bin_proportions(&col, &edges).map_err(err)?;
            Ok(FeatureBins {
                feature: name.clone(),
                edges,
                expected,
            })
        })
        .collect()
}

/// Logistic models take `sign(x)·ln(1+|x|)` of heavy-tailed features: raw numerics, unit
/// values and risk counts.
fn default_log_features(p: &cr_features::FittedPipeline) -> Vec<usize> {
    use cr_features::FeatureDef as F;
    p.features
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            matches!(
                f,
                F::Numeric { .. }
                    | F::UnitValue { .. }
                    | F::RelUnitValue { .. }
                    | F::RiskCount { .. }
            )
        })
        .map(|(j, _)| j)
        .collect()
}

/// 0 %, 1 %, ..., 100 % quantiles (nearest rank, lower) of the scores, as f32.
pub fn quantiles(scores: &[f64]) -> Vec<f32> {
    if scores.is_empty() {
        return Vec::new();
    }
    let mut s: Vec<f64> = scores.iter().copied().filter(|v| !v.is_nan()).collect();
    if s.is_empty() {
        return Vec::new();
    }
    s.sort_by(f64::total_cmp);
    (0..=100)
        .map(|q| s[((s.len() - 1) * q) / 100] as f32)
        .collect()
}

fn validation_metrics(
    scores: &[f64],
    labels: &[bool],
    revenue: Option<&[f64]>,
) -> Result<Option<ValidationMetrics>, TrainError> {
    if scores.is_empty() {
        return Ok(None);
    }
    let err = |e: cr_eval::EvalError| TrainError::Export(format!("validation metrics: {e}"));
    let roc_auc = cr_eval::metrics::roc_auc(scores, labels, None).ok();
    let pr_auc = cr_eval::metrics::average_precision(scores, labels, None).ok();
    let log_loss = cr_eval::metrics::log_loss(scores, labels, None).ok();
    let budgets: Vec<Budget> = CARD_RATES.iter().map(|&r| Budget::Rate(r)).collect();
    let pts = cr_eval::metrics::at_budgets(scores, labels, revenue, &budgets).map_err(err)?;
    Ok(Some(ValidationMetrics {
        rows: scores.len() as u64,
        positives: labels.iter().filter(|&&b| b).count() as u64,
        roc_auc,
        pr_auc,
        log_loss,
        at_budget: pts
            .iter()
            .zip(CARD_RATES)
            .map(|(p, rate)| BudgetMetrics {
                rate,
                k: p.k,
                precision: p.precision,
                recall: p.recall,
                revenue_share: p.revenue_share,
            })
            .collect(),
    }))
}
