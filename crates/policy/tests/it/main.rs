//! cr-policy integration tests: one binary, a module per area.

mod common;
mod eval;
mod malformed;
mod select;
