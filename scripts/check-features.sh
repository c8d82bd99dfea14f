#!/usr/bin/env bash
# Fails when `cargo build --workspace --bins` (scripts/demo.sh) and `cargo test --workspace`
# (scripts/test.sh) would compile a shared dependency with different features, i.e. build it
# twice. The fix is a line in crates/cli/Cargo.toml's feature-unification block.
set -euo pipefail
cd "$(dirname "$0")/.."
features() { cargo tree --workspace -f "{p} {f}" --prefix none -e "$1" 2>/dev/null \
  | sed 's/ (\*)$//' | sort -u; }
python3 - <(features normal,build,dev) <(features normal,build) <<'PY'
import sys
def load(p):
    # package -> the distinct feature sets it is built with (a package built twice, e.g. as a
    # normal and as a build dependency, has two lines: compare the sets, not their union)
    d = {}
    for line in open(p):
        parts = line.split()
        if len(parts) < 2:
            continue
        key = parts[0] + " " + parts[1]
        feats = frozenset(parts[2].split(",")) if len(parts) > 2 else frozenset()
        d.setdefault(key, set()).add(feats)
    return d
with_dev, bins = load(sys.argv[1]), load(sys.argv[2])
bad = [(k, sorted(sorted(f) for f in with_dev.get(k, set())), sorted(sorted(f) for f in v))
       for k, v in sorted(bins.items()) if with_dev.get(k, set()) != v]
for k, t, b in bad:
    print(f"{k}: built with {b} by the binary, {t} by the tests")
print(f"{len(bins)} packages in the binary's build, {len(bad)} with other features under cargo test")
sys.exit(1 if bad else 0)
PY
