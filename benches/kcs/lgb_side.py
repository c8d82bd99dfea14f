"""LightGBM side of the KCS gap study: smoothed seizure-rate features per importer, declarant,
HS code and origin (+ the raw numerics), train 2020 -> test 2021-Q2. Prints JSON lines."""
import json, sys, os
import numpy as np, pandas as pd, lightgbm as lgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

D = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/customs-import-declarations"
tr = pd.read_csv(os.path.join(D, "df_syn_train_eng.csv"), dtype=str)
te = pd.read_csv(os.path.join(D, "df_syn_test_eng.csv"), dtype=str)
for d in (tr, te):
    d["y"] = d["Fraud"].astype(int)
    for c in ["Tax Rate", "Net Mass", "Item Price"]:
        d[c] = d[c].astype(float)
    d["unit"] = d["Item Price"] / d["Net Mass"].replace(0, np.nan)
    d["HS4"] = d["HS6 Code"].str.zfill(6).str[:4]
    d["HS2"] = d["HS6 Code"].str.zfill(6).str[:2]

KEYS = ["Importer ID", "Declarant ID", "HS6 Code", "Country of Origin"]
NUM = ["Tax Rate", "Net Mass", "Item Price", "unit"]

def prec_at(y, s, rate):
    k = int(np.ceil(rate * len(y)))
    o = np.argsort(-s, kind="stable")[:k]
    return y[o].mean()

def rates(fit, apply, key, m, prior):
    g = fit.groupby(key)["y"].agg(["sum", "count"])
    r = (g["sum"] + m * prior) / (g["count"] + m)
    return apply[key].map(r).fillna(prior).values

def features(tr, te, m, oof, keys):
    prior = tr["y"].mean()
    Xtr = pd.DataFrame({c: tr[c].values for c in NUM})
    Xte = pd.DataFrame({c: te[c].values for c in NUM})
    for k in keys:
        Xte[k] = rates(tr, te, k, m, prior)
        if oof:
            col = np.empty(len(tr))
            for a, b in KFold(5, shuffle=True, random_state=0).split(tr):
                col[b] = rates(tr.iloc[a], tr.iloc[b], k, m, tr.iloc[a]["y"].mean())
            Xtr[k] = col
        else:
            Xtr[k] = rates(tr, tr, k, m, prior)
    return Xtr, Xte

def run(name, m, oof, keys=KEYS, leaves=63):
    Xtr, Xte = features(tr, te, m, oof, keys)
    p = dict(objective="binary", num_leaves=leaves, learning_rate=0.05, min_data_in_leaf=20,
             verbose=-1, seed=0, num_threads=1, deterministic=True)
    b = lgb.train(p, lgb.Dataset(Xtr, tr["y"]), num_boost_round=200)
    s = b.predict(Xte)
    y = te["y"].values
    print(json.dumps(dict(side="lightgbm", variant=name, auc=round(roc_auc_score(y, s), 4),
                          p5=round(prec_at(y, s, 0.05), 4))), flush=True)

for m in [1, 10, 20, 100]:
    run(f"in-sample rates m={m}", m, False)
for m in [1, 10, 20]:
    run(f"out-of-fold rates m={m}", m, True)
run("in-sample rates m=10, + HS4/office/declarant pairs", 10, False,
    KEYS + ["HS4", "Office ID", "Seller ID"])

CATS = ["Office ID", "Process Type", "Import Type", "Import Use", "Payment Type",
        "Mode of Transport", "Declarant ID", "Importer ID", "Seller ID", "Courier ID",
        "HS6 Code", "Country of Departure", "Country of Origin", "Tax Type",
        "Country of Origin Indicator"]

def run_cat(name, m, oof, as_category):
    Xtr, Xte = features(tr, te, m, oof, KEYS)
    for c in CATS:
        cats = pd.Categorical(tr[c].fillna("")).categories
        Xtr["c_" + c] = pd.Categorical(tr[c].fillna(""), categories=cats).codes
        Xte["c_" + c] = pd.Categorical(te[c].fillna(""), categories=cats).codes
        if as_category:
            Xtr["c_" + c] = Xtr["c_" + c].astype("category")
            Xte["c_" + c] = pd.Categorical(Xte["c_" + c], categories=Xtr["c_" + c].cat.categories)
    p = dict(objective="binary", num_leaves=63, learning_rate=0.05, min_data_in_leaf=20,
             verbose=-1, seed=0, num_threads=1, deterministic=True)
    b = lgb.train(p, lgb.Dataset(Xtr, tr["y"]), num_boost_round=200)
    s = b.predict(Xte)
    y = te["y"].values
    print(json.dumps(dict(side="lightgbm", variant=name, auc=round(roc_auc_score(y, s), 4),
                          p5=round(prec_at(y, s, 0.05), 4))), flush=True)

run_cat("oof rates m=10 + label-encoded codes (numeric)", 10, True, False)
run_cat("oof rates m=10 + codes as LightGBM categoricals", 10, True, True)
run_cat("in-sample rates m=10 + label-encoded codes", 10, False, False)
