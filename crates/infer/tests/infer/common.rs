//! Shared helpers: Python reference runs, binary f32 files.

use std::path::Path;
use std::process::Command;

/// Python with onnx/onnxruntime/sklearn/lightgbm/xgboost is a test requirement; set
/// CR_SKIP_PYTHON_TESTS=1 to skip on machines without it (default: fail loudly).
pub fn python_enabled() -> bool {
    std::env::var("CR_SKIP_PYTHON_TESTS").as_deref() != Ok("1")
}

pub fn run_python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn py_script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Largest |a - b| (NaN == NaN counts as 0; NaN vs number as infinity).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x.is_nan(), y.is_nan()) {
            (true, true) => 0.0,
            (false, false) => (*x as f64 - *y as f64).abs(),
            _ => f64::INFINITY,
        })
        .fold(0.0, f64::max)
}
