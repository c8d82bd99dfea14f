//! Inspection budgets. Their home is [`cr_model::budget`] (bulk scoring and selection use the
//! same rule); re-exported here, where every budget metric uses it.

pub use cr_model::Budget;

use crate::error::EvalError;

/// [`Budget::check`] as an evaluation configuration error.
pub(crate) fn check(b: &Budget) -> Result<(), EvalError> {
    b.check().map_err(|e| EvalError::Config(e.to_string()))
}
