#!/usr/bin/env bash
# hse-classify: CT-CLIP's zero-shot probabilities, checked against an independent composition of
# hse-embed's image and prompt embeddings with the checkpoint's logit scale in numpy (softmax over
# each label's two prompts); the same output for 0 and 3 data workers; --prompts pairs; the
# refusals; and hse-eval classification on its output.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
. "$SRC/tests/cli/common.sh"
need_tools hse-classify hse-pretrain hse-embed hse-synth hse-preprocess hse-eval
VOC=$(tiny_vocab) || exit 77
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 10 --n-valid 2 --seed 8 -q || exit 1
D="$T/s/dataset"
"$BIN/hse-preprocess" -q --size 8,32,32 -o "$T/tr.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
"$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$D/radiology_text_reports/train_reports.csv" \
  --vision-config "$SRC/share/hse/configs/vit3d-tiny.json" --text-model "$SRC/share/hse/configs/bert-tiny.json" \
  --vocab "$VOC" --batch-size 4 --max-length 64 --max-steps 6 --lr 1e-3 --threads 1 -o "$T/clip" || exit 1
C=("$BIN/hse-classify" --model "$T/clip" --volumes "$T/tr.h5" --max-length 64 --batch-size 3 --threads 1 -q)

"${C[@]}" --data-workers 0 > "$T/p0.tsv" && "${C[@]}" --data-workers 3 > "$T/p3.tsv" \
  && cmp -s "$T/p0.tsv" "$T/p3.tsv" && ok "--data-workers 0 and 3: the same output" || bad "hse-classify --data-workers"

# The reference: prompts embedded by hse-embed --reports (one CSV row per prompt), volumes by
# hse-embed --volumes, the scale from model.safetensors and config.json, softmax in numpy.
$PY - "$SRC/share/hse/labels/ct-rate-abnormalities.txt" "$T/prompts.csv" <<'PYEOF'
import csv, sys
labels = [l.strip() for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["VolumeName", "Findings_EN"])
    for i, l in enumerate(labels):
        w.writerow([f"{i}+", f"{l} is present."])
        w.writerow([f"{i}-", f"{l} is not present."])
PYEOF
"$BIN/hse-embed" -q --model "$T/clip" --reports "$T/prompts.csv" --max-length 64 -o "$T/text.h5" \
  && "$BIN/hse-embed" -q --model "$T/clip" --volumes "$T/tr.h5" -o "$T/img.h5" \
  && $PY - "$T" "$SRC/share/hse/labels/ct-rate-abnormalities.txt" <<'PYEOF' && ok "probabilities = softmax(scale x cosine) over each label's prompt pair (1e-5)" || bad "hse-classify against the numpy reference"
import json, sys, h5py, numpy as np
from safetensors.numpy import load_file
t = sys.argv[1]
labels = [l.strip() for l in open(sys.argv[2]) if l.strip()]
form = json.load(open(f"{t}/clip/config.json"))["hse"]["logit_scale_form"]
s = float(load_file(f"{t}/clip/model.safetensors")["logit_scale"])
scale = np.exp(s) if form == "exp" else s
txt = h5py.File(f"{t}/text.h5")["embeddings"][:].astype(np.float64)
img = h5py.File(f"{t}/img.h5")
ids = [i.decode() if isinstance(i, bytes) else i for i in img["ids"][:]]
logits = scale * img["embeddings"][:].astype(np.float64) @ txt.T            # [N, 2L]
logits = logits.reshape(len(ids), len(labels), 2)
p = np.exp(logits - logits.max(2, keepdims=True))
p = (p / p.sum(2, keepdims=True))[:, :, 0]
rows = [l.rstrip("\n").split("\t") for l in open(f"{t}/p0.tsv")]
assert len(rows) == len(ids) * len(labels), len(rows)
worst = 0.0
for k, (i, lab, prob) in enumerate(rows):
    assert i == ids[k // len(labels)] and lab == labels[k % len(labels)], (k, i, lab)
    worst = max(worst, abs(float(prob) - p[k // len(labels), k % len(labels)]))
print(f"     max |hse - numpy| = {worst:.2e}")
assert worst <= 1e-5, worst
PYEOF

# --prompts: label<TAB>positive<TAB>negative.
printf 'Effusion\tThere is pleural effusion.\tThere is no pleural effusion.\n# a comment\n\nNodule\tA nodule.\tNo nodule.\n' > "$T/pairs.tsv"
"${C[@]}" --prompts "$T/pairs.tsv" > "$T/pp.tsv" && [ "$(wc -l < "$T/pp.tsv")" = $((2 * $("$BIN/hse-info" --ids "$T/tr.h5" | wc -l))) ] \
  && [ "$(cut -f2 "$T/pp.tsv" | sort -u | tr '\n' ,)" = "Effusion,Nodule," ] && ok "--prompts: two labels" || bad "--prompts"
printf 'Effusion\tonly one prompt\n' > "$T/badpairs.tsv"
err=$("${C[@]}" --prompts "$T/badpairs.tsv" 2>&1 >/dev/null); rc=$?
[ $rc = 3 ] && [[ "$err" == *"badpairs.tsv: line 1: expected label<TAB>positive prompt<TAB>negative prompt"* ]] \
  && ok "malformed --prompts: exit 3 naming the line" || bad "malformed prompts (rc $rc): $err"

# hse-eval classification on it: every label with both classes among the training volumes is scored.
"$BIN/hse-eval" classification --labels "$D/multi_abnormality_labels/train_predicted_labels.csv" --json "$T/p0.tsv" \
  > "$T/m.json" 2> "$T/m.err" && $PY - "$T/m.json" <<'PYEOF' && ok "hse-eval classification scores it (AUROC in [0, 1])" || { cat "$T/m.err"; bad "hse-eval classification"; }
import json, sys
m = json.load(open(sys.argv[1]))
assert 1 <= m["labels_scored"] <= 18 and 0 <= m["auroc_macro"] <= 1, m
PYEOF
# CT files: the checkpoint's hse_inputs.json (hse-pretrain) replayed in-process gives the same
# volumes, so the same probabilities as the HDF5 route; for a stage-2 (2E3) model also the slices
# and slice features (its 2-D encoder recorded by hse-embed --slices).
M="$D/metadata/train_metadata.csv"
CT=("$BIN/hse-classify" --max-length 64 --batch-size 3 --threads 1 -q --root "$D" --metadata "$M")
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["volumes"]["recipe"]=="hsenet-3d" and "clip" not in r and "slices" not in r, r' "$T/clip/hse_inputs.json" \
  && "${CT[@]}" --model "$T/clip" > "$T/ct1.tsv" && cmp -s "$T/p0.tsv" "$T/ct1.tsv" \
  && ok "stage 1 on CT files: the recorded volume recipe, the same probabilities as --volumes" || bad "hse-classify on CT files (stage 1)"
"$BIN/hse-slice" -q --no-resample --image-size 32 --slices 4 --root "$D" --metadata "$M" -o "$T/sl.h5" \
  && "$BIN/hse-embed" -q --slices "$T/sl.h5" --random-init 3 --vit2d-config "$SRC/share/hse/configs/vit2d-tiny.json" -o "$T/sf.h5" \
  && "$BIN/hse-pretrain" -q --stage 2 --stage1 "$T/clip" --init "$T/clip" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" \
       --reports "$D/radiology_text_reports/train_reports.csv" --batch-size 4 --max-length 64 --max-steps 2 --threads 1 -o "$T/clip2" \
  && "$BIN/hse-classify" --model "$T/clip2" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" --max-length 64 --batch-size 3 \
       --threads 1 -q > "$T/s2.tsv" \
  && "${CT[@]}" --model "$T/clip2" > "$T/ct2.tsv" && cmp -s "$T/s2.tsv" "$T/ct2.tsv" \
  && [ -f "$T/clip2/slice_encoder_config.json" ] \
  && ok "stage 2 on CT files: volumes, slices and slice features replayed, the same probabilities" || bad "hse-classify on CT files (stage 2)"
rm "$T/clip2/hse_inputs.json"
refused "a CLIP without hse_inputs.json" 3 "clip2/hse_inputs.json" "does not record how its volumes were made" - -- "${CT[@]}" --model "$T/clip2"
refused "--volumes and CT files" 2 "" "CT inputs replace --volumes" - -- "${CT[@]}" --model "$T/clip" --volumes "$T/tr.h5"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
