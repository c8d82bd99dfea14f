"""Foreign float-matrix model vs our own model, `customs-risk score` end to end.

usage: python3 benches/foreign/foreign_vs_ours.py [ROWS] [REPEATS]
Needs the release binary (CARGO_TARGET_DIR=/work/target-release cargo build --release -p
customs-risk; set CUSTOMS_RISK_BIN, default target/release/customs-risk).

- ours: `customs-risk generate` ROWS declarations, a GBDT trained by `customs-risk train`
  (100 trees x 63 leaves) on the first 200k rows, `score` of the ROWS-row file.
- foreign: a ROWS-row CSV with an id and 20 float columns (numpy, seed 7, 6 significant
  digits, 1% empty cells), a LightGBM classifier (100 trees x 63 leaves) trained in Python on
  the first 100k rows and converted by onnxmltools (one float input [N, 20]), `score
  --features f0,...,f19 --id-column id`.
Medians of REPEATS runs at --threads 1 and 2, rows/s, and foreign/ours time ratios; the
1-minute load average before each run and CPU seconds (user + sys) beside wall times.
"""
import os, resource, statistics, subprocess, sys, tempfile, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import lightgbm as lgb
import numpy as np
import onnxmltools
import pandas as pd
from onnxmltools.convert.common.data_types import FloatTensorType

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CUSTOMS_RISK_BIN", os.path.join(ROOT, "target/release/customs-risk"))
rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
tmp = tempfile.mkdtemp()


def run(*args):
    subprocess.run([BIN, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ours
decl = os.path.join(tmp, "decl.csv")
train = os.path.join(tmp, "train.csv")
run("generate", "--rows", str(rows), "--out", decl, "--quiet")
run("generate", "--rows", "200000", "--seed", "3", "--out", train, "--quiet")
run("train", "--data", train, "--out", os.path.join(tmp, "gbdt"), "--trees", "100", "--leaves", "63",
    "--early-stopping", "0", "--quiet")
ours_model = os.path.join(tmp, "gbdt.onnx")

# foreign
F = 20
rng = np.random.default_rng(7)
x = rng.normal(size=(rows, F)).astype(np.float32)
y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 3] + rng.normal(size=rows) > 0.5).astype(int)
n_fit = min(rows, 100_000)
gbm = lgb.LGBMClassifier(n_estimators=100, num_leaves=63, verbose=-1, random_state=1, n_jobs=1)
gbm.fit(x[:n_fit], y[:n_fit])
onx = onnxmltools.convert_lightgbm(gbm, initial_types=[("input", FloatTensorType([None, F]))],
                                   zipmap=False, target_opset=15)
foreign_model = os.path.join(tmp, "lgbm.onnx")
with open(foreign_model, "wb") as f:
    f.write(onx.SerializeToString())
cols = [f"f{j}" for j in range(F)]
df = pd.DataFrame(x, columns=cols)
df = df.mask(rng.random(size=df.shape) < 0.01)
df.insert(0, "id", [f"R{i}" for i in range(rows)])
num = os.path.join(tmp, "num.csv")
df.to_csv(num, index=False, float_format="%.6g")
del df, x


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(args):
    load = os.getloadavg()[0]
    c, t = child_cpu(), time.perf_counter()
    run(*args)
    return time.perf_counter() - t, child_cpu() - c, load


results = {}
for threads in (1, 2):
    for name, args in (
        ("ours", ["score", "--model", ours_model, "--data", decl, "--out", os.path.join(tmp, "o.csv")]),
        ("foreign", ["score", "--model", foreign_model, "--data", num, "--out", os.path.join(tmp, "f.csv"),
                     "--features", ",".join(cols), "--id-column", "id"]),
    ):
        runs = [timed(args + ["--threads", str(threads), "--quiet"]) for _ in range(reps)]
        results[(name, threads)] = runs

print(f"{rows} rows, median of {reps}")
for threads in (1, 2):
    med = {}
    for name in ("ours", "foreign"):
        runs = results[(name, threads)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        med[name] = wall
        loads = ", ".join(f"{r[2]:.2f}" for r in runs)
        print(f"{name:8s} {threads}t: {wall:.3f} s ({rows / wall / 1e6:.2f}M rows/s), CPU {cpu:.2f} s, load {loads}")
    print(f"ratio foreign/ours {threads}t: {med['foreign'] / med['ours']:.2f}x")
