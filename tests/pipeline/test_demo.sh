#!/usr/bin/env bash
# Makefile.pipeline end to end on a small synthetic dataset: synth -> preprocess -> slice -> summary.
set -eu
BIN=$(cd "${HSE_BIN_DIR:-build/bin}" && pwd)
SRC=${HSE_SOURCE_DIR:-.}
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
make -s -f "$SRC/Makefile.pipeline" BIN="$BIN" OUT="$T/demo" SYNTH_ARGS="--size tiny --n-train 3 --n-valid 2" PYTHON="$PY"
"$PY" - "$T/demo" <<'PYEOF'
import sys, csv, h5py, numpy as np
out = sys.argv[1]
n_meta = {s: sum(1 for _ in csv.DictReader(open(f"{out}/synth/dataset/metadata/{m}_metadata.csv")))
          for s, m in [("train", "train"), ("valid", "validation")]}
for split in ("train", "valid"):
    with h5py.File(f"{out}/volumes_{split}.h5") as f:
        v = f["volumes"]
        assert v.shape == (n_meta[split], 1, 32, 256, 256), v.shape
        a = v[:]
        assert a.min() >= 0 and a.max() <= 1 and a.max() > 0.9, (a.min(), a.max())
        assert f.attrs["hse_kind"] == "volumes"
    with h5py.File(f"{out}/slices_{split}.h5") as f:
        assert f["slices"].shape == (n_meta[split], 32, 3, 224, 224), f["slices"].shape
        assert list(f["ids"].asstr()[:]) == list(h5py.File(f"{out}/volumes_{split}.h5")["ids"].asstr()[:])
head = open(f"{out}/summary.tsv").readline().rstrip("\n").split("\t")
assert head == ["task", "metric", "value", "chance"], head
print("ok   pipeline: volumes, slices, summary.tsv")
PYEOF
# A second run is a no-op (Make's DAG is complete and up to date).
make -s -q -f "$SRC/Makefile.pipeline" BIN="$BIN" OUT="$T/demo" SYNTH_ARGS="--size tiny --n-train 3 --n-valid 2"
echo "1 passed, 0 failed"
