"""Reference SHAP values from the original libraries, for crates/infer/tests/infer/shap.rs.

usage: shap_refs.py OUT_DIR [SEED]
For each model NAME writes NAME.onnx (converted by onnxmltools / skl2onnx), NAME.train.bin
(f32 row-major training matrix: the --reference sample), NAME.x.bin (f32 test matrix:
>= 10k rows with NaN cells, all-NaN rows and cells set exactly to split thresholds),
NAME.phi.bin (f64 row-major [n, F + 1]: contributions then the bias, from LightGBM
pred_contrib / XGBoost pred_contribs / shap.TreeExplainer), NAME.margin.bin (f64 raw margin
from the library), and manifest.txt lines "NAME n_train n_test n_features".

Training data sit on a grid of multiples of 1/8, so split thresholds lie between grid values
with room to spare and their f32 rounding in the ONNX file routes rows as the library does. No bagging / subsampling: the libraries' node counts are the training rows that
reach each node, which routing the training data recomputes.
"""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import numpy as np
import onnx
from onnx import helper

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
rng = np.random.default_rng(seed)
F, N, NT = 8, 4000, 10000


def grid(n, nan):
    X = np.round(rng.normal(size=(n, F)) * 8) / 8
    X[:, 5] = np.round(X[:, 5])  # heavy ties
    X = X.astype(np.float32)
    if nan:
        X[rng.random(X.shape) < 0.05] = np.nan
    return X


def logit_of(X):
    Z = np.nan_to_num(X, nan=0.3)
    return Z[:, 0] + Z[:, 1] * Z[:, 2] - 0.5 * Z[:, 5] + 0.4 * np.sin(3 * Z[:, 4]) + 0.2 * Z[:, 7]


def thresholds(model):
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            return [
                (f, v)
                for f, v, m in zip(a["nodes_featureids"], a["nodes_values"], a["nodes_modes"])
                if m != b"LEAF"
            ]
    raise SystemExit("no tree ensemble in the converted model")


def test_matrix(model, nan):
    Xt = grid(NT, nan)
    Xt[:, 3] = rng.normal(size=NT).astype(np.float32)  # off-grid values too
    if nan:
        Xt[7, :] = np.nan  # an all-missing row
    # LightGBM's +-1e-35 "zero" thresholds are left out: LightGBM reads any |x| <= 1e-35 as
    # 0 before routing, which an ONNX tree cannot express (the converted model itself scores
    # such cells differently from LightGBM; nothing to do with SHAP).
    th = [(f, v) for f, v in thresholds(model) if abs(v) > 1e-30 or v == 0]
    for r in range(100, 3100):  # cells exactly at split thresholds (<= vs < ties)
        f, v = th[rng.integers(len(th))]
        Xt[r, f] = np.float32(v)
        if r % 3 == 0:
            f, v = th[rng.integers(len(th))]
            Xt[r, f] = np.nextafter(np.float32(v), np.float32(np.inf))
    return Xt


manifest = []


def emit(name, model, X, Xt, phi, margin):
    onnx.save(model, os.path.join(out, name + ".onnx"))
    X.astype("<f4").tofile(os.path.join(out, name + ".train.bin"))
    Xt.astype("<f4").tofile(os.path.join(out, name + ".x.bin"))
    np.asarray(phi, dtype="<f8").tofile(os.path.join(out, name + ".phi.bin"))
    np.asarray(margin, dtype="<f8").tofile(os.path.join(out, name + ".margin.bin"))
    manifest.append(f"{name} {X.shape[0]} {Xt.shape[0]} {X.shape[1]}")


from onnxmltools.convert.common.data_types import FloatTensorType

# LightGBM binary classifier (covers: row counts, LightGBM's data_count).
import lightgbm as lgb
from onnxmltools import convert_lightgbm

X = grid(N, nan=True)
y = (logit_of(X) + rng.normal(size=N) > 0).astype(int)
m = lgb.LGBMClassifier(
    n_estimators=60, num_leaves=31, learning_rate=0.1, subsample=1.0, colsample_bytree=0.8,
    min_child_samples=5, verbose=-1, random_state=seed,
)
m.fit(X, y)
onx = convert_lightgbm(m, initial_types=[("input", FloatTensorType([None, F]))],
                       zipmap=False, target_opset=15)
Xt = test_matrix(onx, nan=True)
emit("lgbm_binary", onx, X, Xt, m.predict(Xt, pred_contrib=True), m.predict(Xt, raw_score=True))

# LightGBM regressor.
yr = (logit_of(X) + 0.1 * rng.normal(size=N)).astype(np.float32)
m = lgb.LGBMRegressor(n_estimators=40, num_leaves=63, min_child_samples=3, verbose=-1,
                      random_state=seed)
m.fit(X, yr)
onx = convert_lightgbm(m, initial_types=[("input", FloatTensorType([None, F]))], target_opset=15)
Xt = test_matrix(onx, nan=True)
emit("lgbm_reg", onx, X, Xt, m.predict(Xt, pred_contrib=True), m.predict(Xt))

# XGBoost regressor, squared error: every hessian is 1, so XGBoost's cover is the row count
# (for logistic loss it is Σ p(1-p), which no routing of rows can recompute).
import xgboost as xgb
from onnxmltools import convert_xgboost

# XGBoost computes SHAP values in float32 (bst_float paths and output): its own resolution is
# ~3 ulp of |phi|, so the target is scaled to keep |phi| below ~1 and that rounding < 1e-6.
m = xgb.XGBRegressor(n_estimators=40, max_depth=6, learning_rate=0.2, subsample=1.0,
                     tree_method="hist", random_state=seed)
m.fit(X, yr / 4)
onx = convert_xgboost(m, initial_types=[("input", FloatTensorType([None, F]))], target_opset=15)
Xt = test_matrix(onx, nan=True)
d = xgb.DMatrix(Xt, missing=np.nan)
booster = m.get_booster()
emit("xgb_reg", onx, X, Xt, booster.predict(d, pred_contribs=True).astype(np.float64),
     booster.predict(d, output_margin=True).astype(np.float64))

# scikit-learn GradientBoostingClassifier (no missing values), shap.TreeExplainer.
import shap
from sklearn.ensemble import GradientBoostingClassifier
from skl2onnx import to_onnx

Xs = grid(N, nan=False)
ys = (logit_of(Xs) + rng.normal(size=N) > 0).astype(int)
m = GradientBoostingClassifier(n_estimators=40, max_depth=4, random_state=seed)
m.fit(Xs, ys)
onx = to_onnx(m, Xs[:1], options={id(m): {"zipmap": False}}, target_opset={"": 15, "ai.onnx.ml": 3})
onx.graph.input[0].name  # keep the converter's input name
Xt = test_matrix(onx, nan=False)
ex = shap.TreeExplainer(m)
sv = ex.shap_values(Xt.astype(np.float64), check_additivity=True)
ev = np.atleast_1d(ex.expected_value)[0]
phi = np.concatenate([sv, np.full((Xt.shape[0], 1), ev)], axis=1)
emit("sklearn_gb", onx, Xs, Xt, phi, m.decision_function(Xt))

with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
