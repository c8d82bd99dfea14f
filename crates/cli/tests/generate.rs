//! `customs-risk generate --truth`: the ground truth of every row beside the data, checked
//! from first principles against what the data file reveals (labels and revenue of the
//! inspected rows are the truth of those rows; the random sample is an unbiased sample of
//! the truth).

mod common;

use common::cli_ok;

#[test]
fn truth_agrees_with_what_inspections_reveal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    let truth = dir.path().join("t.csv");
    let rows = 60_000;
    cli_ok(
        dir.path(),
        &[
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            "11",
            "--out",
            data.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "--quiet",
        ],
    );
    let mut d = csv::Reader::from_path(&data).unwrap();
    let h = d.headers().unwrap().clone();
    let col = |n: &str| {
        h.iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let (id, fraud, revenue, selection) = (
        col("declaration_id"),
        col("fraud"),
        col("revenue_recovered"),
        col("selection"),
    );
    let mut t = csv::Reader::from_path(&truth).unwrap();
    assert_eq!(
        t.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "declaration_id",
            "fraud",
            "mechanism",
            "revenue",
            "rule_hit"
        ]
    );
    let (mut n, mut inspected, mut true_frauds) = (0usize, 0usize, 0usize);
    let (mut random_n, mut random_frauds) = (0usize, 0usize);
    for (dr, tr) in d.records().zip(t.records()) {
        let (dr, tr) = (dr.unwrap(), tr.unwrap());
        n += 1;
        assert_eq!(&dr[id], &tr[0], "rows in the same order");
        let is_fraud = &tr[1] == "1";
        assert_eq!(
            is_fraud,
            !tr[2].is_empty(),
            "a mechanism exactly when fraud: {tr:?}"
        );
        let true_rev: f32 = tr[3].parse().unwrap();
        assert_eq!(is_fraud, true_rev > 0.0, "{tr:?}");
        true_frauds += usize::from(is_fraud);
        if !dr[fraud].is_empty() {
            // inspected: the label and the recovered revenue are the truth
            inspected += 1;
            assert_eq!(&dr[fraud] == "1", is_fraud, "{dr:?} vs {tr:?}");
            let rev: f32 = dr[revenue].parse().unwrap();
            assert_eq!(rev, true_rev, "{dr:?} vs {tr:?}");
            if &dr[selection] == "random" {
                random_n += 1;
                random_frauds += usize::from(is_fraud);
            }
        } else {
            assert!(dr[revenue].is_empty());
        }
    }
    assert_eq!(n, rows);
    assert!(
        t.records().next().is_none(),
        "truth has more rows than the data"
    );
    assert!(inspected > 1000 && random_n > 500, "{inspected} {random_n}");
    // the random sample estimates the true fraud rate of all traffic: within 4 binomial
    // standard errors (p and n from the sample)
    let p_all = true_frauds as f64 / n as f64;
    let p_rand = random_frauds as f64 / random_n as f64;
    let se = (p_all * (1.0 - p_all) / random_n as f64).sqrt();
    assert!(
        (p_rand - p_all).abs() < 4.0 * se,
        "random sample {p_rand} vs truth {p_all} (se {se})"
    );
}
