#!/usr/bin/env bash
# Invariant check (cheap, for CI): cr-service must not link training code.
# Fails if `cargo tree -p cr-service` (normal, build and dev edges) mentions cr-train, cr-gbdt
# or cr-linear. The same check runs as the `deps` integration test.
set -euo pipefail
cd "$(dirname "$0")/../.."
tree=$(cargo tree --offline -p cr-service --edges normal,build,dev --prefix none)
if grep -E '^(cr-train|cr-gbdt|cr-linear) ' <<<"$tree"; then
  echo "cr-service depends on training code (see above)" >&2
  exit 1
fi
echo "ok: cr-service links no training crate"
