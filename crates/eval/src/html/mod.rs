//! HTML rendering (filled in below).
use crate::compare::ComparisonReport;
use crate::report::EvaluationReport;

pub fn render_evaluation_html(_r: &EvaluationReport) -> String { String::from("<svg></svg>") }
pub fn render_comparison_html(_r: &ComparisonReport) -> String { String::new() }
