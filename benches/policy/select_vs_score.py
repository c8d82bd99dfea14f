"""`customs-risk select` (50 rules, 3 watch lists of 10k entries) vs `customs-risk score` on the
same file, side by side, in one run.

usage: python3 benches/policy/select_vs_score.py [ROWS] [REPEATS]
Needs target/release/customs-risk (cargo build --release -p customs-risk; or CUSTOMS_RISK_BIN).
Generates ROWS declarations (default 1M), trains a 100-tree x 63-leaf GBDT, writes a policy of
50 rules (mandatory and advisory; numeric comparisons, derived values, lists, HS prefixes,
date windows, watch-list membership) and 3 watch lists of 10,000 entries (importers, sellers,
HS prefixes), then times score and select alternately at 1 and 2 threads (REPEATS each,
default 3) and prints the medians, rows/s and select's share of score's throughput. Both
read the same CSV and write a CSV. The 1-minute load average before each run and the CPU
seconds of every run are recorded (on a shared box CPU time is the stabler figure).
"""
import json, os, random, resource, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CUSTOMS_RISK_BIN", os.path.join(ROOT, "target/release/customs-risk"))
rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
tmp = tempfile.mkdtemp()
data = os.path.join(tmp, "decl.csv")


def run(*args):
    subprocess.run([BIN, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


run("generate", "--rows", str(rows), "--out", data, "--quiet")
train = os.path.join(tmp, "train.csv")
run("generate", "--rows", "200000", "--seed", "7", "--out", train, "--quiet")
run("train", "--data", train, "--out", os.path.join(tmp, "gbdt"), "--trees", "100", "--leaves", "63",
    "--early-stopping", "0", "--quiet")
model = os.path.join(tmp, "gbdt.onnx")

rng = random.Random(1)
os.makedirs(os.path.join(tmp, "watch"))
with open(os.path.join(tmp, "watch/importers.csv"), "w") as f:
    f.write("value,valid_from,valid_to\n")
    for i in rng.sample(range(1, 200_000), 10_000):
        f.write(f"IMP{i:06d},{'2023-03-01' if i % 3 == 0 else ''},\n")
with open(os.path.join(tmp, "watch/sellers.csv"), "w") as f:
    f.write("value\n")
    for i in rng.sample(range(1, 400_000), 10_000):
        f.write(f"SEL{i:06d}\n")
with open(os.path.join(tmp, "watch/hs.csv"), "w") as f:
    f.write("value,valid_to\n")
    seen = set()
    while len(seen) < 10_000:
        seen.add(f"{rng.randrange(0, 10**6):06d}")
    for p in sorted(seen):
        f.write(f"{p},\n")

rules = []
def rule(when, channel="yellow", mandatory=False, extra=""):
    rules.append((when, channel, mandatory, extra))

rule("importer in @importers", "red", True)
rule("seller in @sellers and score > 0.3", "red")
rule("hs_code in @hs", "yellow")
rule('hs_code starts_with ["93"]', "red", True)
countries = ["CN", "VN", "IN", "BD", "PK", "TR", "TH", "MY", "ID", "KR"]
for i in range(10):
    rule(f'origin_country == "{countries[i]}" and value_per_kg < {0.2 + i / 10} and tax_rate >= {5 + i}')
for i in range(10):
    rule(f"hs_chapter == {10 + i * 8} and unit_value > {50 * (i + 1)} and score >= 0.{i + 1}")
for i in range(8):
    rule(f'origin_country != departure_country and hs_heading in [{", ".join(str(1000 + 631 * (i * 5 + k)) for k in range(5))}]')
for i in range(8):
    rule(f'transport_mode == "{["SEA", "AIR", "ROAD", "RAIL", "POST"][i % 5]}" and (mass > {1000 * (i + 1)} or value < {10 + i}) and not preferential_claim == "Y"',
         extra=f'valid_from = "2023-0{1 + i % 9}-01"\n')
for i in range(8):
    rule(f'declarant in ["DCL{i + 1:04d}", "DCL{i + 101:04d}"] or (courier == "EXPRESS-F" and score > 0.{5 + i % 4})', "blue")
rule('date >= "2024-01-01" and quantity > 1000', "yellow")
rule('office == "POST-HUB" and value > 500', "yellow")
assert len(rules) == 50, len(rules)

with open(os.path.join(tmp, "policy.toml"), "w") as f:
    f.write('channels = ["green", "yellow", "red", "blue"]\n[capacity]\nshare = 0.05\nchannel = "red"\n')
    f.write('[random]\nfloor = 0.01\nrate = 0.02\nchannel = "red"\n')
    for name, kind, file in [("importers", "importer", "watch/importers.csv"), ("sellers", "seller", "watch/sellers.csv"),
                             ("hs", "hs_prefix", "watch/hs.csv")]:
        f.write(f'[[watch_list]]\nname = "{name}"\nkind = "{kind}"\nfile = "{file}"\n')
    for i, (when, channel, mandatory, extra) in enumerate(rules):
        f.write(f"[[rule]]\nname = \"r{i:02d}\"\nwhen = '{when}'\nchannel = \"{channel}\"\nmandatory = {str(mandatory).lower()}\n{extra}")

loads, cpu, wall = [], {}, {}
def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
def timed(key, args):
    loads.append(os.getloadavg()[0])
    c = child_cpu()
    t = time.perf_counter()
    run(*args)
    wall.setdefault(key, []).append(time.perf_counter() - t)
    cpu.setdefault(key, []).append(child_cpu() - c)

for _ in range(reps):
    for threads in (1, 2):
        timed(f"score_{threads}t", ["score", "--model", model, "--data", data, "--out", os.path.join(tmp, "s.csv"),
                                    "--threads", str(threads), "--quiet"])
        timed(f"select_{threads}t", ["select", "--model", model, "--policy", os.path.join(tmp, "policy.toml"),
                                     "--data", data, "--out", os.path.join(tmp, "d.csv"), "--seed", "1",
                                     "--threads", str(threads), "--quiet"])

res = {"rows": rows, "repeats": reps, "rules": len(rules), "watch_list_entries": [10_000] * 3}
for k, v in wall.items():
    res[f"{k}_median_s"] = statistics.median(v)
    res[f"{k}_rows_per_s"] = rows / statistics.median(v)
    res[f"{k}_cpu_median_s"] = statistics.median(cpu[k])
for t in (1, 2):
    res[f"select_share_of_score_throughput_{t}t"] = statistics.median(wall[f"score_{t}t"]) / statistics.median(wall[f"select_{t}t"])
res["load_avg_1min_before_runs"] = loads
with open(os.path.join(tmp, "d.csv")) as f:
    next(f)
    strata = {}
    for line in f:
        s = line.split(",")[3]
        strata[s] = strata.get(s, 0) + 1
res["strata"] = strata
print(json.dumps(res, indent=2))
shutil.rmtree(tmp, ignore_errors=True)
