#!/usr/bin/env python3
"""Build a small customs-risk raw-field ONNX model for the cr-service tests and benchmark.

Usage: make_model.py OUT_DIR N_DECLARATIONS NAME:SEED:N_TREES[:nocard] ...

Writes into OUT_DIR, for each NAME (`nocard`: no customs_risk.card, hence no reference
score distribution):
  NAME.onnx            raw declaration fields in (hs_code int64, value/mass/tax_rate float),
                       probabilities [N, 2] out; metadata customs_risk.pipeline (cr-features
                       FittedPipeline JSON, schema included), customs_risk.features,
                       customs_risk.card (with score_quantiles);
  NAME.decls.json      N_DECLARATIONS declarations (JSON objects keyed by raw column names);
  NAME.expected.json   {declaration id: positive-class probability} computed by ONNX Runtime
                       on the whole graph: the independent reference for the service's scores.

The feature pipeline is [num[value], num[mass], num[tax_rate], hs2]; the graph reproduces it
with Concat and an int64 Div + Cast, then a scikit-learn GradientBoostingClassifier converted
by skl2onnx.
"""
import datetime
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import GradientBoostingClassifier


def days(y, m, d):
    return (datetime.date(y, m, d) - datetime.date(1970, 1, 1)).days


SCHEMA = {
    "name": "service-test",
    "id": "decl_id",
    "date": "date",
    "date_format": "%Y-%m-%d",
    "date_min": days(1990, 1, 1),
    "date_max": days(2100, 12, 31),
    "hs_code": "hs_code",
    "hs_width": 6,
    "categorical": [{"name": "office", "kind": "office", "allow_missing": True}],
    "numeric": [
        {"name": "value", "kind": "value", "min": 0.0, "max": None, "allow_missing": False},
        {"name": "mass", "kind": "mass", "min": 0.0, "max": None, "allow_missing": False},
        {"name": "tax_rate", "kind": "tax_rate", "min": 0.0, "max": 100.0, "allow_missing": False},
    ],
    "label": None,
    "revenue": None,
    "inspected": None,
    "selection": None,
    "propensity": None,
    "ignore": [],
}

FEATURES = [
    {"type": "numeric", "name": "num[value]", "index": 0},
    {"type": "numeric", "name": "num[mass]", "index": 1},
    {"type": "numeric", "name": "num[tax_rate]", "index": 2},
    {"type": "hs_prefix", "name": "hs2", "digits": 2},
]


def sample(rng, n):
    hs = rng.integers(10000, 979999, size=n)  # 6-digit codes, some with an implied leading zero
    value = np.round(rng.lognormal(7, 1.5, size=n), 2).astype(np.float32)
    mass = np.round(rng.lognormal(3, 1.2, size=n), 3).astype(np.float32)
    rate = rng.choice([0.0, 2.5, 5.0, 10.0, 20.0], size=n).astype(np.float32)
    x = np.stack([value, mass, rate, (hs // 10000).astype(np.float32)], axis=1)
    return hs, value, mass, rate, x


def main():
    out_dir, n_decl = sys.argv[1], int(sys.argv[2])
    for spec in sys.argv[3:]:
        parts = spec.split(":")
        make(out_dir, n_decl, parts[0], int(parts[1]), int(parts[2]), "nocard" in parts[3:])


def make(out_dir, n_decl, name, seed, n_trees, nocard):
    rng = np.random.default_rng(seed)
    _, value, mass, rate, x = sample(rng, 3000)
    uv = value / np.maximum(mass, 1e-3)
    logit = 0.8 * (np.log(uv + 1) - 4.0) + 0.05 * rate - 0.02 * x[:, 3] + rng.normal(0, 1, size=len(uv))
    y = (logit > 1.0).astype(int)
    clf = GradientBoostingClassifier(n_estimators=n_trees, max_depth=3, learning_rate=0.1, random_state=seed)
    clf.fit(x, y)

    core = convert_sklearn(
        clf,
        initial_types=[("features", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    g = core.graph
    # Replace the matrix input by raw inputs + the pipeline nodes producing `features`.
    del g.input[:]
    g.input.extend([
        helper.make_tensor_value_info("hs_code", TensorProto.INT64, [None, 1]),
        helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1]),
        helper.make_tensor_value_info("mass", TensorProto.FLOAT, [None, 1]),
        helper.make_tensor_value_info("tax_rate", TensorProto.FLOAT, [None, 1]),
    ])
    g.initializer.append(helper.make_tensor("hs2_divisor", TensorProto.INT64, [], [10000]))
    pipeline_nodes = [
        helper.make_node("Div", ["hs_code", "hs2_divisor"], ["hs2_i64"], name="hs2_div"),
        helper.make_node("Cast", ["hs2_i64"], ["hs2_f32"], to=TensorProto.FLOAT, name="hs2_cast"),
        helper.make_node("Concat", ["value", "mass", "tax_rate", "hs2_f32"], ["features"], axis=1, name="features_concat"),
    ]
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(pipeline_nodes + nodes)

    pipeline = {"format_version": 1, "schema": SCHEMA, "features": FEATURES, "prior": float(y.mean()), "n_labelled": int(len(y))}
    train_scores = clf.predict_proba(x)[:, 1]
    quantiles = [float(np.float32(q)) for q in np.quantile(train_scores, np.linspace(0, 1, 101), method="lower")]
    # A complete version-1 model card (cr_model::ModelCard: every field, as cr-train writes it).
    card = {
        "card_version": 1, "name": name, "algo": "sklearn-gbdt",
        "created_at": "2026-01-01T00:00:00Z", "customs_risk_version": "test",
        "data": {"file": "make_model.py", "sha256": "", "rows_read": int(len(y)), "rows_rejected": 0,
                 "labelled": int(len(y)), "positives": int(y.sum()),
                 "date_min": "2024-01-01", "date_max": "2024-12-31"},
        "schema": {"name": "service-test", "sha256": ""},
        "split": {"valid_from": "2024-12-01", "train_rows": int(len(y)), "train_positives": int(y.sum()),
                  "valid_rows": 0, "valid_positives": 0},
        "params": {"n_trees": n_trees}, "pipeline": {}, "seed": seed, "threads": 1, "timings": {},
        "validation": None, "features": [f["name"] for f in FEATURES], "importance": [], "best_iteration": None,
        "score_quantiles": quantiles, "feature_bins": [],
    }
    meta = [("customs_risk.pipeline", json.dumps(pipeline)), ("customs_risk.features", "features")]
    if not nocard:
        meta.append(("customs_risk.card", json.dumps(card)))
    for k, v in meta:
        core.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(core)
    path = f"{out_dir}/{name}.onnx"
    onnx.save(core, path)

    # Declarations (fixed seed, shared by every model so their scores can be compared).
    drng = np.random.default_rng(12345)
    hs, value, mass, rate, _ = sample(drng, n_decl)
    offices = ["A1", "B2", "C3", ""]
    decls = []
    for i in range(n_decl):
        decls.append({
            "decl_id": f"D{i:05d}",
            "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "hs_code": f"{int(hs[i]):06d}" if i % 2 == 0 else int(hs[i]),
            "office": offices[i % len(offices)],
            "value": float(value[i]),
            "mass": float(mass[i]),
            "tax_rate": float(rate[i]),
        })
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {
        "hs_code": hs.astype(np.int64).reshape(-1, 1),
        "value": value.reshape(-1, 1),
        "mass": mass.reshape(-1, 1),
        "tax_rate": rate.reshape(-1, 1),
    }
    outs = sess.run(None, feeds)
    probs = next(o for o in outs if o.ndim == 2 and o.shape[1] == 2)
    expected = {d["decl_id"]: float(p) for d, p in zip(decls, probs[:, 1])}
    with open(f"{out_dir}/{name}.decls.json", "w") as f:
        json.dump(decls, f)
    with open(f"{out_dir}/{name}.expected.json", "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
