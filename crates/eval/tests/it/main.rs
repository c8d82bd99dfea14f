//! Integration tests of cr-eval (one binary, a module per area).

mod browser;
mod common;
mod coverage;
mod delong;
mod determinism;
mod estimators;
mod offpolicy;
mod sklearn;
