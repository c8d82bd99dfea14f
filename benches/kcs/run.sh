#!/usr/bin/env bash
# KCS gap study (issue 16): our pipeline + GBDT under several variants, and LightGBM with
# smoothed seizure-rate features, on train 2020 -> test 2021-Q2. See README.md for results.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:-../shared/data/customs-import-declarations}"
echo "building the study (cr-train example kcs_gap, test profile)..."
cargo build --workspace --examples --profile test
echo "== customs-risk (1 thread of work per variant, ~10 s each)"
target/debug/examples/kcs_gap "$DATA"
echo "== LightGBM (1 thread)"
OMP_WAIT_POLICY=PASSIVE python3 -W ignore benches/kcs/lgb_side.py "$DATA"
