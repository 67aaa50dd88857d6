#!/usr/bin/env bash
# The paper's tables (Makefile.pipeline tables): scripts/tables.py assembles a table from the
# per-variant metric files (columns "PAPER (hse metric)" and their chance, a column no row has left
# out, a missing file refused), v2v-chance on a hand-computed example (through hse-eval), speed from hse-generate's
# closing line; the DAG (make -n) shares one stage 1 and one main stage 2/mrg/vqa across the tables
# and passes each variant its one change.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
TP="$SRC/scripts/tables.py"

mkdir -p "$T/td"
for v in mrg mrg-qformer mrg-seqpool mrg-spatialpool mrg-anatomy; do
  printf 'bleu1_precision\t0.5\t0.2\nbleu2_precision\t0.4\t0.1\nbleu3_precision\t0.3\t0.1\nbleu4_precision\t0.2\t0.05\nrouge1\t0.6\t0.3\nrougeL\t0.55\t0.3\nmeteor\t0.4\t0.2\nce_micro_f1\t0.45\t0.2\n' > "$T/td/gen_$v.tsv"
done
printf 'bleu1_precision\t0.7\t0.2\n' > "$T/td/gen_mrg-anatomy.tsv"
$PY "$TP" assemble --table 2 --dir "$T/td" -o "$T/t2.tsv" 2> "$T/err" && $PY - "$T/t2.tsv" "$T/err" <<'PYEOF' && ok "table 2: paper columns with hse names and chance; BERT-Score left out; a missing metric is -" || bad "table 2 assembly"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
h = rows[0]
assert h[:4] == ["section", "method", "BLEU-1 (bleu1_precision)", "BLEU-1 chance"], h
assert "ROUGE-L (rougeL)" in h and "CE micro-F1 (ce_micro_f1)" in h and not any("BERT" in x for x in h), h
assert [r[1] for r in rows[1:]] == ["HSENet (Ours)", "Q-Former", "Sequence Pooling", "Spatial Pooling", "Spatial Packer",
                                    "Anatomy-adaptive packer (hse)"]
an = dict(zip(h, rows[-1]))
assert an["BLEU-1 (bleu1_precision)"] == "0.7000" and an["ROUGE-L (rougeL)"] == "-" and an["ROUGE-L chance"] == "-", an
assert "bertscore_f1" in open(sys.argv[2]).read()
PYEOF
rm "$T/td/gen_mrg-seqpool.tsv"
err=$($PY "$TP" assemble --table 2 --dir "$T/td" -o "$T/t2b.tsv" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$err" == *"gen_mrg-seqpool.tsv: no such metric file"* ]] && [ ! -e "$T/t2b.tsv" ] \
  && ok "a variant's missing metric file: exit 2 naming it, no table" || bad "missing metric file (rc $rc): $err"

# Table 5: token counts from the vit3d config's grid and the windows.
for w in w1x4x4 w2x2x2 w2x1x1; do cp "$T/td/gen_mrg.tsv" "$T/td/gen_mrg-$w.tsv"; done
$PY "$TP" assemble --table 5 --dir "$T/td" --vision-config "$SRC/share/hse/configs/vit3d-demo.json" \
  --windows "1,4,4 2,2,2 1,2,2 2,1,1" --default-window 1,2,2 -o "$T/t5.tsv" 2>/dev/null \
  && [ "$(cut -f2 "$T/t5.tsv" | tail -n +2 | tr '\n' '|')" = "4 tokens, stride (4,1,1)|8 tokens, stride (2,2,2)|16 tokens, stride (4,2,2), default|32 tokens, stride (2,4,4)|" ] \
  && ok "table 5: tokens and strides from the 4x4x4 demo grid" || bad "table 5 rows: $(cut -f2 "$T/t5.tsv" | tr '\n' '|')"

# Table 5 keeps the default's text budget: 64 - 2x16 image tokens = 32 text tokens at every window.
ml=$(for w in 1,4,4 2,2,2 1,2,2 2,1,1; do $PY "$TP" max-length --vision-config "$SRC/share/hse/configs/vit3d-demo.json" \
  --window $w --default-window 1,2,2 --max-length 64; done | tr '\n' ' ')
[ "$ml" = "40 48 64 96 " ] && ok "table 5: --max-length per window keeps the text budget" || bad "max-length per window: $ml"

# v2v-chance: hse-eval on rankings with each volume first, the rest shuffled. a {0}, b {0,1}, c {}:
# the pool is a, b; precision@1: a 1, b 1, c 0 -> 0.6667; precision@2: a (1 + 1/2)/2, b the same, c 0 -> 0.5,
# whatever the order.
$PY -c 'print("VolumeName," + ",".join("l%d" % i for i in range(18)))
for v, k in (("a", 1), ("b", 2), ("c", 0)): print(v + "," + ",".join("1" if i < k else "0" for i in range(18)))' > "$T/l.csv"
printf 'a\t1\ta\t1\na\t2\tb\t0.5\nb\t1\tb\t1\nc\t1\ta\t0.2\n' > "$T/v2v.tsv"
if [ -x "$BIN/hse-eval" ]; then
  $PY "$TP" v2v-chance --labels "$T/l.csv" --ranking "$T/v2v.tsv" --eval "$BIN/hse-eval" --ks 1,2 --repeats 3 > "$T/c.tsv" \
    && grep -qx "$(printf 'precision@1\t0.6667')" "$T/c.tsv" && grep -qx "$(printf 'precision@2\t0.5000')" "$T/c.tsv" \
    && ok "v2v-chance: hse-eval on an untrained encoder's rankings" || bad "v2v-chance: $(tr '\n' ' ' < "$T/c.tsv")"
else
  bad "hse-eval not built ($BIN)"
fi

cp "$T/td/gen_mrg.tsv" "$T/td/gen_bimcv-mrg.tsv"
$PY "$TP" assemble --table 6 --dir "$T/td" -o "$T/t6.tsv" 2>/dev/null \
  && [ "$(cut -f2 "$T/t6.tsv" | tail -n +2)" = "HSENet (Ours), frozen CT-RATE encoders" ] \
  && head -1 "$T/t6.tsv" | grep -q "BLEU-1 (bleu1_precision)" && ok "table 6: one row from gen_bimcv-mrg" || bad "table 6 assembly"

printf 'hse-generate: wrote 80 reports (0.125 s per item after 3.0 s of set-up)\n' > "$T/m.log"
printf 'hse-generate: wrote 9 answers (0.050 s per item after 2.0 s of set-up)\n' > "$T/q.log"
$PY "$TP" speed --mrg-log "$T/m.log" --vqa-log "$T/q.log" --label "hse" -o "$T/t7.tsv" \
  && [ "$(tail -1 "$T/t7.tsv")" = "$(printf '\thse\t0.125\t0.050')" ] && ok "table 7: seconds per item from the logs" || bad "table 7"

# The DAG.
M=(make -n -f "$SRC/Makefile.pipeline" BIN=/nonexistent OUT="$T/o" PYTHON="$PY")
"${M[@]}" tables > "$T/n.txt" 2>&1
c1=$(grep -c -- "--stage 1 " "$T/n.txt"); c2=$(grep -c -- "--stage 2 " "$T/n.txt")
[ "$c1" = 1 ] && [ "$c2" = 4 ] && grep -q -- "--patch-guide text-cls" "$T/n.txt" && grep -q -- "--patch-guide full-text" "$T/n.txt" \
  && grep -q -- "--guide full-text" "$T/n.txt" && grep -q -- "--sa-weight 0" "$T/n.txt" \
  && ok "Table 1: one stage 1, stage 2 and its three variants" || bad "Table 1 DAG: $c1 stage-1, $c2 stage-2 runs"
mrg=$(grep -c -- "hse-finetune .*--task mrg" "$T/n.txt"); vqa=$(grep -c -- "hse-finetune .*--task vqa" "$T/n.txt")
# One command per line (make -n keeps the recipes' backslash-newlines).
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$T/n.txt" > "$T/n1.txt"
[ "$mrg" = 13 ] && [ "$vqa" = 4 ] && grep -q -- "--packer hsenet_qformer" "$T/n1.txt" \
  && grep -- "-o $T/o/mrg-2e3$" "$T/n1.txt" | grep -q -- "--packer-window 1,2,2 *--max-length 64 --encoders 2e3 " \
  && grep -- "-o $T/o/mrg-w2x1x1$" "$T/n1.txt" | grep -q -- "--packer-window 2,1,1 *--max-length .*tables.py max-length" \
  && ok "Tables 2-6: 13 report-generation and 4 VQA fine-tunings, each variant once" || bad "fine-tuning DAG: $mrg mrg, $vqa vqa"
# Table 6: a synthetic BIMCV-R split by hse-dataset, HSENet's BIMCV-R slices, the CT-RATE stage 2 frozen.
B="$T/o/bimcv"
grep -q -- "hse-synth -o $B/synth --layout bimcv-r --seed \$((42 + 1))" "$T/n1.txt" \
  && grep -q -- "hse-dataset bimcv-r $B/synth/dataset *-o $B/split" "$T/n1.txt" \
  && grep -- "-o $B/slices_train.h5" "$T/n1.txt" | grep -q -- "--dataset bimcv-r" \
  && ! grep -- "-o $B/slices_train.h5" "$T/n1.txt" | grep -q -- "--no-resample" \
  && grep -- "-o $T/o/bimcv-mrg$" "$T/n1.txt" | grep -q -- "--volumes $B/volumes_train.h5 --slice-features $B/slice_features_train.h5 --clip $T/o/stage2 --reports $B/split/train_reports.csv --report-column Report_en" \
  && grep -q -- "tables.py assemble --table 6" "$T/n1.txt" \
  && ok "Table 6: synthetic BIMCV-R, split, bimcv-r slices, fine-tuned on the frozen CT-RATE stage 2" || bad "Table 6 DAG"
"${M[@]}" BIMCV_DATA=/data/bimcv table6 > "$T/n6.txt" 2>&1
! grep -q -- "--layout bimcv-r" "$T/n6.txt" && grep -q -- "hse-dataset bimcv-r /data/bimcv " "$T/n6.txt" \
  && ok "Table 6 on BIMCV_DATA: no synthesis, the real root split" || bad "Table 6 with BIMCV_DATA"
"${M[@]}" BERTSCORE_MODEL=/m/minilm table2 > "$T/b.txt" 2>&1
"${M[@]}" BERTSCORE_MODEL= table2 > "$T/b0.txt" 2>&1
[ "$(grep -c -- "hse-eval report --bertscore-model /m/minilm --bertscore-layer -1 " "$T/b.txt")" = 10 ] \
  && ! grep -q -- "--bertscore-model" "$T/b0.txt" \
  && ok "BERT-Score: BERTSCORE_MODEL on every table 2 scoring (model and chance), none when empty" || bad "BERTSCORE_MODEL"
"${M[@]}" TABLES_FAST=1 OUT="$T/f" tables > "$T/f.txt" 2>&1
[ "$(grep -c -- "--max-steps 300" "$T/f.txt")" = 13 ] && ok "TABLES_FAST=1: 300 steps per report fine-tuning" || bad "TABLES_FAST"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
