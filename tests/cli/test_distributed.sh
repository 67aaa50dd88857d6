#!/usr/bin/env bash
# 2 processes with Gloo on localhost (torchrun's variables) reach the same parameters after 5
# SGD steps as 1 process on the combined batch (tolerance 1e-6 absolute).
set -u
BIN=${HSE_BIN_DIR:-build/bin}
PY=${PYTHON:-python3}
D="$BIN/torch_test_distributed"
[ -x "$D" ] || { echo "skip: $D not built"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PORT=$((29700 + RANDOM % 200))
HSE_DDP_OUT="$T/one.st" "$D" -tc='driver*' > "$T/one.log" 2>&1 || { cat "$T/one.log"; exit 1; }
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT HSE_DDP_OUT="$T/two.st" \
    timeout 120 "$D" -tc='driver*' > "$T/r$r.log" 2>&1 &
done
wait %1; rc0=$?
wait %2; rc1=$?
[ $rc0 = 0 ] && [ $rc1 = 0 ] || { echo "FAIL: ranks exited $rc0 $rc1"; cat "$T"/r*.log; exit 1; }
$PY - "$T/one.st" "$T/two.st" <<'PYEOF'
import sys
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
worst = max(float(abs(a[k] - b[k]).max()) for k in a)
# The 5 steps must have moved the weights, or the equality would hold for any two idle runs.
moved = max(float(abs(a[k] - a["init." + k]).max()) for k in a if not k.startswith("init."))
print(f"max |1 process - 2 processes| = {worst:.2e} over {len(a)} tensors; training moved them by {moved:.2e}")
assert worst <= 1e-6, worst
assert moved > 1e-3, moved
print("1 passed, 0 failed")
PYEOF
