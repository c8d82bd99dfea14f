"""Logistic regression: cr-linear vs scikit-learn's LogisticRegression (lbfgs, C = 1, its
defaults) on the same design matrix (our feature pipeline on generated declarations).

usage: python3 benches/linear/compare.py [--rows 1000000] [--repeat 3] [--example PATH]
Builds `examples/logistic_design.rs` (release, CARGO_TARGET_DIR or /work/target-release; or
uses --example), which generates declarations (cr-synth, 18 months) and writes the design
matrix; then fits both on the
same f32 features with the same preprocessing (signed log of heavy-tailed features, mean
imputation, standardisation), and prints test ROC-AUC, fit seconds (median of --repeat) and
their ratio. scikit-learn gets one thread-free fit (lbfgs is single-threaded in SciPy);
ours runs on the threads rayon finds (set RAYON_NUM_THREADS to compare per thread).
"""
import argparse, json, os, subprocess, sys, tempfile, time
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--valid-from", default="2024-04-01")
ap.add_argument("--example", help="a built logistic_design binary (skips the release build)")
a = ap.parse_args()

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
target = os.environ.get("CARGO_TARGET_DIR", "/work/target-release")
env = dict(os.environ, CARGO_TARGET_DIR=target)
ex = a.example
if ex is None:
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cr-train", "--example", "logistic_design"],
                   cwd=root, env=env, check=True)
    ex = os.path.join(target, "release", "examples", "logistic_design")

with tempfile.TemporaryDirectory() as d:
    ours_t, ours_auc, report = [], None, None
    for _ in range(a.repeat):
        subprocess.run([ex, f"generate:{a.rows}", "synthetic", a.valid_from, d], check=True)
        o = json.load(open(os.path.join(d, "ours.json")))
        ours_t.append(o["fit_s"]); report = o["report"]
    meta = json.load(open(os.path.join(d, "meta.json")))
    nf = meta["n_features"]
    xtr = np.fromfile(os.path.join(d, "xtr.bin"), dtype=np.float32).reshape(-1, nf).astype(np.float64)
    ytr = np.fromfile(os.path.join(d, "ytr.bin"), dtype=np.float32)
    xte = np.fromfile(os.path.join(d, "xte.bin"), dtype=np.float32).reshape(-1, nf).astype(np.float64)
    yte = np.fromfile(os.path.join(d, "yte.bin"), dtype=np.float32)
    ours = np.loadtxt(os.path.join(d, "ours.txt"))

    def prep(x, stats=None):
        x = x.copy()
        for j in meta["log_features"]:
            x[:, j] = np.sign(x[:, j]) * np.log1p(np.abs(x[:, j]))
        if stats is None:
            imp = np.nan_to_num(np.nanmean(x, axis=0))
            xi = np.where(np.isnan(x), imp, x)
            mu, sd = xi.mean(axis=0), xi.std(axis=0)
            sd[sd == 0] = 1.0
            stats = (imp, mu, sd)
        imp, mu, sd = stats
        return (np.where(np.isnan(x), imp, x) - mu) / sd, stats

    sk_t = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        ztr, stats = prep(xtr)  # preprocessing counted on both sides (ours fits it too)
        clf = LogisticRegression(C=1.0).fit(ztr, ytr)
        sk_t.append(time.perf_counter() - t)
    zte, _ = prep(xte, stats)
    sk = clf.predict_proba(zte)[:, 1]
    med = lambda v: float(np.median(v))
    res = {
        "train_rows": int(len(ytr)), "test_rows": int(len(yte)), "features": nf,
        "ours_auc": float(roc_auc_score(yte, ours)), "sklearn_auc": float(roc_auc_score(yte, sk)),
        "ours_fit_s": med(ours_t), "sklearn_fit_s": med(sk_t), "ratio": med(ours_t) / med(sk_t),
        "ours_report": report, "sklearn_iterations": int(clf.n_iter_[0]),
    }
    print(json.dumps(res, indent=1))
