"""What a customs-risk model file holds, read with the onnx package only.

usage: model_contents.py MODEL.onnx

Prints one JSON object: `min_risk_count` (the smallest count in any risk_count table of the
`customs_risk.pipeline` metadata, null without entries), `risk_entries` (entries over all
risk_count tables), `fingerprint` (the schema's pseudonym_fingerprint or null) and `strings`
(every string of the graph's LabelEncoder key lists and of the metadata, for searching).
"""
import json
import sys

import onnx

m = onnx.load(sys.argv[1])
meta = {p.key: p.value for p in m.metadata_props}
pipe = json.loads(meta["customs_risk.pipeline"])
counts = [v for f in pipe["features"] if f["type"] == "risk_count" for v in f["table"].values()]
strings = []
for n in m.graph.node:
    for a in n.attribute:
        strings.extend(s.decode() for s in a.strings)
strings.extend(meta.values())
print(json.dumps({
    "min_risk_count": min(counts) if counts else None,
    "risk_entries": len(counts),
    "fingerprint": pipe["schema"].get("pseudonym_fingerprint"),
    "strings": "\n".join(strings),
}))
