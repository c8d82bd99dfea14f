//! The single-model evaluation page.

use std::fmt::Write;

use super::svg::{bar_chart, line_chart, Axis, Bar, Legend, LineChart, Series, Threshold};
use super::{color_of, esc, est_name, notes, num, page, pct, DEFINITIONS};
use crate::breakdown::{Breakdown, MIN_LABELS_FOR_INTERVAL};
use crate::drift::DriftLevel;
use crate::estimate::EstimatorReport;
use crate::report::EvaluationReport;

fn fmt_opt(x: Option<f64>, dec: usize) -> String {
    x.map_or("—".into(), |v| format!("{v:.dec$}"))
}

pub(crate) fn gains_series(r: &EstimatorReport, name: &str, color: &str, dashed: bool) -> Series {
    let mut points = vec![(0.0, 0.0)];
    points.extend(r.gains.iter().filter_map(|g| g.recall.map(|y| (g.rate, y))));
    if points.len() == 1 {
        points.clear();
    }
    Series {
        name: name.into(),
        points,
        color: color.into(),
        dashed,
        ..Series::default()
    }
}

pub(crate) fn lift_series(r: &EstimatorReport, name: &str, color: &str, max_rate: f64) -> Series {
    let points = r
        .gains
        .iter()
        .filter(|g| g.rate <= max_rate + 1e-12)
        .filter_map(|g| g.lift.map(|l| (g.rate, l)))
        .collect();
    Series {
        name: name.into(),
        points,
        color: color.into(),
        ..Series::default()
    }
}

pub(crate) fn roc_series(r: &EstimatorReport, name: &str, color: &str) -> Series {
    let mut points = vec![(0.0, 0.0)];
    points.extend(r.roc_curve.iter().map(|p| (p.fpr, p.tpr)));
    if points.len() == 1 {
        points.clear();
    }
    Series {
        name: name.into(),
        points,
        color: color.into(),
        ..Series::default()
    }
}

pub(crate) fn pr_series(r: &EstimatorReport, name: &str, color: &str) -> Series {
    let points = r.pr_curve.iter().map(|p| (p.recall, p.precision)).collect();
    Series {
        name: name.into(),
        points,
        color: color.into(),
        ..Series::default()
    }
}

pub(crate) fn calibration_series(r: &EstimatorReport, name: &str, color: &str) -> (Series, f64) {
    let mut top: f64 = 0.05;
    let points: Vec<(f64, f64)> = r
        .calibration
        .iter()
        .flat_map(|c| c.bins.iter())
        .filter_map(|b| Some((b.mean_predicted?, b.fraction_positive?)))
        .inspect(|&(x, y)| top = top.max(x).max(y))
        .collect();
    (
        Series {
            name: name.into(),
            points,
            color: color.into(),
            markers: true,
            ..Series::default()
        },
        top,
    )
}

pub(crate) fn month_series(b: &Breakdown, name: &str, color: &str) -> Series {
    let mut s = Series {
        name: name.into(),
        color: color.into(),
        markers: true,
        ..Series::default()
    };
    for (i, g) in b.groups.iter().enumerate() {
        if let Some(p) = &g.precision {
            s.points.push((i as f64, p.value));
            s.band.push((i as f64, p.ci_low, p.ci_high));
        }
    }
    s
}

pub(crate) fn axis_top(v: f64) -> f64 {
    let step = super::svg::nice_step(v, 5.0);
    ((v / step).ceil() * step).max(step)
}

fn headline_table(out: &mut String, r: &EvaluationReport) {
    out.push_str("<table><tr><th class=\"l\">estimator</th><th>sample rows</th><th>positives</th><th>fraud rate (all traffic)</th><th>fraud rate (uninspected)</th><th>ROC-AUC</th><th>average precision</th><th>log loss</th><th>Brier</th><th>ECE</th></tr>");
    for e in &r.estimators {
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            est_name(e),
            e.n_sample,
            e.n_positive,
            pct(&e.prevalence),
            pct(&e.uninspected_fraud_rate),
            num(&e.roc_auc, 3),
            num(&e.average_precision, 3),
            num(&e.log_loss, 4),
            num(&e.brier, 4),
            fmt_opt(e.calibration.as_ref().map(|c| c.ece), 4),
        );
    }
    out.push_str("</table>");
}

fn budget_table(out: &mut String, r: &EvaluationReport) {
    out.push_str("<table><tr><th class=\"l\">estimator</th><th>budget</th><th>inspections k</th><th>labelled in top-k</th><th>hit rate (precision)</th><th>recall</th><th>revenue share</th><th>lift</th></tr>");
    for e in &r.estimators {
        for b in &e.budgets {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                est_name(e),
                esc(&b.budget.label()),
                b.k,
                b.labelled_in_top_k,
                pct(&b.precision),
                pct(&b.recall),
                pct(&b.revenue_share),
                fmt_opt(b.lift, 2)
            );
        }
    }
    out.push_str("</table>");
}

fn breakdown_table(out: &mut String, b: &Breakdown) {
    let _ = write!(
        out,
        "<h3>By {} <span class=\"sub\">({} estimate, hit rate at {})</span></h3><table><tr><th class=\"l\">{}</th><th>rows</th><th>labelled</th><th>positives</th><th>sample rows</th><th>ROC-AUC</th><th>k</th><th>hit rate</th></tr>",
        esc(&b.name),
        esc(b.estimator.title()),
        esc(&b.budget.label()),
        esc(&b.name)
    );
    let mut few = false;
    for g in &b.groups {
        let (auc, hit) = if g.interval_shown() {
            (num(&g.roc_auc, 3), pct(&g.precision))
        } else {
            few = true;
            let mark = |v: Option<String>| v.map_or_else(|| "—".to_string(), |v| format!("{v} †"));
            (
                mark(g.roc_auc.as_ref().map(|e| format!("{:.3}", e.value))),
                mark(
                    g.precision
                        .as_ref()
                        .map(|e| format!("{:.1} %", e.value * 100.0)),
                ),
            )
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.key),
            g.n,
            g.labelled,
            g.positives,
            g.n_sample,
            auc,
            g.k,
            hit
        );
    }
    out.push_str("</table>");
    if few {
        let _ = write!(
            out,
            "<p class=\"sub\">† no interval: fewer than {MIN_LABELS_FOR_INTERVAL} labelled positives or negatives in the group; the value is a point estimate from very few labels.</p>"
        );
    }
}

/// Render one model's evaluation as a self-contained HTML page (inline SVG plots: gains, lift,
/// precision–recall, ROC, reliability diagram, hit rate by period, drift).
pub fn render_evaluation_html(r: &EvaluationReport) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1>Model evaluation: {}</h1><p class=\"sub\">{} rows · {} labelled ({} positive) · {} inspected · {} labelled by the random sample · {} with a propensity · headline estimator: <b>{}</b> · {}</p>",
        esc(&r.model),
        r.n_rows,
        r.n_labelled,
        r.n_positive,
        r.n_inspected,
        r.n_random_labelled,
        r.n_with_propensity,
        esc(r.primary_estimator.title()),
        esc(&r.generator)
    );
    notes(&mut o, &r.notes);
    for e in &r.estimators {
        let tagged: Vec<String> = e
            .notes
            .iter()
            .map(|n| format!("{}: {}", e.estimator.title(), n))
            .collect();
        notes(&mut o, &tagged);
    }
    o.push_str("<h2>Summary</h2>");
    headline_table(&mut o, r);
    o.push_str("<h2>At the inspection budget</h2>");
    budget_table(&mut o, r);

    o.push_str("<h2>Plots</h2><div class=\"grid\">");
    let primary = r.primary();
    // gains
    let mut series: Vec<Series> = r
        .estimators
        .iter()
        .map(|e| gains_series(e, e.estimator.title(), color_of(e.estimator), false))
        .collect();
    if let Some(p) = primary {
        let mut rev = Series {
            name: format!("revenue ({})", p.estimator.title()),
            color: "#555".into(),
            dashed: true,
            ..Series::default()
        };
        rev.points = std::iter::once((0.0, 0.0))
            .chain(
                p.gains
                    .iter()
                    .filter_map(|g| g.revenue_share.map(|y| (g.rate, y))),
            )
            .collect();
        if rev.points.len() > 1 {
            series.push(rev);
        }
    }
    o.push_str(&line_chart(
        &LineChart {
            title: "Cumulative gains: share of seizures caught".into(),
            x: Axis::new("share of declarations inspected", 0.0, 1.0).pct(),
            y: Axis::new("share of seizures (revenue) caught", 0.0, 1.0).pct(),
            series,
            diagonal: Some("random order".into()),
            id: "chart-gains".into(),
        },
        Legend::BottomRight,
    ));
    // lift
    let max_rate = 0.2;
    let series: Vec<Series> = r
        .estimators
        .iter()
        .map(|e| lift_series(e, e.estimator.title(), color_of(e.estimator), max_rate))
        .collect();
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let mut series = series;
    series.push(Series {
        name: "no model (lift 1)".into(),
        points: vec![(0.0, 1.0), (max_rate, 1.0)],
        color: "#999".into(),
        dashed: true,
        ..Series::default()
    });
    o.push_str(&line_chart(
        &LineChart {
            title: "Lift (hit rate ÷ overall fraud rate)".into(),
            x: Axis::new("share of declarations inspected", 0.0, max_rate).pct(),
            y: Axis::new("lift", 0.0, axis_top(top)),
            series,
            diagonal: None,
            id: "chart-lift".into(),
        },
        Legend::TopRight,
    ));
    // PR
    let mut series: Vec<Series> = r
        .estimators
        .iter()
        .map(|e| pr_series(e, e.estimator.title(), color_of(e.estimator)))
        .collect();
    if let Some(prev) = primary.and_then(|p| p.prevalence) {
        series.push(Series {
            name: "fraud rate (no skill)".into(),
            points: vec![(0.0, prev.value), (1.0, prev.value)],
            color: "#999".into(),
            dashed: true,
            ..Series::default()
        });
    }
    o.push_str(&line_chart(
        &LineChart {
            title: "Precision–recall".into(),
            x: Axis::new("recall", 0.0, 1.0),
            y: Axis::new("precision (hit rate)", 0.0, 1.0),
            series,
            diagonal: None,
            id: "chart-pr".into(),
        },
        Legend::TopRight,
    ));
    // ROC
    let series = r
        .estimators
        .iter()
        .map(|e| roc_series(e, e.estimator.title(), color_of(e.estimator)))
        .collect();
    o.push_str(&line_chart(
        &LineChart {
            title: "ROC curve".into(),
            x: Axis::new("false positive rate", 0.0, 1.0),
            y: Axis::new("true positive rate", 0.0, 1.0),
            series,
            diagonal: Some("chance".into()),
            id: "chart-roc".into(),
        },
        Legend::BottomRight,
    ));
    // calibration
    let mut top: f64 = 0.05;
    let series: Vec<Series> = r
        .estimators
        .iter()
        .map(|e| {
            let (s, t) = calibration_series(e, e.estimator.title(), color_of(e.estimator));
            top = top.max(t);
            s
        })
        .collect();
    let top = axis_top(top.min(1.0)).min(1.0);
    o.push_str(&line_chart(
        &LineChart {
            title: "Calibration (reliability diagram)".into(),
            x: Axis::new("mean predicted probability", 0.0, top),
            y: Axis::new("observed fraud rate", 0.0, top),
            series,
            diagonal: Some("perfect calibration".into()),
            id: "chart-calibration".into(),
        },
        Legend::TopLeft,
    ));
    // hit rate by period
    if let Some(b) = &r.by_period {
        let s = month_series(
            b,
            &format!("hit rate at {} ({})", b.budget.label(), b.estimator.title()),
            color_of(b.estimator),
        );
        let top = s
            .band
            .iter()
            .map(|x| x.2)
            .chain(s.points.iter().map(|p| p.1))
            .fold(0.01f64, f64::max);
        let cats: Vec<String> = b.groups.iter().map(|g| g.key.clone()).collect();
        let mut x = Axis::new(&b.name, -0.5, cats.len() as f64 - 0.5);
        x.categories = Some(cats);
        o.push_str(&line_chart(
            &LineChart {
                title: format!("Hit rate by {} (top {} each)", b.name, b.budget.label()),
                x,
                y: Axis::new("hit rate", 0.0, axis_top(top.min(1.0)).min(1.0)).pct(),
                series: vec![s],
                diagonal: None,
                id: "chart-by-period".into(),
            },
            Legend::TopRight,
        ));
    }
    // drift
    let psis: Vec<&crate::drift::PsiResult> = r
        .drift
        .score
        .iter()
        .chain(r.drift.features.iter())
        .collect();
    if !psis.is_empty() {
        let bars: Vec<Bar> = psis
            .iter()
            .map(|p| Bar {
                label: p.name.clone(),
                value: p.psi,
                color: match p.level {
                    _ if p.expected_shift.is_some() => "#999999".into(),
                    DriftLevel::Stable => "#2ca02c".into(),
                    DriftLevel::Moderate => "#ff7f0e".into(),
                    DriftLevel::Shift => "#d62728".into(),
                },
                interval: None,
            })
            .collect();
        let top = psis
            .iter()
            .map(|p| p.psi)
            .fold(r.drift.flag * 1.25, f64::max);
        o.push_str(&bar_chart(
            "chart-drift",
            "Drift: population stability index",
            &Axis::new("PSI", 0.0, axis_top(top)),
            "feature",
            &bars,
            &[
                Threshold {
                    value: 0.1,
                    label: "0.1 moderate".into(),
                    color: "#ff7f0e".into(),
                },
                Threshold {
                    value: r.drift.flag,
                    label: format!("{} flag", r.drift.flag),
                    color: "#d62728".into(),
                },
            ],
        ));
    }
    o.push_str("</div>");

    if r.by_period.is_some() || !r.by_segment.is_empty() {
        o.push_str("<h2>Breakdowns</h2>");
        for b in r.by_period.iter().chain(r.by_segment.iter()) {
            breakdown_table(&mut o, b);
        }
    }
    if !psis.is_empty() {
        o.push_str("<h2>Drift</h2><table><tr><th class=\"l\">feature</th><th>PSI</th><th class=\"l\">level</th><th>new rows</th></tr>");
        for p in &psis {
            let _ = write!(
                o,
                "<tr><td class=\"l\">{}</td><td>{:.4}</td><td class=\"l{}\">{:?}{}</td><td>{}</td></tr>",
                esc(&p.name),
                p.psi,
                if p.flagged { " flag" } else { "" },
                p.level,
                match (&p.expected_shift, p.flagged) {
                    (Some(why), _) => format!(" (expected, not flagged: {})", esc(why)),
                    (None, true) => " (flagged)".to_string(),
                    (None, false) => String::new(),
                },
                p.n_actual
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "<footer><p>{DEFINITIONS}</p></footer>");
    page(&format!("Evaluation: {}", r.model), &o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breakdown::GroupRow;
    use crate::estimate::{CiMethod, Estimate};
    use crate::rows::Estimator;

    fn est(v: f64, lo: f64, hi: f64) -> Option<Estimate> {
        Some(Estimate {
            estimator: Estimator::Inspected,
            value: v,
            ci_low: lo,
            ci_high: hi,
            confidence: 0.95,
            ci_method: CiMethod::Normal,
            n: 10,
        })
    }

    fn group(key: &str, labelled: usize, positives: usize) -> GroupRow {
        GroupRow {
            key: key.into(),
            n: 1000,
            labelled,
            positives,
            n_sample: labelled,
            roc_auc: est(1.0, 1.0, 1.0),
            k: 50,
            precision: est(0.5, 0.25, 0.75),
        }
    }

    #[test]
    fn tiny_groups_show_no_degenerate_interval() {
        let b = Breakdown {
            name: "office".into(),
            estimator: Estimator::Inspected,
            budget: crate::budget::Budget::Rate(0.05),
            // 3 positives: no interval; 12 positives and 30 negatives: intervals
            groups: vec![group("TINY", 40, 3), group("BIG", 42, 12)],
        };
        let mut html = String::new();
        breakdown_table(&mut html, &b);
        let tiny = &html[html.find("TINY").unwrap()..html.find("BIG").unwrap()];
        assert!(
            tiny.contains("1.000 †") && tiny.contains("50.0 % †"),
            "{tiny}"
        );
        assert!(!tiny.contains("[1.000, 1.000]"), "{tiny}");
        let big = &html[html.find("BIG").unwrap()..];
        assert!(
            big.contains("[1.000, 1.000]") && big.contains("[25.0, 75.0]"),
            "{big}"
        );
        assert!(html.contains("† no interval: fewer than 10"));
        // a group with enough positives but too few negatives has none either
        assert!(!group("NEG", 15, 12).interval_shown());
        assert!(group("OK", 20, 10).interval_shown());
    }
}
