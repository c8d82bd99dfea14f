//! Render reports, open them in headless Chromium, and check the plots survive in the DOM and
//! in a screenshot. Chromium is required (CI installs Debian `chromium`); without it this test
//! fails with instructions rather than skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cr_eval::{
    compare, evaluate, render_comparison_html, render_evaluation_html, EvalConfig, EvalInput,
    FeatureDriftInput,
};
use serde_json::json;

use crate::common::{python, world};

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium not found on PATH (or $CHROMIUM). Install it: `apt-get install chromium` (scripts/test.sh does this).");
}

/// Run chromium headless with `extra` args on `url`; kill it after `limit`.
fn run_chromium(profile: &Path, extra: &[String], url: &str, limit: Duration) -> Vec<u8> {
    let out_file = profile.join("stdout.txt");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait chromium") {
            Some(status) => {
                assert!(status.success(), "chromium exited with {status}");
                break;
            }
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    std::fs::read(out_file).expect("read chromium stdout")
}

fn count(h: &str, pat: &str) -> usize {
    h.matches(pat).count()
}

fn check_dom(dom: &str, ids: &[&str]) {
    for id in ids {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "chart {id} missing from rendered DOM"
        );
    }
    let polylines = dom.split("<polyline").skip(1).filter(|s| {
        let pts = s
            .split("points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        pts.split_whitespace().count() >= 2
    });
    assert!(
        polylines.count() >= 8,
        "too few polylines with points in the DOM"
    );
    assert!(count(dom, "<svg") >= ids.len(), "svg elements missing");
    assert!(count(dom, "class=\"xlabel\"") >= ids.len() && count(dom, "class=\"legend\"") >= 3);
}

const PNG_CHECK: &str = r#"
import json, struct, sys, zlib
d = json.load(open(sys.argv[1])); b = open(d["path"], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w, h, ct = 8, b"", 0, 0, 0
while pos < len(b):
    n, = struct.unpack(">I", b[pos:pos+4]); t = b[pos+4:pos+8]; c = b[pos+8:pos+8+n]
    if t == b"IHDR": w, h, depth, ct = struct.unpack(">IIBB", c[:10])
    if t == b"IDAT": idat += c
    pos += 12 + n
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}.get(ct, 1)
# sample some pixel bytes (ignoring filter bytes) and count distinct colours
stride = w * bpp + 1
colours = set()
for y in range(0, h, 7):
    row = raw[y*stride+1:(y+1)*stride]
    for x in range(0, w, 5):
        colours.add(bytes(row[x*bpp:x*bpp+3]))
print(json.dumps({"w": w, "h": h, "size": len(b), "colours": len(colours)}))
"#;

#[test]
fn reports_render_in_chromium() {
    let w = world(20_000, 4);
    let reference: Vec<f64> = w.score_a.iter().map(|s| s * 0.8).collect();
    let feature: Vec<f64> = (0..w.truth.len())
        .map(|i| (i % 10) as f64 + if i % 3 == 0 { 2.0 } else { 0.0 })
        .collect();
    let input = EvalInput {
        model: "gbdt-2024-09".into(),
        scores: w.score_a.clone(),
        rows: w.rows.clone(),
        reference_scores: Some(reference),
        features: vec![FeatureDriftInput {
            name: "declared_value".into(),
            edges: (1..10).map(|x| x as f64).collect(),
            expected: vec![0.1; 10],
            values: feature,
            expected_shift: None,
        }],
    };
    let rep = evaluate(&input, &EvalConfig::default()).unwrap();
    let html = render_evaluation_html(&rep);
    assert!(
        !html.contains("http://") || !html.contains("<script"),
        "no external resources"
    );
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src=\"http"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, &html).unwrap();
    let url = format!("file://{}", path.display());
    let limit = Duration::from_secs(120);

    let dom = String::from_utf8(run_chromium(
        dir.path(),
        &["--dump-dom".into()],
        &url,
        limit,
    ))
    .unwrap();
    check_dom(
        &dom,
        &[
            "chart-gains",
            "chart-lift",
            "chart-pr",
            "chart-roc",
            "chart-calibration",
            "chart-by-period",
            "chart-drift",
        ],
    );
    assert!(dom.contains("class=\"bar\""), "PSI bars missing");

    let shot = dir.path().join("shot.png");
    run_chromium(
        dir.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ],
        &url,
        limit,
    );
    let r = python(PNG_CHECK, &json!({"path": shot}));
    assert_eq!((r["w"].as_u64(), r["h"].as_u64()), (Some(1280), Some(2000)));
    assert!(
        r["size"].as_u64().unwrap() > 50_000,
        "screenshot suspiciously small: {r}"
    );
    assert!(
        r["colours"].as_u64().unwrap() > 20,
        "screenshot looks blank: {r}"
    );

    // Comparison page.
    let cfg = EvalConfig {
        bootstrap_reps: 100,
        ..EvalConfig::default()
    };
    let cmp = compare(
        &[
            ("rules-era".into(), w.score_a.clone()),
            ("retrained".into(), w.score_b.clone()),
        ],
        &w.rows,
        &cfg,
    )
    .unwrap();
    let cpath = dir.path().join("compare.html");
    std::fs::write(&cpath, render_comparison_html(&cmp)).unwrap();
    let dom = String::from_utf8(run_chromium(
        dir.path(),
        &["--dump-dom".into()],
        &format!("file://{}", cpath.display()),
        limit,
    ))
    .unwrap();
    check_dom(
        &dom,
        &[
            "chart-gains",
            "chart-pr",
            "chart-roc",
            "chart-calibration",
            "chart-by-period",
            "chart-diff",
        ],
    );
    assert!(dom.contains("class=\"sentence\"") && dom.contains("seizures per 100 inspections"));
}
