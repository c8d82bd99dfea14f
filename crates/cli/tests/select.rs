//! `customs-risk select` end to end through the built binary, and the loop closing on
//! `evaluate --decisions`: generated declarations with their ground truth, a model trained by
//! `customs-risk train`, the example policy. Expected values come from the ground truth and
//! the policy's own arithmetic recomputed here, not from select's output.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{cli_err, cli_ok, generate};
use cr_data::schema::Selection;

struct Fixture {
    dir: tempfile::TempDir,
    model: PathBuf,
    /// Declarations with a label on every row (the ground truth), CSV and Parquet.
    outcomes: PathBuf,
    outcomes_parquet: PathBuf,
    /// Ground truth per row, in file order.
    fraud: Vec<bool>,
    ids: Vec<String>,
    hs: Vec<u64>,
    office: Vec<String>,
    dates: Vec<i32>,
}

const ROWS: usize = 6000;

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 10_000, 11);
    cli_ok(
        d,
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--out",
            "gbdt",
            "--trees",
            "20",
            "--leaves",
            "15",
            "--early-stopping",
            "0",
            "--threads",
            "2",
            "--quiet",
        ],
    );
    let model = d.join("gbdt.onnx");
    let schema = cr_synth::schema().unwrap();
    let cfg = cr_synth::SynthConfig {
        rows: ROWS,
        seed: 77,
        months: 1,
        start_date: (2024, 3, 1),
        ..cr_synth::SynthConfig::default()
    };
    let (mut b, truth) = cr_synth::generate_with_truth(&cfg, &schema).unwrap();
    let fraud: Vec<bool> = (0..b.len()).map(|i| truth.is_fraud(i)).collect();
    // every row labelled with its truth: the outcomes of inspecting anything
    b.label = fraud.iter().map(|&f| Some(f)).collect();
    b.inspected = vec![true; b.len()];
    b.selection = vec![Some(Selection::Other); b.len()];
    b.propensity = vec![Some(1.0); b.len()];
    b.revenue = truth.evaded.iter().map(|&e| Some(e)).collect();
    let outcomes = d.join("outcomes.csv");
    let outcomes_parquet = d.join("outcomes.parquet");
    cr_data::write_batch(&outcomes, &schema, &b).unwrap();
    cr_data::write_batch(&outcomes_parquet, &schema, &b).unwrap();
    let oc = schema
        .categorical_index(cr_data::CategoricalKind::Office)
        .unwrap();
    Fixture {
        model,
        outcomes,
        outcomes_parquet,
        fraud,
        ids: b.ids.clone(),
        hs: b.hs.clone(),
        office: b.categorical[oc].clone(),
        dates: b.dates.clone(),
        dir,
    }
}

fn example_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/policies/example.toml")
}

#[derive(Debug, Clone, PartialEq)]
struct Dec {
    id: String,
    score: f64,
    channel: String,
    stratum: String,
    propensity: f64,
    rules: String,
    rank: String,
}

fn read_decisions(p: &Path) -> Vec<Dec> {
    let mut r = csv::Reader::from_path(p).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "id",
            "score",
            "channel",
            "stratum",
            "propensity",
            "rules",
            "rank"
        ]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            Dec {
                id: rec[0].to_string(),
                score: rec[1].parse().unwrap(),
                channel: rec[2].to_string(),
                stratum: rec[3].to_string(),
                propensity: rec[4].parse().unwrap(),
                rules: rec[5].to_string(),
                rank: rec[6].to_string(),
            }
        })
        .collect()
}

fn select(f: &Fixture, data: &Path, out: &str, extra: &[&str]) -> (PathBuf, String) {
    let out = f.dir.path().join(out);
    let policy = example_policy();
    let mut args = vec![
        "select",
        "--model",
        f.model.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "7",
    ];
    args.extend_from_slice(extra);
    let err = cli_ok(f.dir.path(), &args);
    (out, err)
}

#[test]
// rows are read across several parallel vectors by index
#[allow(clippy::needless_range_loop)]
fn select_decides_every_declaration_and_evaluate_closes_the_loop() {
    let f = fixture();
    let (csv1, summary) = select(&f, &f.outcomes, "d1.csv", &["--threads", "1"]);
    let (csv2, _) = select(&f, &f.outcomes, "d2.csv", &["--threads", "2", "--quiet"]);
    let (csv3, _) = select(
        &f,
        &f.outcomes_parquet,
        "d3.csv",
        &["--threads", "2", "--quiet"],
    );
    let (pq, _) = select(&f, &f.outcomes, "d.parquet", &["--quiet"]);
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(bytes(&csv1), bytes(&csv2), "1 and 2 threads");
    assert_eq!(bytes(&csv1), bytes(&csv3), "CSV and Parquet input");
    assert!(std::fs::metadata(&pq).unwrap().len() > 0);
    assert!(
        summary.contains("office") && summary.contains("PORT-NORTH"),
        "{summary}"
    );

    let d = read_decisions(&csv1);
    assert_eq!(
        d.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        f.ids,
        "input order"
    );
    // mandatory rule `weapons` (HS chapter 93): always selected, red, propensity 1
    let mut groups: BTreeMap<(String, i32), Vec<usize>> = BTreeMap::new();
    for i in 0..d.len() {
        groups
            .entry((f.office[i].clone(), f.dates[i]))
            .or_default()
            .push(i);
        assert!(d[i].propensity > 0.0 && d[i].propensity <= 1.0);
        if f.hs[i] / 10_000 == 93 {
            assert_eq!(
                (d[i].stratum.as_str(), d[i].channel.as_str()),
                ("rule", "red")
            );
            assert!(d[i].rules.split(';').any(|r| r == "weapons"), "{:?}", d[i]);
        }
        match d[i].stratum.as_str() {
            "rule" | "model" => assert_eq!(d[i].propensity, 1.0),
            "random" | "none" => assert!(d[i].propensity >= 0.01 * (1.0 - 1e-9)),
            s => panic!("stratum {s}"),
        }
        assert_eq!(d[i].rank.is_empty(), d[i].stratum != "model");
    }
    // capacity per office-day: 5 % of the day's declarations (POST-HUB: 3), rounded up
    let mandatory = ["weapons", "watched_importer", "embargoed_origin"];
    for ((office, _), idx) in &groups {
        let is_mandatory = |i: usize| d[i].rules.split(';').any(|r| mandatory.contains(&r));
        let left = idx.iter().filter(|&&i| !is_mandatory(i)).count();
        let k = if office == "POST-HUB" {
            3.min(left)
        } else {
            ((0.05 * idx.len() as f64 - 1e-9).ceil() as usize).min(left)
        };
        let used = idx
            .iter()
            .filter(|&&i| !is_mandatory(i) && matches!(d[i].stratum.as_str(), "rule" | "model"))
            .count();
        assert_eq!(used, k, "{office}");
    }

    // the loop: evaluate with the logged propensities; the IPW estimate of the fraud rate in
    // all traffic covers the ground truth, the inspected-rows estimate does not
    let json = f.dir.path().join("e.json");
    cli_ok(
        f.dir.path(),
        &[
            "evaluate",
            "--model",
            f.model.to_str().unwrap(),
            "--data",
            f.outcomes.to_str().unwrap(),
            "--decisions",
            csv1.to_str().unwrap(),
            "--report",
            f.dir.path().join("e.html").to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--quiet",
        ],
    );
    let truth = f.fraud.iter().filter(|&&x| x).count() as f64 / f.fraud.len() as f64;
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let est = |name: &str| -> (f64, f64, f64, u64) {
        let e = rep["estimators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["estimator"] == name)
            .unwrap_or_else(|| panic!("no {name} estimator in {}", rep["estimators"]));
        let p = &e["prevalence"];
        (
            p["value"].as_f64().unwrap(),
            p["ci_low"].as_f64().unwrap(),
            p["ci_high"].as_f64().unwrap(),
            e["n_sample"].as_u64().unwrap(),
        )
    };
    let selected = d.iter().filter(|x| x.stratum != "none").count() as u64;
    let ipw = est("ipw");
    assert_eq!(ipw.3, selected, "IPW uses exactly the selected rows");
    assert!(
        ipw.1 <= truth && truth <= ipw.2,
        "IPW {ipw:?} vs truth {truth}"
    );
    let insp = est("inspected");
    assert!(
        !(insp.1 <= truth && truth <= insp.2),
        "inspected {insp:?} vs truth {truth}"
    );
}

#[test]
fn policy_errors_name_file_line_column_and_rule() {
    let f = fixture_small();
    let pol = f.0.path().join("bad.toml");
    std::fs::write(
        &pol,
        "channels = [\"green\", \"red\"]\n[capacity]\nshare = 0.1\nchannel = \"red\"\n[random]\nfloor = 0.01\nchannel = \"red\"\n[[rule]]\nname = \"odd\"\nwhen = 'origin_country > 3'\nchannel = \"red\"\n",
    )
    .unwrap();
    let err = cli_err(
        f.0.path(),
        &[
            "select",
            "--model",
            f.1.to_str().unwrap(),
            "--policy",
            pol.to_str().unwrap(),
            "--data",
            f.2.to_str().unwrap(),
            "--out",
            "x.csv",
        ],
    );
    assert!(
        err.contains("bad.toml:10:26: rule \"odd\": compares `origin_country`"),
        "{err}"
    );
    assert!(!f.0.path().join("x.csv").exists());
}

/// A model and a small data file.
fn fixture_small() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 3000, 5);
    cli_ok(
        d,
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--out",
            "m",
            "--trees",
            "5",
            "--early-stopping",
            "0",
            "--quiet",
        ],
    );
    let model = d.join("m.onnx");
    (dir, model, train)
}

/// A revenue model (`train --objective revenue`) predicts an amount, which a policy's rules,
/// thresholds and random-floor weights would read as a probability: select refuses it,
/// naming the model and what it predicts.
#[test]
fn select_refuses_a_revenue_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 3000, 5);
    cli_ok(
        d,
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--objective",
            "revenue",
            "--min-per-class",
            "5",
            "--out",
            "rev",
            "--trees",
            "5",
            "--early-stopping",
            "0",
            "--quiet",
        ],
    );
    let pol = d.join("p.toml");
    std::fs::write(
        &pol,
        "channels = [\"green\", \"red\"]\n[capacity]\nshare = 0.1\nchannel = \"red\"\n[random]\nfloor = 0.01\nchannel = \"red\"\n",
    )
    .unwrap();
    let err = cli_err(
        d,
        &[
            "select",
            "--model",
            d.join("rev.onnx").to_str().unwrap(),
            "--policy",
            pol.to_str().unwrap(),
            "--data",
            train.to_str().unwrap(),
            "--out",
            "dec.csv",
        ],
    );
    assert!(
        err.contains("rev.onnx")
            && err.contains("select needs a risk model")
            && err.contains("expected_revenue"),
        "{err}"
    );
    assert!(!d.join("dec.csv").exists());
}

/// The loop closes on the service's audit trail too: the trained model is registered with a
/// policy (the example's, with a share capacity everywhere: the service refuses a `count`),
/// served by the binary on 127.0.0.1, every declaration posted; `audit export` (CSV and
/// JSONL) joined with the outcomes by `evaluate --decisions` gives an IPW estimate from the
/// logged propensities that covers the ground truth, with exactly the selected rows.
#[test]
fn the_service_audit_export_closes_the_loop() {
    use std::io::{Read, Write};
    let f = fixture();
    let d = f.dir.path();
    let text = std::fs::read_to_string(example_policy())
        .unwrap()
        .replace("[capacity.office.POST-HUB]\ncount = 3\n", "");
    assert!(!text.contains("count = 3"));
    std::fs::create_dir_all(d.join("watch")).unwrap();
    let watch = example_policy().parent().unwrap().join("watch");
    for e in std::fs::read_dir(&watch).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.join("watch").join(e.file_name())).unwrap();
    }
    std::fs::write(d.join("policy.toml"), text).unwrap();
    let db = d.join("reg.db");
    let dbs = db.to_str().unwrap();
    let model = f.model.to_str().unwrap();
    cli_ok(
        d,
        &[
            "models",
            "register",
            "--registry",
            dbs,
            "--create",
            "--model",
            model,
            "--version",
            "v1",
            "--policy",
            "policy.toml",
            "--promote",
        ],
    );
    let out = std::process::Command::new(common::bin())
        .args([
            "keys",
            "create",
            "--registry",
            dbs,
            "--role",
            "score",
            "--name",
            "t",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    // the outcomes file's rows as JSON declarations, outcome columns left out
    let schema = cr_synth::schema().unwrap();
    let label = schema.label.as_ref().map(|l| l.name.clone());
    let outcome_cols: Vec<String> = [
        &label,
        &schema.revenue,
        &schema.inspected,
        &schema.selection,
        &schema.propensity,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let mut rdr = csv::Reader::from_path(&f.outcomes).unwrap();
    let header = rdr.headers().unwrap().clone();
    let decls: Vec<serde_json::Value> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            let mut m = serde_json::Map::new();
            for (h, v) in header.iter().zip(r.iter()) {
                if !outcome_cols.iter().any(|c| c == h) {
                    let v = if v.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::Value::from(v)
                    };
                    m.insert(h.to_string(), v);
                }
            }
            serde_json::Value::Object(m)
        })
        .collect();
    assert_eq!(decls.len(), ROWS);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = std::process::Command::new(common::bin())
        .args(["serve", "--registry", dbs, "--addr", &addr])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let post = |body: &[u8], path: &str| -> Option<(u16, String)> {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let (h, b) = buf.split_once("\r\n\r\n")?;
        Some((h.split_whitespace().nth(1)?.parse().ok()?, b.to_string()))
    };
    let t0 = std::time::Instant::now();
    while post(b"{}", "/healthz").is_none() {
        assert!(t0.elapsed().as_secs() < 30, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut strata: BTreeMap<String, u64> = BTreeMap::new();
    for chunk in decls.chunks(500) {
        let body = serde_json::to_vec(&serde_json::json!({ "declarations": chunk })).unwrap();
        let (status, text) = post(&body, "/v1/score").expect("answer");
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for r in v["results"].as_array().unwrap() {
            *strata
                .entry(r["stratum"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        strata.get("random").copied().unwrap_or(0) > 20,
        "{strata:?}"
    );
    let selected = ROWS as u64 - strata.get("none").copied().unwrap_or(0);

    let mut reports = Vec::new();
    for format in ["csv", "jsonl"] {
        let export = d.join(format!("audit.{format}"));
        cli_ok(
            d,
            &[
                "audit",
                "export",
                "--registry",
                dbs,
                "--since",
                "2000-01-01",
                "--format",
                format,
                "--out",
                export.to_str().unwrap(),
            ],
        );
        let json = d.join(format!("e-{format}.json"));
        cli_ok(
            d,
            &[
                "evaluate",
                "--model",
                model,
                "--data",
                f.outcomes.to_str().unwrap(),
                "--decisions",
                export.to_str().unwrap(),
                "--report",
                d.join(format!("e-{format}.html")).to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
                "--quiet",
            ],
        );
        let rep: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        reports.push(rep["estimators"].clone());
    }
    assert_eq!(reports[0], reports[1], "CSV and JSONL exports");
    let truth = f.fraud.iter().filter(|&&x| x).count() as f64 / f.fraud.len() as f64;
    let ipw = reports[0]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["estimator"] == "ipw")
        .expect("ipw estimator")
        .clone();
    assert_eq!(ipw["n_sample"].as_u64().unwrap(), selected, "{strata:?}");
    let p = &ipw["prevalence"];
    let (lo, hi) = (
        p["ci_low"].as_f64().unwrap(),
        p["ci_high"].as_f64().unwrap(),
    );
    assert!(
        lo <= truth && truth <= hi,
        "IPW [{lo}, {hi}] vs truth {truth}"
    );
}
