//! The model comparison page.

use std::fmt::Write;

use super::eval::{
    axis_top, calibration_series, gains_series, month_series, pr_series, roc_series,
};
use super::svg::{bar_chart, line_chart, Axis, Bar, Legend, LineChart, Series, PALETTE};
use super::{esc, notes, num, page, pct, DEFINITIONS};
use crate::compare::{ComparisonReport, Diff};

fn diff_pp(d: &Option<Diff>) -> String {
    match d {
        Some(d) => format!(
            "{:+.1} pp <span class=\"ci\">[{:+.1}, {:+.1}]</span>{}",
            d.diff * 100.0,
            d.ci_low * 100.0,
            d.ci_high * 100.0,
            if d.significant() {
                " <span class=\"ok\">●</span>"
            } else {
                ""
            }
        ),
        None => "—".into(),
    }
}

fn pair_vals(d: &Option<Diff>) -> (String, String) {
    match d {
        Some(d) => (
            format!("{:.1} %", d.baseline * 100.0),
            format!("{:.1} %", d.challenger * 100.0),
        ),
        None => ("—".into(), "—".into()),
    }
}

/// Render a comparison as a self-contained HTML page: sentences, difference tables with
/// paired-bootstrap intervals, DeLong tests, top-k overlap, and overlaid plots.
pub fn render_comparison_html(r: &ComparisonReport) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1>Model comparison: {}</h1><p class=\"sub\">{} rows · baseline (in service): <b>{}</b> · headline estimator: <b>{}</b> · {} paired-bootstrap replicates (seed {}) · {:.0} % intervals</p>",
        esc(&r.models.join(" vs ")),
        r.n_rows,
        esc(&r.baseline),
        esc(r.primary_estimator.title()),
        r.config.bootstrap_reps,
        r.config.seed,
        r.config.confidence * 100.0
    );
    notes(&mut o, &r.notes);
    o.push_str("<h2>In plain words</h2>");
    for p in &r.pairs {
        for s in &p.sentences {
            let _ = write!(o, "<p class=\"sentence\">{}</p>", esc(s));
        }
    }

    o.push_str("<h2>Each model</h2><table><tr><th class=\"l\">model</th><th class=\"l\">estimator</th><th>ROC-AUC</th><th>average precision</th>");
    for b in &r.config.budgets {
        let _ = write!(o, "<th>hit rate at {}</th>", esc(&b.label()));
    }
    o.push_str("</tr>");
    for ev in &r.evaluations {
        if let Some(e) = ev.primary() {
            let _ = write!(
                o,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
                esc(&ev.model),
                super::est_name(e),
                num(&e.roc_auc, 3),
                num(&e.average_precision, 3)
            );
            for b in &e.budgets {
                let _ = write!(o, "<td>{}</td>", pct(&b.precision));
            }
            o.push_str("</tr>");
        }
    }
    o.push_str("</table>");

    for p in &r.pairs {
        let _ = write!(
            o,
            "<h2>{} vs {} <span class=\"sub\">(differences: {} − {})</span></h2>",
            esc(&p.challenger),
            esc(&p.baseline),
            esc(&p.challenger),
            esc(&p.baseline)
        );
        for pe in &p.by_estimator {
            let _ = write!(
                o,
                "<h3>{}{}</h3><table><tr><th>budget</th><th>k</th><th>hit rate {}</th><th>hit rate {}</th><th>difference</th><th>recall difference</th><th>revenue share difference</th></tr>",
                esc(pe.estimator.title()),
                if pe.biased { " <span class=\"biased\">(biased)</span>" } else { "" },
                esc(&p.baseline),
                esc(&p.challenger)
            );
            for b in &pe.budgets {
                let (va, vb) = pair_vals(&b.precision);
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&b.budget.label()),
                    b.k,
                    va,
                    vb,
                    diff_pp(&b.precision),
                    diff_pp(&b.recall),
                    diff_pp(&b.revenue_share)
                );
            }
            o.push_str("</table>");
            if let Some(a) = &pe.auc {
                let _ = write!(
                    o,
                    "<p>ROC-AUC {:.4} → {:.4}: difference {:+.4} <span class=\"ci\">[{:+.4}, {:+.4}] paired bootstrap</span>",
                    a.baseline, a.challenger, a.diff, a.ci_low, a.ci_high
                );
                if let Some(d) = &pe.delong {
                    let _ = write!(
                        o,
                        "; DeLong: SE {:.4}, z = {:.2}, p {}, <span class=\"ci\">[{:+.4}, {:+.4}]</span>",
                        d.se_diff,
                        d.z,
                        if d.p_value < 0.001 { "< 0.001".to_string() } else { format!("= {:.3}", d.p_value) },
                        d.ci_low,
                        d.ci_high
                    );
                }
                o.push_str("</p>");
            }
        }
        o.push_str("<h3>Top-k overlap</h3><table><tr><th>budget</th><th>k</th><th>in both</th><th>Jaccard</th><th>share of baseline's list also chosen by challenger</th></tr>");
        for ov in &p.overlap {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.1} %</td></tr>",
                esc(&ov.budget.label()),
                ov.k,
                ov.intersection,
                ov.jaccard,
                ov.share_of_baseline_in_challenger * 100.0
            );
        }
        o.push_str("</table>");
    }

    // Plots: overlays on the primary estimator.
    o.push_str("<h2>Plots</h2><div class=\"grid\">");
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let prim: Vec<(usize, &crate::estimate::EstimatorReport, &str)> = r
        .evaluations
        .iter()
        .enumerate()
        .filter_map(|(i, ev)| ev.primary().map(|e| (i, e, ev.model.as_str())))
        .collect();
    let est = r.primary_estimator.title();
    o.push_str(&line_chart(
        &LineChart {
            title: format!("Cumulative gains ({est})"),
            x: Axis::new("share of declarations inspected", 0.0, 1.0).pct(),
            y: Axis::new("share of seizures caught", 0.0, 1.0).pct(),
            series: prim
                .iter()
                .map(|&(i, e, m)| gains_series(e, m, color(i), false))
                .collect(),
            diagonal: Some("random order".into()),
            id: "chart-gains".into(),
        },
        Legend::BottomRight,
    ));
    o.push_str(&line_chart(
        &LineChart {
            title: format!("Precision–recall ({est})"),
            x: Axis::new("recall", 0.0, 1.0),
            y: Axis::new("precision (hit rate)", 0.0, 1.0),
            series: prim
                .iter()
                .map(|&(i, e, m)| pr_series(e, m, color(i)))
                .collect(),
            diagonal: None,
            id: "chart-pr".into(),
        },
        Legend::TopRight,
    ));
    o.push_str(&line_chart(
        &LineChart {
            title: format!("ROC curve ({est})"),
            x: Axis::new("false positive rate", 0.0, 1.0),
            y: Axis::new("true positive rate", 0.0, 1.0),
            series: prim
                .iter()
                .map(|&(i, e, m)| roc_series(e, m, color(i)))
                .collect(),
            diagonal: Some("chance".into()),
            id: "chart-roc".into(),
        },
        Legend::BottomRight,
    ));
    let mut top: f64 = 0.05;
    let series: Vec<Series> = prim
        .iter()
        .map(|&(i, e, m)| {
            let (s, t) = calibration_series(e, m, color(i));
            top = top.max(t);
            s
        })
        .collect();
    let top = axis_top(top.min(1.0)).min(1.0);
    o.push_str(&line_chart(
        &LineChart {
            title: format!("Calibration ({est})"),
            x: Axis::new("mean predicted probability", 0.0, top),
            y: Axis::new("observed fraud rate", 0.0, top),
            series,
            diagonal: Some("perfect calibration".into()),
            id: "chart-calibration".into(),
        },
        Legend::TopLeft,
    ));
    let months: Vec<Series> = r
        .evaluations
        .iter()
        .enumerate()
        .filter_map(|(i, ev)| {
            ev.by_period
                .as_ref()
                .map(|b| month_series(b, &ev.model, color(i)))
        })
        .collect();
    if let Some(b) = r.evaluations.first().and_then(|e| e.by_period.as_ref()) {
        let top = months
            .iter()
            .flat_map(|s| s.band.iter().map(|x| x.2))
            .fold(0.01f64, f64::max);
        let cats: Vec<String> = b.groups.iter().map(|g| g.key.clone()).collect();
        let mut x = Axis::new(&b.name, -0.5, cats.len() as f64 - 0.5);
        x.categories = Some(cats);
        o.push_str(&line_chart(
            &LineChart {
                title: format!("Hit rate by {} at {} ({est})", b.name, b.budget.label()),
                x,
                y: Axis::new("hit rate", 0.0, axis_top(top.min(1.0)).min(1.0)).pct(),
                series: months,
                diagonal: None,
                id: "chart-by-period".into(),
            },
            Legend::TopRight,
        ));
    }
    // Differences in hit rate with intervals, per challenger and budget.
    let mut bars = Vec::new();
    for (j, p) in r.pairs.iter().enumerate() {
        if let Some(pe) = p.estimator(r.primary_estimator) {
            for b in &pe.budgets {
                if let Some(d) = &b.precision {
                    bars.push(Bar {
                        label: if r.pairs.len() > 1 {
                            format!("{} @ {}", p.challenger, b.budget.label())
                        } else {
                            b.budget.label()
                        },
                        value: d.diff * 100.0,
                        color: color(j + 1).into(),
                        interval: Some((d.ci_low * 100.0, d.ci_high * 100.0)),
                    });
                }
            }
        }
    }
    if !bars.is_empty() {
        let lo = bars
            .iter()
            .map(|b| b.interval.map_or(b.value, |i| i.0))
            .fold(0.0f64, f64::min);
        let hi = bars
            .iter()
            .map(|b| b.interval.map_or(b.value, |i| i.1))
            .fold(0.0f64, f64::max);
        let (lo, hi) = (-axis_top(-lo.min(-0.1)), axis_top(hi.max(0.1)));
        o.push_str(&bar_chart(
            "chart-diff",
            &format!("Extra seizures per 100 inspections vs {}", r.baseline),
            &Axis::new("difference (per 100 inspections)", lo, hi),
            "budget",
            &bars,
            &[],
        ));
    }
    o.push_str("</div>");
    let _ = write!(o, "<footer><p>{DEFINITIONS}</p></footer>");
    page(&format!("Comparison: {}", r.models.join(" vs ")), &o)
}
