#!/usr/bin/env bash
# The main job on embedded defaults: generated demo data, local files, a SQLite registry.
# generate → train (GBDT + logistic) → score → evaluate → compare; results in out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
customs-risk demo: fetches ONNX Runtime into .ort/ (once), builds the `customs-risk` binary
(release profile), then runs `customs-risk demo`: generate 200,000 declarations, train a GBDT
and a logistic regression, score, evaluate (HTML report with drift), compare, and register
the champion in a SQLite registry, all in out/demo/.
Time: the first build compiles ~400 crates, about 20 minutes on 2 cores (a few minutes on 8+);
later runs rebuild nothing. The demo itself takes about a minute. Cargo's progress follows.
MSG
./scripts/setup-ort.sh || echo "ONNX Runtime not installed: the native engine still scores the GBDT"
start=$(date +%s)
cargo build --release -p customs-risk
echo "build: $(( $(date +%s) - start )) s"
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo target)
"$target_dir/release/customs-risk" demo "$@"
