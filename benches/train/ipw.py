"""Does `--sample-weight ipw` help on the traffic a model will face?

usage: python3 benches/train/ipw.py [--rows 600000] [--seeds 1,2,3] [--algo gbdt] [--exe PATH]

Generates declarations (cr-synth: a biased legacy rule inspects ~8 % of rows, a 2 % random
sample with recorded propensities), trains on the first 12 months with --sample-weight none and
ipw (everything else default), and evaluates both on the last 6 months with `customs-risk
evaluate`: the hit rate at a 5 % inspection budget estimated on the random sample (unbiased)
and by inverse-propensity weighting, plus ROC-AUC on the random sample. Prints one JSON line
per seed and the mean difference (ipw - none).
"""
import argparse, json, os, subprocess, tempfile
import pandas as pd

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=600_000)
ap.add_argument("--seeds", default="1,2,3")
ap.add_argument("--algo", default="gbdt")
ap.add_argument("--exe", help="a built customs-risk binary (skips the release build)")
a = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
exe = a.exe
if exe is None:
    target = os.environ.get("CARGO_TARGET_DIR", "/work/target-release")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "customs-risk"], cwd=root,
                   env=dict(os.environ, CARGO_TARGET_DIR=target), check=True)
    exe = os.path.join(target, "release", "customs-risk")


def numbers(js, rate=0.05):
    """Hit rate at `rate` and ROC-AUC per estimator from evaluate's JSON."""
    out = {}
    n = js["n_rows"]
    for rep in js["estimators"]:
        name = rep["estimator"] if isinstance(rep["estimator"], str) else json.dumps(rep["estimator"])
        hit = None
        for b in rep["budgets"]:
            if b["k"] == -(-int(round(rate * n * 1e6)) // 1_000_000) or abs(b["k"] - rate * n) <= 1:
                hit = b["precision"]["value"] if b.get("precision") else None
        auc = rep["roc_auc"]["value"] if rep.get("roc_auc") else None
        out[name] = {"hit_rate_at_5pct": hit, "roc_auc": auc}
    return out


rows = []
for seed in [int(s) for s in a.seeds.split(",")]:
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "all.csv")
        subprocess.run([exe, "generate", "--rows", str(a.rows), "--seed", str(seed), "--months", "18",
                        "--out", data, "--quiet"], check=True)
        df = pd.read_csv(data, dtype=str, keep_default_na=False)
        date_col = "date" if "date" in df.columns else df.columns[1]
        cut = "2024-01-01"
        df[df[date_col] < cut].to_csv(os.path.join(d, "train.csv"), index=False)
        df[df[date_col] >= cut].to_csv(os.path.join(d, "test.csv"), index=False)
        res = {"seed": seed}
        for w in ["none", "ipw"]:
            m = os.path.join(d, f"m_{w}")
            subprocess.run([exe, "train", "--data", os.path.join(d, "train.csv"), "--out", m,
                            "--algo", a.algo, "--sample-weight", w, "--quiet"], check=True)
            j = os.path.join(d, f"e_{w}.json")
            subprocess.run([exe, "evaluate", "--model", m + ".onnx", "--data", os.path.join(d, "test.csv"),
                            "--report", os.path.join(d, f"e_{w}.html"), "--json", j, "--quiet"], check=True)
            res[w] = numbers(json.load(open(j)))
        rows.append(res)
        print(json.dumps(res))

for est in rows[0]["none"]:
    for metric in ["hit_rate_at_5pct", "roc_auc"]:
        diffs = [r["ipw"][est][metric] - r["none"][est][metric] for r in rows
                 if r["ipw"][est][metric] is not None and r["none"][est][metric] is not None]
        if diffs:
            print(f"{est:>14} {metric:>17}: mean(ipw - none) = {sum(diffs) / len(diffs):+.4f} over {len(diffs)} seeds {['%+.4f' % d for d in diffs]}")
