//! Selection under capacity, checked from first principles: the random design's logged
//! probabilities against empirical frequencies over thousands of seeded runs, capacity,
//! mandatory rules and strata counted directly.

use cr_eval::Budget;
use cr_policy::{select, Collected, Policy, Stratum};

use crate::common::{batch, day, load, row, schema, Row};

/// Two offices over two days, one mandatory rule (HS chapter 93), one advisory rule
/// (origin KP), capacity: 10 % per office-day (POST-HUB: 2), random floor 5 %, rate 15 %,
/// probabilities by score.
const POLICY: &str = r#"channels = ["green", "yellow", "red"]

[capacity]
share = 0.1
channel = "red"

[capacity.office.POST-HUB]
count = 2

[random]
floor = 0.05
rate = 0.15
weight = "score"
channel = "yellow"

[[rule]]
name = "weapons"
when = 'hs_code starts_with "93"'
channel = "red"
mandatory = true

[[rule]]
name = "kp"
when = 'origin_country == "KP"'
channel = "yellow"
"#;

fn small_file() -> (Vec<Row>, Vec<f32>) {
    let mut rows = Vec::new();
    let mut scores = Vec::new();
    for i in 0..46u64 {
        let office = if i % 3 == 0 { "POST-HUB" } else { "PORT-NORTH" };
        let d = day("2024-03-01") + (i % 2) as i32;
        let hs = if i % 11 == 5 { 930100 } else { 610910 };
        let mut r = row(&format!("D{i:03}"), office, d, hs);
        if i % 13 == 7 {
            r.cat[5] = "KP".into();
        }
        rows.push(r);
        // strongly unequal scores so the exact probabilities differ from the nominal rate
        scores.push(((i * 37) % 46) as f32 / 46.0 + 0.01);
    }
    (rows, scores)
}

fn collect(p: &Policy, rows: &[Row], scores: &[f32]) -> Collected {
    let sc = schema();
    let mut c = Collected::default();
    // two chunks, as the bulk reader would hand them
    let cut = rows.len() / 2;
    c.push(p, &batch(&sc, &rows[..cut]), &scores[..cut])
        .expect("push");
    c.push(p, &batch(&sc, &rows[cut..]), &scores[cut..])
        .expect("push");
    c
}

/// Exact binomial tail bounds would do; with n = 4000 runs the normal approximation with a
/// continuity correction is accurate for p in [0.05, 0.95]. Per-row two-sided level
/// 1e-6 (z = 4.89), i.e. a family-wise level below 5e-5 over the 46 rows.
const RUNS: u64 = 4000;
const Z: f64 = 4.89;

#[test]
fn empirical_selection_frequencies_match_the_logged_probabilities() {
    let p = load(POLICY, &[]).expect("policy");
    let (rows, scores) = small_file();
    let c = collect(&p, &rows, &scores);
    let first = select(&p, &c, 0).expect("select");
    let mut hits = vec![0u64; rows.len()];
    for seed in 0..RUNS {
        let s = select(&p, &c, seed).expect("select");
        for (i, d) in s.decisions.iter().enumerate() {
            // the logged probability does not depend on the draw
            assert_eq!(
                d.propensity, first.decisions[i].propensity,
                "row {i} seed {seed}"
            );
            if d.stratum != Stratum::None {
                hits[i] += 1;
            }
        }
    }
    let mut distinct = Vec::new();
    let mut random_eligible = 0;
    for (i, d) in first.decisions.iter().enumerate() {
        let pi = d.propensity;
        assert!(pi > 0.0 && pi <= 1.0, "row {i}: {pi}");
        if matches!(d.stratum, Stratum::Rule | Stratum::Model) {
            assert_eq!(hits[i], RUNS, "deterministic selections every time");
            continue;
        }
        random_eligible += 1;
        assert!(pi >= 0.05 * (1.0 - 1e-9), "row {i}: {pi} below the floor");
        let n = RUNS as f64;
        let sd = (n * pi * (1.0 - pi)).sqrt();
        let dev = (hits[i] as f64 - n * pi).abs();
        assert!(
            dev <= Z * sd + 0.5,
            "row {i}: selected {} of {RUNS}, logged probability {pi} (expected {:.1} ± {:.1})",
            hits[i],
            n * pi,
            Z * sd
        );
        if !distinct.iter().any(|&x: &f64| (x - pi).abs() < 1e-3) {
            distinct.push(pi);
        }
    }
    // the check has teeth: probabilities differ from one another (so from any nominal rate)
    assert!(random_eligible > 30, "{random_eligible}");
    assert!(distinct.len() >= 10, "{distinct:?}");
    let spread =
        distinct.iter().cloned().fold(0.0, f64::max) - distinct.iter().cloned().fold(1.0, f64::min);
    assert!(spread > 0.2, "{distinct:?}");
}

#[test]
fn capacity_is_met_exactly_and_mandatory_rules_are_never_dropped() {
    let p = load(POLICY, &[]).expect("policy");
    let (rows, scores) = small_file();
    let c = collect(&p, &rows, &scores);
    for seed in [1u64, 2, 3, 99] {
        let s = select(&p, &c, seed).expect("select");
        let groups: std::collections::BTreeSet<(String, i32)> =
            rows.iter().map(|r| (r.cat[0].clone(), r.date)).collect();
        for (office, d) in &groups {
            let idx: Vec<usize> = (0..rows.len())
                .filter(|&i| &rows[i].cat[0] == office && rows[i].date == *d)
                .collect();
            let mandatory: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| rows[i].hs / 10_000 == 93)
                .collect();
            for &i in &mandatory {
                let dd = s.decisions[i];
                assert_eq!((dd.stratum, dd.propensity), (Stratum::Rule, 1.0), "row {i}");
                assert_eq!(p.channels[dd.channel as usize], "red");
            }
            let left = idx.len() - mandatory.len();
            let k = if office == "POST-HUB" {
                Budget::Count(2).k(left)
            } else {
                Budget::Rate(0.1).k(idx.len())
            };
            let used = idx
                .iter()
                .filter(|&&i| {
                    let d = s.decisions[i];
                    d.stratum == Stratum::Model
                        || (d.stratum == Stratum::Rule && rows[i].hs / 10_000 != 93)
                })
                .count();
            assert_eq!(used, k.min(left), "{office} {d}");
            // model selections: the highest scores among the non-rule rows, ranks 1..
            let mut ranked: Vec<(u32, f32)> = idx
                .iter()
                .filter(|&&i| s.decisions[i].stratum == Stratum::Model)
                .map(|&i| (s.decisions[i].rank, scores[i]))
                .collect();
            ranked.sort_by_key(|x| x.0);
            assert!(ranked
                .iter()
                .enumerate()
                .all(|(j, x)| x.0 as usize == j + 1));
            assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1));
            let best_unselected = idx
                .iter()
                .filter(|&&i| matches!(s.decisions[i].stratum, Stratum::Random | Stratum::None))
                .map(|&i| scores[i])
                .fold(f32::MIN, f32::max);
            if let Some(last) = ranked.last() {
                assert!(last.1 >= best_unselected, "{office} {d}");
            }
            // the random sample has exactly ceil(rate * m) declarations
            let m = idx
                .iter()
                .filter(|&&i| matches!(s.decisions[i].stratum, Stratum::Random | Stratum::None))
                .count();
            let drawn = idx
                .iter()
                .filter(|&&i| s.decisions[i].stratum == Stratum::Random)
                .count();
            assert_eq!(drawn, Budget::Rate(0.15).k(m), "{office} {d}");
        }
        // one decision per declaration: the strata partition the file
        let sum: u64 = s
            .offices
            .iter()
            .map(|o| o.mandatory + o.advisory + o.model + o.random + o.none)
            .sum();
        assert_eq!(sum as usize, rows.len());
        assert_eq!(s.decisions.len(), rows.len());
        let by_channel: u64 = s.offices.iter().flat_map(|o| o.by_channel.iter()).sum();
        assert_eq!(by_channel as usize, rows.len());
    }
}

#[test]
fn same_seed_same_decisions_other_seed_other_sample() {
    let p = load(POLICY, &[]).expect("policy");
    let (rows, scores) = small_file();
    let c = collect(&p, &rows, &scores);
    let a = select(&p, &c, 5).expect("select").decisions;
    let b = select(&p, &c, 5).expect("select").decisions;
    let d = select(&p, &c, 6).expect("select").decisions;
    assert_eq!(a, b);
    assert_ne!(a, d);
}

#[test]
fn late_duplicates_leave_the_selection() {
    let p = load(POLICY, &[]).expect("policy");
    let (rows, scores) = small_file();
    let mut c = collect(&p, &rows, &scores);
    c.remove(&[0, 5, 45]);
    assert_eq!(c.len(), rows.len() - 3);
    assert_eq!(c.id(0), "D001");
    assert_eq!(c.id(4), "D006");
    assert_eq!(c.id(14), "D016");
    assert_eq!(
        c.fired(14),
        &[0u16][..],
        "D016 is HS 93: its rule moves with it"
    );
    assert!(c.fired(13).is_empty());
}

/// `evaluate --decisions` reads the service's `audit export` (CSV and JSON lines) as it reads
/// `select` output: by `declaration_id`; a resubmission with the same decision counts once,
/// a different one or a row without a policy is an error naming the line.
#[test]
fn audit_exports_are_read_as_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("audit.csv");
    std::fs::write(
        &csv,
        "seq,at,key_id,request_id,declaration_id,model_version,score,percentile,channel,\
         shadow_version,shadow_score,stratum,propensity,rules\n\
         1,t,k,r,A,v,0.9,99,red,,,model,1,\n\
         2,t,k,r,B,v,0.1,10,green,,,none,0.02,\n\
         3,t,k,r,C,v,0.2,20,red,,,random,0.25,\n\
         4,t,k,r,B,v,0.1,10,green,,,none,0.02,\n",
    )
    .unwrap();
    let d = cr_policy::read_decisions(&csv).unwrap();
    let got: Vec<(&str, Stratum, f64)> = d
        .iter()
        .map(|x| (x.id.as_str(), x.stratum, x.propensity))
        .collect();
    let want = vec![
        ("A", Stratum::Model, 1.0),
        ("B", Stratum::None, 0.02),
        ("C", Stratum::Random, 0.25),
    ];
    assert_eq!(got, want);
    let jsonl = dir.path().join("audit.jsonl");
    std::fs::write(
        &jsonl,
        "{\"seq\":1,\"declaration_id\":\"A\",\"stratum\":\"model\",\"propensity\":1.0}\n\
         {\"seq\":2,\"declaration_id\":\"B\",\"stratum\":\"none\",\"propensity\":0.02}\n\
         {\"seq\":3,\"declaration_id\":\"C\",\"stratum\":\"random\",\"propensity\":0.25}\n",
    )
    .unwrap();
    let dj = cr_policy::read_decisions(&jsonl).unwrap();
    let got: Vec<(&str, Stratum, f64)> = dj
        .iter()
        .map(|x| (x.id.as_str(), x.stratum, x.propensity))
        .collect();
    assert_eq!(got, want);

    std::fs::write(
        &jsonl,
        "{\"declaration_id\":\"A\",\"stratum\":\"model\",\"propensity\":1.0}\n\
         {\"declaration_id\":\"A\",\"stratum\":\"none\",\"propensity\":0.5}\n",
    )
    .unwrap();
    let e = cr_policy::read_decisions(&jsonl).unwrap_err().to_string();
    assert!(e.contains("audit.jsonl:2") && e.contains("twice"), "{e}");
    std::fs::write(&jsonl, "{\"declaration_id\":\"A\",\"channel\":\"red\"}\n").unwrap();
    let e = cr_policy::read_decisions(&jsonl).unwrap_err().to_string();
    assert!(
        e.contains("audit.jsonl:1") && e.contains("no stratum"),
        "{e}"
    );
}
