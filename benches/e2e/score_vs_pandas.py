"""End-to-end scoring benchmark: `customs-risk score` on a CSV vs the naive Python path
(pandas read + LightGBM predict + write), on the same file, in one run.

usage: python3 benches/e2e/score_vs_pandas.py [ROWS] [REPEATS]
Needs target/release/customs-risk (cargo build --release). Prints medians and the ratio.
LightGBM runs with 1 thread and OMP_WAIT_POLICY=PASSIVE; customs-risk with --threads 1 and 2.
Both sides read the same CSV and write a CSV (ours: id, score, percentile; naive: id, score).
The 1-minute load average is recorded before every timed run, and CPU seconds (user + sys)
of every run are reported beside wall times: on a shared box the CPU time is the stabler
figure.
"""
import json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import lightgbm as lgb
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CUSTOMS_RISK_BIN", os.path.join(ROOT, "target/release/customs-risk"))
rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
tmp = tempfile.mkdtemp()
data = os.path.join(tmp, "decl.csv")
def run(*args):
    subprocess.run([BIN, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t = time.perf_counter(); run("generate", "--rows", str(rows), "--out", data, "--quiet"); gen = time.perf_counter() - t
run("train", "--data", data, "--out", os.path.join(tmp, "gbdt"), "--trees", "100", "--leaves", "63", "--early-stopping", "0", "--quiet")
model = os.path.join(tmp, "gbdt.onnx")

loads = []
cpu = {"ours_1t": [], "ours_2t": [], "naive": []}
def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
def ours(threads):
    loads.append(os.getloadavg()[0])
    c = child_cpu()
    t = time.perf_counter()
    run("score", "--model", model, "--data", data, "--out", os.path.join(tmp, f"s{threads}.csv"), "--threads", str(threads), "--quiet")
    wall = time.perf_counter() - t
    cpu[f"ours_{threads}t"].append(child_cpu() - c)
    return wall

# naive Python path: LightGBM with 100 trees / 63 leaves on the numeric columns
df = pd.read_csv(data, nrows=200_000)
num = ["value", "mass", "quantity", "tax_rate", "hs_code"]
lab = df[df.fraud.notna()]
booster = lgb.train(dict(objective="binary", num_leaves=63, num_threads=1, verbose=-1), lgb.Dataset(lab[num].astype("float32"), lab.fraud), 100)
def naive():
    loads.append(os.getloadavg()[0])
    c = time.process_time()
    t = time.perf_counter()
    d = pd.read_csv(data)
    p = booster.predict(d[num].astype("float32"), num_threads=1)
    pd.DataFrame({"id": d.declaration_id, "score": p}).to_csv(os.path.join(tmp, "naive.csv"), index=False)
    wall = time.perf_counter() - t
    cpu["naive"].append(time.process_time() - c)
    return wall

res = {"rows": rows, "generate_s": gen, "threads": {"ours": [1, 2], "naive": 1}}
res["ours_1t_s"] = statistics.median(ours(1) for _ in range(reps))
res["ours_2t_s"] = statistics.median(ours(2) for _ in range(reps))
res["naive_s"] = statistics.median(naive() for _ in range(reps))
res["ours_1t_rows_per_s"] = rows / res["ours_1t_s"]
res["ours_2t_rows_per_s"] = rows / res["ours_2t_s"]
res["naive_rows_per_s"] = rows / res["naive_s"]
res["speedup_2t_vs_naive"] = res["naive_s"] / res["ours_2t_s"]
res["speedup_1t_vs_naive"] = res["naive_s"] / res["ours_1t_s"]
res["cpu_s_median"] = {k: statistics.median(v) for k, v in cpu.items()}
res["load_avg_1min_before_runs"] = loads
print(json.dumps(res, indent=2))
shutil.rmtree(tmp, ignore_errors=True)
