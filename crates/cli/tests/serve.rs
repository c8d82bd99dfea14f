//! `customs-risk serve` as a real process on 127.0.0.1: no answered decision is ever lost.
//!
//! Clients record every declaration id answered with 200; the server is killed with SIGKILL
//! under load (and once while another connection holds the SQLite write lock); then every
//! recorded id must be in the audit trail, read back with `customs-risk audit export`. The
//! model is made by the service tests' generator (scikit-learn + skl2onnx).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bin, cli_err, cli_ok};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    key: String,
    /// One declaration to vary the id of.
    template: Value,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/tests/support/make_model.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(d)
        .arg("20")
        .arg("m:1:20")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "make_model.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = d.join("reg.db");
    let dbs = db.to_str().unwrap();
    // Without --create a missing registry is refused, not created.
    let err = cli_err(d, &["models", "list", "--registry", dbs]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!db.exists());
    // ... and so is `serve` (before it binds its port)
    let err = cli_err(d, &["serve", "--registry", dbs, "--addr", "127.0.0.1:0"]);
    assert!(
        err.contains("does not exist") && err.contains("--create"),
        "{err}"
    );
    assert!(!db.exists());
    cli_ok(
        d,
        &[
            "models",
            "register",
            "--registry",
            dbs,
            "--create",
            "--model",
            "m.onnx",
            "--name",
            "m",
            "--version",
            "m1",
            "--promote",
        ],
    );
    // A policy over a field the model's schema lacks is refused at registration, with the
    // policy file, line, column and rule.
    std::fs::write(
        d.join("policy.toml"),
        "channels = [\"green\", \"red\"]\n[capacity]\nshare = 0.05\nchannel = \"red\"\n\
         [random]\nfloor = 0.01\nchannel = \"red\"\n[[rule]]\nname = \"imp\"\n\
         when = \"importer == 'X'\"\nchannel = \"red\"\n",
    )
    .unwrap();
    let err = cli_err(
        d,
        &[
            "models",
            "register",
            "--registry",
            dbs,
            "--model",
            "m.onnx",
            "--version",
            "m2",
            "--policy",
            "policy.toml",
        ],
    );
    assert!(
        err.contains("policy.toml:10:9")
            && err.contains("rule \"imp\"")
            && err.contains("importer"),
        "{err}"
    );
    let out = Command::new(bin())
        .args([
            "keys",
            "create",
            "--registry",
            dbs,
            "--role",
            "score",
            "--name",
            "load",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let decls: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("m.decls.json")).unwrap()).unwrap();
    Fixture {
        template: decls[0].clone(),
        _dir: dir,
        db,
        key,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `customs-risk serve` and wait until it answers `/healthz`.
fn start_server(f: &Fixture, extra_env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args([
        "serve",
        "--registry",
        f.db.to_str().unwrap(),
        "--addr",
        &addr.to_string(),
    ])
    .env("RUST_LOG", "error")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok((200, _, _)) = get(addr, "/healthz") {
            return (child, addr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not come up");
}

/// One HTTP/1.1 exchange on a keep-alive connection: (status, headers lowercased, body).
fn exchange(s: &mut BufReader<TcpStream>, req: &[u8]) -> std::io::Result<(u16, String, Vec<u8>)> {
    s.get_mut().write_all(req)?;
    let mut line = String::new();
    if s.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = String::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if s.read_line(&mut h)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        if h == "\r\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        headers.push_str(&lower);
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((status, headers, body))
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s);
    exchange(
        &mut r,
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
    )
}

#[derive(Default)]
struct LoadResult {
    /// Declaration ids answered with 200.
    answered: Mutex<Vec<String>>,
    /// 503 answers with code audit_unavailable and a Retry-After header.
    unavailable: AtomicUsize,
    other: Mutex<Vec<String>>,
}

/// `clients` keep-alive connections posting single declarations with unique ids until `stop`
/// or until the server goes away.
fn load(
    f: &Fixture,
    addr: SocketAddr,
    clients: usize,
    run: &str,
    stop: Arc<AtomicBool>,
    out: Arc<LoadResult>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (stop, out, key, template) =
                (stop.clone(), out.clone(), f.key.clone(), f.template.clone());
            let run = run.to_string();
            std::thread::spawn(move || {
                let mut i = 0usize;
                let mut conn: Option<BufReader<TcpStream>> = None;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                            Ok(s) => {
                                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                                conn = Some(BufReader::new(s));
                            }
                            Err(_) => return, // the server is gone
                        }
                    }
                    let id = format!("{run}-c{c}-{i}");
                    i += 1;
                    let mut d = template.clone();
                    d["decl_id"] = Value::String(id.clone());
                    let body = serde_json::to_vec(&d).unwrap();
                    let mut req = format!(
                        "POST /v1/score HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
                         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    req.extend_from_slice(&body);
                    match exchange(conn.as_mut().unwrap(), &req) {
                        Ok((200, _, body)) => {
                            let v: Value = serde_json::from_slice(&body).unwrap();
                            assert_eq!(v["declaration_id"], id.as_str());
                            out.answered.lock().unwrap().push(id);
                        }
                        Ok((503, headers, body)) => {
                            let v: Value = serde_json::from_slice(&body).unwrap();
                            if v["error"]["code"] == "audit_unavailable"
                                && headers.contains("retry-after:")
                            {
                                out.unavailable.fetch_add(1, Ordering::Relaxed);
                            } else {
                                out.other.lock().unwrap().push(format!("503 {v}"));
                            }
                        }
                        Ok((status, _, body)) => out
                            .other
                            .lock()
                            .unwrap()
                            .push(format!("{status} {}", String::from_utf8_lossy(&body))),
                        // Killed mid-request: the decision was not answered.
                        Err(_) => conn = None,
                    }
                }
            })
        })
        .collect()
}

/// Declaration ids in the audit trail, read back through `customs-risk audit export`.
fn audited(f: &Fixture) -> HashSet<String> {
    let out = Command::new(bin())
        .args([
            "audit",
            "export",
            "--registry",
            f.db.to_str().unwrap(),
            "--since",
            "2000-01-01",
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["declaration_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn kill9(child: &mut Child) {
    // std's Child::kill sends SIGKILL on Unix.
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Hold the SQLite write lock on `db` from another process (Python's sqlite3) until killed.
fn hold_write_lock(db: &Path) -> Child {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)\n",
            db.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[test]
fn kill_9_under_load_loses_no_answered_decision() {
    let f = fixture();
    let mut total = 0usize;
    for run in 0..5 {
        let (mut server, addr) = start_server(&f, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let res = Arc::new(LoadResult::default());
        let clients = load(&f, addr, 8, &format!("r{run}"), stop.clone(), res.clone());
        // Kill once a few hundred decisions are answered (at most 10 s).
        let t = Instant::now();
        while res.answered.lock().unwrap().len() < 300 + 200 * run
            && t.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        kill9(&mut server);
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let answered = res.answered.lock().unwrap().clone();
        assert!(
            answered.len() >= 300,
            "run {run}: only {} answered",
            answered.len()
        );
        assert!(
            res.other.lock().unwrap().is_empty(),
            "{:?}",
            res.other.lock().unwrap()
        );
        let audit = audited(&f);
        let lost: Vec<&String> = answered.iter().filter(|id| !audit.contains(*id)).collect();
        assert!(
            lost.is_empty(),
            "run {run}: {} answered decisions lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        total += answered.len();
    }
    eprintln!("5 kill -9 runs: {total} answered decisions, 0 lost");
    // The chains survive the crashes.
    let dbs = f.db.to_str().unwrap();
    let out = Command::new(bin())
        .args(["audit", "verify", "--registry", dbs])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("audit") && text.contains(" ok "), "{text}");
    // A row deleted by hand (triggers dropped first) is reported, with exit status 1.
    let py = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n\
             c.executescript('DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 100;')",
            dbs,
        ])
        .status()
        .unwrap();
    assert!(py.success());
    let out = Command::new(bin())
        .args(["audit", "verify", "--registry", dbs])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("BROKEN") && text.contains("seq 101"),
        "{text}"
    );
}

#[test]
fn kill_9_while_another_connection_holds_the_write_lock() {
    let f = fixture();
    let (mut server, addr) = start_server(&f, &[("CUSTOMS_RISK_AUDIT_LOCK_DEADLINE_MS", "300")]);
    let stop = Arc::new(AtomicBool::new(false));
    let res = Arc::new(LoadResult::default());
    let clients = load(&f, addr, 8, "lock", stop.clone(), res.clone());
    let t = Instant::now();
    while res.answered.lock().unwrap().len() < 300 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_lock = res.answered.lock().unwrap().len();
    let mut locker = hold_write_lock(&f.db);
    // While the lock is held past the deadline, requests get 503 + Retry-After and /readyz 503.
    let t = Instant::now();
    while res.unavailable.load(Ordering::Relaxed) == 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        res.unavailable.load(Ordering::Relaxed) > 0,
        "no 503 while the lock was held"
    );
    let (status, headers, _) = get(addr, "/readyz").unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains("retry-after:"), "{headers}");
    std::thread::sleep(Duration::from_millis(300));
    kill9(&mut server);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    locker.kill().unwrap();
    locker.wait().unwrap();
    let answered = res.answered.lock().unwrap().clone();
    assert!(
        res.other.lock().unwrap().is_empty(),
        "{:?}",
        res.other.lock().unwrap()
    );
    let audit = audited(&f);
    let lost: Vec<&String> = answered.iter().filter(|id| !audit.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered decisions lost",
        lost.len(),
        answered.len()
    );
    eprintln!(
        "lock held: {} answered ({} before the lock), {} refused with 503, 0 lost",
        answered.len(),
        before_lock,
        res.unavailable.load(Ordering::Relaxed)
    );
}

/// Peak memory (KiB, from the kernel's rusage of the child) of `audit export` over a registry
/// holding `rows` decisions, measured by Python.
fn export_peak_kib(dir: &Path, rows: usize) -> u64 {
    let db = dir.join(format!("export-{rows}.db"));
    let dbs = db.to_str().unwrap();
    // An empty registry with the current schema.
    cli_ok(dir, &["keys", "list", "--registry", dbs, "--create"]);
    let script = r#"
import resource, sqlite3, subprocess, sys
db, rows, exe = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = sqlite3.connect(db)
c.executemany(
    "INSERT INTO audit (at, key_id, request_id, declaration_id, model_version, score, percentile, channel) "
    "VALUES ('2024-05-01T00:00:00.000000Z', '0123456789abcdef', ?, ?, 'm1', 0.5, 50.0, 'green')",
    ((f"req-{i:012d}", f"D{i:060d}") for i in range(rows)))
c.commit()
c.close()
for fmt in ("csv", "jsonl"):
    subprocess.run([exe, "audit", "export", "--registry", db, "--since", "2024-01-01", "--format", fmt],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            dbs,
            &rows.to_string(),
            bin().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn audit_export_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let small = export_peak_kib(dir.path(), 20_000);
    let large = export_peak_kib(dir.path(), 400_000);
    eprintln!("audit export peak RSS: {small} KiB for 20k rows, {large} KiB for 400k rows");
    // 380k more rows of ~200 bytes each would add ~75 MB if they were held in memory.
    assert!(
        large < small + 16 * 1024,
        "peak memory grows with the rows: {small} KiB -> {large} KiB"
    );
}
