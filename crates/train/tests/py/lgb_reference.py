"""LightGBM reference for the KCS comparison test.

usage: lgb_reference.py DIR   (DIR holds xtr.bin, ytr.bin, xte.bin, yte.bin, shape.json, ours.txt)
Trains LightGBM with the parameters in shape.json on the same f32 features, prints JSON with
both models' test ROC-AUC and precision at 5 % (scikit-learn's roc_auc_score).
"""
import json
import sys

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score

d = sys.argv[1]
meta = json.load(open(f"{d}/shape.json"))
nf = meta["n_features"]
xtr = np.fromfile(f"{d}/xtr.bin", dtype=np.float32).reshape(-1, nf)
ytr = np.fromfile(f"{d}/ytr.bin", dtype=np.float32)
xte = np.fromfile(f"{d}/xte.bin", dtype=np.float32).reshape(-1, nf)
yte = np.fromfile(f"{d}/yte.bin", dtype=np.float32)
ours = np.loadtxt(f"{d}/ours.txt")
p = meta["params"]
params = dict(objective="binary", num_leaves=p["num_leaves"], learning_rate=p["learning_rate"], max_bin=p["max_bin"],
              min_data_in_leaf=p["min_data_in_leaf"], min_sum_hessian_in_leaf=p["min_sum_hessian_in_leaf"],
              lambda_l2=p["lambda_l2"], feature_fraction=1.0, bagging_fraction=1.0, num_threads=1,
              seed=0, deterministic=True, verbose=-1)
booster = lgb.train(params, lgb.Dataset(xtr, ytr), num_boost_round=p["num_trees"])
ref = booster.predict(xte)

def prec_at(s, y, rate):
    k = int(np.ceil(rate * len(s)))
    order = np.argsort(-s, kind="stable")[:k]
    return float(y[order].mean())

print(json.dumps({
    "lightgbm_auc": float(roc_auc_score(yte, ref)),
    "ours_auc": float(roc_auc_score(yte, ours)),
    "lightgbm_p5": prec_at(ref, yte, 0.05),
    "ours_p5": prec_at(ours, yte, 0.05),
}))
