#!/usr/bin/env bash
# Peak memory (max RSS, from GNU time) of the commands that read or write whole files, at
# 1M and 10M generated declarations: generate (CSV), validate, score --budget 5 %.
# Memory should stay flat as the file grows; the table printed at the end is what
# benches/memory/README.md quotes.
#
# Usage: benches/memory/peak.sh [ROWS ...]      (default: 1000000 10000000)
# Needs: a release build (cargo build --release -p customs-risk), /usr/bin/time, ~3 GB of
# disk per 10M rows under $WORK (default: a temporary directory, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows_list=("$@")
[ ${#rows_list[@]} -gt 0 ] || rows_list=(1000000 10000000)
target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/release/customs-risk"
[ -x "$bin" ] || { echo "build first: cargo build --release -p customs-risk"; exit 2; }
work=${WORK:-$(mktemp -d)}
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
schema=data/schemas/synthetic.toml
peak() { # label, command...: prints "label  seconds  MB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
    cat "$work/stderr.txt"; exit 1; }
  read -r secs kb <"$work/time.txt"
  printf "%-10s %12s %8.1f s %8.0f MB\n" "$label" "$rows" "$secs" "$((kb / 1024))"
}
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-10s %12s %10s %11s\n" command rows wall peak_rss
# a small model to score with (trained once, on 200k rows)
"$bin" generate --rows 200000 --out "$work/train.csv" --quiet
"$bin" train --data "$work/train.csv" --schema "$schema" --trees 100 --out "$work/m.onnx" --quiet
for rows in "${rows_list[@]}"; do
  f="$work/d$rows.csv"
  peak generate "$bin" generate --rows "$rows" --seed 7 --out "$f" --quiet
  peak validate "$bin" validate --data "$f" --schema "$schema"
  peak score "$bin" score --model "$work/m.onnx" --data "$f" --out "$work/s.csv" --budget 5% --quiet
  rm -f "$f" "$work/s.csv"
done
