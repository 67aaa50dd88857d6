#!/usr/bin/env bash
# Runs README.md's tour (the sh block between <!-- tour:begin --> and <!-- tour:end -->) as it is
# written, in a fresh directory outside the clone, with only the built tools on PATH and no
# HSE_SHARE: the tools must find their configs, prompts and vocabulary beside themselves.
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
start=$(date +%s)
(cd "$T" && env -u HSE_SHARE PATH="$BIN:/usr/bin:/bin" bash -euo pipefail tour.sh > tour.out 2> tour.err)
rc=$?
echo "tour: exit $rc in $(( $(date +%s) - start )) s"
if [ $rc != 0 ]; then
  echo "FAIL the README tour (exit $rc); its stderr ends:"
  tail -20 "$T/tour.err" | sed 's/^/     /'
  exit 1
fi
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
W="$T/hse-tour"
check "hse-info describes valid.h5" "grep -q 'dataset	volumes	\[8,1,16,64,64\]' '$T/tour.out'"
check "retrieval prints recall@1 and recall@5 only" "grep -q '^recall@5	' '$T/tour.out' && ! grep -q '^recall@10	' '$T/tour.out'"
check "8 reports in reports.jsonl" "[ \$(wc -l < '$W/reports.jsonl') = 8 ]"
check "hse-eval report rows" "grep -q '^ce_micro_f1	' '$T/tour.out' && grep -q '^meteor	' '$T/tour.out'"
check "answers scored" "grep -q '^acc_major	' '$T/tour.out'"
check "a report straight from a CT file" "grep -q '\"prompt\":\"Can you summarize' '$T/tour.out'"
check "a single question straight from a CT file" "grep -q 'pleural effusion' '$T/tour.out'"
check "every tool ends with a summary line" "grep -q 'hse-embed: wrote .* in [0-9.]* s' '$T/tour.err' && grep -q 'hse-generate: wrote .* in [0-9.]* s' '$T/tour.err'"
check "no temporary paths in messages" "! grep -q 'hse-generate-' '$T/tour.err'"
[ $fail = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
