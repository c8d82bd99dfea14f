"""Score a file with ONNX Runtime after the README's pseudonymisation snippet, independently
of customs-risk.

usage: ort_pseudonymised.py README.md MODEL.onnx DATA.csv OUT.csv COLUMNS [UPPER_COLUMNS]

Runs the ```python block of the README section "Pseudonymised columns" as written (it reads
`pseudonym.key` from the working directory and transforms df["importer"]), then applies its
`pseudonym` function to every column in COLUMNS (comma-separated; upper-cased first for those
in UPPER_COLUMNS), feeds every graph input from the file column of the same name (typed as
`get_inputs()` declares it) and writes OUT.csv with `id,score` (the declaration_id column and
the positive-class probability as the exact f32 value, Python round-trip repr). Prints the
number of rows.
"""
import re
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd

readme, model_path, data_path, out_path, cols = sys.argv[1:6]
upper = set(sys.argv[6].split(",")) if len(sys.argv) > 6 and sys.argv[6] else set()
text = open(readme).read()
section = text.split("## Pseudonymised columns", 1)[1].split("\n## ", 1)[0]
(snippet,) = re.findall(r"```python\n(.*?)```", section, re.S)

df = pd.read_csv(data_path, dtype=str, keep_default_na=False)
ns = {"df": df}
exec(snippet, ns)
pseudonym, key = ns["pseudonym"], ns["key"]
# the snippet's own example output is the transformed importer column
assert [r[0] for r in ns["importer"]] == [pseudonym(key, v) for v in df["importer"]]
for c in cols.split(","):
    df[c] = [pseudonym(key, v, upper=c in upper) for v in df[c]]

so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.log_severity_level = 3
sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
feeds = {}
for i in sess.get_inputs():
    col = df[i.name]
    if i.type == "tensor(string)":
        feeds[i.name] = col.to_numpy(dtype=object).reshape(-1, 1)
    elif i.type == "tensor(int64)":
        feeds[i.name] = col.astype(np.int64).to_numpy().reshape(-1, 1)
    elif i.type == "tensor(float)":
        feeds[i.name] = pd.to_numeric(col.replace("", np.nan)).astype(np.float32).to_numpy().reshape(-1, 1)
    else:
        raise SystemExit(f"input {i.name}: unexpected type {i.type}")
probs = sess.run(["probabilities"], feeds)[0]
with open(out_path, "w") as f:
    f.write("id,score\n")
    for i, s in zip(df["declaration_id"], probs[:, 1].astype(np.float32)):
        f.write(f"{i},{float(s)!r}\n")
print(len(probs))
