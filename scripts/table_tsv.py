"""Reads the "table TSV" (section, method, metric columns, optional chance columns) shared by
scripts/render_table_md.py and scripts/plot_table.py.

A metric header is "PAPER NAME (hse metric)"; its chance column, if any, comes directly after it
with the header "PAPER NAME chance". Cells are decimal numbers or "-" (none). Problems raise
TableError, whose message ("line N: problem") the scripts print after the file name.
"""
from dataclasses import dataclass, field


class TableError(ValueError):
    pass


@dataclass
class Metric:
    header: str   # as written, e.g. "R2V R@5 (recall@5)"
    name: str     # the paper's name, e.g. "R2V R@5"
    has_chance: bool = False


@dataclass
class Row:
    section: str
    method: str
    values: list = field(default_factory=list)   # float or None, one per metric
    chances: list = field(default_factory=list)  # float or None, one per metric


def paper_name(header):
    return header.split(" (", 1)[0].strip()


def number(cell, lineno, header):
    if cell.strip() == "-":
        return None
    try:
        x = float(cell)
    except ValueError:
        x = None
    if x is None or x != x or x in (float("inf"), float("-inf")):
        raise TableError(f"line {lineno}: column '{header}': not a number or '-': '{cell}'")
    return x


def read_table(path):
    """Returns (metrics, rows): a list of Metric and a list of Row, in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TableError(f"cannot read: {getattr(e, 'strerror', None) or e}") from None
    numbered = [(i, l.split("\t")) for i, l in enumerate(lines, 1) if l.strip()]
    if not numbered:
        raise TableError("no header row (empty file)")
    hl, head = numbered[0]
    if len(head) < 3:
        raise TableError(f"line {hl}: header has {len(head)} columns, want section, method and metrics")
    if [h.strip() for h in head[:2]] != ["section", "method"]:
        raise TableError(f"line {hl}: first headers are {head[:2]}, want ['section', 'method']")
    metrics, kinds = [], []  # kinds: per column from 2 on, ("value"|"chance", metric index)
    for h in head[2:]:
        h = h.strip()
        if h.endswith(" chance"):
            prev = metrics[-1] if metrics and kinds[-1][0] == "value" else None
            if prev is None or prev.name != h[: -len(" chance")].strip():
                raise TableError(f"line {hl}: chance column '{h}' is not directly after its metric column")
            prev.has_chance = True
            kinds.append(("chance", len(metrics) - 1))
        else:
            metrics.append(Metric(h, paper_name(h)))
            kinds.append(("value", len(metrics) - 1))
    rows = []
    for ln, cells in numbered[1:]:
        if len(cells) != len(head):
            raise TableError(f"line {ln}: {len(cells)} cells, header has {len(head)}")
        row = Row(cells[0].strip(), cells[1].strip(), [None] * len(metrics), [None] * len(metrics))
        for (kind, m), cell, h in zip(kinds, cells[2:], head[2:]):
            (row.values if kind == "value" else row.chances)[m] = number(cell, ln, h.strip())
        rows.append(row)
    return metrics, rows


def sections(rows):
    """Groups consecutive rows of the same section: [(section, [rows])]."""
    out = []
    for r in rows:
        if not out or out[-1][0] != r.section:
            out.append((r.section, []))
        out[-1][1].append(r)
    return out
