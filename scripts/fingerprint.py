#!/usr/bin/env python3
"""Fingerprints the outputs of a pipeline run, for refactors that must change no result.

Prints one line per output file below DIR (synth/ and *.log left out): a hash and the path. HDF5
files are hashed by content (datasets and attributes, the provenance record left out: it holds
times and command lines); the --metrics TSVs without their timing columns (step_s, samples_per_s,
data_wait_s); every other file byte for byte. Two runs of the same code at the same OUT path give
the same lines; diff the lines of a run before and after a change.

  make -f Makefile.pipeline BIN=build/bin OUT=/tmp/fp SYNTH_ARGS="--size tiny --n-train 12 --n-valid 4" \
    STAGE1_ARGS="--batch-size 4 --max-steps 6 --grad-accum 2 --warmup-ratio 0.3 --logit-scale exp --no-augment" \
    STAGE2_ARGS="--batch-size 4 --max-steps 4 --logit-scale exp" \
    MRG_ARGS="--train-tokenizer 300 --max-steps 5 --batch-size 2 --grad-accum 2 --save-steps 2 --max-length 64" \
    MRG_GEN_ARGS="--max-new-tokens 8" VQA_GEN_ARGS="--max-new-tokens 6" \
    VQA_ARGS="--train-tokenizer 300 --max-steps 3 --batch-size 2 --max-length 48 --no-augment"
  python3 scripts/fingerprint.py /tmp/fp > before.txt     # then the same after the change, and diff

(the seeded tiny run of issue 18: 68 files, every checkpoint included, in about 12 s).
"""
import hashlib, os, sys

import h5py
import numpy as np

TIMING = ("step_s", "samples_per_s", "data_wait_s")


def main(root):
    for dp, dn, fn in sorted(os.walk(root)):
        dn.sort()
        if "/synth" in dp[len(root):]:
            continue
        for f in sorted(fn):
            p = os.path.join(dp, f)
            if f.endswith(".log"):
                continue
            h = hashlib.sha256()
            if f.endswith(".h5"):
                with h5py.File(p) as F:
                    for k in sorted(F.attrs):
                        h.update(f"{k}={F.attrs[k]}".encode())

                    def walk(name, obj):
                        if name == "provenance":
                            return
                        if isinstance(obj, h5py.Dataset):
                            a = obj[()]
                            h.update(name.encode())
                            h.update(repr(a.tolist()).encode() if a.dtype == object else np.ascontiguousarray(a).tobytes())
                        for k in sorted(obj.attrs):
                            h.update(f"{name}.{k}={obj.attrs[k]}".encode())
                    F.visititems(walk)
            elif f.endswith("_metrics.tsv"):
                rows = [l.rstrip("\n").split("\t") for l in open(p)]
                keep = [i for i, c in enumerate(rows[0]) if c not in TIMING]
                for r in rows:
                    h.update("\t".join(r[i] for i in keep if i < len(r)).encode())
            else:
                h.update(open(p, "rb").read())
            print(h.hexdigest()[:16], os.path.relpath(p, root))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
