"""Score a file with ONNX Runtime, independently of customs-risk.

usage: ort_score.py MODEL.onnx DATA.csv OUT.csv ID_COLUMN [FEATURES]

- A customs-risk model (raw declaration fields as inputs): every graph input is fed from the
  file column of the same name, typed as `get_inputs()` declares it (string, int64, float).
- A foreign model with one float input [N, F]: fed from the comma-separated FEATURES columns.

Writes OUT.csv with `id,score`: the file's ID_COLUMN and the probability of the positive class
(column 1 of the probability output) as the exact f32 value, printed with Python's round-trip
repr. pandas parses the file; no customs-risk code is involved.
"""
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd

model_path, data_path, out_path, id_col = sys.argv[1:5]
features = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] else None

so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.log_severity_level = 3
sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
df = pd.read_csv(data_path, dtype=str, keep_default_na=False)


def floats(col):
    return pd.to_numeric(col.replace("", np.nan), errors="raise").astype(np.float64).astype(np.float32).to_numpy()


inputs = sess.get_inputs()
feeds = {}
if features is not None:
    assert len(inputs) == 1 and inputs[0].type == "tensor(float)", [(i.name, i.type) for i in inputs]
    feeds[inputs[0].name] = np.stack([floats(df[f]) for f in features], axis=1)
else:
    for i in inputs:
        col = df[i.name]
        if i.type == "tensor(string)":
            feeds[i.name] = col.to_numpy(dtype=object).reshape(-1, 1)
        elif i.type == "tensor(int64)":
            feeds[i.name] = col.astype(np.int64).to_numpy().reshape(-1, 1)
        elif i.type == "tensor(float)":
            feeds[i.name] = floats(col).reshape(-1, 1)
        else:
            raise SystemExit(f"input {i.name}: unexpected type {i.type}")

outs = sess.get_outputs()
names = [o.name for o in outs]
prob_name = "probabilities" if "probabilities" in names else next(o.name for o in outs if o.type == "tensor(float)")
probs = sess.run([prob_name], feeds)[0]
pos = probs[:, 1] if probs.ndim == 2 and probs.shape[1] == 2 else probs.reshape(-1)
with open(out_path, "w") as f:
    f.write("id,score\n")
    for i, s in zip(df[id_col], pos.astype(np.float32)):
        f.write(f"{i},{float(s)!r}\n")
print(len(pos))
