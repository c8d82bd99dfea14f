//! Fitting the configured learner on a design matrix.

use std::collections::BTreeMap;

use cr_features::FittedPipeline;
use cr_gbdt::{ImportanceType, Objective};

use super::design::Design;
use super::Event;
use crate::card::Importance;
use crate::config::{Algo, TrainConfig, TrainObjective, REVENUE_VARIANCE_POWER};
use crate::export::Trained;
use crate::TrainError;

/// A trained model of either kind.
#[derive(Debug, Clone)]
pub(crate) enum Learned {
    Gbdt(cr_gbdt::GbdtModel),
    Logistic(cr_linear::LogisticModel),
}

impl Learned {
    /// Scores for the rows of `d`: risk probabilities, or for a revenue model the expected
    /// revenue (`exp` of the margin).
    pub fn scores(&self, d: &Design) -> Result<Vec<f64>, TrainError> {
        if d.is_empty() {
            return Ok(Vec::new());
        }
        let x = d.view()?;
        Ok(match self {
            Learned::Gbdt(m) => m.predict(x)?,
            Learned::Logistic(m) => m.predict_proba(x)?.into_iter().map(f64::from).collect(),
        })
    }

    pub fn as_trained(&self) -> Trained<'_> {
        match self {
            Learned::Gbdt(m) => Trained::Gbdt(m),
            Learned::Logistic(m) => Trained::Logistic(m),
        }
    }
}

/// What one fit produced.
pub(crate) struct Fitted {
    pub model: Learned,
    /// The learner's parameters as used (after defaults), for the card.
    pub params: serde_json::Value,
    /// GBDT: gain and split importance, sorted by gain.
    pub importance: Vec<Importance>,
    /// GBDT with a validation set: rounds kept by early stopping.
    pub best_iteration: Option<usize>,
    /// Seconds per learner phase (`train.*` keys).
    pub timings: BTreeMap<String, f64>,
}

/// How a fit is run.
pub(crate) struct FitPlan<'a> {
    /// Early-stopping rows (GBDT); `None` or empty: none.
    pub valid: Option<&'a Design>,
    /// GBDT rounds to grow instead of the configured maximum (a refit).
    pub rounds: Option<usize>,
}

pub(crate) fn fit(
    cfg: &TrainConfig,
    pipeline: &FittedPipeline,
    train: &Design,
    plan: FitPlan<'_>,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Fitted, TrainError> {
    let names = pipeline.feature_names();
    let x = train.view()?;
    let valid = plan.valid.filter(|v| !v.is_empty());
    let mut timings = BTreeMap::new();
    match cfg.algo {
        Algo::Gbdt => {
            // Revenue: Tweedie with log link on the revenue; its validation metric (the
            // objective's default, the mean Tweedie negative log-likelihood) differs from the
            // mean deviance by terms of the labels alone, so early stopping keeps the rounds
            // of least validation deviance.
            let objective = match cfg.objective {
                TrainObjective::Binary => Objective::Binary {
                    scale_pos_weight: cfg.pos_weight,
                },
                TrainObjective::Revenue => Objective::Tweedie {
                    variance_power: REVENUE_VARIANCE_POWER,
                },
            };
            let mut params = cfg
                .gbdt
                .clone()
                .objective(objective)
                .seed(cfg.seed)
                .num_threads(cfg.threads);
            if !cfg.monotone.is_empty() {
                params = params.monotone_constraints(monotone_vector(&cfg.monotone, &names)?);
            }
            if let Some(r) = plan.rounds {
                params = params.num_trees(r.max(1)).early_stopping_rounds(0);
            }
            let y = train.y_f32();
            let yv = valid.map(Design::y_f32);
            let valid_arg = match (valid, yv.as_deref()) {
                (Some(v), Some(yv)) => Some((v.view()?, yv)),
                _ => None,
            };
            let mut cb = |p: &cr_gbdt::Progress| {
                on_event(Event::Round {
                    round: p.round,
                    total: p.total_rounds,
                    valid_metric: p.valid_metric,
                    metric: format!("{:?}", p.metric),
                })
            };
            let w = train.weight.as_deref();
            let model = cr_gbdt::train(&params, x, &y, w, valid_arg, Some(&mut cb))?
                .with_feature_names(names.clone())?;
            let stats = model.train_stats;
            timings.insert("train.binning".to_string(), stats.binning_s);
            timings.insert("train.histograms".to_string(), stats.histogram_s);
            timings.insert("train.splits".to_string(), stats.split_s);
            let gain = model.feature_importance(ImportanceType::Gain);
            let split = model.feature_importance(ImportanceType::Split);
            let mut importance: Vec<Importance> = names
                .iter()
                .enumerate()
                .map(|(j, f)| Importance {
                    feature: f.clone(),
                    gain: gain[j],
                    splits: split[j],
                })
                .collect();
            importance.sort_by(|a, b| {
                b.gain
                    .total_cmp(&a.gain)
                    .then_with(|| a.feature.cmp(&b.feature))
            });
            // The thread count is a fact of the run (the card's `run`), not of the model: the
            // trees are the same for any count, and so must the file's bytes be.
            let mut params_json = to_json(&params)?;
            if let Some(m) = params_json.as_object_mut() {
                m.remove("num_threads");
            }
            Ok(Fitted {
                params: params_json,
                importance,
                best_iteration: model.best_iteration,
                model: Learned::Gbdt(model),
                timings,
            })
        }
        Algo::Logistic => {
            let mut params = cfg.logistic.clone();
            params.class_weight_pos = cfg.pos_weight;
            if params.log_features.is_empty() {
                params.log_features = default_log_features(pipeline);
            }
            let model = cr_linear::fit(&params, x, &train.y, train.weight.as_deref())?;
            Ok(Fitted {
                params: to_json(&params)?,
                importance: Vec::new(),
                best_iteration: None,
                model: Learned::Logistic(model),
                timings,
            })
        }
    }
}

/// One direction per pipeline feature from `(name, direction)` pairs.
fn monotone_vector(given: &[(String, i8)], names: &[String]) -> Result<Vec<i8>, TrainError> {
    let mut v = vec![0i8; names.len()];
    for (name, dir) in given {
        let Some(j) = names.iter().position(|n| n == name) else {
            return Err(TrainError::Config(format!(
                "monotone constraint on unknown feature {name:?}; the pipeline's features are: {}",
                names.join(", ")
            )));
        };
        v[j] = *dir;
    }
    Ok(v)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, TrainError> {
    serde_json::to_value(v).map_err(|e| TrainError::Export(format!("parameters as JSON: {e}")))
}

/// Logistic models take `sign(x)·ln(1+|x|)` of heavy-tailed features: raw numerics, unit
/// values and risk counts.
pub fn default_log_features(p: &FittedPipeline) -> Vec<usize> {
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
