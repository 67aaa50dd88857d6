#!/usr/bin/env bash
# scripts/render_table_md.py and scripts/plot_table.py (shared parser scripts/table_tsv.py): the
# Markdown table (section rows, chance text, best value per section in bold, "-"), the bar chart
# PNG, and bad input refused with exit 2, one line naming the file and no output left behind.
set -u
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
MD="$SRC/scripts/render_table_md.py"
PLOT="$SRC/scripts/plot_table.py"
H='section\tmethod\tR2V R@5 (recall@5)\tR2V R@5 chance\tV2V MAP@5 (v2v_map@5)\tV2V MAP@5 chance\n'
printf "$H"'(a) encoders\tOurs (3D-ViT)\t0.3913\t0.0435\t0.5100\t0.4200\n(a) encoders\tOurs (2E3-ViT)\t0.4087\t0.0435\t0.5300\t0.4200\n(b) patch-scoring guide\tText CLS\t0.2000\t0.0435\t-\t-\n' > "$T/t.tsv"
$PY "$MD" "$T/t.tsv" --title "Table 3" -o "$T/t.md" && $PY - "$T/t.md" <<'PYEOF' && ok "Markdown: title, section rows, chance, best in bold, '-'" || bad "render_table_md.py output"
import sys
text = open(sys.argv[1]).read()
lines = text.splitlines()
assert lines[0] == "**Table 3**" and lines[1] == "", lines[:2]
rows = [l for l in lines if l.startswith("|")]
assert len(rows) == 7, rows  # header, separator, 2 section rows, 3 method rows
assert rows[0] == "| method | R2V R@5 (recall@5) | V2V MAP@5 (v2v_map@5) |", rows[0]
assert rows[2] == "| **(a) encoders** | | |" and rows[5] == "| **(b) patch-scoring guide** | | |", rows
assert rows[3] == "| Ours (3D-ViT) | 0.391 (chance 0.044) | 0.510 (chance 0.420) |", rows[3]
assert rows[4] == "| Ours (2E3-ViT) | **0.409** (chance 0.044) | **0.530** (chance 0.420) |", rows[4]
assert rows[6] == "| Text CLS | 0.200 (chance 0.044) | - |", rows[6]  # alone in its section: not bold
PYEOF
out=$($PY "$MD" "$T/t.tsv") && [ "$out" = "$(tail -n +3 "$T/t.md")" ] && ok "Markdown on stdout without -o" || bad "stdout differs from -o file"
printf "$H"'(a)\tA\t0.1\t0.0\t0.2\n' > "$T/ragged.tsv"
printf "$H"'(a)\tA\t0.1\tn/a\t0.2\t0.1\n' > "$T/nan.tsv"
printf 'group\tmethod\tR2V R@5 (recall@5)\n(a)\tA\t0.1\n' > "$T/head.tsv"
printf 'section\tmethod\tR2V R@5 chance\tR2V R@5 (recall@5)\n(a)\tA\t0.1\t0.2\n' > "$T/chance.tsv"
refused "ragged row" 2 ragged.tsv "line 2" "$T/o.md" -- $PY "$MD" "$T/ragged.tsv" -o "$T/o.md"
refused "non-numeric cell" 2 nan.tsv "line 2.*n/a" "$T/o.md" -- $PY "$MD" "$T/nan.tsv" -o "$T/o.md"
refused "wrong first headers" 2 head.tsv "section" "$T/o.md" -- $PY "$MD" "$T/head.tsv" -o "$T/o.md"
refused "chance column before its metric" 2 chance.tsv "chance column" "$T/o.md" -- $PY "$MD" "$T/chance.tsv" -o "$T/o.md"
refused "missing file" 2 missing.tsv "cannot read" "$T/o.md" -- $PY "$MD" "$T/missing.tsv" -o "$T/o.md"
refused "plot: ragged row" 2 ragged.tsv "line 2" "$T/o.png" -- $PY "$PLOT" "$T/ragged.tsv" -o "$T/o.png"
refused "plot: unknown --metrics header" 2 "Nope" "no column" "$T/o.png" -- $PY "$PLOT" "$T/t.tsv" -o "$T/o.png" --metrics "R2V R@5,Nope"
$PY "$PLOT" "$T/t.tsv" -o "$T/t.png" --title "Table 3" && $PY - "$T/t.png" <<'PYEOF' && ok "bar chart PNG written and readable" || bad "plot_table.py PNG"
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.image
assert open(sys.argv[1], "rb").read(4) == b"\x89PNG"
img = matplotlib.image.imread(sys.argv[1])
assert img.shape[0] > 100 and img.shape[1] > 100, img.shape
PYEOF
$PY "$PLOT" "$T/t.tsv" -o "$T/m.png" --metrics "V2V MAP@5 (v2v_map@5),R2V R@5" && [ -s "$T/m.png" ] \
  && [ -z "$(ls -a "$T" | grep -F '.m.png.')" ] && ok "--metrics by full header and by paper name; no temp file left" || bad "plot --metrics"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
