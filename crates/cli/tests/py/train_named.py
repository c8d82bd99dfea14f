"""Train foreign models with one named [N, 1] input per column and export them to ONNX.

usage: train_named.py TRAIN.csv OUT_DIR STRING_COLUMNS FLOAT_COLUMNS

Writes OUT_DIR/pipeline.onnx: a scikit-learn Pipeline, ColumnTransformer(OneHotEncoder on the
STRING_COLUMNS, StandardScaler on the FLOAT_COLUMNS) -> LogisticRegression, converted by
skl2onnx with one input per column (string [N, 1] and float [N, 1], named like the column);
and OUT_DIR/lightgbm_named.onnx: the FLOAT_COLUMNS passed through a ColumnTransformer to a
LightGBM classifier (onnxmltools' converter registered in skl2onnx), one float [N, 1] input
per column. Learns from the inspected rows (label present); empty cells: strings stay "",
floats are filled with the column median before training (the models take no NaN).
"""
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

train_path, out_dir = sys.argv[1], sys.argv[2]
strings = [c for c in sys.argv[3].split(",") if c]
floats = [c for c in sys.argv[4].split(",") if c]
df = pd.read_csv(train_path, dtype=str, keep_default_na=False)
lab = df[df["fraud"] != ""].copy()
y = lab["fraud"].astype(float).astype(int).to_numpy()
for c in floats:
    v = pd.to_numeric(lab[c].replace("", np.nan)).astype(np.float32)
    lab[c] = v.fillna(v.median())
X = lab[strings + floats]

pipe = Pipeline([
    ("prep", ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), strings),
        ("num", StandardScaler(), floats),
    ])),
    ("lr", LogisticRegression(max_iter=1000)),
]).fit(X, y)
types = [(c, StringTensorType([None, 1])) for c in strings] + [(c, FloatTensorType([None, 1])) for c in floats]
onx = convert_sklearn(pipe, initial_types=types, options={id(pipe.steps[-1][1]): {"zipmap": False}}, target_opset=15)
with open(f"{out_dir}/pipeline.onnx", "wb") as f:
    f.write(onx.SerializeToString())

update_registered_converter(
    lgb.LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
    convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
gbm = Pipeline([
    ("prep", ColumnTransformer([("num", "passthrough", floats)])),
    ("gbm", lgb.LGBMClassifier(n_estimators=25, num_leaves=15, min_child_samples=10, verbose=-1, random_state=1)),
]).fit(lab[floats], y)
onx = convert_sklearn(gbm, initial_types=[(c, FloatTensorType([None, 1])) for c in floats],
                      options={id(gbm.steps[-1][1]): {"zipmap": False}}, target_opset={"": 15, "ai.onnx.ml": 3})
with open(f"{out_dir}/lightgbm_named.onnx", "wb") as f:
    f.write(onx.SerializeToString())
print("ok")
