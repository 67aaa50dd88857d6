#!/usr/bin/env bash
# Runs README.md's tour (the sh block between <!-- tour:begin --> and <!-- tour:end -->) as it is
# written, in a fresh directory outside the clone, with no HSE_SHARE and only the tools on PATH:
# first build/bin, then the tools installed (cmake --install) into a prefix that is then moved.
# The tools must find their configs, prompts and vocabulary beside themselves.
set -u
BIN=$(cd "${HSE_BIN_DIR:-build/bin}" && pwd)
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
for t in hse-synth hse-preprocess hse-slice hse-embed hse-pretrain hse-retrieve hse-finetune hse-generate hse-eval hse-info; do
  [ -x "$BIN/$t" ] || { echo "FAIL $t not built"; exit 1; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
awk '/<!-- tour:begin -->/{on=1; next} /<!-- tour:end -->/{on=0} on && !/^```/' "$SRC/README.md" > "$T/tour.sh"
[ -s "$T/tour.sh" ] || { echo "FAIL README.md has no tour block"; exit 1; }
grep -q "hse-finetune" "$T/tour.sh" && grep -q "hse-generate" "$T/tour.sh" || { echo "FAIL the tour skips finetune/generate"; exit 1; }
pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }

tour() {  # label, bin directory
  local label=$1 bin=$2 d="$T/run-$1"
  mkdir -p "$d" && cp "$T/tour.sh" "$d/"
  local start rc
  start=$(date +%s)
  (cd "$d" && env -u HSE_SHARE -u PYTHONPATH PATH="$bin:/usr/bin:/bin" bash -euo pipefail tour.sh > tour.out 2> tour.err)
  rc=$?
  echo "tour on $label: exit $rc in $(( $(date +%s) - start )) s"
  if [ $rc != 0 ]; then
    fail=$((fail + 1))
    echo "FAIL the README tour on $label (exit $rc); its stderr ends:"
    tail -20 "$d/tour.err" | sed 's/^/     /'
    return
  fi
  local W="$d/hse-tour" n
  n=$(grep '^items	' "$d/tour.out" | head -1 | cut -f2)
  check "$label: hse-info describes valid.h5" "grep -q 'dataset	volumes	\[[0-9]*,1,16,64,64\]' '$d/tour.out'"
  check "$label: retrieval prints recall@1 and recall@5 only" "grep -q '^recall@5	' '$d/tour.out' && ! grep -q '^recall@10	' '$d/tour.out'"
  check "$label: one report per validation volume ($n)" "[ -n '$n' ] && [ \$(wc -l < '$W/reports.jsonl') = '$n' ]"
  check "$label: hse-eval report rows" "grep -q '^ce_micro_f1	' '$d/tour.out' && grep -q '^meteor	' '$d/tour.out'"
  check "$label: answers scored" "grep -q '^acc_major	' '$d/tour.out'"
  check "$label: a report straight from a CT file" "grep -q '\"prompt\":\"Can you summarize' '$d/tour.out'"
  check "$label: a single question straight from a CT file" "grep -q '|pleural effusion\"' '$d/tour.out'"
  check "$label: summary lines" "grep -q 'hse-embed: wrote .* in [0-9.]* s' '$d/tour.err' && grep -q 'hse-generate: wrote .* in [0-9.]* s' '$d/tour.err'"
  check "$label: no temporary paths in messages" "! grep -q 'hse-generate-' '$d/tour.err'"
}

tour build/bin "$BIN"
if cmake --install "$BIN/.." --prefix "$T/prefix" > "$T/install.log" 2>&1 && mv "$T/prefix" "$T/moved-prefix"; then
  tour installed "$T/moved-prefix/bin"
else
  fail=$((fail + 1)); echo "FAIL cmake --install"; tail -5 "$T/install.log"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
