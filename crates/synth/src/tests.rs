use super::*;
use cr_data::{NumericKind, Selection};

fn gen(rows: usize, seed: u64) -> (Schema, Batch, Truth) {
    let schema = schema().expect("bundled schema");
    let cfg = SynthConfig {
        rows,
        seed,
        ..Default::default()
    };
    let (b, t) = generate_with_truth(&cfg, &schema).expect("generate");
    (schema, b, t)
}

#[test]
fn bundled_schema_has_the_agreed_columns() {
    let s = schema().expect("bundled schema");
    let cols: Vec<&str> = s.all_columns();
    let expected = [
        "declaration_id",
        "date",
        "hs_code",
        "office",
        "importer",
        "declarant",
        "seller",
        "courier",
        "origin_country",
        "departure_country",
        "transport_mode",
        "tax_type",
        "preferential_claim",
        "value",
        "mass",
        "quantity",
        "tax_rate",
        "fraud",
        "revenue_recovered",
        "inspected",
        "selection",
        "propensity",
    ];
    let mut a = cols.clone();
    a.sort_unstable();
    let mut e = expected.to_vec();
    e.sort_unstable();
    assert_eq!(a, e);
    assert_eq!(s.hs_width, 6);
}

#[test]
fn deterministic_by_seed() {
    let (_, a, ta) = gen(20_000, 11);
    let (_, b, tb) = gen(20_000, 11);
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    let (_, c, _) = gen(20_000, 12);
    assert_ne!(a.categorical, c.categorical);
    assert_ne!(a.numeric, c.numeric);
}

#[test]
fn independent_of_thread_count() {
    let schema = schema().expect("bundled schema");
    let cfg = SynthConfig {
        rows: 30_000,
        seed: 5,
        ..Default::default()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool");
    let a = one.install(|| generate(&cfg, &schema)).expect("generate");
    let b = three.install(|| generate(&cfg, &schema)).expect("generate");
    assert_eq!(a, b);
}

#[test]
fn shape_dates_and_lengths() {
    let (schema, b, _) = gen(25_001, 3);
    assert_eq!(b.len(), 25_001);
    b.check_lengths().expect("lengths");
    assert_eq!(b.categorical.len(), schema.categorical.len());
    assert_eq!(b.numeric.len(), schema.numeric.len());
    let first = cr_data::schema::days_from_ymd(2023, 1, 1).expect("date");
    let last = cr_data::schema::days_from_ymd(2024, 6, 30).expect("date"); // 18 months
    assert!(b.dates.windows(2).all(|w| w[0] <= w[1]), "sorted by date");
    assert!(b.dates.iter().all(|&d| d >= first && d <= last));
    assert_eq!(b.dates[0], first, "25k rows cover the first day");
    assert_eq!(*b.dates.last().expect("rows"), last, "... and the last");
    let mut ids = b.ids.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), b.len(), "ids unique");
    assert!(b.hs.iter().all(|&h| (10_000..1_000_000).contains(&h)));
    for (ci, c) in schema.categorical.iter().enumerate() {
        let col = &b.categorical[ci];
        assert!(col.iter().all(|v| v.trim() == v), "{} trimmed", c.name);
        let empty = col.iter().filter(|v| v.is_empty()).count();
        if !c.allow_missing {
            assert_eq!(empty, 0, "{}", c.name);
        }
        if c.kind == cr_data::CategoricalKind::Courier {
            assert!(empty > b.len() / 2, "courier mostly empty: {empty}");
        }
    }
    for (ni, n) in schema.numeric.iter().enumerate() {
        for &v in &b.numeric[ni] {
            assert!(v.is_finite(), "{}", n.name);
            if let Some(min) = n.min {
                assert!(f64::from(v) >= min, "{} = {v}", n.name);
            }
        }
        if n.kind == NumericKind::Value
            || n.kind == NumericKind::Mass
            || n.kind == NumericKind::Quantity
        {
            assert!(
                b.numeric[ni].iter().all(|&v| v > 0.0),
                "{} positive",
                n.name
            );
        }
    }
    let claim = schema
        .categorical
        .iter()
        .position(|c| c.name == PREFERENTIAL_CLAIM_COLUMN)
        .expect("claim column");
    assert!(b.categorical[claim].iter().all(|v| v == "Y" || v == "N"));
}

#[test]
fn zero_rows_and_bad_config() {
    let schema = schema().expect("bundled schema");
    let b = generate(
        &SynthConfig {
            rows: 0,
            ..Default::default()
        },
        &schema,
    )
    .expect("empty ok");
    assert!(b.is_empty());
    b.check_lengths().expect("lengths");
    for bad in [
        SynthConfig {
            months: 0,
            ..Default::default()
        },
        SynthConfig {
            random_rate: 0.0,
            ..Default::default()
        },
        SynthConfig {
            random_rate: f64::NAN,
            ..Default::default()
        },
        SynthConfig {
            start_date: (2023, 2, 30),
            ..Default::default()
        },
    ] {
        assert!(
            matches!(generate(&bad, &schema), Err(SynthError::Config { .. })),
            "{bad:?}"
        );
    }
    let mut narrow = schema.clone();
    narrow.date_max = cr_data::schema::days_from_ymd(2023, 6, 1).expect("date");
    assert!(matches!(
        generate(&SynthConfig::default(), &narrow),
        Err(SynthError::Schema { .. })
    ));
    let mut other = schema.clone();
    other.categorical[0].kind = cr_data::CategoricalKind::Other;
    other.categorical[0].name = "mystery".into();
    assert!(matches!(
        generate(&SynthConfig::default(), &other),
        Err(SynthError::Schema { .. })
    ));
}

#[test]
fn layout_follows_schema_order() {
    // Reversing the schema's column order reverses the batch vectors.
    let schema = schema().expect("bundled schema");
    let mut rev = schema.clone();
    rev.categorical.reverse();
    rev.numeric.reverse();
    let cfg = SynthConfig {
        rows: 3_000,
        seed: 9,
        ..Default::default()
    };
    let a = generate(&cfg, &schema).expect("generate");
    let b = generate(&cfg, &rev).expect("generate");
    let mut bc = b.categorical.clone();
    bc.reverse();
    let mut bn = b.numeric.clone();
    bn.reverse();
    assert_eq!(a.categorical, bc);
    assert_eq!(a.numeric, bn);
}

/// Labels, revenue, selection and propensity follow the inspection process.
#[test]
fn labels_only_on_inspected_rows() {
    let (_, b, t) = gen(60_000, 21);
    let r = SynthConfig::default().random_rate;
    for i in 0..b.len() {
        let p = b.propensity[i].expect("propensity on every row");
        assert!(p > 0.0 && p <= 1.0);
        assert_eq!(b.inspected[i], b.label[i].is_some(), "row {i}");
        assert_eq!(b.inspected[i], b.selection[i].is_some(), "row {i}");
        assert_eq!(b.inspected[i], b.revenue[i].is_some(), "row {i}");
        if let Some(l) = b.label[i] {
            assert_eq!(l, t.is_fraud(i));
            let rev = b.revenue[i].expect("revenue");
            if l {
                assert!(rev > 0.0, "fraud recovers revenue");
            } else {
                assert_eq!(rev, 0.0);
            }
        }
        if t.rule_hit[i] {
            // r + (1 - r)·q with q in [0.7, 0.85] and r = 0.02
            assert!((0.705..=0.854).contains(&p), "rule-hit propensity {p}");
        } else {
            assert!((p - r).abs() < 1e-12);
            assert_ne!(b.selection[i], Some(Selection::Rule));
        }
    }
}

fn frac(n: usize, d: usize) -> f64 {
    n as f64 / d.max(1) as f64
}

/// Overall fraud rate in [2 %, 5 %]; the random sample estimates it without bias; inverse
/// propensity weighting of the inspected rows recovers it too.
#[test]
fn rates_and_unbiased_random_sample() {
    let (_, b, t) = gen(200_000, 42);
    let n = b.len();
    let fraud = (0..n).filter(|&i| t.is_fraud(i)).count();
    let p = frac(fraud, n);
    assert!((0.02..=0.05).contains(&p), "fraud rate {p}");
    let random: Vec<usize> = (0..n)
        .filter(|&i| b.selection[i] == Some(Selection::Random))
        .collect();
    let nr = random.len();
    // Random sample size ~ Binomial(n, 0.02): within 5 sd.
    let sd_n = (n as f64 * 0.02 * 0.98).sqrt();
    assert!(
        (nr as f64 - n as f64 * 0.02).abs() < 5.0 * sd_n,
        "random sample {nr}"
    );
    let pr = frac(
        random.iter().filter(|&&i| b.label[i] == Some(true)).count(),
        nr,
    );
    let se = (p * (1.0 - p) / nr as f64).sqrt();
    assert!(
        (pr - p).abs() < 4.0 * se,
        "random-sample rate {pr} vs {p} (se {se})"
    );
    // IPW (Horvitz-Thompson) estimate of the fraud count over all rows.
    let ht: f64 = (0..n)
        .filter(|&i| b.label[i] == Some(true))
        .map(|i| 1.0 / b.propensity[i].expect("propensity"))
        .sum();
    assert!(
        (ht / n as f64 - p).abs() < 0.15 * p,
        "IPW {} vs {p}",
        ht / n as f64
    );
    // Rule-targeted inspections find more fraud than the random sample.
    let rule: Vec<usize> = (0..n)
        .filter(|&i| b.selection[i] == Some(Selection::Rule))
        .collect();
    let prule = frac(
        rule.iter().filter(|&&i| b.label[i] == Some(true)).count(),
        rule.len(),
    );
    assert!(prule > 1.5 * pr, "rule hit rate {prule} vs random {pr}");
    let insp = frac(b.inspected.iter().filter(|&&x| x).count(), n);
    assert!((0.03..=0.15).contains(&insp), "inspection rate {insp}");
    for m in [
        Mechanism::Undervaluation,
        Mechanism::Misclassification,
        Mechanism::OriginFraud,
        Mechanism::UndeclaredGoods,
    ] {
        let c = frac(t.mechanism.iter().filter(|x| **x == Some(m)).count(), n);
        assert!(c > 0.001 && c < 0.03, "{m:?}: {c}");
    }
}

#[test]
fn importer_population_is_heavy_tailed() {
    let (schema, b, _) = gen(100_000, 8);
    let imp = schema
        .categorical_index(cr_data::CategoricalKind::Importer)
        .expect("importer");
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for v in &b.categorical[imp] {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    assert!(
        (2_500..=5_500).contains(&counts.len()),
        "{} importers",
        counts.len()
    );
    let mut c: Vec<usize> = counts.values().copied().collect();
    c.sort_unstable_by(|a, b| b.cmp(a));
    let top1pct: usize = c[..c.len() / 100].iter().sum();
    assert!(
        frac(top1pct, b.len()) > 0.08,
        "top 1 % of importers: {}",
        frac(top1pct, b.len())
    );
    // New importers keep appearing: some importers' first row is in the last quarter.
    let q3 = b.dates[b.len() * 3 / 4];
    let mut first = std::collections::BTreeMap::<&str, i32>::new();
    for (v, &d) in b.categorical[imp].iter().zip(&b.dates) {
        first.entry(v.as_str()).or_insert(d);
    }
    assert!(first.values().filter(|&&d| d >= q3).count() > counts.len() / 20);
    let decl = schema
        .categorical_index(cr_data::CategoricalKind::Declarant)
        .expect("declarant");
    let mut d = b.categorical[decl].clone();
    d.sort();
    d.dedup();
    assert!(
        d.len() > 20 && d.len() < counts.len() / 5,
        "{} declarants shared",
        d.len()
    );
}

/// Fraud rate among rows whose declared value is far below the HS6 median unit value x mass
/// is much higher than the base rate; preferential claims with departure != origin too.
#[test]
fn planted_mechanisms_are_detectable() {
    let (schema, b, t) = gen(200_000, 42);
    let n = b.len();
    let v = schema.numeric_index(NumericKind::Value).expect("value");
    let m = schema.numeric_index(NumericKind::Mass).expect("mass");
    // Median log unit value per HS6 (from the data itself).
    let mut by_hs = std::collections::BTreeMap::<u64, Vec<f64>>::new();
    let luv: Vec<f64> = (0..n)
        .map(|i| (f64::from(b.numeric[v][i]) / f64::from(b.numeric[m][i])).ln())
        .collect();
    for (h, &l) in b.hs.iter().zip(&luv) {
        by_hs.entry(*h).or_default().push(l);
    }
    let med: std::collections::BTreeMap<u64, f64> = by_hs
        .into_iter()
        .map(|(k, mut xs)| {
            xs.sort_by(f64::total_cmp);
            (k, xs[xs.len() / 2])
        })
        .collect();
    let low: Vec<usize> = (0..n).filter(|&i| luv[i] - med[&b.hs[i]] < -1.2).collect();
    let base = frac((0..n).filter(|&i| t.is_fraud(i)).count(), n);
    let low_rate = frac(low.iter().filter(|&&i| t.is_fraud(i)).count(), low.len());
    assert!(
        low_rate > 2.0 * base,
        "undervalued-looking rows {low_rate} vs base {base}"
    );
    // ... but not a giveaway: most such rows are clean.
    assert!(low_rate < 0.5, "{low_rate}");

    let claim = schema
        .categorical
        .iter()
        .position(|c| c.name == PREFERENTIAL_CLAIM_COLUMN)
        .expect("claim");
    let o = schema
        .categorical_index(cr_data::CategoricalKind::CountryOfOrigin)
        .expect("origin");
    let dep = schema
        .categorical_index(cr_data::CategoricalKind::CountryOfDeparture)
        .expect("departure");
    let tr: Vec<usize> = (0..n)
        .filter(|&i| b.categorical[claim][i] == "Y" && b.categorical[o][i] != b.categorical[dep][i])
        .collect();
    let tr_rate = frac(tr.iter().filter(|&&i| t.is_fraud(i)).count(), tr.len());
    assert!(
        tr_rate > 3.0 * base,
        "claim with departure != origin: {tr_rate} vs {base}"
    );

    // Drift: the false origin of origin fraud shifts to MY in the last third.
    let split = b.dates[0] + (b.dates[n - 1] - b.dates[0]) * 2 / 3;
    let share_my = |late: bool| {
        let rows: Vec<usize> = (0..n)
            .filter(|&i| {
                t.mechanism[i] == Some(Mechanism::OriginFraud) && (b.dates[i] > split) == late
            })
            .collect();
        frac(
            rows.iter()
                .filter(|&&i| b.categorical[o][i] == "MY")
                .count(),
            rows.len(),
        )
    };
    assert!(
        share_my(true) > 0.5 && share_my(false) < 0.1,
        "{} {}",
        share_my(false),
        share_my(true)
    );
}

/// The streamed batches continue each other (ids, lines) across batch boundaries, and a file
/// written batch by batch holds what the whole batch written at once holds (CSV: the same
/// bytes; Parquet: the same rows read back): what `customs-risk generate` writes in flat
/// memory is the generator's batch.
#[test]
fn streamed_batches_continue_and_write_the_same_file() {
    let schema = schema().expect("bundled schema");
    let rows = STREAM_BATCH_ROWS + 9_000;
    let cfg = SynthConfig {
        rows,
        seed: 3,
        ..Default::default()
    };
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    let mut lines = Vec::new();
    let mut truth_rows = 0;
    generate_stream(&cfg, &schema, |b, t| {
        sizes.push(b.len());
        truth_rows += t.mechanism.len();
        assert_eq!(t.mechanism.len(), b.len());
        ids.extend(b.ids);
        lines.extend(b.lines);
        Ok::<(), SynthError>(())
    })
    .expect("stream");
    assert_eq!(sizes, vec![STREAM_BATCH_ROWS, 9_000]);
    assert_eq!(truth_rows, rows);
    for (i, (id, line)) in ids.iter().zip(&lines).enumerate() {
        assert_eq!(id, &format!("D{:09}", i + 1));
        assert_eq!(*line, i as u64 + 2);
    }

    let whole = generate(&cfg, &schema).expect("generate");
    let dir = tempfile::tempdir().expect("tempdir");
    for ext in ["csv", "parquet"] {
        let one = dir.path().join(format!("one.{ext}"));
        cr_data::write_batch(&one, &schema, &whole).expect("write whole");
        let pieces = dir.path().join(format!("pieces.{ext}"));
        let mut w = cr_data::BatchWriter::create(&pieces, &schema).expect("create");
        // uneven pieces, one of them empty
        let cuts = [0, 1, 70_000, 70_000, rows];
        for c in cuts.windows(2) {
            let idx: Vec<usize> = (c[0]..c[1]).collect();
            w.write(&whole.take(&idx)).expect("write piece");
        }
        assert_eq!(w.rows(), rows as u64);
        w.finish().expect("finish");
        if ext == "csv" {
            let (a, b) = (
                std::fs::read(&one).unwrap(),
                std::fs::read(&pieces).unwrap(),
            );
            assert!(a == b, "{ext}: pieces differ from the whole");
        } else {
            // Parquet cuts its pages where the writer is fed, so compare what reads back
            let opts = cr_data::ReadOptions::default();
            let (mut a, ra) = cr_data::read_all(&one, &schema, &opts).expect("read whole");
            let (mut b, rb) = cr_data::read_all(&pieces, &schema, &opts).expect("read pieces");
            assert!(ra.is_empty() && rb.is_empty());
            a.source.clear();
            b.source.clear();
            assert!(a == b, "{ext}: pieces read back differently from the whole");
            assert_eq!(a.len(), rows);
        }
    }
}
