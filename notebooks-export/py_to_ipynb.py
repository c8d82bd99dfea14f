"""Write a Jupyter notebook from a script with `# %%` cell markers (the "percent" format).

usage: python3 py_to_ipynb.py SCRIPT.py [NOTEBOOK.ipynb]   (default: SCRIPT with .ipynb)
       python3 py_to_ipynb.py --check SCRIPT.py [NOTEBOOK.ipynb]

`# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines drop their leading
`# ` (a lone `#` is an empty line). Blank lines around a cell are dropped. The notebook is
plain nbformat 4 JSON without outputs, written without jupyter or nbformat installed; --check
exits non-zero when the notebook on disk differs from what the script gives.
"""
import json
import sys
from pathlib import Path


def cells(text):
    out = []
    kind, lines = None, []

    def close():
        if kind is None:
            return
        body = list(lines)
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        if kind == "markdown":
            body = [l[2:] if l.startswith("# ") else l[1:] if l.startswith("#") else l for l in body]
        out.append((kind, body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            close()
            kind, lines = ("markdown" if line.strip() == "# %% [markdown]" else "code"), []
        elif kind is None:
            if line.strip():
                raise SystemExit(f"text before the first '# %%' marker: {line!r}")
        else:
            lines.append(line)
    close()
    return out


def notebook(text):
    nb_cells = []
    for kind, body in cells(text):
        source = [l + "\n" for l in body[:-1]] + body[-1:]
        cell = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell.update({"execution_count": None, "outputs": []})
        nb_cells.append(cell)
    return {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.11"},
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if not args:
        raise SystemExit(__doc__)
    script = Path(args[0])
    target = Path(args[1]) if len(args) > 1 else script.with_suffix(".ipynb")
    text = json.dumps(notebook(script.read_text()), indent=1, ensure_ascii=False) + "\n"
    if check:
        if not target.is_file() or target.read_text() != text:
            raise SystemExit(f"{target} is out of date: run python3 {Path(__file__).name} {script}")
        print(f"{target} is up to date")
    else:
        target.write_text(text)
        print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
