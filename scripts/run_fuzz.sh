#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD/bin (fuzz_*, see `make fuzz`) for SECONDS on a copy of its
# corpus (tests/fuzz/corpus/<name>), one after the other. Prints "fuzz NAME: RUNS runs, CRASHES
# crashes" per target; exits 1 if any target crashed (its input is kept in BUILD/findings/NAME/).
# FUZZ_TARGETS (space-separated short names, e.g. "csv h5") limits the run to those targets.
set -u
BUILD=${1:?usage: run_fuzz.sh BUILD SECONDS}
SECONDS_EACH=${2:-60}
SRC=$(cd "$(dirname "$0")/.." && pwd)
crashed=0
for bin in "$BUILD"/bin/fuzz_*; do
  case "$bin" in *_regress) continue ;; esac
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); short=${name#fuzz_}
  # FUZZ_TARGETS="a b": only those targets
  [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $short "* ]] && continue
  work="$BUILD/fuzz-work/$short"; found="$BUILD/findings/$short"
  rm -rf "$work"; mkdir -p "$work" "$found"
  cp -r "$SRC/tests/fuzz/corpus/$short/." "$work/" 2>/dev/null
  log="$BUILD/findings/$short.log"
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$found/" -print_final_stats=1 "$work" > "$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  n=$(find "$found" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  [ "$rc" != 0 ] && [ "$n" = 0 ] && n=1
  echo "fuzz $short: ${runs:-0} runs, $n crashes"
  [ "$n" != 0 ] && { crashed=1; tail -30 "$log" | sed 's/^/    /'; }
done
exit $crashed
