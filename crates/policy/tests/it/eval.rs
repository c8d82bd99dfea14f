//! Rule evaluation against a reference: each rule's meaning written again here, row by row,
//! with plain string operations (the HS code formatted and prefix-matched as text, dates as
//! text compared lexically), never through the compiled form.

use cr_policy::Policy;
use proptest::prelude::*;

use crate::common::{batch, day, load, row, schema, Row, HEAD};

fn rules(defs: &[(&str, &str)]) -> String {
    let mut t = HEAD.to_string();
    for (name, when) in defs {
        t.push_str(&format!(
            "\n[[rule]]\nname = \"{name}\"\nwhen = '{when}'\nchannel = \"red\"\n"
        ));
    }
    t
}

fn sample_rows() -> Vec<Row> {
    let mut v = Vec::new();
    let offices = ["PORT-NORTH", "POST-HUB"];
    let countries = ["CN", "VN", "DE", "KP", "US"];
    for i in 0..300u64 {
        let d = day("2024-01-01") + (i % 40) as i32;
        let hs = [930100u64, 71080, 240220, 240311, 610910, 851712, 100630][(i % 7) as usize];
        let mut r = row(&format!("D{i}"), offices[(i % 2) as usize], d, hs + (i % 3));
        r.cat[1] = format!("IMP{:06}", i % 11);
        r.cat[3] = if i % 5 == 0 {
            String::new()
        } else {
            format!("SEL{:06}", i % 4)
        };
        r.cat[5] = countries[(i % 5) as usize].into();
        r.cat[6] = countries[((i / 3) % 5) as usize].into();
        r.cat[9] = if i % 4 == 0 { "Y" } else { "N" }.into();
        r.num[0] = (i * 37 % 1000) as f32 + 0.5;
        r.num[1] = if i % 13 == 0 { 0.0 } else { (i % 50) as f32 };
        r.num[2] = (i % 9) as f32;
        r.num[3] = (i % 30) as f32;
        v.push(r);
    }
    v
}

fn scores(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect()
}

/// Which rows each rule fires on, as a Vec per rule.
fn fired_by_rule(p: &Policy, rows: &[Row], s: &[f32]) -> Vec<Vec<bool>> {
    let sc = schema();
    let b = batch(&sc, rows);
    let f = p.fire(&b, s);
    assert_eq!(f.len(), rows.len());
    (0..p.rules.len())
        .map(|r| {
            (0..rows.len())
                .map(|i| f.row(i).contains(&(r as u16)))
                .collect()
        })
        .collect()
}

#[test]
// `!(a >= b)` on purpose: it is the meaning of `not (a >= b)` with NaN
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn compiled_rules_agree_with_a_row_by_row_reference() {
    type Pred = fn(&Row, f32) -> bool;
    let cases: Vec<(&str, Pred)> = vec![
        ("hs_code starts_with [\"93\", \"2402\"]", |r, _| {
            let h = format!("{:06}", r.hs);
            h.starts_with("93") || h.starts_with("2402")
        }),
        ("hs_code == \"071081\"", |r, _| {
            format!("{:06}", r.hs) == "071081"
        }),
        ("hs_chapter == 7 or hs_heading == 8517", |r, _| {
            let h = format!("{:06}", r.hs);
            &h[..2] == "07" || &h[..4] == "8517"
        }),
        (
            "origin_country in [\"CN\", \"VN\"] and not preferential_claim == \"Y\"",
            |r, _| (r.cat[5] == "CN" || r.cat[5] == "VN") && r.cat[9] != "Y",
        ),
        ("origin_country != departure_country", |r, _| {
            r.cat[5] != r.cat[6]
        }),
        ("value_per_kg < 20 ", |r, _| r.num[0] / r.num[1] < 20.0),
        ("not (value_per_kg >= 20)", |r, _| {
            !(r.num[0] / r.num[1] >= 20.0)
        }),
        ("unit_value > 100 and tax_rate >= 10", |r, _| {
            r.num[0] / r.num[2] > 100.0 && r.num[3] >= 10.0
        }),
        ("score >= 0.9 or (score < 0.01 and mass > 3)", |r, s| {
            s >= 0.9 || (s < 0.01 && r.num[1] > 3.0)
        }),
        (
            "date >= \"2024-01-15\" and date < \"2024-02-01\"",
            |r, _| {
                let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                    + chrono::Duration::days(r.date as i64);
                let t = d.format("%Y-%m-%d").to_string();
                t.as_str() >= "2024-01-15" && t.as_str() < "2024-02-01"
            },
        ),
        ("seller == \"\"", |r, _| r.cat[3].is_empty()),
        ("tax_rate in [1, 2, 3] or 10 < tax_rate", |r, _| {
            [1.0, 2.0, 3.0].contains(&r.num[3]) || r.num[3] > 10.0
        }),
        ("importer not in [\"IMP000001\", \"IMP000002\"]", |r, _| {
            r.cat[1] != "IMP000001" && r.cat[1] != "IMP000002"
        }),
    ];
    let defs: Vec<(String, &str)> = cases
        .iter()
        .enumerate()
        .map(|(i, (w, _))| (format!("c{i}"), *w))
        .collect();
    let defs: Vec<(&str, &str)> = defs.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let p = load(&rules(&defs), &[]).expect("valid policy");
    let rows = sample_rows();
    let s = scores(rows.len());
    let got = fired_by_rule(&p, &rows, &s);
    for (c, (when, pred)) in cases.iter().enumerate() {
        let want: Vec<bool> = rows.iter().zip(&s).map(|(r, &x)| pred(r, x)).collect();
        assert!(
            want.iter().any(|&b| b),
            "case {when} never fires: a weak test"
        );
        assert_eq!(got[c], want, "rule `{when}`");
    }
}

#[test]
fn watch_lists_and_rule_windows_apply_by_date() {
    let text = format!(
        "{HEAD}
[[watch_list]]
name = \"imps\"
kind = \"importer\"
file = \"imps.csv\"

[[watch_list]]
name = \"hs\"
kind = \"hs_prefix\"
file = \"hs.csv\"

[[watch_list]]
name = \"ctry\"
kind = \"country\"
file = \"ctry.csv\"

[[rule]]
name = \"imp\"
when = \"importer in @imps\"
channel = \"red\"

[[rule]]
name = \"hs\"
when = \"hs_code in @hs\"
channel = \"red\"

[[rule]]
name = \"ctry\"
when = \"origin_country in @ctry or departure_country in @ctry\"
channel = \"red\"

[[rule]]
name = \"windowed\"
when = \"value > 0\"
channel = \"red\"
valid_from = \"2024-01-10\"
valid_to = \"2024-01-20\"
"
    );
    let files = [
        (
            "imps.csv",
            "value,valid_from,valid_to\nIMP000003,2024-01-05,2024-01-25\nIMP000004,,\n",
        ),
        ("hs.csv", "value,valid_from\n93,\n0710,2024-01-20\n"),
        ("ctry.csv", "valid_to,value\n2024-01-10,KP\n"),
    ];
    let p = load(&text, &files).expect("valid policy");
    let rows = sample_rows();
    let s = scores(rows.len());
    let got = fired_by_rule(&p, &rows, &s);
    let (a, b) = (day("2024-01-05"), day("2024-01-25"));
    for (i, r) in rows.iter().enumerate() {
        let h = format!("{:06}", r.hs);
        let imp =
            (r.cat[1] == "IMP000003" && r.date >= a && r.date <= b) || r.cat[1] == "IMP000004";
        let hs = h.starts_with("93") || (h.starts_with("0710") && r.date >= day("2024-01-20"));
        let ctry = (r.cat[5] == "KP" || r.cat[6] == "KP") && r.date <= day("2024-01-10");
        let win = r.date >= day("2024-01-10") && r.date <= day("2024-01-20");
        assert_eq!(
            [got[0][i], got[1][i], got[2][i], got[3][i]],
            [imp, hs, ctry, win],
            "row {i}: {r:?}"
        );
    }
    assert!(got
        .iter()
        .all(|v| v.iter().any(|&b| b) && v.iter().any(|&b| !b)));
}

#[test]
fn rule_evaluation_is_the_same_for_1_and_2_threads() {
    let p = load(
        &rules(&[
            ("a", "score > 0.5"),
            ("b", "origin_country in [\"CN\"] or hs_chapter == 93"),
        ]),
        &[],
    )
    .expect("valid");
    let mut rows = Vec::new();
    for k in 0..5 {
        rows.extend(sample_rows().into_iter().map(|mut r| {
            r.id = format!("{}-{k}", r.id);
            r
        }));
    }
    let rows: Vec<Row> = rows.into_iter().cycle().take(9000).collect();
    let sc = schema();
    let b = batch(&sc, &rows);
    let s = scores(rows.len());
    let run = |t| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("pool")
            .install(|| p.fire(&b, &s))
    };
    assert_eq!(run(1), run(2));
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Z]{2}",
        "IMP[0-9]{6}",
        any::<String>(),
    ]
}

fn arb_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        Just(f32::NAN),
        Just(0.0f32),
        Just(f32::INFINITY),
        -1e6f32..1e6f32,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary declarations (any strings, NaN / inf / zero numbers and scores, any HS
    /// integer and date) never make the example policy's rules panic, and every row gets a
    /// (possibly empty) list of rules in range.
    #[test]
    fn evaluation_never_panics_on_arbitrary_declarations(
        rows in proptest::collection::vec(
            (arb_string(), arb_string(), arb_string(), any::<u64>(), any::<i32>(),
             arb_f32(), arb_f32(), arb_f32(), arb_f32(), arb_f32()),
            1..300)
    ) {
        let sc = schema();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/policies/example.toml");
        let p = Policy::load(&path, &sc).expect("example loads");
        let decl: Vec<Row> = rows.iter().enumerate().map(|(i, t)| {
            let mut r = row(&format!("D{i}"), &t.0, t.4, t.3);
            r.cat[1] = t.1.clone();
            r.cat[5] = t.2.clone();
            r.num = [t.5, t.6, t.7, t.8];
            r
        }).collect();
        let b = batch(&sc, &decl);
        let s: Vec<f32> = rows.iter().map(|t| t.9).collect();
        let f = p.fire(&b, &s);
        prop_assert_eq!(f.len(), decl.len());
        prop_assert!(f.rules.iter().all(|&r| (r as usize) < p.rules.len()));
    }

    /// Any text as a rule condition: an error or a policy, never a panic.
    #[test]
    fn parsing_never_panics(when in "[ -~]{0,60}") {
        let t = format!("{HEAD}\n[[rule]]\nname = \"x\"\nwhen = \"\"\"{}\"\"\"\nchannel = \"red\"\n",
            when.replace('\\', "").replace('"', "'"));
        let _ = load(&t, &[]);
    }
}
