"""Read a reject file with pandas and check it against the scored input, independently of
customs-risk.

usage: check_rejects.py REJECTS.csv DATA.csv

Checks: exactly the columns file, line, column, value, category, reason, raw (pandas sees a
regular table, one row per bad cell); `file` names DATA.csv; `raw`, parsed as one CSV line by
Python's csv module, gives the fields of the input record that starts on `line` (the header
is line 1; records here hold no line breaks); the rows of one line share `raw`. Prints the
number of rejected rows (distinct file, line pairs).
"""
import csv
import io
import os
import sys

import pandas as pd

rejects_path, data_path = sys.argv[1:3]
rej = pd.read_csv(rejects_path, dtype=str, keep_default_na=False)
assert list(rej.columns) == ["file", "line", "column", "value", "category", "reason", "raw"], list(rej.columns)
with open(data_path, newline="") as f:
    lines = list(csv.reader(f))
for _, r in rej.iterrows():
    assert os.path.basename(r["file"]) == os.path.basename(data_path), r["file"]
    (fields,) = list(csv.reader(io.StringIO(r["raw"])))
    want = lines[int(r["line"]) - 1]
    assert fields == want, (r["line"], fields, want)
    assert r["reason"], r
assert (rej.groupby(["file", "line"])["raw"].nunique() == 1).all()
print(len(rej[["file", "line"]].drop_duplicates()))
