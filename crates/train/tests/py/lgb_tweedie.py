"""LightGBM reference for `train --objective revenue` (crates/train/tests/train.rs).

usage: lgb_tweedie.py DIR   (DIR holds xtr.bin, ytr.bin, xva.bin, yva.bin, shape.json and
ours_R.bin, ours_train_R.bin for every R in shape.json's "rounds")
For each R, trains LightGBM `objective=tweedie` for R rounds with the parameters in shape.json
on the same f32 design matrix as ours (1 thread), predicts the validation rows, and prints JSON
with scikit-learn's mean_tweedie_deviance of LightGBM's and of our validation predictions
(ours_R.bin, f64), the same on the training rows (ours_train_R.bin), and LightGBM's fit time in
seconds.
"""
import json
import sys
import time

import lightgbm as lgb
import numpy as np
from sklearn.metrics import mean_tweedie_deviance

d = sys.argv[1]
meta = json.load(open(f"{d}/shape.json"))
nf = meta["n_features"]
xtr = np.fromfile(f"{d}/xtr.bin", dtype=np.float32).reshape(-1, nf)
ytr = np.fromfile(f"{d}/ytr.bin", dtype=np.float32)
xva = np.fromfile(f"{d}/xva.bin", dtype=np.float32).reshape(-1, nf)
yva = np.fromfile(f"{d}/yva.bin", dtype=np.float32).astype(np.float64)
p = meta["params"]
params = dict(objective="tweedie", tweedie_variance_power=meta["variance_power"], num_leaves=p["num_leaves"],
              learning_rate=p["learning_rate"], max_bin=p["max_bin"], min_data_in_leaf=p["min_data_in_leaf"],
              min_sum_hessian_in_leaf=p["min_sum_hessian_in_leaf"], lambda_l2=p["lambda_l2"],
              feature_fraction=1.0, bagging_fraction=1.0, num_threads=1, seed=0, deterministic=True,
              verbose=-1)
power = meta["variance_power"]
out = {"constant_deviance": float(mean_tweedie_deviance(yva, np.full_like(yva, ytr.mean()), power=power))}
for r in meta["rounds"]:
    ours = np.fromfile(f"{d}/ours_{r}.bin", dtype=np.float64)
    t = time.perf_counter()
    booster = lgb.train(params, lgb.Dataset(xtr, ytr), num_boost_round=r)
    fit_s = time.perf_counter() - t
    ref = booster.predict(xva)
    ours_tr = np.fromfile(f"{d}/ours_train_{r}.bin", dtype=np.float64)
    out[str(r)] = {
        "lightgbm_train_deviance": float(mean_tweedie_deviance(ytr, booster.predict(xtr), power=power)),
        "ours_train_deviance": float(mean_tweedie_deviance(ytr, ours_tr, power=power)),
        "lightgbm_deviance": float(mean_tweedie_deviance(yva, ref, power=power)),
        "ours_deviance": float(mean_tweedie_deviance(yva, ours, power=power)),
        "lightgbm_fit_s": fit_s,
    }
print(json.dumps(out))
