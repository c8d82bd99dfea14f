#!/usr/bin/env python3
"""Exact TreeSHAP speed, one thread, side by side in one run: cr-infer (from the ONNX file,
covers recomputed from the training data) vs LightGBM pred_contrib, shap.TreeExplainer and
fasttreeshap (v1, v2) where installed.

Model: LightGBM binary classifier, 100 trees x 63 leaves, 25 features, no bagging, trained on
synthetic data (5% missing values), exported with onnxmltools. Every engine explains the same
float32 matrix; cr-infer's contributions are checked against pred_contrib (max |diff|) before
timings are trusted.

usage: python3 benches/explain/compare.py [--rows 20000] [--repeat 3] [--workdir DIR]
       [--no-build] [--exe PATH]
Run from the repository root (builds crates/infer/examples/explain_bench.rs in release mode
into $CARGO_TARGET_DIR or target/). Prints rows/s per thread (median of --repeat runs after a
warm-up) and ratios to cr-infer.
"""
import argparse, os, subprocess, tempfile, time, warnings
warnings.filterwarnings("ignore")
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=20_000)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--workdir", default=None)
ap.add_argument("--no-build", action="store_true")
ap.add_argument("--exe", default=None, help="a prebuilt explain_bench binary (implies --no-build)")
ap.add_argument("--seed", type=int, default=42)
args = ap.parse_args()
work = args.workdir or tempfile.mkdtemp(prefix="cr-explain-bench-")
os.makedirs(work, exist_ok=True)
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

F, N_TRAIN = 25, 100_000
rng = np.random.default_rng(args.seed)
def synth(n):
    X = rng.normal(size=(n, F)).astype(np.float32)
    X[:, :5] = np.round(X[:, :5] * 3)
    logit = X[:, 0] - 0.5 * X[:, 1] + X[:, 2] * X[:, 3] + np.sin(2 * X[:, 5]) + 0.3 * X[:, 6:12].sum(1)
    y = (logit + rng.normal(size=n) > 0.5).astype(np.int64)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, y

cpu = {}
def median_time(fn, repeat, name=None):
    fn()
    ts, cs = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t); cs.append(time.process_time() - c)
    if name:
        cpu[name] = float(np.median(cs))
    return float(np.median(ts))

import lightgbm as lgb
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

Xtr, ytr = synth(N_TRAIN)
model = lgb.LGBMClassifier(n_estimators=100, num_leaves=63, learning_rate=0.1, subsample=1.0,
                           verbose=-1, random_state=args.seed).fit(Xtr, ytr)
onx = convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, F]))], zipmap=False,
                       target_opset=15)
onnx_path = os.path.join(work, "lgbm_100x63.onnx")
with open(onnx_path, "wb") as f:
    f.write(onx.SerializeToString())
X, _ = synth(args.rows)
X = np.ascontiguousarray(X, dtype=np.float32)
Xtr.astype("<f4").tofile(os.path.join(work, "train.bin"))
X.astype("<f4").tofile(os.path.join(work, "x.bin"))
booster = model.booster_
def depth(n):
    return 0 if "leaf_index" in n else 1 + max(depth(n["left_child"]), depth(n["right_child"]))
depths = [depth(t["tree_structure"]) for t in booster.dump_model()["tree_info"]]
print(f"model: 100 trees x 63 leaves, {F} features, max depth {max(depths)}, "
      f"mean max depth {np.mean(depths):.1f}; {args.rows} rows, 1 thread; workdir {work}")

results = {}
out = {}
def lgb_run():
    out["lgb"] = booster.predict(X, pred_contrib=True, num_threads=1)
results["lightgbm pred_contrib"] = args.rows / median_time(lgb_run, args.repeat, "lightgbm pred_contrib")
cpu_rate = {"lightgbm pred_contrib": args.rows / cpu["lightgbm pred_contrib"]}

try:
    import shap
    ex = shap.TreeExplainer(model)
    n_s = min(args.rows, 2000)
    results["shap TreeExplainer"] = n_s / median_time(lambda: ex.shap_values(X[:n_s]), args.repeat, "s")
    cpu_rate["shap TreeExplainer"] = n_s / cpu["s"]
except Exception as e:
    print(f"shap: skipped ({type(e).__name__}: {e})")

try:
    import fasttreeshap
    n_s = min(args.rows, 5000)
    for alg in ["v1", "v2"]:
        fx = fasttreeshap.TreeExplainer(model, algorithm=alg, n_jobs=1)
        results[f"fasttreeshap {alg}"] = n_s / median_time(lambda: fx.shap_values(X[:n_s]), args.repeat, alg)
        cpu_rate[f"fasttreeshap {alg}"] = n_s / cpu[alg]
except Exception as e:
    print(f"fasttreeshap: skipped ({type(e).__name__}: {e})")

target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
if not (args.no_build or args.exe):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cr-infer", "--example", "explain_bench"],
                   cwd=root, check=True)
exe = args.exe or os.path.join(target, "release", "examples", "explain_bench")
phi_path = os.path.join(work, "phi.bin")
def ours_run(extra, out):
    res = subprocess.run([exe, onnx_path, os.path.join(work, "train.bin"), str(N_TRAIN),
                          os.path.join(work, "x.bin"), str(args.rows), str(F), "--threads", "1",
                          "--repeat", str(args.repeat), "--out", out] + extra,
                         check=True, capture_output=True, text=True)
    return dict(p.split("=") for p in res.stdout.split())
kv = ours_run([], phi_path)
print(f"cr-infer: {kv['tabulated']} trees by precomputed tables ({kv['table_mib']} MiB)")
results["cr-infer (ONNX file)"] = float(kv["rows_per_s"])
cpu_rate["cr-infer (ONNX file)"] = float(kv["rows_per_cpu_s"])
plain_path = os.path.join(work, "phi_plain.bin")
kv0 = ours_run(["--table-entries", "0"], plain_path)
results["cr-infer plain recursion"] = float(kv0["rows_per_s"])
cpu_rate["cr-infer plain recursion"] = float(kv0["rows_per_cpu_s"])
phi0 = np.fromfile(plain_path, dtype="<f8").reshape(args.rows, F)
phi = np.fromfile(phi_path, dtype="<f8").reshape(args.rows, F)
ref = out["lgb"]
d = np.max(np.abs(phi - ref[:, :F]))
db = abs(float(kv["bias"]) - ref[0, F])
d0 = np.max(np.abs(phi - phi0))
print(f"agreement cr-infer vs lightgbm pred_contrib: max|dphi| {d:.2e}, |dbias| {db:.2e}; "
      f"tables vs plain recursion: max|dphi| {d0:.2e}")
assert d <= 1e-6 and db <= 1e-6, "cr-infer disagrees with LightGBM"
assert d0 <= 1e-9, "tables disagree with the recursion"

ours = results["cr-infer (ONNX file)"]
print("load:", os.getloadavg())
ours_cpu = cpu_rate["cr-infer (ONNX file)"]
print(f"{'engine':28s} {'rows/s/thread':>14s} {'x faster':>9s} {'rows/CPU-s':>11s} {'x faster':>9s}")
for k, v in results.items():
    c = cpu_rate.get(k, float("nan"))
    print(f"{k:28s} {v:14.0f} {ours / v:9.2f} {c:11.0f} {ours_cpu / c:9.2f}")
