//! The champion's targeting policy in real time (`models register --policy`): a real server
//! on 127.0.0.1 with a registered policy. Expected values come from first principles: the
//! policy file's own numbers (random rate, capacity share), the reference quantiles read with
//! numpy's percentile rule (computed here by a plain loop), an HMAC-SHA256 written here from
//! RFC 2104, binomial bounds, and bulk `select` on the same declarations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cr_service::{serve, RegisterOptions, Registry, ServeConfig, ServiceError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{env, limits, models, opts, state, Env};

/// Channels green < yellow < red; 5 % capacity (red); uniform random floor 20 % (yellow).
/// `big_value` (mandatory) and `watched_hs` (mandatory, watch list) select outside capacity;
/// `c3_high_tax` is advisory.
pub const POLICY: &str = r#"
name = "service-test"
channels = ["green", "yellow", "red"]

[capacity]
share = 0.05
channel = "red"

[random]
floor = 0.2
rate = 0.2
weight = "uniform"
channel = "yellow"

[[watch_list]]
name = "sensitive"
kind = "hs_prefix"
file = "hs.csv"

[[rule]]
name = "big_value"
when = "value > 5000"
channel = "red"
mandatory = true

[[rule]]
name = "watched_hs"
when = "hs_code in @sensitive"
channel = "red"
mandatory = true

[[rule]]
name = "c3_high_tax"
when = "office == 'C3' and tax_rate >= 20"
channel = "yellow"
"#;

const RATE: f64 = 0.2;
const SHARE: f64 = 0.05;

/// Write the policy (and its watch list) into `dir`; returns the policy path.
pub fn write_policy(dir: &Path, text: &str) -> PathBuf {
    std::fs::write(dir.join("hs.csv"), "value\n23\n").unwrap();
    let p = dir.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Register model `a` again as version `pa` with the policy and promote it.
fn register_with_policy(e: &Env) -> cr_service::ModelVersion {
    let policy = write_policy(e.dir.path(), POLICY);
    let mut reg = Registry::open(&e.db).unwrap();
    let mv = reg
        .register(
            &e.a,
            &RegisterOptions {
                policy: Some(policy),
                ..opts("gbdt", "pa")
            },
        )
        .unwrap();
    reg.promote("pa", "tester").unwrap();
    mv
}

/// RFC 2104 HMAC-SHA256, written out here (independent of the service's implementation).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The documented draw: the first 8 bytes of HMAC-SHA256(key, id), top 53 bits, over 2^53.
fn draw(key: &str, id: &str) -> f64 {
    let h = hmac_sha256(key.as_bytes(), id.as_bytes());
    let x = u64::from_be_bytes(h[..8].try_into().unwrap());
    (x >> 11) as f64 / 9_007_199_254_740_992.0
}

/// numpy's default (linear) percentile of sorted `q`, by a plain loop.
fn numpy_percentile(q: &[f64], p: f64) -> f64 {
    let pos = p / 100.0 * (q.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(q.len() - 1);
    q[lo] + (pos - lo as f64) * (q[hi] - q[lo])
}

struct Server {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

async fn start(e: &Env) -> Server {
    let st = state(e);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ServeConfig::new(&e.db, addr);
    config.limits = limits();
    config.shutdown_timeout = Duration::from_secs(20);
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(st, listener, &config, async {
            let _ = stop_rx.await;
        })
        .await
    });
    Server { addr, stop, task }
}

async fn post(addr: std::net::SocketAddr, key: &str, body: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/score HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Model `a`'s declarations, re-identified `{prefix}{i}` for `n` distinct ids.
fn declarations(n: usize, prefix: &str) -> Vec<Value> {
    let base = &models().a.decls;
    (0..n)
        .map(|i| {
            let mut d = base[i % base.len()].clone();
            d["decl_id"] = json!(format!("{prefix}{i}"));
            d
        })
        .collect()
}

fn value_of(d: &Value, k: &str) -> f64 {
    match &d[k] {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("{k}: {other}"),
    }
}

/// Which rules the policy's conditions select, evaluated here on the JSON declaration.
fn expected_rules(d: &Value) -> Vec<&'static str> {
    let mut r = Vec::new();
    if value_of(d, "value") > 5000.0 {
        r.push("big_value");
    }
    let hs = format!("{:06}", value_of(d, "hs_code") as u64);
    if hs.starts_with("23") {
        r.push("watched_hs");
    }
    if d["office"] == "C3" && value_of(d, "tax_rate") >= 20.0 {
        r.push("c3_high_tax");
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_threshold_and_random_draws_follow_the_policy() {
    let e = env(None);
    let mv = register_with_policy(&e);
    let stored = mv.policy.clone().expect("policy stored");
    let text = std::fs::read_to_string(e.dir.path().join("policy.toml")).unwrap();
    assert_eq!(
        stored.sha256,
        format!("{:x}", Sha256::digest(text.as_bytes()))
    );
    let q = mv.reference_scores.clone().expect("reference");
    let threshold = numpy_percentile(&q, 100.0 * (1.0 - SHARE));
    let srv = start(&e).await;

    // 3,000 distinct ids in batches of 100 over real HTTP.
    let decls = declarations(3000, "R");
    let mut results: Vec<Value> = Vec::new();
    for chunk in decls.chunks(100) {
        let (status, body) = post(srv.addr, &e.score_key, &json!({ "declarations": chunk })).await;
        assert_eq!(status, 200, "{body}");
        results.extend(body["results"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(results.len(), decls.len());

    let (mut n_random_pool, mut drawn, mut sum_p, mut var_p) = (0u64, 0u64, 0.0, 0.0);
    let mut seen = BTreeMap::<&str, u64>::new();
    for (d, r) in decls.iter().zip(&results) {
        let id = d["decl_id"].as_str().unwrap();
        assert_eq!(r["declaration_id"], id);
        let stratum = r["stratum"].as_str().unwrap();
        *seen.entry(stratum).or_default() += 1;
        let p = r["propensity"].as_f64().unwrap();
        let rules: Vec<&str> = r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let want = expected_rules(d);
        assert_eq!(rules, want, "{id}");
        let score = r["score"].as_f64().unwrap();
        let channel = r["channel"].as_str().unwrap();
        if want.iter().any(|n| *n != "c3_high_tax") {
            // a mandatory rule fired: outside capacity, probability 1, its channel
            assert_eq!((stratum, p, channel), ("rule", 1.0, "red"), "{id}");
        } else if !want.is_empty() {
            assert_eq!((stratum, p, channel), ("rule", 1.0, "yellow"), "{id}");
        } else if score >= threshold {
            assert_eq!((stratum, p, channel), ("model", 1.0, "red"), "{id} {score}");
        } else {
            // the random floor: p is the policy's rate, the draw the documented HMAC
            assert_eq!(p, RATE, "{id}");
            let u = draw(&stored.draw_key, id);
            let want_drawn = u < p;
            assert_eq!(
                (stratum, channel),
                if want_drawn {
                    ("random", "yellow")
                } else {
                    ("none", "green")
                },
                "{id} u={u}"
            );
            n_random_pool += 1;
            drawn += u64::from(stratum == "random");
            sum_p += p;
            var_p += p * (1.0 - p);
        }
    }
    // Every stratum occurs, and the random frequency agrees with the logged p: |k − Σp| <=
    // 4.5 sd (two-sided level about 7e-6). With p logged as the floor of another policy (say
    // 0.1) or as 1, this fails.
    for s in ["rule", "model", "random", "none"] {
        assert!(seen.get(s).copied().unwrap_or(0) > 0, "{seen:?}");
    }
    assert!(n_random_pool > 1500, "{seen:?}");
    let dev = (drawn as f64 - sum_p).abs();
    assert!(
        dev <= 4.5 * var_p.sqrt(),
        "{drawn} drawn of {n_random_pool}, expected {sum_p:.1} ± {:.1}",
        var_p.sqrt()
    );

    // The same declaration gets the same decision (the draw is a function of the id).
    let (status, again) = post(srv.addr, &e.score_key, &decls[7]).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&again["stratum"], &again["channel"], &again["propensity"]),
        (
            &results[7]["stratum"],
            &results[7]["channel"],
            &results[7]["propensity"]
        )
    );

    // The audit trail carries the same channel, stratum, propensity and rules.
    let _ = srv.stop.send(());
    srv.task.await.unwrap().unwrap();
    let mut out = Vec::new();
    cr_service::export_audit(
        &e.db,
        "1970-01-01",
        cr_service::ExportFormat::JsonLines,
        &mut out,
    )
    .unwrap();
    let rows: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), decls.len() + 1);
    for (row, r) in rows.iter().zip(&results) {
        assert_eq!(row["declaration_id"], r["declaration_id"]);
        assert_eq!(row["channel"], r["channel"]);
        assert_eq!(row["stratum"], r["stratum"]);
        assert_eq!(row["propensity"], r["propensity"]);
        let names: Vec<&str> = r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        match row.get("rules") {
            Some(Value::String(s)) => assert_eq!(s, &names.join(";")),
            other => panic!("{other:?}"),
        }
    }
    assert!(cr_service::verify_audit(&e.db, None).unwrap().ok());
}

#[test]
fn a_policy_over_a_field_the_schema_lacks_is_refused_at_register() {
    let e = env(None);
    let bad = POLICY.replace("value > 5000", "importer == 'X'");
    let p = write_policy(e.dir.path(), &bad);
    let mut reg = Registry::open(&e.db).unwrap();
    let err = reg
        .register(
            &e.a,
            &RegisterOptions {
                policy: Some(p.clone()),
                ..opts("gbdt", "bad")
            },
        )
        .unwrap_err();
    let msg = err.to_string();
    // the policy error: file, line, column, rule, the unknown field
    let line = bad
        .lines()
        .position(|l| l.contains("importer == 'X'"))
        .unwrap()
        + 1;
    let col = bad.lines().nth(line - 1).unwrap().find("importer").unwrap() + 1;
    assert!(matches!(err, ServiceError::Policy { .. }), "{msg}");
    assert!(
        msg.contains(&format!("policy.toml:{line}:{col}")),
        "{msg} (want line {line} column {col})"
    );
    assert!(
        msg.contains("big_value") && msg.contains("importer"),
        "{msg}"
    );
    assert!(matches!(
        reg.get("bad"),
        Err(ServiceError::UnknownVersion { .. })
    ));

    // a watch list that cannot be read is refused too
    std::fs::remove_file(e.dir.path().join("hs.csv")).unwrap();
    std::fs::write(&p, POLICY).unwrap();
    let err = reg
        .register(
            &e.a,
            &RegisterOptions {
                policy: Some(p.clone()),
                ..opts("gbdt", "bad")
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("hs.csv"), "{err}");

    // a capacity count cannot become a score threshold one declaration at a time
    write_policy(e.dir.path(), POLICY);
    std::fs::write(&p, POLICY.replace("share = 0.05", "count = 10")).unwrap();
    let err = reg
        .register(
            &e.a,
            &RegisterOptions {
                policy: Some(p),
                ..opts("gbdt", "bad")
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("count"), "{err}");
}

#[test]
fn an_edited_stored_policy_breaks_the_registry_chain() {
    let e = env(None);
    register_with_policy(&e);
    assert!(cr_service::verify_audit(&e.db, None).unwrap().ok());
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    conn.execute(
        "UPDATE models SET policy_text = replace(policy_text, '5000', '50000') WHERE version = 'pa'",
        [],
    )
    .unwrap();
    let report = cr_service::verify_audit(&e.db, None).unwrap();
    assert!(!report.ok(), "an edited policy went unnoticed");
}

/// Bulk `select` and the service on the same declarations: the same rules fire, and a
/// mandatory rule gives the same stratum, channel and propensity 1 in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_and_bulk_select_agree_on_rule_decisions() {
    let e = env(None);
    register_with_policy(&e);
    let policy = e.dir.path().join("policy.toml");
    let decls = &models().a.decls;
    let csv = e.dir.path().join("decls.csv");
    let cols = [
        "decl_id", "date", "hs_code", "office", "value", "mass", "tax_rate",
    ];
    let mut text = cols.join(",") + "\n";
    for d in decls {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match &d[*c] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                other => panic!("{other}"),
            })
            .collect();
        text += &(cells.join(",") + "\n");
    }
    std::fs::write(&csv, text).unwrap();
    let out = e.dir.path().join("decisions.csv");
    let opts = cr_infer::bulk::BulkOptions::new(&csv, &out);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    cr_infer::bulk::select_file(&e.a, &policy, &opts, 7, &pool, &cr_infer::bulk::NoProgress)
        .expect("bulk select");
    // ids, channels, strata and rule names hold no comma or quote: a plain split reads it
    let written = std::fs::read_to_string(&out).unwrap();
    let mut lines = written.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let bulk: BTreeMap<String, (String, String, f64, String)> = lines
        .map(|l| {
            let r: Vec<&str> = l.split(',').collect();
            (
                r[col("id")].to_string(),
                (
                    r[col("stratum")].to_string(),
                    r[col("channel")].to_string(),
                    r[col("propensity")].parse().unwrap(),
                    r[col("rules")].to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(bulk.len(), decls.len());

    let srv = start(&e).await;
    let (status, body) = post(srv.addr, &e.score_key, &json!({ "declarations": decls })).await;
    assert_eq!(status, 200, "{body}");
    let mut mandatory = 0;
    for r in body["results"].as_array().unwrap() {
        let id = r["declaration_id"].as_str().unwrap();
        let (b_stratum, b_channel, b_p, b_rules) = &bulk[id];
        let rules: Vec<&str> = r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(&rules.join(";"), b_rules, "{id}");
        if rules.iter().any(|n| *n != "c3_high_tax") {
            mandatory += 1;
            assert_eq!(
                (
                    r["stratum"].as_str().unwrap(),
                    r["channel"].as_str().unwrap(),
                    1.0
                ),
                (b_stratum.as_str(), b_channel.as_str(), *b_p),
                "{id}"
            );
        }
        if r["stratum"] == "model" && b_stratum == "model" {
            assert_eq!(r["channel"].as_str().unwrap(), b_channel, "{id}");
        }
    }
    assert!(mandatory > 0, "no mandatory rule fired on the fixture");
    let _ = srv.stop.send(());
    srv.task.await.unwrap().unwrap();
}
