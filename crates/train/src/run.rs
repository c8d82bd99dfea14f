//! The training workflow, stage by stage: [`data`] (read, time split) → [`design`] (feature
//! pipeline, design matrices) → [`fit`] (the learner) → [`metrics`] (validation, card
//! references) → a refit on every labelled row → card + export.

mod data;
mod design;
mod fit;
mod metrics;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use cr_data::schema::ymd_from_days;
use cr_data::Batch;
use sha2::{Digest, Sha256};

use crate::card::{
    DataInfo, FitInfo, ModelCard, RunInfo, SchemaInfo, SolverInfo, SplitInfo, CARD_VERSION,
};
use crate::config::{TrainConfig, TrainObjective, REVENUE_VARIANCE_POWER};
use crate::export;
use crate::TrainError;

use data::TimeSplit;
pub use fit::default_log_features;
use fit::{FitPlan, Fitted};
pub use metrics::quantiles;

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

fn run_in_pool(
    cfg: &TrainConfig,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<TrainOutcome, TrainError> {
    let mut timings = BTreeMap::new();
    let name = cfg.model_name()?;

    // ---- read
    on_event(Event::Stage("read"));
    let t = Instant::now();
    let loaded = data::read(cfg)?;
    on_event(Event::Loaded {
        rows: loaded.rows_read() as u64,
        rejected: loaded.rejects.len() as u64,
        labelled: loaded.labelled as u64,
    });
    if loaded.labelled == 0 {
        return Err(TrainError::Split(format!(
            "{}: no labelled (inspected) rows to learn from",
            cfg.data.display()
        )));
    }
    timings.insert("read".to_string(), t.elapsed().as_secs_f64());

    // ---- time split
    let split = TimeSplit::new(cfg, &loaded.batch)?;
    let train_labelled = split.train.label.iter().filter(|l| l.is_some()).count();
    let revenue_objective = cfg.objective == TrainObjective::Revenue;
    let train_pos = split
        .train
        .label
        .iter()
        .filter(|l| **l == Some(true))
        .count();
    cfg.check_class_counts(
        train_pos,
        train_labelled - train_pos,
        &ymd_from_days(split.valid_from),
    )?;
    if revenue_objective {
        let with_revenue = split
            .train
            .label
            .iter()
            .zip(&split.train.revenue)
            .filter(|(l, r)| l.is_some() && r.is_some_and(|r| r > 0.0))
            .count();
        cfg.check_revenue_counts(
            with_revenue,
            train_labelled - with_revenue,
            &ymd_from_days(split.valid_from),
        )?;
    }
    on_event(Event::Split {
        valid_from: ymd_from_days(split.valid_from),
        train_rows: train_labelled,
        valid_rows: split.valid.len(),
    });

    // ---- features
    on_event(Event::Stage("features"));
    let t = Instant::now();
    let mut pcfg = cfg.pipeline.clone();
    pcfg.seed = cfg.seed;
    let weighting = (cfg.sample_weight, cfg.ipw_max_weight);
    let (pipeline, train, train_w) = design::fit_features(
        &cfg.schema,
        &split.train,
        &pcfg,
        weighting,
        revenue_objective,
    )?;
    let valid = design::transform(&pipeline, &split.valid, revenue_objective)?;
    timings.insert("features".to_string(), t.elapsed().as_secs_f64());

    // ---- train on the rows before the validation period
    on_event(Event::Stage("train"));
    let t = Instant::now();
    let plan = FitPlan {
        valid: Some(&valid),
        rounds: None,
    };
    let fitted = fit::fit(cfg, &pipeline, &train, plan, on_event)?;
    timings.extend(fitted.timings.clone());
    timings.insert("train".to_string(), t.elapsed().as_secs_f64());

    // ---- validate
    on_event(Event::Stage("validate"));
    let t = Instant::now();
    let valid_scores = fitted.model.scores(&valid)?;
    let revenue: Option<Vec<f64>> = match &valid.revenue {
        Some(r) => Some(r.iter().map(|&v| f64::from(v)).collect()),
        None => split.valid.revenue.iter().any(|r| r.is_some()).then(|| {
            split
                .valid
                .revenue
                .iter()
                .map(|r| f64::from(r.unwrap_or(0.0)))
                .collect()
        }),
    };
    let validation = metrics::validation_metrics(
        &valid_scores,
        &valid.y,
        revenue.as_deref(),
        revenue_objective.then_some(REVENUE_VARIANCE_POWER),
    )?;
    // The reference score distribution: the validation-period model on rows it has not seen
    // (for a revenue model: its expected revenue).
    let score_quantiles = quantiles(&valid_scores);
    timings.insert("validate".to_string(), t.elapsed().as_secs_f64());

    // ---- refit on every labelled row with the setting chosen on validation
    let best_iteration = fitted.best_iteration;
    let (final_pipeline, final_fit, final_train, final_w, refitted) =
        if cfg.refit && !valid.is_empty() {
            on_event(Event::Stage("refit"));
            let t = Instant::now();
            let (pipeline_all, all, all_w) = design::fit_features(
                &cfg.schema,
                &loaded.batch,
                &pcfg,
                weighting,
                revenue_objective,
            )?;
            // GBDT: the trees kept by early stopping (the model holds exactly those).
            let rounds = match &fitted.model {
                fit::Learned::Gbdt(m) => Some(m.num_trees()),
                fit::Learned::Logistic(_) => None,
            };
            let plan = FitPlan {
                valid: None,
                rounds,
            };
            let refitted = fit::fit(cfg, &pipeline_all, &all, plan, on_event)?;
            timings.insert("refit".to_string(), t.elapsed().as_secs_f64());
            (pipeline_all, refitted, all, all_w, true)
        } else {
            (pipeline, fitted, train, train_w, false)
        };
    let fit_info = fit_info(cfg, &final_fit, &final_train, final_w, refitted);
    let names = final_pipeline.feature_names();
    // The drift reference: the features the shipped model will see when scoring (the final
    // pipeline's full tables, not the out-of-fold encodings the learner trained on, which
    // differ by construction: 29 of 46 features were flagged on the demo's own traffic)
    // of the training traffic, every row (inspected or not), at most
    // DRIFT_REFERENCE_ROWS evenly spaced rows.
    let reference = drift_reference_rows(&loaded.batch);
    let fm = final_pipeline.transform(&reference)?;
    let feature_bins = metrics::feature_bins(&names, &fm.data, fm.n_cols)?;
    drop((reference, fm));

    // ---- card + export
    on_event(Event::Stage("export"));
    let t = Instant::now();
    let batch = &loaded.batch;
    let schema_json = serde_json::to_string(&cfg.schema).map_err(|e| TrainError::CardField {
        field: "schema.sha256",
        source: Box::new(e),
    })?;
    let (dmin, dmax) = (
        batch.dates.iter().min().copied(),
        batch.dates.iter().max().copied(),
    );
    let Fitted {
        model,
        params,
        importance,
        ..
    } = final_fit;
    let mut card = ModelCard {
        card_version: CARD_VERSION,
        name,
        algo: cfg.algo.as_str().to_string(),
        objective: cfg.objective.as_str().to_string(),
        customs_risk_version: env!("CARGO_PKG_VERSION").to_string(),
        data: DataInfo {
            sha256: loaded.sha256.clone(),
            rows_read: loaded.rows_read() as u64,
            rows_rejected: loaded.rejects.len() as u64,
            labelled: loaded.labelled as u64,
            positives: loaded.positives as u64,
            date_min: dmin
                .map(ymd_from_days)
                .ok_or_else(|| no_rows("data.date_min"))?,
            date_max: dmax
                .map(ymd_from_days)
                .ok_or_else(|| no_rows("data.date_max"))?,
        },
        schema: SchemaInfo {
            name: cfg.schema.name.clone(),
            sha256: hex::encode(Sha256::digest(schema_json.as_bytes())),
        },
        split: SplitInfo {
            valid_from: ymd_from_days(split.valid_from),
            train_rows: train_labelled as u64,
            train_positives: split
                .train
                .label
                .iter()
                .filter(|l| **l == Some(true))
                .count() as u64,
            valid_rows: valid.rows() as u64,
            valid_positives: valid.positives() as u64,
        },
        params,
        pipeline: serde_json::to_value(&pcfg).map_err(|e| TrainError::CardField {
            field: "pipeline",
            source: Box::new(e),
        })?,
        seed: cfg.seed,
        validation,
        features: names,
        importance,
        best_iteration,
        fit: fit_info,
        score_quantiles,
        feature_bins,
        run: None,
    };
    let onnx_path = cfg.onnx_path();
    let card_path = cfg.card_path();
    if let Some(dir) = onnx_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            what: "cannot create the directory",
            source,
        })?;
    }
    timings.insert("export".to_string(), t.elapsed().as_secs_f64());
    card.run = Some(RunInfo {
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        data_file: cfg.data.display().to_string(),
        threads: cfg.threads,
        timings,
    });
    let proto = export::to_onnx(
        &final_pipeline,
        model.as_trained(),
        cfg.objective.prediction(),
        &card,
    )?;
    cr_onnx::save_model(&onnx_path, &proto)?;
    let card_json = card.to_json_pretty()?;
    std::fs::write(&card_path, card_json).map_err(|source| TrainError::Io {
        path: card_path.clone(),
        what: "cannot write the model card",
        source,
    })?;
    let (gbdt, logistic) = match model {
        fit::Learned::Gbdt(m) => (Some(m), None),
        fit::Learned::Logistic(m) => (None, Some(m)),
    };
    Ok(TrainOutcome {
        onnx_path,
        card_path,
        card,
        gbdt,
        logistic,
    })
}

/// At most this many rows of the training file describe each feature's distribution in the
/// card (`feature_bins`, the reference for drift).
pub const DRIFT_REFERENCE_ROWS: usize = 200_000;

/// Every row of `batch`, or [`DRIFT_REFERENCE_ROWS`] evenly spaced ones (deterministic).
fn drift_reference_rows(batch: &Batch) -> std::borrow::Cow<'_, Batch> {
    let n = batch.len();
    if n <= DRIFT_REFERENCE_ROWS {
        return std::borrow::Cow::Borrowed(batch);
    }
    let idx: Vec<usize> = (0..DRIFT_REFERENCE_ROWS)
        .map(|i| i * n / DRIFT_REFERENCE_ROWS)
        .collect();
    std::borrow::Cow::Owned(batch.take(&idx))
}

/// The card's account of how the shipped model was fitted.
fn fit_info(
    cfg: &TrainConfig,
    f: &Fitted,
    d: &design::Design,
    w: design::WeightStats,
    refitted: bool,
) -> FitInfo {
    let ipw = cfg.sample_weight == crate::config::SampleWeight::Ipw;
    FitInfo {
        refit: refitted,
        rows: d.rows() as u64,
        positives: d.positives() as u64,
        trees: match &f.model {
            fit::Learned::Gbdt(m) => Some(m.num_trees()),
            fit::Learned::Logistic(_) => None,
        },
        sample_weight: cfg.sample_weight.as_str().to_string(),
        ipw_max_weight: ipw.then_some(cfg.ipw_max_weight),
        ipw_clipped_rows: ipw.then_some(w.clipped as u64),
        effective_rows: ipw.then_some(w.effective_rows),
        solver: match &f.model {
            fit::Learned::Gbdt(_) => None,
            fit::Learned::Logistic(m) => {
                let r = &m.report;
                Some(SolverInfo {
                    iterations: r.iterations,
                    evaluations: r.evaluations,
                    gradient_max: r.gradient_max,
                    objective: r.objective,
                    stop: r.stop.as_str().to_string(),
                    converged: r.converged,
                })
            }
        },
    }
}

/// A card field that cannot be filled because the training data has no rows.
fn no_rows(field: &'static str) -> TrainError {
    TrainError::CardField {
        field,
        source: "the training data has no rows".into(),
    }
}
