#!/usr/bin/env python3
"""Inference speed: our native engine vs ONNX Runtime (Python and via `ort`), LightGBM and
(optionally) lleaves and treelite (compiled to C by tl2cgen, built with gcc), on one LightGBM model and 1M rows in memory.

Model: LightGBM binary classifier, 100 trees, 63 leaves, 25 features, trained on synthetic
data (5% missing values), exported with onnxmltools. All engines score the same float32
matrix; scores are checked to agree with ONNX Runtime before timings are trusted.

usage: python3 benches/infer/compare.py [--rows 1000000] [--threads 1,2] [--repeat 5]
       [--workdir DIR] [--no-build]
Run from the repository root (it builds and runs crates/infer/examples/score_bench.rs in
release mode). Prints rows/s (median of --repeat runs after a warm-up) and ratios.
"""
import argparse, os, subprocess, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--threads", default="1,2")
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--workdir", default=None)
ap.add_argument("--no-build", action="store_true")
ap.add_argument("--seed", type=int, default=42)
args = ap.parse_args()
threads = [int(t) for t in args.threads.split(",")]
work = args.workdir or tempfile.mkdtemp(prefix="cr-infer-bench-")
os.makedirs(work, exist_ok=True)
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

F, N_TRAIN = 25, 200_000
rng = np.random.default_rng(args.seed)
def synth(n):
    X = rng.normal(size=(n, F)).astype(np.float32)
    X[:, :5] = np.round(X[:, :5] * 3)  # a few discrete columns
    logit = X[:, 0] - 0.5 * X[:, 1] + X[:, 2] * X[:, 3] + np.sin(2 * X[:, 5]) + 0.3 * X[:, 6:12].sum(1)
    y = (logit + rng.normal(size=n) > 0.5).astype(np.int64)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, y

def median_time(fn, repeat):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

import lightgbm as lgb
import onnxruntime as ort
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

Xtr, ytr = synth(N_TRAIN)
model = lgb.LGBMClassifier(n_estimators=100, num_leaves=63, learning_rate=0.1, verbose=-1,
                           random_state=args.seed).fit(Xtr, ytr)
onx = convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, F]))], zipmap=False,
                       target_opset=15)
onnx_path = os.path.join(work, "lgbm_100x63.onnx")
with open(onnx_path, "wb") as f:
    f.write(onx.SerializeToString())
X, _ = synth(args.rows)
X = np.ascontiguousarray(X, dtype=np.float32)
x_path = os.path.join(work, "x.bin")
X.astype("<f4").tofile(x_path)
booster = model.booster_
depths = []
for t in booster.dump_model()["tree_info"]:
    def depth(n):
        return 0 if "leaf_index" in n else 1 + max(depth(n["left_child"]), depth(n["right_child"]))
    depths.append(depth(t["tree_structure"]))
print(f"model: 100 trees x 63 leaves, {F} features, max depth {max(depths)}, mean max depth {np.mean(depths):.1f}")
print(f"data: {args.rows} rows in memory, 5% NaN; workdir {work}")
load_start = os.getloadavg()

results = {}  # (engine, threads) -> rows/s
ref = None
for t in threads:
    so = ort.SessionOptions(); so.intra_op_num_threads = t; so.inter_op_num_threads = 1; so.log_severity_level = 3
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    out = {}
    def run_ort():
        out["p"] = sess.run(None, {"input": X})[1]
    sec = median_time(run_ort, args.repeat)
    results[("onnxruntime-python", t)] = args.rows / sec
    if t == threads[0]:
        ref = np.asarray(out["p"])[:, 1].astype(np.float32)
    sec = median_time(lambda: booster.predict(X, num_threads=t), args.repeat)
    results[("lightgbm", t)] = args.rows / sec

try:
    import lleaves
    mf = os.path.join(work, "lgbm.txt"); booster.save_model(mf)
    ll = lleaves.Model(model_file=mf); ll.compile(cache=os.path.join(work, "lleaves.so"))
    Xd = X.astype(np.float64)
    for t in threads:
        sec = median_time(lambda: ll.predict(Xd, n_jobs=t), args.repeat)
        results[("lleaves", t)] = args.rows / sec
except Exception as e:  # optional
    print(f"lleaves: skipped ({type(e).__name__}: {e})")

try:
    import treelite, tl2cgen
    tm = treelite.frontend.from_lightgbm(booster)
    lib = os.path.join(work, "treelite.so")
    tl2cgen.export_lib(tm, toolchain="gcc", libpath=lib, params={"parallel_comp": 8, "quantize": 1}, verbose=False)  # quantize: its faster mode
    dm = tl2cgen.DMatrix(X)  # built once, outside the timing (as lleaves gets its float64 copy)
    for t in threads:
        pred = tl2cgen.Predictor(lib, nthread=t, verbose=False)
        got = {}
        def run_tl():
            got["p"] = pred.predict(dm)
        sec = median_time(run_tl, args.repeat)
        results[("treelite (tl2cgen)", t)] = args.rows / sec
    tl_p = np.asarray(got["p"]).reshape(-1)
    lgb_p = booster.predict(X, num_threads=threads[-1])
    print(f"agreement treelite vs lightgbm: max|diff| {np.nanmax(np.abs(tl_p - lgb_p)):.2e}")
except Exception as e:  # optional
    print(f"treelite: skipped ({type(e).__name__}: {e})")

if not args.no_build:
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cr-infer", "--example", "score_bench"], cwd=root, check=True)
exe = os.path.join(root, "target", "release", "examples", "score_bench")
env = dict(os.environ)
env.setdefault("ORT_DYLIB_PATH", os.path.join(root, ".ort", "libonnxruntime.so"))
prefix = os.path.join(work, "scores")
res = subprocess.run([exe, onnx_path, x_path, str(args.rows), str(F), "--threads", args.threads,
                      "--engines", "native,ort", "--repeat", str(args.repeat), "--out", prefix],
                     env=env, check=True, capture_output=True, text=True)
for line in res.stdout.splitlines():
    kv = dict(p.split("=") for p in line.split())
    name = {"native": "cr-infer native", "ort": "cr-infer ort"}[kv["engine"]]
    results[(name, int(kv["threads"]))] = float(kv["rows_per_s"])

for eng in ["native", "ort"]:
    got = np.fromfile(f"{prefix}.{eng}.bin", dtype="<f4")
    d = np.nanmax(np.abs(got.astype(np.float64) - ref))
    exact = np.mean(got.view(np.uint32) == ref.view(np.uint32))
    print(f"agreement cr-infer {eng} vs onnxruntime-python: max|diff| {d:.2e}, bit-identical rows {exact:.4%}")
    assert d <= 1e-6, f"{eng} disagrees with onnxruntime"

load_end = os.getloadavg()
print(f"machine: {os.cpu_count()} cores, load average (1/5/15 min) {load_start[0]:.2f}/{load_start[1]:.2f}/"
      f"{load_start[2]:.2f} at start, {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f} at end "
      f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
print(f"\n{'engine':<22}" + "".join(f"{'threads=' + str(t):>16}" for t in threads))
names = ["cr-infer native", "cr-infer ort", "onnxruntime-python", "lightgbm", "lleaves", "treelite (tl2cgen)"]
for n in names:
    if any((n, t) in results for t in threads):
        print(f"{n:<22}" + "".join(f"{results.get((n, t), float('nan')) / 1e6:>13.3f} M/s" for t in threads))
print()
for t in threads:
    nat = results[("cr-infer native", t)]
    line = f"threads={t}: native / onnxruntime-python = {nat / results[('onnxruntime-python', t)]:.2f}x, " \
           f"native / cr-infer ort = {nat / results[('cr-infer ort', t)]:.2f}x, " \
           f"native / lightgbm = {nat / results[('lightgbm', t)]:.2f}x"
    if ("lleaves", t) in results:
        line += f", native / lleaves = {nat / results[('lleaves', t)]:.2f}x"
    if ("treelite (tl2cgen)", t) in results:
        line += f", native / treelite = {nat / results[('treelite (tl2cgen)', t)]:.2f}x"
    print(line)
