#!/usr/bin/env bash
# The structure of lib/ (hse(7) ARCHITECTURE), checked on the sources:
#  1. Every flag is declared in one place: a flag that several tools take lives in the flag table
#     (lib/hse/cli/flags.cpp), the training loop's in train/loop_torch.cpp, the options of every
#     tool in cli::add_common. A flag name declared in two files of lib/ fails, except the
#     homonyms listed: one word that names two different things in tools that never share a
#     command line.
#  2. The layers: a folder of lib/hse includes only folders of its own layer or of the layers
#     below, so no domain library includes a tool file (app/) and training never depends on
#     inference. A new folder must be placed in a layer here.
set -u
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
$PY - "$SRC/lib" <<'PYEOF'
import os, re, sys
bad = 0
# ---- 1. each flag declared once
# flag -> why its two declarations are two flags
HOMONYMS = {
    "--size": "hse-synth's volume-size preset (tiny|small|realistic) and hse-preprocess's output D,H,W",
    "--slices": "hse-slice's slices per volume (a count) and hse-embed's input file of kind slices",
    "--dtype": "the stored type (flag table) and hse-generate's hidden older name of --precision",
}
# A declaration: add_option/add_flag/add_list/add_option_function/add_list_option whose first
# string argument names flags ("--a,--b", "-o,--output").
DECL = re.compile(r'add_(?:option|flag|flag_callback|list|list_option|option_function<[^>]*>)\s*\(\s*(?:app\s*,\s*)?"([^"]*--[^"]*)"', re.S)
where = {}
for dp, _, fn in os.walk(sys.argv[1]):
    for f in fn:
        if f.endswith((".cpp", ".h")):
            p = os.path.join(dp, f)
            for m in DECL.finditer(open(p, encoding="utf-8").read()):
                for name in m.group(1).split(","):
                    if name.startswith("--"):
                        where.setdefault(name, []).append(os.path.relpath(p, os.path.dirname(sys.argv[1])))
if len(where) < 100:
    print(f"FAIL found only {len(where)} flags: the declaration pattern no longer matches the code"); bad += 1
for name, files in sorted(where.items()):
    if len(files) > 1 and not (name in HOMONYMS and len(files) == 2):
        print(f"FAIL {name} declared {len(files)} times: {', '.join(files)} (declare it once, in lib/hse/cli/flags.cpp)")
        bad += 1
for name in HOMONYMS:
    if len(where.get(name, [])) != 2:
        print(f"FAIL {name} is listed as a homonym but declared {len(where.get(name, []))} times: update HOMONYMS")
        bad += 1
print(f"{'ok  ' if not bad else 'FAIL'} {len(where)} flags, each declared once ({len(HOMONYMS)} homonyms)")

# ---- 2. the layers
LAYERS = [
    {"cli", "io"},                                                          # errors, exit codes, files
    {"config", "text", "image", "embed", "preprocess", "slice", "synth"},   # no LibTorch: configs, tokenizers, CT, records
    {"model", "eval", "search"},                                            # models on LibTorch; metrics; exact search
    {"decode", "train"},                                                    # decoding; the training loop
    {"vlm"},                                                                # the VLM's data readers
    {"app"},                                                                # the tools: Options, declare(), run()
]
layer = {f: i for i, fs in enumerate(LAYERS) for f in fs}
root = os.path.join(sys.argv[1], "hse")
INC = re.compile(r'#include "hse/([a-z0-9_]+)/')
n = 0
for folder in sorted(os.listdir(root)):
    if not os.path.isdir(os.path.join(root, folder)):
        continue
    if folder not in layer:
        print(f"FAIL lib/hse/{folder}/ is in no layer of tests/cli/test_structure.sh"); bad += 1; continue
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
sys.exit(1 if bad else 0)
PYEOF
rc=$?
[ $rc = 0 ] && echo "2 passed, 0 failed" || echo "0 passed, 1 failed"
exit $rc
