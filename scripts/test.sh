#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run the whole test suite.
# Installs: Debian chromium (report rendering test), the Python reference libraries
# (scikit-learn, LightGBM, XGBoost, ONNX Runtime, converters) and the ONNX Runtime shared library.
set -euo pipefail
cd "$(dirname "$0")/.."
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
# Formatting first: cheap, and it fails fast. (clippy -D warnings joins once the workspace
# is clean of its warnings.)
if ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add rustfmt
fi
cargo fmt --all --check
cargo test --workspace --no-fail-fast
