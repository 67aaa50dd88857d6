#!/usr/bin/env bash
# Every flag is declared in one place in lib/: a flag that several tools take lives in the flag
# table (lib/hse/cli/flags.cpp), the training loop's in train/loop_torch.cpp, the options of every
# tool in cli::add_common. A flag name declared in two files of lib/ fails this test, except the
# homonyms below: one word that names two different things in tools that never share a command line.
set -u
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
$PY - "$SRC/lib" <<'PYEOF'
import os, re, sys
# flag -> why its two declarations are two flags
HOMONYMS = {
    "--size": "hse-synth's volume-size preset (tiny|small|realistic) and hse-preprocess's output D,H,W",
    "--slices": "hse-slice's slices per volume (a count) and hse-embed's input file of kind slices",
    "--dtype": "the stored type (flag table) and hse-generate's hidden older name of --precision",
}
# A declaration: add_option/add_flag/add_list/add_option_function/add_list_option whose first
# string argument names flags ("--a,--b", "-o,--output").
DECL = re.compile(r'add_(?:option|flag|list|list_option|option_function<[^>]*>)\s*\(\s*(?:app\s*,\s*)?"([^"]*--[^"]*)"', re.S)
where = {}
for dp, _, fn in os.walk(sys.argv[1]):
    for f in fn:
        if f.endswith((".cpp", ".h")):
            p = os.path.join(dp, f)
            for m in DECL.finditer(open(p, encoding="utf-8").read()):
                for name in m.group(1).split(","):
                    if name.startswith("--"):
                        where.setdefault(name, []).append(os.path.relpath(p, os.path.dirname(sys.argv[1])))
bad = 0
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
sys.exit(1 if bad else 0)
PYEOF
rc=$?
[ $rc = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $rc
