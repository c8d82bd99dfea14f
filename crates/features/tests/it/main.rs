//! Integration tests of cr-features. Expected values come from first principles (hand
//! computation, brute-force recomputation, chrono for calendars), never from our own output.

mod common;
mod errors;
mod numeric;
mod reasons;
mod risk;
mod serde_det;
