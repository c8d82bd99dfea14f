//! Training runs: read seizure data, split by time, fit the feature pipeline, train a GBDT or a
//! logistic regression, measure it on the latest period, write the model card, and export
//! pipeline + model as one self-contained ONNX file.
//!
//! Owns: the training workflow ([`run`]), time-aware validation, model cards ([`ModelCard`]),
//! the ONNX export of our models ([`export`]).
//! Must not: be linked by the serving path (`cr-service`, `cr-infer` never depend on it).
//!
//! ```no_run
//! use cr_train::{run, TrainConfig, Algo};
//! let schema = cr_data::Schema::from_path("data/schemas/synthetic.toml".as_ref())?;
//! let cfg = TrainConfig::new("data.csv".into(), schema, Algo::Gbdt, "models/gbdt".into());
//! let outcome = run(&cfg, &mut |_event| {})?;
//! println!("{}", outcome.onnx_path.display());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod card;
pub mod config;
pub mod export;
mod run;

pub use card::ModelCard;
pub use config::{Algo, SampleWeight, TrainConfig, TrainObjective, REVENUE_VARIANCE_POWER};
pub use run::{default_log_features, run, Event, TrainOutcome};

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] cr_data::DataError),
    #[error(transparent)]
    Features(#[from] cr_features::FeatureError),
    #[error(transparent)]
    Gbdt(#[from] cr_gbdt::GbdtError),
    #[error(transparent)]
    Linear(#[from] cr_linear::LinearError),
    #[error(transparent)]
    Onnx(#[from] cr_onnx::OnnxError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Split(String),
    #[error(
        "too few labelled rows to learn from: {positives} seized and {negatives} not seized \
         before {before} (the validation start); at least {min} of each are required \
         (min_per_class)"
    )]
    TooFewLabels {
        positives: usize,
        negatives: usize,
        min: usize,
        before: String,
    },
    #[error("ONNX export: {0}")]
    Export(String),
    /// The model card could not be written (or a field of it filled).
    #[error("model card: {0}")]
    Card(#[from] cr_model::ModelError),
    /// Reading or writing a file failed; the `io::Error` is the source.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A field of the model card cannot be filled (the card is never written with a blank
    /// in its place).
    #[error("model card field {field}: {source}")]
    CardField {
        field: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
