#!/usr/bin/env bash
# Effect of risk_profile.min_count (rare risk-table entries left out of the model file) on
# validation ROC-AUC / PR-AUC and on the number of stored entries, on generated data.
#
# usage: scripts/min_count_auc.sh [ROWS] [SEEDS...]   (default 200000 rows, seeds 1 2 3)
# needs: a built binary (BIN=..., default target/release/customs-risk), python3 with onnx.
set -euo pipefail
ROWS=${1:-200000}
shift || true
SEEDS=${*:-1 2 3}
BIN=${BIN:-target/release/customs-risk}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
printf "%-5s %-9s %-9s %8s %8s %8s\n" seed algo min_count roc_auc pr_auc entries
for seed in $SEEDS; do
  "$BIN" generate --rows "$ROWS" --seed "$seed" --out "$DIR/d$seed.csv" --quiet
  for algo in gbdt logistic; do
    for mc in 1 5 10; do
      "$BIN" train --data "$DIR/d$seed.csv" --algo "$algo" --out "$DIR/m" --risk-min-count "$mc" \
        --threads 2 --quiet
      python3 - "$DIR/m.card.json" "$DIR/m.onnx" "$seed" "$algo" "$mc" <<'PY'
import json, sys, onnx
card = json.load(open(sys.argv[1]))
m = onnx.load(sys.argv[2])
pipe = json.loads({p.key: p.value for p in m.metadata_props}["customs_risk.pipeline"])
n = sum(len(f["table"]) for f in pipe["features"] if f["type"] == "risk_count")
v = card["validation"]
print(f"{sys.argv[3]:<5} {sys.argv[4]:<9} {sys.argv[5]:<9} {v['roc_auc']:8.4f} {v['pr_auc']:8.4f} {n:8d}")
PY
    done
  done
done
