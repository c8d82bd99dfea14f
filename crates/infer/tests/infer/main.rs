//! Integration tests of cr-infer: one binary, a module per area.

mod common;
mod foreign;
mod gen;
mod prep;
mod random_ensembles;
mod semantics;
mod shap;
