#!/usr/bin/env python3
"""Summarises several runs of Makefile.pipeline (one summary.tsv per seed) as the mean and range.

    python3 scripts/seed_summary.py OUT/seed_42/summary.tsv OUT/seed_7/summary.tsv ... > summary_seeds.tsv

Output TSV: task, metric, mean, min, max, chance_mean, gap_mean (mean of value - chance), seeds
(the number of runs), values (each run's value, in argument order). Every run must have the same
(task, metric) rows; a row missing from one run is an error, not averaged over fewer seeds.
"""
import sys


def read(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    if not rows or rows[0][:4] != ["task", "metric", "value", "chance"]:
        sys.exit(f"{path}: not a summary.tsv (header task, metric, value, chance)")
    out = {}
    for r in rows[1:]:
        if len(r) != 4:
            sys.exit(f"{path}: malformed row {r}")
        out[(r[0], r[1])] = (float(r[2]), float(r[3]))
    return out


def main(paths):
    if len(paths) < 2:
        sys.exit("usage: seed_summary.py SUMMARY.tsv SUMMARY.tsv [...] (two runs or more)")
    runs = [read(p) for p in paths]
    keys = list(runs[0])
    for p, r in zip(paths[1:], runs[1:]):
        if set(r) != set(keys):
            sys.exit(f"{p}: rows differ from {paths[0]}: {sorted(set(r) ^ set(keys))}")
    print("task\tmetric\tmean\tmin\tmax\tchance_mean\tgap_mean\tseeds\tvalues")
    for k in keys:
        v = [r[k][0] for r in runs]
        c = [r[k][1] for r in runs]
        n = len(v)
        print(f"{k[0]}\t{k[1]}\t{sum(v) / n:.6f}\t{min(v):.6f}\t{max(v):.6f}\t{sum(c) / n:.6f}\t"
              f"{sum(a - b for a, b in zip(v, c)) / n:.6f}\t{n}\t{','.join(f'{x:.6f}' for x in v)}")


if __name__ == "__main__":
    main(sys.argv[1:])
