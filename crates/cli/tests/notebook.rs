//! notebooks-export/: the LightGBM → ONNX → `customs-risk score` notebook runs (as its exported
//! script, against the binary built for this test) and the .ipynb holds exactly the script's
//! cells, so the two cannot drift apart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn notebooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../notebooks-export")
}

#[derive(Debug, PartialEq)]
struct Cell {
    markdown: bool,
    lines: Vec<String>,
}

/// Cells of a `# %%` script: `# %% [markdown]` cells lose their `# ` prefixes; blank lines
/// around a cell are dropped.
fn script_cells(text: &str) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# %%") {
            cells.push(Cell {
                markdown: rest.trim() == "[markdown]",
                lines: Vec::new(),
            });
        } else {
            let cell = cells
                .last_mut()
                .unwrap_or_else(|| panic!("text before the first '# %%': {line:?}"));
            cell.lines.push(line.to_string());
        }
    }
    for c in &mut cells {
        while c.lines.first().is_some_and(|l| l.trim().is_empty()) {
            c.lines.remove(0);
        }
        while c.lines.last().is_some_and(|l| l.trim().is_empty()) {
            c.lines.pop();
        }
        if c.markdown {
            for l in &mut c.lines {
                *l = l
                    .strip_prefix("# ")
                    .or_else(|| l.strip_prefix('#'))
                    .unwrap_or(l)
                    .to_string();
            }
        }
    }
    cells
}

fn notebook_cells(json: &serde_json::Value) -> Vec<Cell> {
    assert_eq!(json["nbformat"], 4);
    json["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            let kind = c["cell_type"].as_str().unwrap();
            assert!(kind == "code" || kind == "markdown", "cell type {kind}");
            if kind == "code" {
                assert_eq!(
                    c["outputs"].as_array().map(Vec::len),
                    Some(0),
                    "notebooks are committed without outputs"
                );
            }
            let source: String = match &c["source"] {
                serde_json::Value::Array(parts) => {
                    parts.iter().map(|p| p.as_str().unwrap()).collect()
                }
                serde_json::Value::String(s) => s.clone(),
                other => panic!("source {other:?}"),
            };
            Cell {
                markdown: kind == "markdown",
                lines: source.lines().map(str::to_string).collect(),
            }
        })
        .collect()
}

#[test]
fn notebook_equals_its_script() {
    let dir = notebooks();
    let script = std::fs::read_to_string(dir.join("lightgbm_to_customs_risk.py")).unwrap();
    let nb: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("lightgbm_to_customs_risk.ipynb")).unwrap(),
    )
    .unwrap();
    let (a, b) = (script_cells(&script), notebook_cells(&nb));
    assert!(
        a.iter().filter(|c| !c.markdown).count() >= 5,
        "the script has too few code cells"
    );
    assert_eq!(a.len(), b.len(), "the script and the notebook have different cell counts: run notebooks-export/py_to_ipynb.py");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            x, y,
            "cell {i} differs between the .py and the .ipynb: run notebooks-export/py_to_ipynb.py"
        );
    }
}

#[test]
fn notebook_script_runs_against_the_built_binary() {
    let work = tempfile::tempdir().unwrap();
    let script = notebooks().join("lightgbm_to_customs_risk.py");
    let out = Command::new("python3")
        .arg(&script)
        .current_dir(work.path())
        .env("CUSTOMS_RISK_BIN", common::bin())
        .env("NOTEBOOK_WORKDIR", work.path().join("nb"))
        .env("NOTEBOOK_ROWS", "30000")
        .env("NOTEBOOK_TREES", "60")
        .output()
        .expect("python3 must be installed with scripts/requirements-test.txt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the notebook failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("OK: customs-risk reproduces ONNX Runtime"),
        "{stdout}"
    );

    // The summary the notebook writes: independent of its own pass/fail logic, hold it to the
    // contract here too.
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("nb/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["rows_scored"], 7500);
    for model in ["lightgbm", "sklearn"] {
        let d = summary[model]["max_diff_customs_risk_vs_ort"]
            .as_f64()
            .unwrap();
        assert!(
            (0.0..=1e-6).contains(&d),
            "{model}: customs-risk vs ONNX Runtime {d}"
        );
    }
    let d = summary["sklearn"]["max_diff_sklearn_vs_onnx"]
        .as_f64()
        .unwrap();
    assert!(d <= 1e-4, "scikit-learn vs its export {d}");
    // The LightGBM export may differ from LightGBM on a few rows (float32 thresholds), not on many.
    let rows = summary["lightgbm"]["rows_lightgbm_vs_onnx_above_1e-5"]
        .as_u64()
        .unwrap();
    assert!(
        rows * 100 <= 7500,
        "{rows} rows differ between LightGBM and its export"
    );

    // customs-risk's own output, read back here: one row per declaration, ids in file order.
    let scores = common::read_scores(&work.path().join("nb/lightgbm_scores.csv"));
    let mut rdr = csv::Reader::from_path(work.path().join("nb/test.csv")).unwrap();
    let ids: Vec<String> = rdr.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(scores.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(
        scores.iter().filter(|s| s.selected == Some(true)).count(),
        375,
        "5 % of 7500"
    );
}
