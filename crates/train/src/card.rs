//! The model card. Its home is [`cr_model::card`] (typed, versioned, read by every crate that
//! reads model files); this module re-exports it for the training run.

pub use cr_model::card::*;
