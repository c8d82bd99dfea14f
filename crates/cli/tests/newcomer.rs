//! `tests/newcomer.sh` against the binary cargo just built: `--help` of every command (an
//! example each, every flag described), the README's commands on a small file, and bad input
//! files (missing, empty, a directory, `;`-separated, no id column, random bytes, no seizures,
//! an extra column), each of which must fail with exit 1 and a clear `error:` line, never a
//! panic, a backtrace or a cause printed twice.

use std::path::Path;
use std::process::Command;

#[test]
fn a_newcomers_first_hour() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("tests/newcomer.sh"))
        .arg(env!("CARGO_BIN_EXE_customs-risk"))
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tests/newcomer.sh failed:\n{text}");
}
