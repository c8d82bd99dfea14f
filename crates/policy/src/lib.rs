//! Targeting policy: from scores to inspections.
//!
//! Owns: the policy file (channels and their order, officer rules, watch lists, inspection
//! capacity, ranking, random floor), the rule language (hand-written lexer and
//! recursive-descent parser in `syntax.rs`; type checking against the schema and compiling
//! in `rules.rs`), watch lists from CSV (`watch.rs`), and the bulk selection under capacity
//! with a fixed-size random sample whose exact inclusion probabilities are written out
//! (`select.rs`, `design.rs`).
//! Must not: know models or training (scores arrive as numbers), do per-row string parsing
//! while evaluating rules, or report a type error after loading.
//!
//! ```no_run
//! use std::path::Path;
//! use cr_policy::Policy;
//! let schema = cr_data::Schema::from_path(Path::new("data/schemas/synthetic.toml"))?;
//! let policy = Policy::load(Path::new("data/policies/example.toml"), &schema)?;
//! println!("{} rules, {} watch lists", policy.rules.len(), policy.lists.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod design;
pub mod error;
pub mod policy;
mod rules;
pub mod select;
pub mod syntax;
pub mod watch;

pub use error::{ErrorKind, Location, PolicyError};
pub use policy::{Capacity, Fired, Policy, RandomFloor, Ranking, Rule, Weight};
pub use select::{
    apply_decisions, read_decisions, select, write_decisions, Collected, Decision, LoggedDecision,
    OfficeSummary, Selection, Stratum, OUTPUT_COLUMNS,
};
pub use watch::{ListKind, WatchList};
