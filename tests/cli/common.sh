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
