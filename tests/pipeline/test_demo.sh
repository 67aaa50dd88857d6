#!/usr/bin/env bash
# Makefile.pipeline end to end on a small synthetic dataset (PROFILE=demo with 3+2 patients):
# synth -> preprocess -> slice -> slice features -> stage 1 -> stage 2 -> embed -> retrieve -> eval -> summary.
set -eu
BIN=$(cd "${HSE_BIN_DIR:-build/bin}" && pwd)
SRC=${HSE_SOURCE_DIR:-.}
PY=${PYTHON:-python3}
T=$(mktemp -d)
# The demo profile with 3+2 patients and a few optimiser steps per stage.
ARGS=(SYNTH_ARGS="--size tiny --n-train 3 --n-valid 2"
      STAGE1_ARGS="--batch-size 2 --max-steps 3 --logit-scale exp --no-augment"
      STAGE2_ARGS="--batch-size 2 --max-steps 2 --logit-scale exp --no-augment"
      MRG_ARGS="--train-tokenizer 300 --max-steps 2 --batch-size 2 --no-augment" MRG_MAX_LENGTH=64
      MRG_GEN_ARGS="--max-new-tokens 8"
      VQA_ARGS="--train-tokenizer 300 --max-steps 2 --batch-size 2 --max-length 48 --no-augment"
      VQA_GEN_ARGS="--max-new-tokens 6")
trap 'rm -rf "$T"' EXIT
make -s -f "$SRC/Makefile.pipeline" BIN="$BIN" OUT="$T/demo" "${ARGS[@]}" PYTHON="$PY"
"$PY" - "$T/demo" <<'PYEOF'
import sys, csv, h5py, numpy as np
out = sys.argv[1]
n_meta = {s: sum(1 for _ in csv.DictReader(open(f"{out}/synth/dataset/metadata/{m}_metadata.csv")))
          for s, m in [("train", "train"), ("valid", "validation")]}
for split in ("train", "valid"):
    with h5py.File(f"{out}/volumes_{split}.h5") as f:
        v = f["volumes"]
        assert v.shape == (n_meta[split], 1, 16, 64, 64), v.shape
        a = v[:]
        assert a.min() >= 0 and a.max() <= 1 and a.max() > 0.9, (a.min(), a.max())
        assert f.attrs["hse_kind"] == "volumes"
    with h5py.File(f"{out}/slices_{split}.h5") as f:
        assert f["slices"].shape == (n_meta[split], 16, 3, 32, 32), f["slices"].shape
        assert list(f["ids"].asstr()[:]) == list(h5py.File(f"{out}/volumes_{split}.h5")["ids"].asstr()[:])
    with h5py.File(f"{out}/slice_features_{split}.h5") as f:
        assert f["slice_features"].shape == (n_meta[split], 16, 64), f["slice_features"].shape
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/summary.tsv")]
assert rows[0] == ["task", "metric", "value", "chance"], rows[0]
tasks = {r[0]: r for r in rows[1:]}
want = {f"retrieval_{d}_{m}" for d in ("r2v", "v2r") for m in ("stage1", "stage2")}
assert set(tasks) == want | {"zeroshot_stage1", "zeroshot_stage2", "mrg_generation", "vqa_generation"}, sorted(tasks)
for m in ("stage1", "stage2"):  # zero-shot detection: macro AUROC beside chance 0.5, 18 labels per volume
    r = tasks[f"zeroshot_{m}"]
    assert r[1] == "auroc_macro" and 0 <= float(r[2]) <= 1 and r[3] == "0.5000", r
    assert sum(1 for _ in open(f"{out}/zeroshot_{m}.tsv")) == 18 * n_meta["valid"], m
assert tasks["mrg_generation"][1] == "ce_micro_f1" and tasks["vqa_generation"][1] == "acc_major", tasks
for t in ("mrg_generation", "vqa_generation"):
    assert all(0 <= float(x) <= 1 for x in tasks[t][2:]), tasks[t]
import json
gen = [json.loads(l) for l in open(f"{out}/mrg_valid.jsonl")]
assert len(gen) == n_meta["valid"] and all("prediction" in g and "reference" in g for g in gen), gen[:1]
n_q = sum(1 for _ in csv.DictReader(open(f"{out}/synth/dataset/radgenome_files/validation_vqa_location.csv")))
assert sum(1 for _ in open(f"{out}/vqa_valid.jsonl")) == n_q
n = n_meta["valid"]
for t, r in tasks.items():
    if not t.startswith("retrieval"):
        continue
    assert r[1] == "recall@5", r
    assert 0 <= float(r[2]) <= 1, r
    assert abs(float(r[3]) - min(1, 5 / n)) < 1e-4, (r, n)
for m in ("stage1", "stage2"):
    ranks = [l.split("\t") for l in open(f"{out}/r2v_{m}.tsv")]
    assert len(ranks) == n * n, (m, len(ranks))   # every report ranks all n volumes (-k 10 >= n)
print("ok   pipeline: volumes, slices, slice features, stage 1 + 2, retrieval, zero-shot and generation rows in summary.tsv")
PYEOF
# A second run is a no-op (Make's DAG is complete and up to date).
make -s -q -f "$SRC/Makefile.pipeline" BIN="$BIN" OUT="$T/demo" "${ARGS[@]}" PYTHON="$PY"
echo "1 passed, 0 failed"
