#!/usr/bin/env bash
# scripts/seed_summary.py (Makefile.pipeline seeds): mean, range and mean gap over chance per
# metric across runs; runs whose rows differ are refused; the seeds target runs the pipeline once
# per seed in OUT/seed_S (make -n).
set -u
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
printf 'task\tmetric\tvalue\tchance\nr2v\trecall@5\t0.40\t0.05\nmrg\tce_micro_f1\t0.42\t0.19\n' > "$T/a.tsv"
printf 'task\tmetric\tvalue\tchance\nr2v\trecall@5\t0.30\t0.05\nmrg\tce_micro_f1\t0.39\t0.21\n' > "$T/b.tsv"
printf 'task\tmetric\tvalue\tchance\nr2v\trecall@5\t0.35\t0.05\n' > "$T/c.tsv"
$PY "$SRC/scripts/seed_summary.py" "$T/a.tsv" "$T/b.tsv" > "$T/s.tsv" && $PY - "$T/s.tsv" <<'PYEOF' && ok "mean, min, max, mean gap over chance" || bad "seed_summary.py figures"
import sys
rows = {r[0]: r for r in (l.rstrip("\n").split("\t") for l in open(sys.argv[1]))}
assert rows["task"][:8] == ["task", "metric", "mean", "min", "max", "chance_mean", "gap_mean", "seeds"], rows["task"]
r = rows["r2v"]
assert [round(float(x), 6) for x in r[2:7]] == [0.35, 0.30, 0.40, 0.05, 0.30] and r[7] == "2", r
m = rows["mrg"]
assert abs(float(m[6]) - ((0.42 - 0.19) + (0.39 - 0.21)) / 2) < 1e-6, m
PYEOF
err=$($PY "$SRC/scripts/seed_summary.py" "$T/a.tsv" "$T/c.tsv" 2>&1); rc=$?
[ $rc != 0 ] && [[ "$err" == *"c.tsv: rows differ"* ]] && ok "runs with different rows: refused" || bad "different rows (rc $rc): $err"
n=$(make -n -f "$SRC/Makefile.pipeline" BIN=/nonexistent OUT="$T/o" SEEDS="42 7" seeds 2>/dev/null | grep -c "OUT=$T/o/seed_[0-9]* SEED=[0-9]* all")
[ "$n" = 2 ] && ok "make seeds: one pipeline run per seed" || bad "make -n seeds: $n sub-runs"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
