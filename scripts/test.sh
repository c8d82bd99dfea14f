#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run the whole test suite.
# Installs: Debian chromium (report rendering test), the Python reference libraries
# (scikit-learn, LightGBM, XGBoost, ONNX Runtime, converters) and the ONNX Runtime shared library.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
customs-risk tests: installs chromium and the Python references (pip, once), fetches ONNX
Runtime into .ort/, then runs `cargo test --workspace` (every crate's unit and integration
tests after rustfmt and clippy -D warnings, the Python cross-checks, tests/newcomer.sh through the CLI tests).
Time: the first build of the test binaries takes about 20 minutes on 2 cores (it shares
nothing with the release build of scripts/demo.sh); the tests then run for a few minutes.
Cargo's progress follows.
MSG
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && apt-get clean
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && sudo apt-get clean; fi
fi
python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check -r scripts/requirements-test.txt
./scripts/setup-ort.sh
export OMP_WAIT_POLICY=PASSIVE
# A fresh clone gains nothing from incremental compilation, and its caches are
# several GB; CI disks are small. (Set CARGO_INCREMENTAL=1 to keep them.)
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . | tail -1 | awk '{print "disk free before build: " $4}'
# Formatting and lints first: cheap next to the test build, and they fail fast.
# (clippy's check build shares nothing with the test build: about 3 minutes cold on 2 cores.)
if ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add clippy
fi
cargo fmt --all --check
# demo.sh's binary build and this test build must share their compiled dependencies.
./scripts/check-features.sh
echo "clippy: cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast
