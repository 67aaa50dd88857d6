#!/usr/bin/env bash
# Each man page's OPTIONS section lists every flag of its tool's --help (a flag counts as listed by
# its long or its short name), and every --flag in an OPTIONS section exists in --help (a flag
# written after another tool's name, "hse-embed \-\-slices", is a cross-reference and not checked).
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
for t in hse-preprocess hse-slice hse-embed hse-retrieve hse-classify hse-pretrain hse-finetune hse-generate hse-eval hse-info hse-synth hse-dataset; do
  [ -x "$BIN/$t" ] || { echo "skip: $t not built"; exit 77; }
done
$PY - "$BIN" "$SRC/man" <<'PYEOF'
import os, re, subprocess, sys
BIN, MAN = sys.argv[1], sys.argv[2]
TOOLS = {"hse-preprocess": [], "hse-slice": [], "hse-embed": [], "hse-retrieve": [], "hse-classify": [],
         "hse-pretrain": [], "hse-finetune": [], "hse-generate": [], "hse-eval": ["report", "vqa", "retrieval", "classification"],
         "hse-info": [], "hse-synth": [], "hse-dataset": []}
# Every tool of tools/ is checked here.
missing = sorted(set(d for d in os.listdir(os.path.join(MAN, "..", "tools")) if d.startswith("hse-")) - set(TOOLS))
if missing:
    print(f"FAIL tools not covered by this test: {missing}")
    sys.exit(1)
OPT = re.compile(r"^ {1,4}(--?[a-z0-9][a-z0-9-]*(?:,--?[a-z0-9][a-z0-9-]*)*)")

def help_flags(argv):
    """--flag -> its short names, from CLI11's --help."""
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, check=True).stdout
    flags = {}
    for line in out.splitlines():
        m = OPT.match(line)
        if m:
            parts = m.group(1).split(",")
            for p in parts:
                if p.startswith("--"):
                    flags[p] = [q for q in parts if not q.startswith("--")]
    for k in ("--help", "--version"):
        flags.pop(k, None)
    return flags

def man_flags(page):
    text = open(os.path.join(MAN, page + ".1"), encoding="utf-8").read()
    m = re.search(r"^\.SH OPTIONS\n(.*?)(?=^\.SH )", text, re.S | re.M)
    if not m:
        return None
    body = re.sub(r"\\f[BIRP]", "", m.group(1)).replace("\\-", "-").replace('"', "")
    body = re.sub(r"hse-[a-z]+ +--[a-z0-9-]+", "", body)  # cross-references to other tools
    return {f.rstrip("-") for f in re.findall(r"(?<![\w-])--?[a-z0-9][a-z0-9-]*", body)}

failed = 0
for tool, subs in TOOLS.items():
    flags = {}
    for sub in subs or [None]:
        flags.update(help_flags([os.path.join(BIN, tool)] + ([sub] if sub else [])))
    listed = man_flags(tool)
    if listed is None:
        print(f"FAIL {tool}.1: no OPTIONS section"); failed += 1; continue
    missing = sorted(f for f, short in flags.items() if f not in listed and not any(s in listed for s in short))
    known = set(flags) | {s for short in flags.values() for s in short} | {"--help", "--version"}
    unknown = sorted(f for f in listed if f.startswith("--") and f not in known)
    if missing or unknown:
        failed += 1
        print(f"FAIL {tool}.1: OPTIONS lacks {missing}; lists flags --help does not know: {unknown}")
    else:
        print(f"ok   {tool}.1 lists all {len(flags)} flags of --help, and no other")
sys.exit(1 if failed else 0)
PYEOF
