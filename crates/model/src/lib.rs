//! `cr-model`: the contract of a customs-risk model file, in one place.
//!
//! Owns: the `metadata_props` keys ([`meta`]), the typed and versioned model card
//! ([`ModelCard`], [`CARD_VERSION`]; an older card is upgraded, a newer one refused), the
//! reference score distribution and the one percentile rule ([`Reference`]), and inspection
//! budgets ([`Budget`], the rule for how many rows a budget selects).
//! Writers (`cr-train`) and readers (`cr-infer`, `cr-service`, `cr-eval`'s callers, the
//! binary) all go through it, so a key, a field or a rule is spelled once.
//!
//! Must not: depend on any other customs-risk crate or on anything beyond serde, serde_json
//! and thiserror (it is the ground floor every crate may stand on); do IO.
//!
//! ```
//! use cr_model::{Budget, Reference};
//! let reference = Reference::new(vec![0.1, 0.2, 0.4, 0.8])?.expect("not empty");
//! assert_eq!(reference.percentile(0.3), Some(50.0));
//! assert_eq!(Budget::Rate(0.05).k(101), 6);
//! # Ok::<(), cr_model::ModelError>(())
//! ```

pub mod budget;
pub mod card;
pub mod meta;
pub mod reference;

use std::collections::BTreeMap;

pub use budget::Budget;
pub use card::{
    BudgetMetrics, DataInfo, FeatureBins, FitInfo, Importance, ModelCard, RunInfo, SchemaInfo,
    SolverInfo, SplitInfo, ValidationMetrics, CARD_VERSION,
};
pub use reference::{percentile_of, score_at_percentile, Reference};

/// Errors reading or checking a model file's contract.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Metadata that is not valid JSON, or JSON that does not fit the expected type.
    #[error("{what} is not valid: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A card without a usable `card_version`.
    #[error("{0}")]
    CardVersion(String),
    /// A card written by a newer customs-risk than this one.
    #[error(
        "the model card has card_version {found}, newer than this customs-risk reads \
         (up to {supported}); use a newer customs-risk to read this model"
    )]
    NewerCard { found: u32, supported: u32 },
    /// A reference score distribution with a value that is not a finite number.
    #[error("{0}")]
    Reference(String),
    /// An inspection budget out of range.
    #[error("{0}")]
    Budget(String),
}

/// The reference distribution of a model file: its card's `score_quantiles` when it has a card
/// with quantiles, else the [`meta::REFERENCE_SCORES`] metadata (a JSON array of numbers);
/// `Ok(None)` when it has neither. A card or reference that cannot be read is an error, never
/// "no reference".
pub fn reference_from_metadata(
    metadata: &BTreeMap<String, String>,
) -> Result<Option<Reference>, ModelError> {
    if let Some(card) = ModelCard::from_metadata(metadata)? {
        if let Some(r) = card.reference()? {
            return Ok(Some(r));
        }
    }
    match metadata.get(meta::REFERENCE_SCORES) {
        None => Ok(None),
        Some(text) => {
            let values: Vec<f64> =
                serde_json::from_str(text).map_err(|source| ModelError::Json {
                    what: "metadata customs_risk.reference_scores (a JSON array of numbers)",
                    source,
                })?;
            Reference::new(values)
        }
    }
}
