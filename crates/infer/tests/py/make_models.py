"""Train small reference models, export them to ONNX with the usual converters and score a
test matrix with onnxruntime (Python, one thread). Called by crates/infer/tests/*.rs.

usage: make_models.py OUT_DIR [SEED]
Writes, for each model NAME: NAME.onnx, NAME.x.bin (f32 row-major test matrix),
NAME.ort.bin (f32 positive-class probability or regression value), and manifest.txt lines
"NAME n_rows n_features".
"""
import sys, os, warnings
warnings.filterwarnings("ignore")
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper, helper

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
rng = np.random.default_rng(seed)
N, F, NT = 2000, 10, 600
X = rng.normal(size=(N, F)).astype(np.float32)
X[:, 3] = np.round(X[:, 3] * 2)  # a few ties
logit = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + 0.3 * np.sin(3 * X[:, 4])
y = (logit + rng.normal(size=N) > 0).astype(np.int64)
yr = (logit + 0.1 * rng.normal(size=N)).astype(np.float32)
Xnan = X.copy()
Xnan[rng.random(X.shape) < 0.05] = np.nan

def test_matrix(nan):
    Xt = rng.normal(size=(NT, F)).astype(np.float32)
    Xt[:, 3] = np.round(Xt[:, 3] * 2)
    if nan:
        Xt[rng.random(Xt.shape) < 0.08] = np.nan
        Xt[5, :] = np.nan  # an all-missing row
    return Xt

def with_thresholds(model, Xt):
    """Put exact split thresholds into some cells, to exercise <= vs < exactly."""
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            vals, feats, modes = a["nodes_values"], a["nodes_featureids"], a["nodes_modes"]
            idx = [i for i, m in enumerate(modes) if m != b"LEAF"]
            for r in range(10, 150):
                i = idx[rng.integers(len(idx))]
                Xt[r, feats[i]] = np.float32(vals[i])
    return Xt

manifest = []

def emit(name, model, Xt):
    path = os.path.join(out, name + ".onnx")
    onnx.save(model, path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    res = s.run(None, {s.get_inputs()[0].name: Xt})
    score = None
    for o, r in zip(s.get_outputs(), res):
        if isinstance(r, list):  # ZipMap: list of dicts
            keys = sorted(r[0].keys())
            score = np.array([d[keys[-1]] for d in r], dtype=np.float32)
        elif r.dtype == np.float32 and score is None:
            score = r[:, -1] if r.ndim == 2 else r
    assert score is not None, name
    Xt.astype("<f4").tofile(os.path.join(out, name + ".x.bin"))
    np.asarray(score, dtype="<f4").tofile(os.path.join(out, name + ".ort.bin"))
    manifest.append(f"{name} {Xt.shape[0]} {Xt.shape[1]}")

import lightgbm as lgb, xgboost as xgb
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as MFT
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType as SFT
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression, LinearRegression
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

m = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, random_state=seed).fit(Xnan, y)
o = convert_lightgbm(m, initial_types=[("input", MFT([None, F]))], zipmap=True, target_opset=15)
emit("lightgbm", o, with_thresholds(o, test_matrix(True)))

m = lgb.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1, random_state=seed).fit(Xnan, yr)
o = convert_lightgbm(m, initial_types=[("input", MFT([None, F]))], target_opset=15)
emit("lightgbm_reg", o, with_thresholds(o, test_matrix(True)))

m = xgb.XGBClassifier(n_estimators=30, max_depth=4, random_state=seed).fit(Xnan, y)
o = convert_xgboost(m, initial_types=[("input", MFT([None, F]))], target_opset=15)
emit("xgboost", o, with_thresholds(o, test_matrix(True)))

p = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
o = convert_sklearn(p, initial_types=[("input", SFT([None, F]))], target_opset={"": 17, "ai.onnx.ml": 3})
emit("sk_logreg", o, test_matrix(False))

p = LinearRegression().fit(X, yr)
o = convert_sklearn(p, initial_types=[("input", SFT([None, F]))], target_opset={"": 17, "ai.onnx.ml": 3})
emit("sk_linreg", o, test_matrix(False))

g = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=seed).fit(X, y)
o = convert_sklearn(g, initial_types=[("input", SFT([None, F]))], target_opset={"": 17, "ai.onnx.ml": 3})
emit("sk_gbdt", o, with_thresholds(o, test_matrix(False)))

r = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=seed).fit(Xnan, y)
o = convert_sklearn(r, initial_types=[("input", SFT([None, F]))], target_opset={"": 17, "ai.onnx.ml": 3})
emit("sk_forest", o, with_thresholds(o, test_matrix(True)))

with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
