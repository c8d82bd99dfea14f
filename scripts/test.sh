#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run the whole test suite.
# Installs: Debian chromium (report rendering test), the Python reference libraries
# (scikit-learn, LightGBM, XGBoost, ONNX Runtime, converters) and the ONNX Runtime shared library.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
customs-risk tests: installs chromium and the Python references (pip, once), fetches ONNX
Runtime into .ort/, then runs `cargo test --workspace` (every crate's unit and integration
tests after rustfmt, the Python cross-checks, tests/newcomer.sh through the CLI tests).
Time: the first build of the test binaries takes about 8 minutes on 2 cores (7 min 24 s
measured in a clean clone; it shares its compiled crates with scripts/demo.sh, so after
the demo it is shorter); the tests then run for about 5 minutes.
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
# Formatting first: cheap, and it fails fast. (clippy runs in .ci/run, before this script:
# its check build shares nothing with the test build and costs ~4 minutes cold on 2 cores.)
if ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add rustfmt
fi
cargo fmt --all --check
# demo.sh's binary build and this test build must share their compiled dependencies.
./scripts/check-features.sh
cargo test --workspace --no-fail-fast
