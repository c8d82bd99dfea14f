#!/usr/bin/env bash
# The main job on embedded defaults: generated demo data, local files, a SQLite registry.
# generate → train (GBDT + logistic) → score → evaluate → compare; results in out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
customs-risk demo: fetches ONNX Runtime into .ort/ (once), builds the `customs-risk` binary
(the dev profile, optimised: the same compiled crates scripts/test.sh uses, so whichever of
the two runs second builds almost nothing), then runs `customs-risk demo`: generate 200,000
declarations, train a GBDT and a logistic regression, score, evaluate (HTML report with
drift), compare, and register the champion in a SQLite registry, all in out/demo/.
Time: the first build compiles ~350 crates, about 8 minutes on an idle 2-core machine (see
README); later runs rebuild nothing. The demo itself takes about 10 seconds.
Cargo's progress follows.
MSG
./scripts/setup-ort.sh || echo "ONNX Runtime not installed: the native engine still scores the GBDT"
# As in scripts/test.sh (incremental caches cost GB of disk and gain nothing on a fresh
# clone; the same setting there and here keeps the compiled crates shared).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
start=$(date +%s)
# --workspace: the same feature set as `cargo test --workspace`, so no crate is built twice.
# (Benchmarks use `cargo build --release`; the demo gains nothing from it.)
cargo build --workspace --bins
echo "build: $(( $(date +%s) - start )) s"
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo target)
"$target_dir/debug/customs-risk" demo "$@"
