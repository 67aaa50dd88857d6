#!/usr/bin/env python3
"""Renders a table TSV (see scripts/table_tsv.py) as a GitHub Markdown table.

    python3 scripts/render_table_md.py TABLE.tsv [--title TEXT] [-o OUT.md]

One column per metric: the value with 3 decimals, then " (chance 0.044)" when the row has a
chance value; "-" where there is none. A bold row opens each section; the best (highest) value
of a metric within a section is bold when the section has two values or more in that column.
Writes OUT.md atomically (OUT.md.tmp, then rename), or stdout without -o.
Exit codes: 0 done; 2 bad input or unwritable output (one line on stderr naming the file).
"""
import argparse
import os
import sys
from decimal import ROUND_HALF_UP, Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table_tsv import TableError, read_table, sections  # noqa: E402

PROG = "render_table_md.py"


def cell_text(text):
    return text.replace("|", "\\|")


def fmt(x):
    """3 decimals, rounding halves up as written (0.0435 -> 0.044, not binary float's 0.043)."""
    return str(Decimal(repr(x)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def render(metrics, rows, title=None):
    out = [f"**{title}**", ""] if title else []
    out.append("| method | " + " | ".join(cell_text(m.header) for m in metrics) + " |")
    out.append("|---|" + "---:|" * len(metrics))
    for section, group in sections(rows):
        best = []
        for i in range(len(metrics)):
            vals = [r.values[i] for r in group if r.values[i] is not None]
            best.append(max(vals) if len(vals) >= 2 else None)
        if section:
            out.append(f"| **{cell_text(section)}** |" + " |" * len(metrics))
        for r in group:
            cells = [cell_text(r.method)]
            for i, (v, c) in enumerate(zip(r.values, r.chances)):
                if v is None:
                    cells.append("-")
                    continue
                s = f"**{fmt(v)}**" if v == best[i] else fmt(v)
                cells.append(s + (f" (chance {fmt(c)})" if c is not None else ""))
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("table", metavar="TABLE.tsv")
    ap.add_argument("--title")
    ap.add_argument("-o", "--output", metavar="OUT.md")
    a = ap.parse_args(argv)
    try:
        text = render(*read_table(a.table), a.title)
    except TableError as e:
        print(f"{PROG}: {a.table}: {e}", file=sys.stderr)
        return 2
    if not a.output:
        sys.stdout.write(text)
        return 0
    tmp = a.output + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.output)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        print(f"{PROG}: {a.output}: cannot write: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
