"""The columns pandas reads as numbers from the first N data rows of a CSV file, with at least
one value present, in file order; independently of customs-risk.

usage: numeric_columns.py DATA.csv N [EXCLUDE]

Prints the names comma-separated (EXCLUDE: a column left out, e.g. the id column).
"""
import sys

import pandas as pd

path, n = sys.argv[1], int(sys.argv[2])
exclude = sys.argv[3] if len(sys.argv) > 3 else None
df = pd.read_csv(path, nrows=n)
cols = [c for c in df.columns if c != exclude and pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()]
print(",".join(cols))
