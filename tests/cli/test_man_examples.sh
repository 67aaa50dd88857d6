#!/usr/bin/env bash
# Runs the EXAMPLES of every man page: lines starting with "$ " between .SH EXAMPLES and the
# next .SH, in a fresh directory per page, with the built tools first on PATH.
set -u
BIN=$(cd "${HSE_BIN_DIR:-build/bin}" && pwd)
SRC=${HSE_SOURCE_DIR:-.}
PY=${PYTHON:-python3}
export PATH="$BIN:$(dirname "$(command -v "$PY")"):$PATH"
export HSE_SHARE="$(cd "$SRC/share/hse" && pwd)"
pass=0
fail=0
for page in "$SRC"/man/*.[157]; do
  cmds=$(awk '/^\.SH EXAMPLES/{on=1; next} /^\.SH/{on=0} on && /^\$ /{sub(/^\$ /, ""); print}' "$page")
  [ -n "$cmds" ] || { echo "FAIL $(basename "$page"): no EXAMPLES"; fail=$((fail + 1)); continue; }
  dir=$(mktemp -d)
  ok=1
  while IFS= read -r c; do
    [ -n "$c" ] || continue
    # roff escapes used in examples: \- is a hyphen, \e a backslash
    c=${c//\\-/-}
    c=${c//\\e/\\}  # \e is a backslash
    if ! (cd "$dir" && bash -o pipefail -c "$c" >/dev/null 2>"$dir/.err"); then
      echo "FAIL $(basename "$page"): $c"
      sed 's/^/     /' "$dir/.err"
      ok=0
      break
    fi
  done <<< "$cmds"
  rm -rf "$dir"
  if [ $ok = 1 ]; then pass=$((pass + 1)); echo "ok   $(basename "$page")"; else fail=$((fail + 1)); fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
