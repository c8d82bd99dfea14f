//! The `metadata_props` keys of a customs-risk ONNX file: the one place they are spelled.
//!
//! | key | value | written by |
//! |---|---|---|
//! | [`CARD`] | the model card, JSON ([`crate::ModelCard`]) | `cr-train` |
//! | [`PIPELINE`] | the fitted feature pipeline, JSON (`cr_features::FittedPipeline`, schema included) | `cr-train` |
//! | [`KIND`] | `gbdt` or `logistic` | `cr-train` |
//! | [`PREDICTION`] | what the score output predicts ([`Prediction`]): `risk` or `expected_revenue`; absent = `risk` | `cr-train` |
//! | [`FEATURES`] | the name of the feature tensor inside the graph | `cr-train` |
//! | [`LOGISTIC`] | logistic models: the preprocessing and coefficients, JSON | `cr-train` |
//! | [`REFERENCE_SCORES`] | a JSON array of reference scores, for models without a card | anyone (e.g. a notebook exporting a foreign model) |
//! | [`GRAPH_DIGEST_KEY`] | SHA-256 (hex) binding the graph to the pipeline metadata (`cr_onnx::graph_digest`) | `cr-train` |
//!
//! A file with [`PIPELINE`] takes raw declaration fields as inputs (one `[N, 1]` tensor per
//! schema column); any other file is a "foreign" model.

/// The model card (JSON, [`crate::ModelCard`]).
pub const CARD: &str = "customs_risk.card";
/// The fitted feature pipeline (JSON, `cr_features::FittedPipeline`, schema included).
pub const PIPELINE: &str = "customs_risk.pipeline";
/// The model kind: `gbdt` or `logistic`.
pub const KIND: &str = "customs_risk.kind";
/// The name of the feature tensor `[N, F]` between the pipeline and the model inside the graph.
pub const FEATURES: &str = "customs_risk.features";
/// Logistic models: preprocessing and coefficients (JSON, `cr_linear::LogisticModel`).
pub const LOGISTIC: &str = "customs_risk.logistic";
/// Reference scores (a JSON array of finite numbers, any order) for files without a card: the
/// distribution percentiles and percentile thresholds are read against. A card's
/// `score_quantiles` take precedence.
pub const REFERENCE_SCORES: &str = "customs_risk.reference_scores";
/// SHA-256 (lower-case hex) of the graph and the metadata a native engine rebuilds it from
/// (`cr_onnx::graph_digest` over the graph, [`PIPELINE`] and [`FEATURES`]); a reader that uses
/// the metadata instead of the graph recomputes it and compares.
pub const GRAPH_DIGEST_KEY: &str = "customs_risk.graph_sha256";

/// What the model's score output predicts ([`Prediction`]); absent = [`Prediction::Risk`].
pub const PREDICTION: &str = "customs_risk.prediction";

/// What a model predicts per declaration: the one contract between the exporter (graph output
/// name, [`PREDICTION`] metadata) and every reader (output column of `score`, ranking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prediction {
    /// The probability that an inspection finds an offence (`--objective binary`): output
    /// `probabilities` `[N, 2]`, column 1; written as `score`.
    #[default]
    Risk,
    /// The expected revenue recovered by an inspection (`--objective revenue`, a Tweedie GBDT
    /// with log link): output `expected_revenue` `[N, 1]`; written as `expected_revenue`.
    ExpectedRevenue,
}

impl Prediction {
    /// The value of the [`PREDICTION`] metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Prediction::Risk => "risk",
            Prediction::ExpectedRevenue => "expected_revenue",
        }
    }

    /// The graph output that carries the prediction.
    pub fn output(self) -> &'static str {
        match self {
            Prediction::Risk => "probabilities",
            Prediction::ExpectedRevenue => "expected_revenue",
        }
    }

    /// The column scored files (and the service) write the prediction under.
    pub fn column(self) -> &'static str {
        match self {
            Prediction::Risk => "score",
            Prediction::ExpectedRevenue => "expected_revenue",
        }
    }

    /// From a file's metadata: [`Prediction::Risk`] without the key, an error for a value
    /// this program does not know (a newer kind of model is never scored as another).
    pub fn from_metadata(
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Prediction, crate::ModelError> {
        match metadata.get(PREDICTION).map(String::as_str) {
            None | Some("risk") => Ok(Prediction::Risk),
            Some("expected_revenue") => Ok(Prediction::ExpectedRevenue),
            Some(other) => Err(crate::ModelError::CardVersion(format!(
                "metadata {PREDICTION} is {other:?}; this customs-risk knows risk and \
                 expected_revenue (use a newer customs-risk for this model)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_round_trips_through_metadata_and_refuses_unknown_kinds() {
        let mut m = std::collections::BTreeMap::new();
        assert_eq!(Prediction::from_metadata(&m).unwrap(), Prediction::Risk);
        for p in [Prediction::Risk, Prediction::ExpectedRevenue] {
            m.insert(PREDICTION.to_string(), p.as_str().to_string());
            assert_eq!(Prediction::from_metadata(&m).unwrap(), p);
        }
        m.insert(PREDICTION.to_string(), "loss_given_default".to_string());
        let e = Prediction::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains("loss_given_default"), "{e}");
    }
}
