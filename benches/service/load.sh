#!/usr/bin/env bash
# Load benchmark of the scoring service (loopback only, bounded in time).
#
# Builds a 100-tree raw-field model (scikit-learn GBDT -> skl2onnx, with our pipeline
# metadata; crates/service/tests/support/make_model.py), starts the release `bench_server`
# example (same code path as `customs-risk serve`), and drives `POST /v1/score` with wrk:
#   1. single-declaration requests at 1..64 connections -> throughput / latency curve, once
#      with the durable audit (answer after the group commit, `synchronous = FULL`: what
#      `customs-risk serve` does) and once non-durable (answer once queued; the old behaviour),
#      in the same run, so the two curves see the same machine load;
#   2. batches of 100 declarations (durable) -> declarations per second.
# Needs wrk (Debian: apt-get install wrk; installed here when running as root) and the Python
# references (pip install -r scripts/requirements-test.txt).
# wrk is closed-loop (no constant-rate mode in this wrk build), so "p99 at half the peak rate"
# is read at the connection count whose throughput is nearest half the peak.
#
# Usage: benches/service/load.sh [SECONDS_PER_POINT=5] [CONNECTIONS="1 2 4 8 16 32 64"] [MODES="durable queued"]
# Env: WRK_THREADS (default 1), SERVER_WORKERS (tokio workers, default: all cores),
#      SERVER_CPUS / WRK_CPUS (taskset CPU lists, optional), INLINE_MAX (default 16).
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-5}
CONNS=${2:-"1 2 4 8 16 32 64"}
MODES=${3:-"durable queued"}
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "wrk is needed: sudo apt-get install wrk (Debian/Ubuntu)" >&2; exit 2
  fi
fi
python3 -c 'import sklearn, skl2onnx, onnxruntime' 2>/dev/null || {
  echo "the Python references are needed: python3 -m pip install -r scripts/requirements-test.txt" >&2; exit 2; }
WRK_THREADS=${WRK_THREADS:-1}
INLINE_MAX=${INLINE_MAX:-16}
WORK=$(mktemp -d -t cr-service-bench-XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN=${BENCH_SERVER_BIN:-target/release/examples/bench_server}
if [ -z "${BENCH_SERVER_BIN:-}" ]; then
  cargo build --release -q -p cr-service --example bench_server
fi
python3 crates/service/tests/support/make_model.py "$WORK" 200 bench:7:100

pin() { local cpus=$1; shift; if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
SERVER_PIN=()
if [ -n "${SERVER_CPUS:-}" ]; then SERVER_PIN=(taskset -c "$SERVER_CPUS"); fi
if [ -n "${SERVER_WORKERS:-}" ]; then export TOKIO_WORKER_THREADS=$SERVER_WORKERS; fi
start_server() { # mode -> sets PID, PORT, URL (fresh registry per mode)
  rm -f "$WORK"/registry.db*
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$PORT/v1/score"
  # Started directly (not through `pin`): $! must be the server itself so that cleanup can stop it.
  RUST_LOG=warn "${SERVER_PIN[@]}" "$BIN" "$WORK/registry.db" "$WORK/bench.onnx" "127.0.0.1:$PORT" "$WORK/key" "$INLINE_MAX" "$1" 2>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" 2>/dev/null; then break; fi
    sleep 0.1
  done
}
stop_server() { # -> checks scored == audited after a graceful shutdown
  local scored audited
  scored=$(python3 -c "import urllib.request; t = urllib.request.urlopen('http://127.0.0.1:$PORT/metrics').read().decode(); print(next(l.split()[1] for l in t.splitlines() if l.startswith('customs_risk_declarations_scored_total')))")
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  audited=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from audit').fetchone()[0])" "$WORK/registry.db")
  echo "declarations answered: $scored; audit rows after graceful shutdown: $audited"
  # Every answered decision is audited. More rows than answers is fine: a request whose
  # client hung up (wrk stopping) after the commit is recorded but never answered.
  if [ "$scored" -gt "$audited" ]; then echo "AUDIT MISSING ROWS" >&2; exit 1; fi
  if grep -q ERROR "$WORK/server.log"; then echo "server errors:"; grep ERROR "$WORK/server.log" | head -5; fi
}
make_scripts() { # the wrk scripts for the current $KEY
python3 - "$WORK" "$KEY" <<'PY'
import json, sys
work, key = sys.argv[1], sys.argv[2]
decls = json.load(open(f"{work}/bench.decls.json"))
def lua(bodies, path):
    with open(path, "w") as f:
        f.write("local bodies = {\n")
        for b in bodies:
            f.write("[==[" + json.dumps(b) + "]==],\n")
        f.write("}\nlocal i = 0\n")
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {key}"\n')
        f.write("request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n")
        f.write('response = function(status, headers, body)\n  if status ~= 200 then io.stderr:write("status " .. status .. ": " .. body .. "\\n") end\nend\n')
lua(decls, f"{work}/single.lua")
lua([{"declarations": decls[i:i + 100]} for i in (0, 100)], f"{work}/batch.lua")
PY
}

# wrk latency value ("123.45us", "1.20ms", "2.00s") -> milliseconds
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }
run_wrk() { # connections script -> "rps p50 p99 errors"
  local out
  out=$(pin "${WRK_CPUS:-}" wrk -t"$WRK_THREADS" -c"$1" -d"${DUR}s" --latency -s "$2" "$URL" 2>"$WORK/wrk.err")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out"); non2xx=${non2xx:-0}
  echo "$rps $p50 $p99 $non2xx"
}

echo "# cr-service load benchmark: 100-tree GBDT, single declaration per request"
echo "# $(nproc) CPUs, wrk threads $WRK_THREADS, ${DUR}s per point, inline scoring up to $INLINE_MAX declarations"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RPS P99 P50 BAD
for mode in $MODES; do
  if [ -z "$PID" ]; then start_server "$mode"; fi
  KEY=$(cat "$WORK/key")
  make_scripts
  for c in $CONNS; do
    read -r rps p50 p99 bad < <(run_wrk "$c" "$WORK/single.lua")
    RPS[$mode,$c]=$rps; P50[$mode,$c]=$p50; P99[$mode,$c]=$p99; BAD[$mode,$c]=$bad
  done
  if [ "$mode" = durable ]; then
    echo "# batches of 100 declarations per request (durable)"
    printf "%-12s %12s %14s %10s %10s\n" connections "requests/s" "declarations/s" "p50 ms" "p99 ms"
    for c in 2 8; do
      read -r rps p50 p99 bad < <(run_wrk "$c" "$WORK/batch.lua")
      printf "%-12s %12s %14s %10s %10s\n" "$c" "$rps" "$(awk -v r="$rps" 'BEGIN { printf "%.0f", r * 100 }')" "$p50" "$p99"
    done
  fi
  python3 - "$PORT" "$mode" <<'PY'
import sys, urllib.request
port, mode = sys.argv[1], sys.argv[2]
m = {l.split()[0]: float(l.split()[1]) for l in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode().splitlines() if l and not l.startswith("#")}
n, s = m["customs_risk_audit_commit_seconds_count"], m["customs_risk_audit_commit_seconds_sum"]
w = m["customs_risk_audit_records_written_total"]
print(f"# {mode}: {n:.0f} audit commits, {w / max(n, 1):.1f} decisions per commit, mean commit {1000 * s / max(n, 1):.3f} ms")
PY
  stop_server
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# single declaration per request: requests/s and latency, durable vs non-durable (queued)"
printf "%-12s" connections; for mode in $MODES; do printf " %14s %9s %9s %7s" "$mode req/s" "p50 ms" "p99 ms" "non-2xx"; done; echo
for c in $CONNS; do
  printf "%-12s" "$c"
  for mode in $MODES; do printf " %14s %9s %9s %7s" "${RPS[$mode,$c]}" "${P50[$mode,$c]}" "${P99[$mode,$c]}" "${BAD[$mode,$c]}"; done
  echo
done
for mode in $MODES; do
  best=0; for c in $CONNS; do best=$(awk -v a="$best" -v b="${RPS[$mode,$c]}" 'BEGIN { print (b > a) ? b : a }'); done
  half=$(awk -v b="$best" 'BEGIN { print b / 2 }')
  pick=""; gap=""
  for c in $CONNS; do
    d=$(awk -v r="${RPS[$mode,$c]}" -v h="$half" 'BEGIN { d = r - h; if (d < 0) d = -d; print d }')
    if [ -z "$gap" ] || awk -v d="$d" -v g="$gap" 'BEGIN { exit !(d < g) }'; then gap=$d; pick=$c; fi
  done
  echo "$mode peak: $best requests/s; nearest half-peak point: $pick connections at ${RPS[$mode,$pick]} requests/s, p99 ${P99[$mode,$pick]} ms"
done
if [ -s "$WORK/wrk.err" ]; then echo "wrk errors:"; head -5 "$WORK/wrk.err"; fi
