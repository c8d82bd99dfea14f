"""Score a customs-risk ONNX model with ONNX Runtime on the raw columns of a file.

usage: ort_check.py MODEL.onnx DATA.csv SCHEMA.json OUT_DIR

Writes OUT_DIR/ort_scores.txt (one float per row: column 1 of `probabilities`, or for a revenue
model, metadata customs_risk.prediction = expected_revenue, the `expected_revenue` output) and
OUT_DIR/ort_features.bin (the graph's feature tensor, float32 row-major), so the Rust test can
compare both with its own pipeline and model. Independent of our Rust code: pandas parses the
file, ONNX Runtime runs the graph.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

model_path, data_path, schema_path, out_dir = sys.argv[1:5]
schema = json.load(open(schema_path))
m = onnx.load(model_path)
meta = {p.key: p.value for p in m.metadata_props}
feat_name = meta["customs_risk.features"]
# expose the feature tensor as an extra output
m.graph.output.append(onnx.helper.make_tensor_value_info(feat_name, onnx.TensorProto.FLOAT, None))
so = ort.SessionOptions()
so.intra_op_num_threads = 1
sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])

cat_cols = [c["name"] for c in schema["categorical"]]
num_cols = [c["name"] for c in schema["numeric"]]
df = pd.read_csv(data_path, dtype={c: str for c in cat_cols + [schema["date"]]}, keep_default_na=False, na_values={c: [""] for c in num_cols})
feeds = {}
for i in sess.get_inputs():
    name = i.name
    col = df[name]
    if i.type == "tensor(string)":
        feeds[name] = col.astype(str).str.strip().to_numpy(dtype=object).reshape(-1, 1)
    elif i.type == "tensor(int64)":
        feeds[name] = col.astype(np.int64).to_numpy().reshape(-1, 1)
    else:
        feeds[name] = pd.to_numeric(col, errors="raise").astype(np.float64).astype(np.float32).to_numpy().reshape(-1, 1)
revenue = meta.get("customs_risk.prediction") == "expected_revenue"
out, feats = sess.run(["expected_revenue" if revenue else "probabilities", feat_name], feeds)
scores = out[:, 0] if revenue else out[:, 1]
np.savetxt(f"{out_dir}/ort_scores.txt", scores.astype(np.float64), fmt="%.9g")
np.ascontiguousarray(feats, dtype=np.float32).tofile(f"{out_dir}/ort_features.bin")
print(len(out))
