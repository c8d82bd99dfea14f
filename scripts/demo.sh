#!/usr/bin/env bash
# The main job on embedded defaults: generated demo data, local files, a SQLite registry.
# generate → train (GBDT + logistic) → score → evaluate → compare; results in out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-ort.sh || echo "ONNX Runtime not installed: the native engine still scores the GBDT"
cargo run --release --quiet -p customs-risk -- demo "$@"
