//! Invariant: cr-service never links training code. `cargo tree` over normal, build and dev
//! dependencies must not mention cr-train, cr-gbdt or cr-linear (same check as
//! `crates/service/check-deps.sh`).

#[test]
fn service_does_not_depend_on_training_crates() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal,build,dev",
            "--prefix",
            "none",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args(["-p", "cr-service"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("cr-infer"), "unexpected tree:\n{tree}");
    for banned in ["cr-train ", "cr-gbdt ", "cr-linear "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "cr-service depends on {banned}:\n{tree}"
        );
    }
}
