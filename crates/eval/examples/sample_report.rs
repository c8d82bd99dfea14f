//! Write a sample evaluation and comparison report (HTML + JSON) for synthetic customs data.
//!
//! `cargo run -p cr-eval --example sample_report -- <out-dir> [rows]`
//!
//! The world: a hidden risk x; fraud ~ Bernoulli(sigmoid(−3.5 + 1.5x)); model A and a retrained
//! model B score it with different noise; a legacy rule inspects its top 8 %, a 3 % random
//! sample is inspected too; only inspected rows are labelled.

use cr_eval::{
    compare, evaluate, render_comparison_html, render_evaluation_html, EvalConfig, EvalInput,
    EvalRows, FeatureDriftInput, Period, SegmentColumn, SelectionKind,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "sample-report".into()));
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50_000);
    std::fs::create_dir_all(&out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (mut a, mut b, mut rule, mut truth, mut value) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let x = normal(&mut rng);
        // fraud drifts up over the year
        let month_shift = 0.3 * (i as f64 / n as f64);
        truth.push(rng.random::<f64>() < sigmoid(-3.5 + month_shift + 1.5 * x));
        a.push(sigmoid(-3.4 + 1.1 * x + 0.9 * normal(&mut rng)));
        b.push(sigmoid(-3.4 + 1.4 * x + 0.5 * normal(&mut rng)));
        rule.push(x + 1.2 * normal(&mut rng));
        value.push((8.0 + normal(&mut rng) + if i > n / 2 { 0.4 } else { 0.0 }).exp());
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&i, &j| rule[j].total_cmp(&rule[i]));
    let mut by_rule = vec![false; n];
    for &i in &idx[..n * 8 / 100] {
        by_rule[i] = true;
    }
    let offices = ["Abidjan", "Dakar", "Lagos", "Accra", "Lomé", "Cotonou"];
    let mut rows = EvalRows::from_labels(vec![None; n]);
    let (mut days, mut office) = (vec![], vec![]);
    for i in 0..n {
        let random = rng.random::<f64>() < 0.03;
        let inspected = random || by_rule[i];
        rows.inspected[i] = inspected;
        rows.label[i] = inspected.then_some(truth[i]);
        rows.selection[i] = if random {
            Some(SelectionKind::Random)
        } else if by_rule[i] {
            Some(SelectionKind::Rule)
        } else {
            None
        };
        rows.propensity[i] = inspected.then_some(if by_rule[i] { 1.0 } else { 0.03 });
        rows.revenue[i] = inspected.then(|| {
            if truth[i] {
                (7.0 + normal(&mut rng)).exp()
            } else {
                0.0
            }
        });
        days.push(19_723 + (i * 365 / n) as i32);
        office.push(offices[rng.random_range(0..offices.len())].to_string());
    }
    rows.period = Some(Period::DaysSinceEpoch(days));
    rows.segments = vec![SegmentColumn {
        name: "office".into(),
        values: office,
    }];

    // Training-time reference: first half of the year; value deciles from it.
    let half = n / 2;
    let ln_value: Vec<f64> = value.iter().map(|v: &f64| v.ln()).collect();
    let edges = cr_eval::quantile_edges(&ln_value[..half], 10);
    let expected = cr_eval::bin_proportions(&ln_value[..half], &edges)?;
    let input = EvalInput {
        model: "retrained-2024-09".into(),
        scores: b.clone(),
        rows: rows.clone(),
        reference_scores: Some(b[..half].to_vec()),
        features: vec![
            FeatureDriftInput {
                name: "log declared value".into(),
                edges: edges.clone(),
                expected: expected.clone(),
                values: ln_value[half..].to_vec(),
                expected_shift: None,
            },
            FeatureDriftInput {
                name: "log value (same period)".into(),
                edges,
                expected,
                values: ln_value[..half].to_vec(),
                expected_shift: None,
            },
        ],
    };
    let cfg = EvalConfig::default();
    let t = std::time::Instant::now();
    let report = evaluate(&input, &cfg)?;
    let t_eval = t.elapsed();
    std::fs::write(out.join("evaluation.html"), render_evaluation_html(&report))?;
    std::fs::write(out.join("evaluation.json"), report.to_json())?;
    let t = std::time::Instant::now();
    let cmp = compare(
        &[("in-service".into(), a), ("retrained-2024-09".into(), b)],
        &rows,
        &cfg,
    )?;
    let t_cmp = t.elapsed();
    std::fs::write(out.join("comparison.html"), render_comparison_html(&cmp))?;
    std::fs::write(out.join("comparison.json"), cmp.to_json())?;
    println!(
        "{} rows: evaluate {:?}, compare ({} bootstrap reps) {:?}",
        n, t_eval, cfg.bootstrap_reps, t_cmp
    );
    for s in &cmp.pairs[0].sentences {
        println!("{s}");
    }
    println!("wrote {}", out.display());
    Ok(())
}
