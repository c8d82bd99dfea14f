"""Read a reject file with pandas and check it against the scored input, independently of
customs-risk.

usage: check_rejects.py REJECTS.csv DATA.csv

Checks: exactly the columns line, column, value, reason, raw (pandas sees a regular table);
`raw`, parsed as one CSV line by Python's csv module, gives the fields of the input record
that starts on `line` (the header is line 1; records here hold no line breaks). Prints the
number of rejects.
"""
import csv
import io
import sys

import pandas as pd

rejects_path, data_path = sys.argv[1:3]
rej = pd.read_csv(rejects_path, dtype=str, keep_default_na=False)
assert list(rej.columns) == ["line", "column", "value", "reason", "raw"], list(rej.columns)
with open(data_path, newline="") as f:
    lines = list(csv.reader(f))
for _, r in rej.iterrows():
    (fields,) = list(csv.reader(io.StringIO(r["raw"])))
    want = lines[int(r["line"]) - 1]
    assert fields == want, (r["line"], fields, want)
    assert r["reason"], r
print(len(rej))
