//! cr-gbdt integration tests, one module per area.

mod monotone;
mod tweedie;
