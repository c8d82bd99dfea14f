#!/usr/bin/env bash
# What a newcomer does in the first hour, through the built binary: the README's commands on a
# small generated file, `--help` of every command, and the bad input files people actually
# have. Fails on a command without an example in its long help, a flag without a description,
# a panic or backtrace, a bad file that does not fail cleanly (exit 1, `error: ...` naming the
# problem), or a cause printed twice.
#
# Usage: tests/newcomer.sh [PATH/TO/customs-risk]   (default: target/debug/customs-risk)
# Run by scripts/test.sh after `cargo test`, and by crates/cli/tests/newcomer.rs.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-${CARGO_TARGET_DIR:-target}/debug/customs-risk}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -x "$BIN" ] || { echo "newcomer.sh: no binary at $BIN (build it first)"; exit 2; }
SCHEMA="$PWD/data/schemas/synthetic.toml"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# A run's output must never show a panic or a backtrace, and no line twice in a row.
no_panic() { # WHAT FILE
  if grep -qE "panicked at|stack backtrace|RUST_BACKTRACE" "$2"; then
    fail "$1: panic or backtrace:"; sed 's/^/    /' "$2" | head -20
  fi
  if [ -n "$(grep -E '^ *caused by:' "$2" | uniq -d)" ]; then
    fail "$1: a cause printed twice:"; sed 's/^/    /' "$2"
  fi
}

# ---- --help of every command: an example each, a description for every flag
help_check() { # ARGS...
  local out="$WORK/help.txt"
  if ! "$BIN" "$@" --help >"$out" 2>&1; then fail "customs-risk $* --help exits non-zero"; fi
  no_panic "customs-risk $* --help" "$out"
  python3 - "customs-risk $*" "$out" <<'PY' || failures=$((failures + 1))
import re, sys
name, text = sys.argv[1].strip(), open(sys.argv[2]).read()
problems = []
if name != "customs-risk" and not re.search(r"^\s*Examples?:\s*\n\s+\S*customs-risk ", text, re.M):
    problems.append("no example (a line `Example:` then an indented `customs-risk ...`)")
# Each argument starts on a line indented 2-6 spaces ("  -x, --flag <V>", "      --flag",
# "  <ARG>"); its description follows on the same line (short help) or on the lines below,
# indented deeper, up to a blank line or the next argument (long help).
section = None
lines = text.split("\n")
arg_line = re.compile(r"^ {2,6}(?:-\w, )?(--[\w-]+|<[\w-]+>|-\w)((?:[ =](?:<[^>]+>|\[[^\]]+\])(?:\.\.\.)?)*)(.*)$")
for i, line in enumerate(lines):
    if re.match(r"^(Options|Arguments):", line):
        section = line
        continue
    if re.match(r"^\S", line):
        section = None
    if section is None:
        continue
    m = arg_line.match(line)
    if not m or m.group(1) in ("--help", "-h", "--version", "-V"):
        continue
    desc = [m.group(3).strip()] if m.group(3).strip() else []
    if not desc:
        for follow in lines[i + 1:]:
            if not follow.strip() or arg_line.match(follow):
                break
            desc.append(follow.strip())
    words = [d for d in desc if not re.match(r"^\[(default|env|possible values|aliases):", d)]
    if not words:
        problems.append(f"{m.group(1)} has no description")
for p in problems:
    print(f"FAIL: {name} --help: {p}")
sys.exit(1 if problems else 0)
PY
}
commands() { # ARGS... -> the subcommand names listed under "Commands:"
  "$BIN" "$@" --help 2>/dev/null | awk '/^Commands:/{on=1; next} /^[^ ]/{on=0} on && /^  [a-z]/{print $1}' | grep -v '^help$'
}
help_check
for c in $(commands); do
  help_check "$c"
  for s in $(commands "$c"); do help_check "$c" "$s"; done
done

# ---- the README's commands, on a small file
run_ok() { # WHAT ARGS...
  local what="$1"; shift
  if ! "$BIN" "$@" >"$WORK/out.txt" 2>&1; then fail "$what exits non-zero:"; sed 's/^/    /' "$WORK/out.txt" | tail -20; fi
  no_panic "$what" "$WORK/out.txt"
}
run_ok "generate" generate --rows 20000 --months 12 --seed 3 --out decl.csv --quiet
run_ok "validate" validate --data decl.csv --schema "$SCHEMA"
run_ok "train" train --data decl.csv --schema "$SCHEMA" --out models/gbdt --trees 10 --leaves 7 --quiet
run_ok "score" score --model models/gbdt.onnx --data decl.csv --out scores.csv --budget 5% --quiet
run_ok "evaluate" evaluate --model models/gbdt.onnx --data decl.csv --report eval.html --json eval.json --quiet

# ---- bad input: each must fail with exit 1 (2: a bad flag value, from the argument parser) and
# an `error: ...` that names WHAT
run_err() { # WHAT EXPECTED-TEXT ARGS...
  local what="$1" want="$2"; shift 2
  "$BIN" "$@" >"$WORK/out.txt" 2>&1
  local rc=$?
  no_panic "$what" "$WORK/out.txt"
  if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then fail "$what: exit $rc, expected 1 or 2:"; sed 's/^/    /' "$WORK/out.txt" | tail -10; return; fi
  if ! grep -q "^error: " "$WORK/out.txt"; then fail "$what: no 'error: ' line:"; sed 's/^/    /' "$WORK/out.txt" | tail -10; fi
  if ! grep -qF -- "$want" "$WORK/out.txt"; then fail "$what: does not say '$want':"; sed 's/^/    /' "$WORK/out.txt" | tail -10; fi
}
: > empty.csv
head -1 decl.csv > header_only.csv
tr ',' ';' < decl.csv | head -50 > semicolon.csv
head -50 decl.csv | cut -d, -f2- > no_id.csv
head -c 3000 /dev/urandom > garbage.csv
printf 'declaration_id\n1\n' > one_column.csv
mkdir -p adir.csv
# zero seizures: every labelled row clean
python3 - <<'PY'
import csv
rows = list(csv.DictReader(open("decl.csv")))
for r in rows:
    if r["fraud"] not in ("",):
        r["fraud"] = "0"
with open("no_seizures.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader(); w.writerows(rows)
PY
for cmd in validate score evaluate train; do
  case $cmd in
    validate) args=(validate --schema "$SCHEMA" --data) ;;
    score) args=(score --model models/gbdt.onnx --out "$WORK/s.csv" --data) ;;
    evaluate) args=(evaluate --model models/gbdt.onnx --report "$WORK/e.html" --data) ;;
    train) args=(train --schema "$SCHEMA" --out "$WORK/m" --quiet --data) ;;
  esac
  run_err "$cmd: missing file" "nope.csv" "${args[@]}" nope.csv
  run_err "$cmd: empty file" "empty.csv" "${args[@]}" empty.csv
  run_err "$cmd: a directory" "adir.csv" "${args[@]}" adir.csv
  run_err "$cmd: ';'-separated file" "';'" "${args[@]}" semicolon.csv
  run_err "$cmd: no id column" "declaration_id" "${args[@]}" no_id.csv
  run_err "$cmd: random bytes" "garbage.csv" "${args[@]}" garbage.csv
  run_err "$cmd: one column" "missing columns" "${args[@]}" one_column.csv
done
run_err "train: header only" "header_only.csv" train --schema "$SCHEMA" --out m --data header_only.csv
run_err "train: no seizures" "0 seized" train --schema "$SCHEMA" --out m --data no_seizures.csv --quiet
run_err "score: bad budget" "rate" score --model models/gbdt.onnx --data decl.csv --out s.csv --budget 500%
run_err "score: not a model" "decl.csv" score --model decl.csv --data decl.csv --out s.csv
run_err "train: bad config key" "unknown field" train --config <(echo 'tres = 3')

# ---- an extra column is named and left unread; --strict-columns refuses it
python3 - <<'PY'
import csv
rows = list(csv.reader(open("decl.csv")))[:200]
with open("extra.csv", "w", newline="") as f:
    w = csv.writer(f)
    for i, r in enumerate(rows):
        w.writerow(r + (["officer_notes"] if i == 0 else ["checked"]))
PY
"$BIN" score --model models/gbdt.onnx --data extra.csv --out extra_scores.csv >"$WORK/out.txt" 2>&1 \
  || { fail "score with an extra column exits non-zero:"; cat "$WORK/out.txt"; }
no_panic "score extra column" "$WORK/out.txt"
grep -q 'ignored 1 column.*"officer_notes"' "$WORK/out.txt" || { fail "score does not name the ignored column:"; cat "$WORK/out.txt"; }
run_err "score --strict-columns: extra column" "officer_notes" score --model models/gbdt.onnx --data extra.csv --out s.csv --strict-columns

if [ "$failures" -gt 0 ]; then
  echo "newcomer.sh: $failures problem(s)"
  exit 1
fi
echo "newcomer.sh: every command teaches, every bad input fails cleanly"
