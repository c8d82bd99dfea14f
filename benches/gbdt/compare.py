#!/usr/bin/env python3
"""Benchmark cr-gbdt against LightGBM and XGBoost (hist) on the same synthetic data, in one run.

Generates N train rows (+ N/5 test rows) x 25 features of fraud-like tabular data (NaNs,
categorical-like integer codes, skewed amounts; ~3% positives), then trains each library in its
own subprocess (100 trees, 63 leaves, 255 bins, lr 0.1, 2 threads, OMP_WAIT_POLICY=PASSIVE) and
prints training wall time, test ROC-AUC, peak RSS of the process, and ratios vs LightGBM.

Usage: python3 benches/gbdt/compare.py [--rows 1000000] [--threads 2] [--repeats 1] [--skip-xgb]
Run from the repository root; builds `cargo build --release -p cr-gbdt --example train_bench`.
"""
import argparse, json, os, subprocess, sys, tempfile, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def write_matrix(path, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    with open(path, "wb") as f:
        f.write(b"CRF32MAT")
        f.write(np.array(a.shape, dtype="<u8").tobytes())
        f.write(a.astype("<f4").tobytes())


def read_matrix(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"CRF32MAT"
        r, c = np.frombuffer(f.read(16), dtype="<u8")
        return np.frombuffer(f.read(), dtype="<f4").reshape(int(r), int(c))


def make_data(n, seed=7):
    """Fraud-like synthetic data: 25 features, NaNs, integer codes, ~3% positives."""
    rng = np.random.default_rng(seed)
    cols = []
    # 10 continuous (normal / skewed), some with missing values
    for j in range(10):
        v = rng.standard_normal(n)
        if j % 3 == 1:
            v = np.exp(v * 1.5)  # skewed amount-like
        cols.append(v)
    # 5 uniform ratios
    for j in range(5):
        cols.append(rng.uniform(0, 1, n))
    # 6 categorical-like integer codes with different cardinalities
    cards = [3, 8, 20, 60, 150, 400]
    cat_effects = []
    for k in cards:
        p = rng.dirichlet(np.full(k, 0.5))
        codes = rng.choice(k, size=n, p=p)
        cols.append(codes.astype(np.float64))
        cat_effects.append(rng.normal(0, 0.8, k)[codes])
    # 4 counts / binary flags
    cols.append(rng.poisson(2.0, n).astype(np.float64))
    cols.append(rng.poisson(0.3, n).astype(np.float64))
    cols.append((rng.uniform(size=n) < 0.1).astype(np.float64))
    cols.append(rng.integers(0, 2, n).astype(np.float64))
    X = np.stack(cols, axis=1)
    # label model: non-linear effects, interactions, category effects, informative missingness
    logit = (
        0.8 * X[:, 0]
        - 0.5 * X[:, 2] ** 2
        + 0.6 * np.log1p(X[:, 1])
        + 1.2 * (X[:, 3] > 1.0) * (X[:, 10] > 0.5)
        + 0.7 * np.sin(3 * X[:, 4])
        + 0.5 * X[:, 5] * X[:, 6]
        + 0.9 * (X[:, 11] < 0.2)
        + sum(cat_effects)
        + 0.3 * X[:, 21]
        + 0.8 * X[:, 23]
    )
    # missing values (informative for feature 7)
    miss7 = rng.uniform(size=n) < 0.15
    logit += 0.7 * miss7
    X[miss7, 7] = np.nan
    for j, frac in [(0, 0.05), (2, 0.1), (8, 0.3), (12, 0.08), (16, 0.05)]:
        X[rng.uniform(size=n) < frac, j] = np.nan
    logit += rng.logistic(size=n) * 0.0
    # intercept for ~3% positives
    lo, hi = -20.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() > 0.03:
            hi = mid
        else:
            lo = mid
    p = 1 / (1 + np.exp(-(logit + lo)))
    y = (rng.uniform(size=n) < p).astype(np.float32)
    return X.astype(np.float32), y


CHILD_LGB = r"""
import json, sys, time, numpy as np
sys.path.insert(0, {here!r})
from compare import read_matrix
import lightgbm as lgb
X = read_matrix({dir!r} + '/train_x.bin'); y = read_matrix({dir!r} + '/train_y.bin')[:, 0]
Xt = read_matrix({dir!r} + '/test_x.bin')
t0 = time.perf_counter()
params = dict(objective='binary', num_leaves=63, max_bin=255, learning_rate=0.1, num_threads={threads},
              min_data_in_leaf=20, min_sum_hessian_in_leaf=1e-3, verbose=-1, seed=0)
ds = lgb.Dataset(X, label=y, params=params)
bst = lgb.train(params, ds, num_boost_round={trees})
train_s = time.perf_counter() - t0
t1 = time.perf_counter()
pred = bst.predict(Xt, raw_score=True)
predict_s = time.perf_counter() - t1
np.asarray(pred, dtype='<f8').tofile({dir!r} + '/pred_lgb.bin')
print(json.dumps(dict(train_s=train_s, predict_s=predict_s)))
"""

CHILD_XGB = r"""
import json, sys, time, numpy as np
sys.path.insert(0, {here!r})
from compare import read_matrix
import xgboost as xgb
X = read_matrix({dir!r} + '/train_x.bin'); y = read_matrix({dir!r} + '/train_y.bin')[:, 0]
Xt = read_matrix({dir!r} + '/test_x.bin')
t0 = time.perf_counter()
params = dict(objective='binary:logistic', tree_method='hist', grow_policy='lossguide', max_leaves=63,
              max_depth=0, max_bin=255, eta=0.1, nthread={threads}, min_child_weight=1e-3, verbosity=0, seed=0)
dm = xgb.QuantileDMatrix(X, label=y, max_bin=255, nthread={threads})
bst = xgb.train(params, dm, num_boost_round={trees})
train_s = time.perf_counter() - t0
t1 = time.perf_counter()
pred = bst.predict(xgb.DMatrix(Xt, nthread={threads}), output_margin=True)
predict_s = time.perf_counter() - t1
np.asarray(pred, dtype='<f8').tofile({dir!r} + '/pred_xgb.bin')
print(json.dumps(dict(train_s=train_s, predict_s=predict_s)))
"""


def run_child(cmd, env):
    """Run a command, return (parsed JSON of last stdout line, wall seconds, peak RSS MiB).

    The peak RSS comes from GNU time (`/usr/bin/time -f %M`): the measured process is forked
    from the small `time` process, so its maxrss is its own. (os.wait4 on a child forked from
    this Python process would report at least this process's own RSS, since Linux carries the
    pre-exec high-water mark into ru_maxrss.)
    """
    t0 = time.perf_counter()
    with tempfile.NamedTemporaryFile(prefix="rss-", suffix=".txt", delete=False) as tf:
        rss_path = tf.name
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_path, *cmd], capture_output=True, env=env)
    wall = time.perf_counter() - t0
    out, err = p.stdout.decode(), p.stderr.decode()
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{out}\n{err}")
    with open(rss_path) as f:
        kib = int(f.read().strip().splitlines()[-1])
    os.unlink(rss_path)
    line = [l for l in out.strip().splitlines() if l.startswith("{")][-1]
    return json.loads(line), wall, kib / 1024.0


def auc(y, s):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(y, s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=1, help="runs per library; medians are reported")
    ap.add_argument("--skip-xgb", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "cr-gbdt", "--example", "train_bench"],
                       cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "train_bench")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(args.threads),
               RAYON_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory(prefix="gbdt-bench-") as d:
        t0 = time.perf_counter()
        X, y = make_data(args.rows + args.rows // 5)
        n = args.rows
        write_matrix(f"{d}/train_x.bin", X[:n]); write_matrix(f"{d}/train_y.bin", y[:n])
        write_matrix(f"{d}/test_x.bin", X[n:])
        yt = y[n:]
        print(f"data: {n} train rows, {len(yt)} test rows, {X.shape[1]} features, "
              f"positive rate {y.mean():.4f}, NaN share {np.isnan(X).mean():.3f} "
              f"(generated in {time.perf_counter() - t0:.1f}s)")
        del X, y
        libs = {
            "cr-gbdt": [exe, f"{d}/train_x.bin", f"{d}/train_y.bin", f"{d}/test_x.bin", f"{d}/pred_ours.bin",
                        f"threads={args.threads}", f"trees={args.trees}"],
            "lightgbm": [sys.executable, "-c", CHILD_LGB.format(here=HERE, dir=d, threads=args.threads, trees=args.trees)],
        }
        if not args.skip_xgb:
            libs["xgboost"] = [sys.executable, "-c", CHILD_XGB.format(here=HERE, dir=d, threads=args.threads, trees=args.trees)]
        preds = {"cr-gbdt": "pred_ours.bin", "lightgbm": "pred_lgb.bin", "xgboost": "pred_xgb.bin"}
        res = {}
        for rep in range(args.repeats):
            for name, cmd in libs.items():
                info, wall, rss = run_child(cmd, env)
                r = res.setdefault(name, dict(train=[], wall=[], rss=[], info=[]))
                r["train"].append(info["train_s"]); r["wall"].append(wall); r["rss"].append(rss); r["info"].append(info)
                r["auc"] = auc(yt, np.fromfile(f"{d}/{preds[name]}", dtype="<f8"))
    med = lambda v: float(np.median(v))
    base = res["lightgbm"]
    print(f"\n{'library':10} {'train_s':>8} {'wall_s':>8} {'AUC':>8} {'peakRSS_MiB':>11} "
          f"{'time/lgb':>8} {'dAUC':>8} {'rss/lgb':>8}")
    for name, r in res.items():
        print(f"{name:10} {med(r['train']):8.2f} {med(r['wall']):8.2f} {r['auc']:8.4f} {med(r['rss']):11.0f} "
              f"{med(r['train']) / med(base['train']):8.2f} {r['auc'] - base['auc']:+8.4f} "
              f"{med(r['rss']) / med(base['rss']):8.2f}")
    ours = res["cr-gbdt"]["info"]
    keys = ["binning_s", "gradients_s", "histogram_s", "split_s", "partition_s", "other_s"]
    print("\ncr-gbdt time split (median s): " + ", ".join(f"{k[:-2]} {med([i[k] for i in ours]):.2f}" for k in keys))
    print("train times per run: " + "; ".join(f"{k}: " + ", ".join(f"{t:.2f}" for t in v["train"]) for k, v in res.items()))


if __name__ == "__main__":
    main()
