#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library from the `onnxruntime` wheel on PyPI (nothing else is
# downloaded) into .ort/, where .cargo/config.toml points ORT_DYLIB_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${ORT_VERSION:-1.31.1}"
if [ -f .ort/libonnxruntime.so ] && [ "$(cat .ort/VERSION 2>/dev/null)" = "$VERSION" ]; then
  echo "ONNX Runtime $VERSION already in .ort/"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$VERSION"
whl=$(ls "$tmp"/onnxruntime-*.whl | head -n1)
mkdir -p .ort
python3 - "$whl" <<'PY'
import sys, zipfile, os, shutil
whl = sys.argv[1]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if not names:
        sys.exit("no libonnxruntime.so in " + whl)
    for n in names:
        dst = os.path.join(".ort", os.path.basename(n))
        with z.open(n) as src, open(dst, "wb") as out:
            shutil.copyfileobj(src, out)
    main = sorted(names, key=len)[-1]
    shutil.copyfile(os.path.join(".ort", os.path.basename(main)), ".ort/libonnxruntime.so")
PY
echo "$VERSION" > .ort/VERSION
echo "ONNX Runtime $VERSION -> .ort/libonnxruntime.so"
