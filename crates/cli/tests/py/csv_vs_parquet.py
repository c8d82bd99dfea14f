"""Check that a `customs-risk score` CSV output and its Parquet twin hold the same values.

usage: csv_vs_parquet.py OUT.csv OUT.parquet

pyarrow reads the Parquet file; the CSV is parsed with Python's round-trip float parsing.
Checks column names, types (id string, score/percentile double, selected bool), row count and
every value (floats exactly, NaN = NaN). Prints the row count; exits non-zero on a difference.
"""
import csv
import math
import sys

import pyarrow as pa
import pyarrow.parquet as pq

csv_path, pq_path = sys.argv[1:3]
table = pq.read_table(pq_path)
with open(csv_path, newline="") as f:
    rows = list(csv.reader(f))
header, body = rows[0], rows[1:]
assert table.column_names == header, (table.column_names, header)
want_types = {"id": pa.string(), "score": pa.float64(), "percentile": pa.float64(), "selected": pa.bool_()}
for name in header:
    t = table.schema.field(name).type
    assert t in (want_types[name], pa.large_string() if name == "id" else want_types[name]), (name, t)
assert table.num_rows == len(body), (table.num_rows, len(body))
cols = {name: table.column(name).to_pylist() for name in header}


def same_float(text, value):
    if text == "" or text.lower() == "nan":
        return value is None or math.isnan(value)
    return value is not None and float(text) == value


for r, row in enumerate(body):
    for j, name in enumerate(header):
        v, text = cols[name][r], row[j]
        if name == "id":
            ok = v == text
        elif name == "selected":
            ok = v == {"true": True, "false": False}[text]
        else:
            ok = same_float(text, v)
        if not ok:
            raise SystemExit(f"row {r + 1}, column {name}: CSV {text!r} vs Parquet {v!r}")
print(len(body))
