#!/usr/bin/env python3
"""Plots a table TSV (see scripts/table_tsv.py) as a grouped bar chart (matplotlib, Agg).

    python3 scripts/plot_table.py TABLE.tsv -o OUT.png [--title TEXT] [--metrics 'H1,H2']

One group of bars per metric column (all, or those --metrics names by full header or by the
paper's name before " ("), one bar per row, labelled by its method (by "section method" when
two rows share a method). A short black line across a bar marks its chance value; "-" cells get
no bar. Writes OUT.png atomically (a temporary .png beside it, then rename).
Exit codes: 0 done; 2 bad input, unknown --metrics header or unwritable output (one line on
stderr naming the file or header).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table_tsv import TableError, read_table  # noqa: E402

PROG = "plot_table.py"


def pick(metrics, wanted):
    if not wanted:
        return list(range(len(metrics)))
    out = []
    for w in (w.strip() for w in wanted.split(",") if w.strip()):
        hits = [i for i, m in enumerate(metrics) if w in (m.header, m.name)]
        if not hits:
            raise TableError(f"--metrics: no column '{w}' (have: {', '.join(m.header for m in metrics)})")
        out += [i for i in hits if i not in out]
    return out


def plot(metrics, rows, cols, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [r.method for r in rows]
    labels = [f"{r.section} {r.method}".strip() if methods.count(r.method) > 1 else r.method for r in rows]
    n = max(len(rows), 1)
    width = 0.8 / n
    # Wide enough for the bars, capped so that a many-column table stays readable (about 2:1).
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 1.0 + 0.15 * n * len(cols) + 0.6 * len(cols))), 5.0), dpi=100)
    top, chance_drawn = 0.0, False
    for j, r in enumerate(rows):
        xs = [g + (j - (n - 1) / 2) * width for g in range(len(cols))]
        pts = [(x, r.values[i], r.chances[i]) for x, i in zip(xs, cols) if r.values[i] is not None]
        ax.bar([p[0] for p in pts], [p[1] for p in pts], width, label=labels[j])
        for x, v, c in pts:
            top = max(top, v, c or 0.0)
            if c is not None:
                ax.hlines(c, x - 0.4 * width, x + 0.4 * width, colors="black", linewidth=2,
                          label=None if chance_drawn else "chance", zorder=3)
                chance_drawn = True
    ax.set_xticks(range(len(cols)))
    many = len(cols) > 6  # long rows of labels would overlap: slant them
    ax.set_xticklabels([metrics[i].name for i in cols], rotation=30 if many else 0, ha="right" if many else "center")
    ax.set_ylim(0, top * 1.1 if top > 0 else 1.0)
    ax.set_title(title)
    handles, names = ax.get_legend_handles_labels()  # "chance" last
    order = sorted(range(len(names)), key=lambda k: names[k] == "chance")
    ax.legend([handles[k] for k in order], [names[k] for k in order], fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("table", metavar="TABLE.tsv")
    ap.add_argument("-o", "--output", metavar="OUT.png", required=True)
    ap.add_argument("--title")
    ap.add_argument("--metrics", help="comma-separated metric headers (full, or the paper's name)")
    a = ap.parse_args(argv)
    try:
        metrics, rows = read_table(a.table)
        cols = pick(metrics, a.metrics)
    except TableError as e:
        print(f"{PROG}: {a.table}: {e}", file=sys.stderr)
        return 2
    try:
        plot(metrics, rows, cols, a.title or os.path.basename(a.table), a.output)
    except OSError as e:
        print(f"{PROG}: {a.output}: cannot write: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
