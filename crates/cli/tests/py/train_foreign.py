"""Train foreign models on the numeric columns of a generated file and export them to ONNX.

usage: train_foreign.py TRAIN.csv OUT_DIR FEATURES

Writes OUT_DIR/lightgbm.onnx (LightGBM, onnxmltools) and OUT_DIR/sklearn.onnx (scikit-learn
StandardScaler + LogisticRegression, skl2onnx), each with one float input [N, F], F = number
of FEATURES (comma-separated column names). Learns from the inspected rows (label present).
"""
import sys

import lightgbm as lgb
import numpy as np
import onnxmltools
import pandas as pd
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

train_path, out_dir, features = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
df = pd.read_csv(train_path)
lab = df[df["fraud"].notna()]
X = lab[features].to_numpy(dtype=np.float32)
y = lab["fraud"].astype(int).to_numpy()

gbm = lgb.LGBMClassifier(n_estimators=25, num_leaves=15, min_child_samples=10, verbose=-1, random_state=1)
gbm.fit(X, y)
onx = onnxmltools.convert_lightgbm(gbm, initial_types=[("input", FloatTensorType([None, len(features)]))], zipmap=False, target_opset=15)
with open(f"{out_dir}/lightgbm.onnx", "wb") as f:
    f.write(onx.SerializeToString())

sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
onx = to_onnx(sk, X[:1], options={id(sk.steps[-1][1]): {"zipmap": False}}, target_opset=15)
with open(f"{out_dir}/sklearn.onnx", "wb") as f:
    f.write(onx.SerializeToString())
print("ok")
