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
    d = {}
    for line in open(p):
        parts = line.split()
        if len(parts) < 2:
            continue
        key = parts[0] + " " + parts[1]
        feats = set(parts[-1].split(",")) if len(parts) > 2 and not parts[-1].startswith("(") else set()
        d.setdefault(key, set()).update(feats)
    return d
with_dev, bins = load(sys.argv[1]), load(sys.argv[2])
bad = [(k, sorted(with_dev.get(k, set()) - f)) for k, f in sorted(bins.items()) if with_dev.get(k, set()) != f]
for k, extra in bad:
    print(f"{k}: the tests add features {extra}")
print(f"{len(bins)} packages in the binary's build, {len(bad)} with other features under cargo test")
sys.exit(1 if bad else 0)
PY
