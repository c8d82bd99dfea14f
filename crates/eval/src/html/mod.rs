//! Self-contained HTML reports: inline CSS and inline SVG only (no script, no external
//! resources, no network), so a report can be mailed or archived as one file.

mod compare;
mod eval;
pub(crate) mod svg;

pub use compare::render_comparison_html;
pub use eval::render_evaluation_html;

use std::fmt::Write;

use crate::estimate::{Estimate, EstimatorReport};
use crate::rows::Estimator;

/// Escape text for HTML/SVG content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px;line-height:1.4}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:2px solid #eee;padding-bottom:4px}h3{font-size:15px;margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f5f5f5}td.l,th.l{text-align:left}
.sub{color:#666;font-size:13px}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;margin:6px 0;font-size:13px}
.biased{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.flag{color:#b00020;font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(570px,1fr));gap:12px}.grid svg{border:1px solid #eee;max-width:100%;height:auto}
.sentence{font-size:16px;margin:6px 0;padding:8px 12px;background:#f3f8ff;border-left:4px solid #1f77b4}
.ci{color:#666;font-size:12px}footer{margin-top:40px;color:#777;font-size:12px}
"#;

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{}</style></head><body>\n{}\n</body></html>\n",
        esc(title),
        CSS,
        body
    )
}

/// `0.812 [0.790, 0.834]`
pub(crate) fn num(e: &Option<Estimate>, dec: usize) -> String {
    match e {
        Some(e) => format!(
            "{:.dec$} <span class=\"ci\">[{:.dec$}, {:.dec$}]</span>",
            e.value, e.ci_low, e.ci_high
        ),
        None => "—".into(),
    }
}

/// `12.3 % [10.1, 14.6]`
pub(crate) fn pct(e: &Option<Estimate>) -> String {
    match e {
        Some(e) => format!(
            "{:.1} % <span class=\"ci\">[{:.1}, {:.1}]</span>",
            e.value * 100.0,
            e.ci_low * 100.0,
            e.ci_high * 100.0
        ),
        None => "—".into(),
    }
}

pub(crate) fn est_name(r: &EstimatorReport) -> String {
    if r.biased {
        format!(
            "{} <span class=\"biased\">(biased)</span>",
            esc(r.estimator.title())
        )
    } else {
        esc(r.estimator.title())
    }
}

pub(crate) fn color_of(e: Estimator) -> &'static str {
    match e {
        Estimator::Inspected => svg::PALETTE[3],
        Estimator::RandomSample => svg::PALETTE[0],
        Estimator::Ipw => svg::PALETTE[2],
    }
}

pub(crate) fn notes(out: &mut String, notes: &[String]) {
    for n in notes {
        let _ = write!(out, "<div class=\"note\">{}</div>", esc(n));
    }
}

pub(crate) const DEFINITIONS: &str = "Top-k: rows ordered by score (highest first, ties by row order), k = ceil(rate × rows). \
Hit rate (precision) = seizures among the labelled rows in the top-k; recall = share of all seizures in the top-k; \
lift = recall ÷ share inspected. ROC-AUC counts tied pairs as ½. Average precision as in scikit-learn. \
Estimators: <b>all inspected rows</b> (biased whenever inspections were targeted), <b>random sample</b> (unbiased), \
<b>inverse-propensity weighted</b> (unbiased if recorded propensities are right). Intervals: Wilson (proportions), \
linearised normal (weighted ratios, means), DeLong (AUC), logit (average precision), paired bootstrap (differences).";
