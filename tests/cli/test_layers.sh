#!/usr/bin/env bash
# The layering of lib/hse (hse(7) LAYERS): a folder includes only folders of its own layer or of
# the layers below it, so no domain library includes a tool file (app/) and training never
# depends on inference. A new folder must be placed in a layer here.
set -u
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
$PY - "$SRC/lib/hse" <<'PYEOF'
import os, re, sys
LAYERS = [
    {"cli", "io"},                                                          # errors, exit codes, files
    {"config", "text", "image", "embed", "preprocess", "slice", "synth"},   # no LibTorch: configs, tokenizers, CT, records
    {"model", "eval"},                                                      # models on LibTorch; metrics
    {"decode", "train"},                                                    # decoding; the training loop
    {"vlm"},                                                                # the VLM's data readers
    {"app"},                                                                # the tools: Options, declare(), run()
]
layer = {f: i for i, fs in enumerate(LAYERS) for f in fs}
root = sys.argv[1]
INC = re.compile(r'#include "hse/([a-z0-9_]+)/')
bad = 0
n = 0
for folder in sorted(os.listdir(root)):
    if not os.path.isdir(os.path.join(root, folder)):
        continue
    if folder not in layer:
        print(f"FAIL lib/hse/{folder}/ is in no layer of tests/cli/test_layers.sh"); bad += 1; continue
    for dp, _, fn in os.walk(os.path.join(root, folder)):
        for f in sorted(fn):
            p = os.path.join(dp, f)
            for m in INC.finditer(open(p, encoding="utf-8").read()):
                n += 1
                dep = m.group(1)
                if dep not in layer:
                    print(f"FAIL {os.path.relpath(p, root)} includes hse/{dep}/, which is in no layer"); bad += 1
                elif layer[dep] > layer[folder]:
                    print(f"FAIL {os.path.relpath(p, root)} (layer {layer[folder]}) includes hse/{dep}/ (layer {layer[dep]})")
                    bad += 1
if n < 200:
    print(f"FAIL only {n} includes found: the pattern no longer matches the code"); bad += 1
print(f"{'ok  ' if not bad else 'FAIL'} {n} includes of lib/hse follow the layers")
sys.exit(1 if bad else 0)
PYEOF
rc=$?
[ $rc = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $rc
