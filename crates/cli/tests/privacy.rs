//! Privacy of model files, end to end through the built binary: pseudonymised identifier
//! columns (the README's Python transform + ONNX Runtime score exactly as `customs-risk
//! score` does; a missing or wrong key is an error), and risk tables without rare entries
//! (`risk_profile.min_count`), read back with the onnx package.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_close, bin, cli_err, cli_ok, generate, py_script, python, read_reference};

/// The synthetic schema with importer and declarant pseudonymised and origin upper-cased.
fn pseudonymising_schema(dir: &Path) -> std::path::PathBuf {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/schemas/synthetic.toml"),
    )
    .unwrap();
    let text = base
        .replace(
            "{ column = \"importer\", kind = \"importer\" }",
            "{ column = \"importer\", kind = \"importer\", pseudonymise = true }",
        )
        .replace(
            "{ column = \"declarant\", kind = \"declarant\" }",
            "{ column = \"declarant\", kind = \"declarant\", pseudonymise = true }",
        )
        .replace(
            "{ column = \"origin_country\", kind = \"country_of_origin\" }",
            "{ column = \"origin_country\", kind = \"country_of_origin\", case = \"upper\" }",
        );
    assert_eq!(text.matches("pseudonymise = true").count(), 2);
    let p = dir.join("pseudo.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn model_contents(dir: &Path, model: &Path) -> serde_json::Value {
    let out = python(
        dir,
        &py_script("model_contents.py"),
        &[model.to_str().unwrap()],
    );
    serde_json::from_str(&out).unwrap()
}

/// The importer ids of a generated file.
fn column(path: &Path, name: &str) -> Vec<String> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let j = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == name)
        .unwrap();
    rdr.records().map(|r| r.unwrap()[j].to_string()).collect()
}

#[test]
fn pseudonymised_model_scores_like_ort_after_the_readme_transform() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 8_000, 21);
    let test = generate(d, "test.csv", 400, 22);
    let schema = pseudonymising_schema(d);
    let key = d.join("pseudonym.key");
    std::fs::write(&key, "a secret of the customs office, 2026\n").unwrap();
    let other = d.join("other.key");
    std::fs::write(&other, "not the key the model knows\n").unwrap();
    let (t, s, k) = (
        train.to_str().unwrap(),
        schema.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let no_key: Vec<&str> = vec![
        "train",
        "--data",
        t,
        "--schema",
        s,
        "--out",
        "pseudo",
        "--trees",
        "15",
        "--leaves",
        "15",
        "--early-stopping",
        "0",
        "--threads",
        "2",
        "--quiet",
    ];
    let with_key = [no_key.clone(), vec!["--pseudonym-key", k]].concat();
    // no key: a clear error (the environment variable is not set either)
    let out = Command::new(bin())
        .args(&no_key)
        .current_dir(d)
        .env_remove("CR_PSEUDONYM_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("importer, declarant")
            && err.contains("CR_PSEUDONYM_KEY"),
        "{err}"
    );
    cli_ok(d, &with_key);
    let model = d.join("pseudo.onnx");

    // the model holds pseudonyms only: no importer or declarant id of the training file
    let contents = model_contents(d, &model);
    let strings = contents["strings"].as_str().unwrap();
    let mut ids = column(&train, "importer");
    ids.extend(column(&train, "declarant"));
    ids.sort();
    ids.dedup();
    ids.retain(|i| !i.is_empty());
    assert!(ids.len() > 100);
    let leaked: Vec<&String> = ids
        .iter()
        .filter(|i| strings.contains(i.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "ids in the model file: {:?}",
        &leaked[..leaked.len().min(5)]
    );
    // python3: hmac.new(key, b"customs-risk pseudonym key fingerprint v1", sha256).hexdigest()[:16]
    let fp = python(d, &py_script("fingerprint.py"), &[k]);
    assert_eq!(contents["fingerprint"].as_str(), Some(fp.trim()));

    // customs-risk score with the key == ONNX Runtime on the README's transform
    let te = test.to_str().unwrap();
    let m = model.to_str().unwrap();
    cli_ok(
        d,
        &[
            "score",
            "--model",
            m,
            "--data",
            te,
            "--out",
            "ours.csv",
            "--pseudonym-key",
            k,
            "--quiet",
        ],
    );
    let n = python(
        d,
        &py_script("ort_pseudonymised.py"),
        &[
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../README.md")
                .to_str()
                .unwrap(),
            m,
            te,
            "ort.csv",
            "importer,declarant",
            "",
        ],
    );
    let reference = read_reference(&d.join("ort.csv"));
    assert_eq!(n.trim().parse::<usize>().unwrap(), 400);
    let ours = common::read_scores(&d.join("ours.csv"));
    assert_close("pseudonymised model", &ours, &reference, 1e-6);

    // a wrong key or none: an error, not a file of "unknown importer" scores
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            m,
            "--data",
            te,
            "--out",
            "x.csv",
            "--pseudonym-key",
            other.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        err.contains("wrong pseudonym key") && err.contains(fp.trim()),
        "{err}"
    );
    assert!(!d.join("x.csv").exists());
    let out = Command::new(bin())
        .args([
            "score", "--model", m, "--data", te, "--out", "y.csv", "--quiet",
        ])
        .current_dir(d)
        .env_remove("CR_PSEUDONYM_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("CR_PSEUDONYM_KEY"),
        "{err}"
    );
    // the key from the environment works like the file
    let out = Command::new(bin())
        .args([
            "score", "--model", m, "--data", te, "--out", "env.csv", "--quiet",
        ])
        .current_dir(d)
        .env("CR_PSEUDONYM_KEY", std::fs::read_to_string(&key).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(d.join("env.csv")).unwrap(),
        std::fs::read(d.join("ours.csv")).unwrap()
    );
}

/// `risk_profile.min_count` (default 5): no risk-table entry of the model file counts fewer
/// labelled declarations; `--risk-min-count 1` keeps them (so the default is what cuts).
#[test]
fn rare_risk_entries_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 6_000, 31);
    let t = train.to_str().unwrap();
    let base = [
        "train",
        "--data",
        t,
        "--trees",
        "5",
        "--early-stopping",
        "0",
        "--threads",
        "2",
        "--quiet",
        "--out",
    ];
    let mut a = base.to_vec();
    a.push("default");
    cli_ok(d, &a);
    let mut b = base.to_vec();
    b.extend_from_slice(&["one", "--risk-min-count", "1"]);
    cli_ok(d, &b);
    std::fs::write(d.join("cfg.toml"), "[risk_profile]\nmin_count = 8\n").unwrap();
    let mut c = base.to_vec();
    c.extend_from_slice(&["eight", "--config", "cfg.toml"]);
    cli_ok(d, &c);
    let min = |name: &str| {
        let v = model_contents(d, &d.join(format!("{name}.onnx")));
        (
            v["min_risk_count"].as_f64().unwrap(),
            v["risk_entries"].as_u64().unwrap(),
        )
    };
    let (m1, n1) = min("one");
    let (m5, n5) = min("default");
    let (m8, n8) = min("eight");
    assert_eq!(m1, 1.0, "with min_count 1 single inspections are stored");
    assert!(m5 >= 5.0 && m8 >= 8.0, "{m5} {m8}");
    assert!(n1 > n5 && n5 > n8, "{n1} {n5} {n8}");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("default.card.json")).unwrap())
            .unwrap();
    assert_eq!(card["pipeline"]["min_count"], 5);
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(addr: std::net::SocketAddr, req: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// Start `serve` on a free port with `args`, wait for /healthz; `env_key` sets or removes
/// CR_PSEUDONYM_KEY.
fn serve(
    d: &Path,
    args: &[&str],
    env_key: Option<&str>,
) -> (std::process::Child, std::net::SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .args(args)
        .args(["--addr", &addr.to_string()])
        .current_dir(d)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.join("serve.err")).unwrap());
    match env_key {
        Some(k) => cmd.env("CR_PSEUDONYM_KEY", k),
        None => cmd.env_remove("CR_PSEUDONYM_KEY"),
    };
    let mut child = cmd.spawn().expect("serve starts");
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(20) {
        if let Ok((200, _)) = http(
            addr,
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        ) {
            return (child, addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(d.join("serve.err")).unwrap_or_default();
    panic!("serve {args:?} did not come up: {err}");
}

/// The service applies the pseudonym key when reading a declaration, so a model trained on
/// pseudonymised identifiers scores over HTTP exactly as bulk `score --pseudonym-key` does;
/// without its key (or with another one) the model is not loaded and /readyz says 503.
#[test]
fn pseudonymised_model_is_served_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 6_000, 31);
    let test = generate(d, "test.csv", 40, 32);
    let schema = pseudonymising_schema(d);
    let key_text = "the office's serving key 2026";
    let key = d.join("pseudonym.key");
    std::fs::write(&key, key_text).unwrap();
    let other = d.join("other.key");
    std::fs::write(&other, "another key of the same office").unwrap();
    let k = key.to_str().unwrap();
    cli_ok(
        d,
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--schema",
            schema.to_str().unwrap(),
            "--out",
            "p",
            "--trees",
            "15",
            "--leaves",
            "15",
            "--pseudonym-key",
            k,
            "--quiet",
        ],
    );
    cli_ok(
        d,
        &[
            "score",
            "--model",
            "p.onnx",
            "--data",
            test.to_str().unwrap(),
            "--out",
            "s.csv",
            "--pseudonym-key",
            k,
            "--quiet",
        ],
    );
    let bulk: std::collections::HashMap<String, f64> = csv::Reader::from_path(d.join("s.csv"))
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().unwrap())
        })
        .collect();
    // registration loads the model: with the key from the environment
    let out = Command::new(bin())
        .args([
            "models",
            "register",
            "--registry",
            "reg.db",
            "--create",
            "--model",
            "p.onnx",
            "--name",
            "p",
            "--version",
            "p1",
            "--promote",
        ])
        .current_dir(d)
        .env("CR_PSEUDONYM_KEY", key_text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the key is printed on stdout (the notice on stderr)
    let out = common::cli(
        d,
        &[
            "keys",
            "create",
            "--registry",
            "reg.db",
            "--role",
            "score",
            "--name",
            "t",
        ],
    );
    assert!(out.status.success());
    let api = String::from_utf8(out.stdout).unwrap();
    let api = api.trim();

    // without the key, and with another key: up, but the champion is not loaded
    for (args, env) in [
        (vec!["--registry", "reg.db"], None),
        (
            vec![
                "--registry",
                "reg.db",
                "--pseudonym-key",
                other.to_str().unwrap(),
            ],
            None,
        ),
    ] {
        let (mut child, addr) = serve(d, &args, env);
        let (status, body) = http(
            addr,
            "GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, 503, "{args:?}: {body}");
    }

    // with the key: every declaration scores as in bulk
    let (mut child, addr) = serve(d, &["--registry", "reg.db", "--pseudonym-key", k], None);
    let mut rdr = csv::Reader::from_path(&test).unwrap();
    let header = rdr.headers().unwrap().clone();
    let numeric = ["value", "mass", "quantity", "tax_rate"];
    let keep = |c: &str| {
        !matches!(
            c,
            "fraud" | "revenue_recovered" | "inspected" | "selection" | "propensity"
        )
    };
    let mut checked = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let mut decl = serde_json::Map::new();
        for (c, v) in header.iter().zip(rec.iter()) {
            if !keep(c) || v.is_empty() {
                continue;
            }
            let value = if numeric.contains(&c) {
                serde_json::json!(v.parse::<f64>().unwrap())
            } else {
                serde_json::json!(v)
            };
            decl.insert(c.to_string(), value);
        }
        let id = rec[0].to_string();
        let body = serde_json::Value::Object(decl).to_string();
        let req = format!(
            "POST /v1/score HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {api}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, resp) = http(addr, &req).unwrap();
        assert_eq!(status, 200, "{resp}");
        let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
        let score = v["score"].as_f64().unwrap();
        let want = bulk[&id];
        assert!(
            (score - want).abs() <= 1e-6,
            "{id}: service {score} vs bulk {want}"
        );
        checked += 1;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(checked, 40);
}
