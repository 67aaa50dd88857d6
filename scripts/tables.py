#!/usr/bin/env python3
"""Assembles the paper's tables from Makefile.pipeline's per-variant metric files.

    tables.py assemble --table N --dir OUT/tables [--vision-config JSON --windows "D,H,W ..."
                       --default-window D,H,W] -o OUT/tables/tableN.tsv
    tables.py v2v-chance --labels LABELS.csv --ranking v2v.tsv --eval BIN/hse-eval
    tables.py speed --mrg-log FILE --vqa-log FILE --label TEXT -o OUT/tables/speed.tsv
    tables.py max-length --vision-config JSON --window D,H,W --default-window D,H,W --max-length N

assemble: each row of table N reads one metric file in --dir, ret_<model>.tsv (Table 1) or
gen_<variant>.tsv (Tables 2 to 6), whose lines are metric<TAB>value<TAB>chance ("-": none), and
writes the table TSV that scripts/render_table_md.py and scripts/plot_table.py read: section,
method, then per column "PAPER NAME (hse metric)" and, where a chance exists, "PAPER NAME chance".
A column none of whose rows has the metric (BERTScore without --bertscore-model) is left out,
with a note on stderr; a row without a metric that others have shows "-". Which hse metric stands
for which paper column is hse-eval(1)'s table TABLE COLUMNS AND hse NAMES.

v2v-chance: hse-eval retrieval --labels on the rankings an untrained encoder gives (each volume
first, its own cosine being 1, then the others in a seeded random order), averaged over --repeats
orders: metric<TAB>chance lines for precision@K and map_cumulative@K.

max-length: Table 5's --max-length for a packer window: N plus the change in image tokens (two
packers) from the default window, so that every row keeps the default's text budget.

speed: Table 7's seconds per item, from the closing line of hse-generate's stderr.

Exit status: 0, or 2 with one line on stderr naming the file and the problem.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys

RET = [("R2V R@%d" % k, "r2v", "recall@%d" % k) for k in (5, 10, 50, 100)] + \
      [("V2R R@%d" % k, "v2r", "recall@%d" % k) for k in (5, 10, 50, 100)] + \
      [("V2V MAP@%d" % k, "v2v", "map_cumulative@%d" % k) for k in (5, 10, 50)]
MRG = [("BLEU-%d" % n, "", "bleu%d_precision" % n) for n in (1, 2, 3, 4)] + [
    ("ROUGE-1", "", "rouge1"), ("ROUGE-L", "", "rougeL"), ("METEOR", "", "meteor"),
    ("BERT-Score", "", "bertscore_f1"), ("CE micro-F1", "", "ce_micro_f1")]
VQA = [("BLEU-1", "", "bleu1_precision"), ("ROUGE-1", "", "rouge1"), ("METEOR", "", "meteor"),
       ("BERT-Score", "", "bertscore_f1"), ("Major Class Acc.", "", "acc_major"),
       ("Minor Class Acc.", "", "acc_minor")]

# table -> (columns, rows of (section, method, metric file))
TABLES = {
    1: (RET, [
        ("(a) encoders", "Ours (3D-ViT)", "ret_stage1"),
        ("(a) encoders", "Ours (2E3-ViT)", "ret_stage2"),
        ("(b) patch-scoring guide", "Full Text", "ret_stage2-fulltext"),
        ("(b) patch-scoring guide", "Text CLS", "ret_stage2-textcls"),
        ("(b) patch-scoring guide", "2D Slice", "ret_stage2"),
        ("(c) semantic-consistency loss", "w/o L_SA", "ret_stage2-nosa"),
        ("(c) semantic-consistency loss", "Ours (2E3-ViT)", "ret_stage2")]),
    2: (MRG, [
        ("(a) HSENet", "HSENet (Ours)", "gen_mrg"),
        ("(b) projectors", "Q-Former", "gen_mrg-qformer"),
        ("(b) projectors", "Sequence Pooling", "gen_mrg-seqpool"),
        ("(b) projectors", "Spatial Pooling", "gen_mrg-spatialpool"),
        ("(b) projectors", "Spatial Packer", "gen_mrg"),
        ("(b) projectors", "Anatomy-adaptive packer (hse)", "gen_mrg-anatomy")]),
    3: (MRG, [
        ("", "(a) 3D-ViT, spatial pooling", "gen_mrg-3d-pool"),
        ("", "(b) 3D-ViT + Spatial Packer", "gen_mrg-3d"),
        ("", "(c) 2E3-ViT, spatial pooling", "gen_mrg-2e3-pool"),
        ("", "(d) 2E3-ViT + Spatial Packer", "gen_mrg-2e3"),
        ("", "(e) 3D-ViT + 2E3-ViT, spatial pooling", "gen_mrg-spatialpool"),
        ("", "Ours: 3D-ViT + 2E3-ViT + Spatial Packer", "gen_mrg")]),
    4: (VQA, [
        ("", "Ours (3D-ViT)", "gen_vqa-3d"),
        ("", "Ours (2E3-ViT)", "gen_vqa-2e3"),
        ("", "Ours (Dual-ViTs)", "gen_vqa"),
        ("", "Dual-ViTs, anatomy-adaptive packer (hse)", "gen_vqa-anatomy")]),
    6: (MRG, [
        ("", "HSENet (Ours), frozen CT-RATE encoders", "gen_bimcv-mrg")]),
}


class Problem(Exception):
    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")


def read_metrics(path):
    """metric -> (value, chance or None) from a metric<TAB>value<TAB>chance file."""
    if not os.path.isfile(path):
        raise Problem(path, "no such metric file (run its Makefile.pipeline target first)")
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            cells = line.rstrip("\n").split("\t")
            if len(cells) != 3:
                raise Problem(path, f"line {n}: {len(cells)} fields, expected metric, value, chance")
            try:
                value = float(cells[1])
                chance = None if cells[2] == "-" else float(cells[2])
            except ValueError:
                raise Problem(path, f"line {n}: not a number in {cells[1:]}")
            out[cells[0]] = (value, chance)
    return out


def fmt(x):
    return "-" if x is None else "%.4f" % x


def token_grid(path):
    try:
        with open(path, encoding="utf-8") as f:
            v = json.load(f)
        v = v.get("vision", v)
        return [int(i) // int(p) for i, p in zip(v["img_size"], v["patch_size"])]
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
        raise Problem(path, f"not a vit3d config with img_size and patch_size ({e})")


def tokens(grid, window):
    win = tuple(int(x) for x in window.split(","))
    if len(win) != 3 or any(d < 1 or g % d for g, d in zip(grid, win)):
        raise Problem("tables.py", f"window {window} does not divide the token grid {grid}")
    s = tuple(g // d for g, d in zip(grid, win))
    return s[0] * s[1] * s[2], s, win


def max_length(args):
    grid = token_grid(args.vision_config)
    n = args.max_length + 2 * (tokens(grid, args.window)[0] - tokens(grid, args.default_window)[0])
    if n < 1:
        raise Problem("tables.py", f"--max-length {args.max_length} leaves no room for window {args.window}")
    print(n)


def window_rows(args):
    """Table 5: one row per packer window; the token count per packer is the grid / window."""
    if not (args.vision_config and args.windows and args.default_window):
        raise Problem("tables.py", "table 5 needs --vision-config, --windows and --default-window")
    grid = token_grid(args.vision_config)
    default = tokens(grid, args.default_window)[2]
    rows = []
    for w in args.windows.split():
        n, s, win = tokens(grid, w)
        name = "gen_mrg" if win == default else "gen_mrg-w" + "x".join(map(str, win))
        label = "%d tokens, stride (%d,%d,%d)%s" % (n, *s, ", default" if win == default else "")
        rows.append((n, ("", label, name)))
    return [r for _, r in sorted(rows)]


def assemble(args):
    if args.table == 5:
        columns, rows = MRG, window_rows(args)
    elif args.table in TABLES:
        columns, rows = TABLES[args.table]
    else:
        raise Problem("tables.py", f"--table {args.table}: tables 1 to 6 are assembled here (7: speed)")
    data = [(s, m, read_metrics(os.path.join(args.dir, f + ".tsv"))) for s, m, f in rows]
    header, cells = ["section", "method"], [[s, m] for s, m, _ in data]
    for paper, prefix, metric in columns:
        key = (prefix + "_" if prefix else "") + metric
        got = [d.get(key) for _, _, d in data]
        if all(g is None for g in got):
            print(f"tables.py: table {args.table}: no row has {key}; column {paper} left out", file=sys.stderr)
            continue
        with_chance = any(g is not None and g[1] is not None for g in got)
        header.append(f"{paper} ({metric})")
        if with_chance:
            header.append(f"{paper} chance")
        for row, g in zip(cells, got):
            row.append(fmt(g[0] if g else None))
            if with_chance:
                row.append(fmt(g[1] if g else None))
    write(args.output, [header] + cells)


def write(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")
    os.replace(tmp, path)


def v2v_chance(args):
    """Each V2V metric of hse-eval on rankings an untrained encoder gives: every volume first (its own
    cosine is 1), then the others in a seeded random order; the mean over --repeats orders."""
    queries = []
    try:
        with open(args.ranking, encoding="utf-8") as f:
            queries = list(dict.fromkeys(line.split("\t", 1)[0] for line in f if line.strip()))
    except OSError as e:
        raise Problem(args.ranking, f"cannot read ({e.strerror})")
    if not queries:
        raise Problem(args.ranking, "no queries")
    rng = random.Random(args.seed)
    sums = {}
    for _ in range(args.repeats):
        lines = []
        for q in queries:
            others = [x for x in queries if x != q]
            rng.shuffle(others)
            lines += [f"{q}\t{r}\t{x}\t{1.0 - r / (len(queries) + 1):.6f}" for r, x in enumerate([q] + others, 1)]
        out = subprocess.run([args.eval, "retrieval", "--labels", args.labels, "--ks", args.ks, "-q", "-"],
                             input="\n".join(lines) + "\n", capture_output=True, text=True)
        if out.returncode != 0:
            raise Problem(args.labels, f"hse-eval on a random ranking: {out.stderr.strip()}")
        for line in out.stdout.splitlines()[1:]:
            k, v = line.split("\t")
            sums[k] = sums.get(k, 0.0) + float(v)
    for k, v in sums.items():
        print(f"{k}\t{v / args.repeats:.4f}")


def speed(args):
    def per_item(path):
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as e:
            raise Problem(path, f"cannot read hse-generate's log ({e.strerror})")
        m = re.findall(r"\(([0-9.]+) s per item after", text)
        if not m:
            raise Problem(path, "no 's per item' line (hse-generate's closing line)")
        return m[-1]  # as printed: no digits the log does not have
    write(args.output, [["section", "method", "Report Generation (s/item)", "VQA (s/item)"],
                        ["", args.label, per_item(args.mrg_log), per_item(args.vqa_log)]])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assemble")
    a.add_argument("--table", type=int, required=True)
    a.add_argument("--dir", required=True)
    a.add_argument("--vision-config")
    a.add_argument("--windows")
    a.add_argument("--default-window")
    a.add_argument("-o", "--output", required=True)
    c = sub.add_parser("v2v-chance")
    c.add_argument("--labels", required=True)
    c.add_argument("--ranking", required=True)
    c.add_argument("--eval", default="hse-eval", help="the hse-eval executable")
    c.add_argument("--ks", default="5,10,50")
    c.add_argument("--repeats", type=int, default=20)
    c.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("max-length")
    m.add_argument("--vision-config", required=True)
    m.add_argument("--window", required=True)
    m.add_argument("--default-window", required=True)
    m.add_argument("--max-length", type=int, required=True)
    s = sub.add_parser("speed")
    s.add_argument("--mrg-log", required=True)
    s.add_argument("--vqa-log", required=True)
    s.add_argument("--label", required=True)
    s.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    try:
        {"assemble": assemble, "v2v-chance": v2v_chance, "speed": speed, "max-length": max_length}[args.cmd](args)
    except Problem as e:
        print(f"tables.py: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
