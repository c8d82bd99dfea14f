use std::collections::BTreeMap;

use cr_data::Batch;
use cr_features::{assign_folds, fit, key_string, FeatureDef, KeyPart, PipelineConfig};

use crate::common::{auc, push, schema, schema_from, synthetic};

fn cfg(m: f64) -> PipelineConfig {
    PipelineConfig {
        smoothing: m,
        folds: 2,
        seed: 3,
        pairs: Some(vec![]),
        min_count: 1,
    }
}

fn col(x: &cr_features::FeatureMatrix, name: &str) -> Vec<f32> {
    let c = x
        .column_index(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", x.names));
    x.column(c)
}

/// importer A: 1,1,0; B: 0,0; C: 1; E only unlabelled. prior = 3/6.
fn tiny() -> Batch {
    let s = schema();
    let mut b = Batch::empty(&s, "tiny");
    for (imp, y) in [
        ("A", Some(true)),
        ("A", Some(true)),
        ("A", Some(false)),
        ("B", Some(false)),
        ("B", Some(false)),
        ("C", Some(true)),
        ("E", None),
    ] {
        push(&mut b, 19_000, 10_101, &[imp, "d", "o"], &[1.0, 1.0], y);
    }
    b
}

fn scoring(imps: &[&str]) -> Batch {
    let s = schema();
    let mut b = Batch::empty(&s, "score");
    for imp in imps {
        push(&mut b, 19_000, 10_101, &[imp, "d", "o"], &[1.0, 1.0], None);
    }
    b
}

#[test]
fn smoothing_formula_from_first_principles() {
    let (p, _) = fit(&schema(), &tiny(), &cfg(2.0)).expect("fit");
    assert_eq!(p.prior, 0.5);
    let x = p
        .transform(&scoring(&["A", "B", "C", "D", "E"]))
        .expect("transform");
    let rate = col(&x, "risk_rate[importer]");
    let count = col(&x, "risk_count[importer]");
    // (pos + m * prior) / (n + m), m = 2, prior = 1/2.
    let expect_rate = [
        (2.0 + 1.0) / (3.0 + 2.0),
        (0.0 + 1.0) / (2.0 + 2.0),
        (1.0 + 1.0) / (1.0 + 2.0),
        0.5,
        0.5,
    ];
    for (got, want) in rate.iter().zip(expect_rate) {
        assert_eq!(*got, want as f32);
    }
    // Unseen "D" and unlabelled-only "E" -> prior and count 0.
    assert_eq!(count, vec![3.0, 2.0, 1.0, 0.0, 0.0]);
    // The same through the serialized table.
    let def = p
        .features
        .iter()
        .find(|f| f.name() == "risk_rate[importer]")
        .expect("def");
    if let FeatureDef::RiskRate { table, default, .. } = def {
        let want: BTreeMap<String, f32> = [
            ("A".to_string(), 0.6f32),
            ("B".into(), 0.25),
            ("C".into(), (2.0f64 / 3.0) as f32),
        ]
        .into();
        assert_eq!(table, &want);
        assert_eq!(*default, 0.5);
    } else {
        panic!("not a rate def");
    }
    // smoothing 0: raw rates.
    let (p0, _) = fit(&schema(), &tiny(), &cfg(0.0)).expect("fit");
    let r0 = col(
        &p0.transform(&scoring(&["A", "B", "C"])).expect("t"),
        "risk_rate[importer]",
    );
    assert_eq!(r0, vec![(2.0f64 / 3.0) as f32, 0.0, 1.0]);
}

#[test]
fn min_count_collapses_rare_keys_to_unseen() {
    let mut c = cfg(2.0);
    c.min_count = 2;
    let (p, _) = fit(&schema(), &tiny(), &c).expect("fit");
    let x = p.transform(&scoring(&["A", "C"])).expect("transform");
    assert_eq!(col(&x, "risk_rate[importer]"), vec![0.6, 0.5]);
    assert_eq!(col(&x, "risk_count[importer]"), vec![3.0, 0.0]);
}

#[test]
fn out_of_fold_features_do_not_leak_the_label() {
    let s = schema();
    let mut b = Batch::empty(&s, "leak");
    let mut g = crate::common::Gen(99);
    let mut y = Vec::new();
    for i in 0..400 {
        let lab = g.below(100) < 30;
        y.push(lab);
        // unique per row: in-sample its smoothed rate reveals the row's own label
        push(
            &mut b,
            19_000,
            10_101,
            &[&format!("row{i}"), "d", "o"],
            &[1.0, 1.0],
            Some(lab),
        );
    }
    let c = PipelineConfig {
        pairs: Some(vec![]),
        // these tables are tiny: keep every key (the default min_count hides keys under 5)
        min_count: 1,
        ..PipelineConfig::default()
    };
    let (p, oof) = fit(&s, &b, &c).expect("fit");
    let in_sample = p.transform(&b).expect("transform");
    let ins = col(&in_sample, "risk_rate[importer]");
    assert_eq!(
        auc(&ins, &y),
        1.0,
        "in-sample target encoding must be perfect (that is the leak)"
    );
    let o = col(&oof, "risk_rate[importer]");
    let a = auc(&o, &y);
    assert!(a < 0.7 && a > 0.3, "out-of-fold AUC {a} should be near 0.5");
    // every key is unseen out of fold
    assert!(col(&oof, "risk_count[importer]").iter().all(|&c| c == 0.0));
}

#[test]
fn out_of_fold_values_match_brute_force_per_fold_tables() {
    let s = schema();
    let b = synthetic(600, 11, 70);
    let c = PipelineConfig {
        smoothing: 5.0,
        folds: 4,
        seed: 17,
        pairs: None,
        min_count: 2,
    };
    let (p, oof) = fit(&s, &b, &c).expect("fit");
    let full = p.transform(&b).expect("transform");
    let labelled: Vec<usize> = (0..b.len()).filter(|&r| b.label[r].is_some()).collect();
    let folds = assign_folds(labelled.len(), 4, 17);
    let mut fold_of = vec![None; b.len()];
    for (j, &r) in labelled.iter().enumerate() {
        fold_of[r] = Some(folds[j]);
    }
    let mut checked = 0;
    for f in &p.features {
        let (name, key, is_rate) = match f {
            FeatureDef::RiskRate { name, key, .. } => (name, key, true),
            FeatureDef::RiskCount { name, key, .. } => (name, key, false),
            _ => continue,
        };
        let ci = oof.column_index(name).expect("col");
        for r in 0..b.len() {
            let got = oof.get(r, ci).expect("cell");
            let Some(fr) = fold_of[r] else {
                // unlabelled rows get the full-table values
                assert_eq!(
                    got.to_bits(),
                    full.get(r, ci).expect("cell").to_bits(),
                    "{name} row {r}"
                );
                continue;
            };
            let k = key_string(&s, key, &b, r).expect("key");
            let others = labelled.iter().filter(|&&q| fold_of[q] != Some(fr));
            let (mut n_out, mut pos_out, mut n_key, mut pos_key) = (0u64, 0u64, 0u64, 0u64);
            for &q in others {
                let yq = b.label[q] == Some(true);
                n_out += 1;
                pos_out += yq as u64;
                if key_string(&s, key, &b, q).expect("key") == k {
                    n_key += 1;
                    pos_key += yq as u64;
                }
            }
            let prior = pos_out as f64 / n_out as f64;
            let want = if n_key >= 2 {
                if is_rate {
                    ((pos_key as f64 + 5.0 * prior) / (n_key as f64 + 5.0)) as f32
                } else {
                    n_key as f32
                }
            } else if is_rate {
                prior as f32
            } else {
                0.0
            };
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{name} row {r}: got {got}, want {want}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "checked {checked}");
}

#[test]
fn default_keys_and_hs_keys_with_leading_zero() {
    let s = schema();
    let mut b = Batch::empty(&s, "hs");
    push(
        &mut b,
        0,
        71_080,
        &["imp", "", "FR"],
        &[1.0, 1.0],
        Some(true),
    );
    push(
        &mut b,
        0,
        71_080,
        &["imp", "dec", "FR"],
        &[1.0, 1.0],
        Some(false),
    );
    let h = |d: u8| key_string(&s, &[KeyPart::Hs(d)], &b, 0).expect("key");
    assert_eq!(
        (h(6), h(4), h(2)),
        ("71080".to_string(), "710".to_string(), "7".to_string())
    );
    let pair = [KeyPart::Categorical(1), KeyPart::Hs(4)];
    assert_eq!(key_string(&s, &pair, &b, 0).expect("key"), "|710");
    assert_eq!(key_string(&s, &pair, &b, 1).expect("key"), "dec|710");
    let c = PipelineConfig {
        folds: 2,
        // these tables are tiny: keep every key (the default min_count hides keys under 5)
        min_count: 1,
        ..PipelineConfig::default()
    };
    let (p, x) = fit(&s, &b, &c).expect("fit");
    assert_eq!(x.get(0, x.column_index("hs2").expect("hs2")), Some(7.0));
    assert_eq!(x.get(0, x.column_index("hs4").expect("hs4")), Some(710.0));
    let names = p.feature_names();
    for n in [
        "risk_rate[importer]",
        "risk_count[origin]",
        "risk_rate[hs6]",
        "risk_rate[hs4]",
        "risk_count[hs2]",
        "risk_rate[importer|declarant]",
        "risk_rate[importer|hs4]",
        "risk_rate[origin|hs6]",
        "risk_count[declarant|origin]",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n} in {names:?}");
    }
    // no office column -> no office pair
    assert!(!names.iter().any(|x| x.contains("office")));
    // HS tables are keyed by the unpadded decimal prefix
    let t = p.features.iter().find_map(|f| match f {
        FeatureDef::RiskCount { key, table, .. } if key == &vec![KeyPart::Hs(4)] => {
            Some(table.clone())
        }
        _ => None,
    });
    assert_eq!(
        t.expect("hs4 table").keys().collect::<Vec<_>>(),
        vec!["710"]
    );
}

#[test]
fn keys_follow_string_semantics_even_with_separator_in_cells() {
    // ("a|b", "c") and ("a", "b|c") have the same key string "a|b|c": one table entry.
    let s = schema_from(
        &crate::common::SCHEMA
            .replace("{ column = \"origin\", kind = \"country_of_origin\" },", ""),
    );
    let mut train = Batch::empty(&s, "sep");
    push(
        &mut train,
        0,
        10_101,
        &["a|b", "c"],
        &[1.0, 1.0],
        Some(true),
    );
    push(&mut train, 0, 10_101, &["x", "y"], &[1.0, 1.0], Some(false));
    let c = PipelineConfig {
        folds: 2,
        smoothing: 0.0,
        // these tables are tiny: keep every key (the default min_count hides keys under 5)
        min_count: 1,
        ..PipelineConfig::default()
    };
    let (p, _) = fit(&s, &train, &c).expect("fit");
    let mut score = Batch::empty(&s, "score");
    push(&mut score, 0, 10_101, &["a", "b|c"], &[1.0, 1.0], None);
    let x = p.transform(&score).expect("transform");
    assert_eq!(col(&x, "risk_rate[importer|declarant]"), vec![1.0]);
    assert_eq!(col(&x, "risk_count[importer|declarant]"), vec![1.0]);
}

/// The compiled transform's risk columns equal a plain lookup of `key_string` in each def's
/// table (default when absent), on rows with unseen, empty, long (> 20 bytes) and
/// separator-containing values, and with tables edited to hold non-canonical HS keys
/// ("0710" can never match) and long composite keys.
#[test]
fn compiled_lookups_equal_string_table_lookups() {
    let s = schema();
    let train = synthetic(3_000, 17, 60);
    let c = PipelineConfig {
        folds: 2,
        min_count: 1,
        ..PipelineConfig::default()
    };
    let (mut p, _) = fit(&s, &train, &c).expect("fit");
    let long = "an-importer-name-much-longer-than-twenty-bytes";
    for f in &mut p.features {
        if let FeatureDef::RiskRate { key, table, .. } | FeatureDef::RiskCount { key, table, .. } =
            f
        {
            match key.as_slice() {
                [KeyPart::Hs(_)] => {
                    table.insert("0101".into(), 0.75);
                    table.insert("+101".into(), 0.5);
                }
                [KeyPart::Categorical(0), KeyPart::Categorical(1)] => {
                    table.insert(format!("{long}|D1"), 0.25);
                    table.insert("I1|x|D2".into(), 0.125);
                }
                [KeyPart::Categorical(0)] => {
                    table.insert(long.into(), 0.375);
                }
                _ => {}
            }
        }
    }
    let mut score = synthetic(2_000, 99, 0);
    for (r, imp) in [long, "I1|x", "", "I999", "I3"]
        .iter()
        .cycle()
        .take(400)
        .enumerate()
    {
        score.categorical[0][r * 5] = imp.to_string();
    }
    score.categorical[1][5] = "D2".into();
    score.hs[7] = 10_100;
    let x = p
        .compile()
        .expect("compile")
        .transform(&score)
        .expect("transform");
    let mut checked = 0;
    for (j, f) in p.features.iter().enumerate() {
        if let FeatureDef::RiskRate {
            key,
            table,
            default,
            ..
        }
        | FeatureDef::RiskCount {
            key,
            table,
            default,
            ..
        } = f
        {
            for r in 0..score.len() {
                let k = key_string(&s, key, &score, r).expect("key");
                let want = table.get(&k).copied().unwrap_or(*default);
                assert_eq!(
                    x.get(r, j).map(f32::to_bits),
                    Some(want.to_bits()),
                    "{} row {r} key {k:?}",
                    x.names[j]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20_000, "{checked}");
    let rate = x.column_index("risk_rate[importer]").expect("column");
    assert_eq!(x.get(0, rate), Some(0.375));
    assert!(x.column_index("risk_rate[importer|declarant]").is_some());
}

/// Two-part keys are looked up by pairs of per-column ids, three-part keys by their string:
/// both must answer exactly what a lookup of the key string answers. Tables are edited to hold
/// keys reachable by several splits ("a|b|c": ("a", "b|c") and ("a|b", "c")), parts absent
/// from every single-column table, empty parts, keys without a separator, non-canonical and
/// out-of-range HS parts ("0710", "99999" for HS4), and an HS part first.
#[test]
fn pair_and_triple_keys_equal_string_table_lookups() {
    use KeyPart::{Categorical as C, Hs};
    let s = schema();
    let three = vec![C(0), C(1), Hs(2)];
    let pairs = vec![
        vec![C(0), C(1)],
        vec![C(1), Hs(4)],
        vec![Hs(2), C(0)],
        three.clone(),
    ];
    let c = PipelineConfig {
        folds: 2,
        pairs: Some(pairs),
        ..PipelineConfig::default()
    };
    let (mut p, _) = fit(&s, &synthetic(2_000, 5, 60), &c).expect("fit");
    let extra: Vec<(Vec<KeyPart>, Vec<&str>)> = vec![
        (
            vec![C(0), C(1)],
            vec!["a|b|c", "new-imp|D1", "nosep", "|", "a||", "||", "I1|"],
        ),
        (
            vec![C(1), Hs(4)],
            vec!["D1|0710", "D1|99999", "D1|710", "x|y|710", "|1000", "D1|"],
        ),
        (vec![Hs(2), C(0)], vec!["7|a|b", "07|a", "10|", "10|I3|x"]),
        (three.clone(), vec!["a|b|1|1", "a|b|c|10", "||10"]),
    ];
    for f in &mut p.features {
        if let FeatureDef::RiskRate { key, table, .. } | FeatureDef::RiskCount { key, table, .. } =
            f
        {
            for (k, keys) in &extra {
                if k == key {
                    for (i, s) in keys.iter().enumerate() {
                        table.insert(s.to_string(), 0.5 + i as f32);
                    }
                }
            }
        }
    }
    let cells = [
        "a", "a|b", "b", "b|c", "c", "", "|", "new-imp", "D1", "x", "x|y", "y", "I1", "I3", "I3|x",
        "1|1",
    ];
    let hs = [71_080, 100_000, 999_999, 10_203, 101, 11_099];
    let mut score = synthetic(3_000, 77, 0);
    let mut g = crate::common::Gen(9);
    for r in 0..score.len() {
        for c in 0..2 {
            if g.below(3) > 0 {
                score.categorical[c][r] = cells[g.below(cells.len() as u64) as usize].to_string();
            }
        }
        if g.below(2) == 0 {
            score.hs[r] = hs[g.below(hs.len() as u64) as usize];
        }
    }
    let x = p
        .compile()
        .expect("compile")
        .transform(&score)
        .expect("transform");
    let mut hits = 0;
    for (j, f) in p.features.iter().enumerate() {
        if let FeatureDef::RiskRate {
            key,
            table,
            default,
            ..
        }
        | FeatureDef::RiskCount {
            key,
            table,
            default,
            ..
        } = f
        {
            for r in 0..score.len() {
                let k = key_string(&s, key, &score, r).expect("key");
                let want = table.get(&k).copied();
                hits += usize::from(
                    want.is_some()
                        && extra
                            .iter()
                            .any(|(e, keys)| e == key && keys.contains(&k.as_str())),
                );
                let want = want.unwrap_or(*default);
                assert_eq!(
                    x.get(r, j).map(f32::to_bits),
                    Some(want.to_bits()),
                    "{} row {r} key {k:?}",
                    x.names[j]
                );
            }
        }
    }
    // the edited keys are actually reached (not only their absence checked)
    assert!(hits > 200, "{hits}");
}
