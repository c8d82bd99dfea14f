//! Helpers shared by the CLI integration tests: run the built `customs-risk` binary and the
//! Python reference scripts in tests/py, read score files back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test (built by cargo for this test run).
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_customs-risk"))
}

pub fn py_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `customs-risk ARGS` in `dir`; returns the output whatever the exit status.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the customs-risk binary runs")
}

/// Run `customs-risk ARGS` in `dir`, which must succeed; returns stderr.
pub fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "customs-risk {} failed: {}",
        args.join(" "),
        show(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `customs-risk ARGS` in `dir`, which must fail; returns stderr.
pub fn cli_err(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        !out.status.success(),
        "customs-risk {} should have failed: {}",
        args.join(" "),
        show(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `python3 SCRIPT ARGS` in `dir`, which must succeed; returns stdout.
pub fn python(dir: &Path, script: &Path, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 must be installed with scripts/requirements-test.txt");
    assert!(
        out.status.success(),
        "python3 {} {} failed: {}",
        script.display(),
        args.join(" "),
        show(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generate `rows` synthetic declarations with `seed` into `dir/name`.
pub fn generate(dir: &Path, name: &str, rows: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    cli_ok(
        dir,
        &[
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
            "--months",
            "12",
            "--out",
            path.to_str().unwrap(),
            "--quiet",
        ],
    );
    path
}

/// One row of a `score` output file (CSV).
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub id: String,
    pub score: f64,
    /// NaN when the model has no reference quantiles (foreign models).
    pub percentile: f64,
    pub selected: Option<bool>,
}

fn parse_f64(s: &str) -> f64 {
    if s.is_empty() || s.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else {
        s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
    }
}

/// Read a score CSV: columns id, score, percentile[, selected].
pub fn read_scores(path: &Path) -> Vec<Scored> {
    let mut rdr =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    assert!(
        header == ["id", "score", "percentile"]
            || header == ["id", "score", "percentile", "selected"],
        "{}: header {header:?}",
        path.display()
    );
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            Scored {
                id: r[0].to_string(),
                score: parse_f64(&r[1]),
                percentile: parse_f64(&r[2]),
                selected: r.get(3).map(|s| match s {
                    "true" => true,
                    "false" => false,
                    other => panic!("selected = {other:?}"),
                }),
            }
        })
        .collect()
}

/// Read `id,score` as written by tests/py/ort_score.py.
pub fn read_reference(path: &Path) -> Vec<(String, f64)> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    rdr.records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), parse_f64(&r[1])))
        .collect()
}

/// Ids must be aligned row by row and every score within `tol`; returns the largest gap.
pub fn assert_close(what: &str, ours: &[Scored], reference: &[(String, f64)], tol: f64) -> f64 {
    assert_eq!(ours.len(), reference.len(), "{what}: row counts differ");
    let mut worst = 0.0f64;
    for (i, (a, (id, s))) in ours.iter().zip(reference).enumerate() {
        assert_eq!(&a.id, id, "{what}: row {} ids differ", i + 1);
        assert!(
            a.score.is_finite() && (0.0..=1.0).contains(&a.score),
            "{what}: row {} score {}",
            i + 1,
            a.score
        );
        let d = (a.score - s).abs();
        assert!(
            d <= tol,
            "{what}: row {} ({id}): customs-risk {} vs reference {s} (|diff| {d:e} > {tol:e})",
            i + 1,
            a.score
        );
        worst = worst.max(d);
    }
    worst
}
