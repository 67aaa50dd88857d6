#!/usr/bin/env bash
# The newcomer's path without silent wrong results (issue 14): values that cannot be HU are
# refused, ids cannot collide, recall@K never goes deeper than the rankings, inline references
# are not silently replaced, list options take exactly their count, warnings come once and obey
# -q, every tool ends with a summary line, hse-info describes mixed files and directories.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
for t in hse-synth hse-preprocess hse-slice hse-info hse-eval; do
  [ -x "$BIN/$t" ] || { echo "FAIL $t not built"; exit 1; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
expect() {  # name, expected exit code, pattern in stderr, command...
  local name=$1 code=$2 pat=$3
  shift 3
  "$@" > "$T/out" 2> "$T/err"
  local rc=$?
  if [ $rc = "$code" ] && [ "$(wc -l < "$T/err")" -le 2 ] && grep -q -- "$pat" "$T/err"; then ok "$name (exit $rc)"; else
    bad "$name (exit $rc, want $code)"
    sed 's/^/     /' "$T/err"
  fi
}
P="$BIN/hse-preprocess"
"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 6 --n-valid 0 --seed 11 -q || exit 1
D="$T/s/dataset"
META="$D/metadata/train_metadata.csv"
read -r V1 V2 < <($PY - "$D/truth.jsonl" "$D" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
v1 = next(r for r in rows if r["convention"] == "v1" and r["intercept"] == -1024)
v2 = next(r for r in rows if r["convention"] == "v2")
root = sys.argv[2].rsplit("/dataset", 1)[0]
print(root + "/" + v1["path"], root + "/" + v2["path"])
PYEOF
)
[ -f "$V1" ] && [ -f "$V2" ] || { echo "FAIL no v1/v2 files in truth.jsonl ($V1, $V2)"; exit 1; }
SZ=(--size 8,32,32 --no-resample)

# 1. HU: a CT-RATE v1 file (HU+1024, nothing in the header) without metadata is refused.
expect "v1 file without metadata: refused" 3 "cannot be HU.*--metadata.*--rescale-slope" "$P" "${SZ[@]}" -o "$T/x.h5" "$V1"
[ ! -e "$T/x.h5" ] && ok "no output after the refusal" || bad "an output after the refusal"
expect "hse-slice refuses it too" 3 "cannot be HU" "$BIN/hse-slice" --no-resample --image-size 32 --slices 4 -o "$T/x.h5" "$V1"
"$P" "${SZ[@]}" -q -o "$T/meta.h5" --metadata "$META" "$V1" && "$P" "${SZ[@]}" -q -o "$T/flags.h5" \
  --rescale-slope 1 --rescale-intercept -1024 "$V1" && $PY - "$T/meta.h5" "$T/flags.h5" <<'PYEOF' \
  && ok "--rescale-slope/--rescale-intercept = the metadata's values" || bad "--rescale-slope/--rescale-intercept"
import sys, h5py, numpy as np
a, b = (h5py.File(p)["volumes"][:] for p in sys.argv[1:3])
assert np.array_equal(a, b)
PYEOF
"$P" "${SZ[@]}" -q --hu as-is -o "$T/asis.h5" "$V1" && ok "--hu as-is keeps the stored values" || bad "--hu as-is"
"$P" "${SZ[@]}" -q -o "$T/v2.h5" "$V2" && ok "a v2 file (HU) without metadata" || bad "v2 without metadata"
expect "--rescale-slope alone" 2 "go together" "$P" "${SZ[@]}" --rescale-slope 1 -o "$T/x.h5" "$V1"
expect "--rescale-slope with --metadata" 2 "one or the other" "$P" "${SZ[@]}" --rescale-slope 1 --rescale-intercept -1024 --metadata "$META" -o "$T/x.h5" "$V1"

# Warnings: once, and none under -q; the summary line.
"$P" "${SZ[@]}" -o "$T/w.h5" --rescale-slope 1 --rescale-intercept -1024 "$V1" 2> "$T/w.err"
[ "$(grep -c 'warning: .*no voxel spacing' "$T/w.err")" = 1 ] && ok "the spacing warning once" || { bad "spacing warning"; cat "$T/w.err"; }
grep -q "^hse-preprocess: wrote 1 volumes to .* in [0-9.]* s$" "$T/w.err" && ok "summary line 'wrote ... in T s'" || bad "summary line"
"$P" "${SZ[@]}" -q -o "$T/w.h5" --rescale-slope 1 --rescale-intercept -1024 "$V1" 2> "$T/wq.err"
[ ! -s "$T/wq.err" ] && ok "-q silences warnings" || { bad "-q prints: $(cat "$T/wq.err")"; }

# 4. Ids: one rule, no collisions.
mkdir -p "$T/pat/pa" "$T/pat/pb"
cp "$V2" "$T/pat/pa/ct.nii.gz"
cp "$V2" "$T/pat/pb/ct.nii.gz"
"$P" "${SZ[@]}" -q -o "$T/ids.h5" "$T/pat/pa/ct.nii.gz" "$T/pat/pb/ct.nii.gz" \
  && [ "$("$BIN/hse-info" -q --ids "$T/ids.h5" | tr '\n' ' ')" = "pa/ct.nii.gz pb/ct.nii.gz " ] \
  && ok "pa/ct.nii.gz and pb/ct.nii.gz keep apart" || bad "ids of pa/ct.nii.gz pb/ct.nii.gz: $("$BIN/hse-info" --ids "$T/ids.h5" 2>&1 | tr '\n' ' ')"
"$P" "${SZ[@]}" -q -o "$T/dir.h5" "$T/pat" && [ "$("$BIN/hse-info" -q --ids "$T/dir.h5" | tr '\n' ' ')" = "pa/ct.nii.gz pb/ct.nii.gz " ] \
  && ok "a directory of NIfTI files is searched recursively" || bad "directory input"
"$P" "${SZ[@]}" -q -o "$T/one.h5" "$V2" && [ "$("$BIN/hse-info" -q --ids "$T/one.h5")" = "$(basename "$V2")" ] \
  && ok "a CT-RATE file keeps its VolumeName" || bad "VolumeName id"
expect "one file twice: refused naming both" 3 "same id" "$P" "${SZ[@]}" -o "$T/x.h5" "$V2" "$(dirname "$V2")/./$(basename "$V2")"
mkdir -p "$T/twin/a" "$T/twin/b" && cp "$V2" "$T/twin/a/" && cp "$V2" "$T/twin/b/"
expect "two CT-RATE files of one name: refused" 3 "same id" "$P" "${SZ[@]}" -o "$T/x.h5" "$T/twin"

# List options take exactly their count and never swallow the next flag.
expect "--size 16,64 -o: usage error naming --size" 2 "\-\-size: '16,64' is not 3" "$P" --size 16,64 -o "$T/y.h5" "$V2"
expect "--window a,b" 2 "\-\-window" "$P" --window a,b -o "$T/y.h5" "$V2"

# 2. Retrieval: recall@K only up to the ranking depth.
$PY - "$T/rank10.tsv" <<'PYEOF'
import sys
with open(sys.argv[1], "w") as f:
    for q in range(20):
        for r in range(10):  # even queries find their item first; odd ones not in their 10
            f.write(f"q{q}\t{r + 1}\tq{(q + r + q % 2) % 20}\t{1 - r / 10:.2f}\n")
PYEOF
"$BIN/hse-eval" retrieval "$T/rank10.tsv" > "$T/r.tsv" 2> "$T/r.err"
[ $? = 0 ] && grep -q "^recall@10	0.5" "$T/r.tsv" && ! grep -q "^recall@50" "$T/r.tsv" && ! grep -q "^recall@100" "$T/r.tsv" \
  && grep -q "left out recall@50,100.*ranks only 10 items without its true item" "$T/r.err" && ok "default K beyond the depth: left out with a warning" \
  || { bad "recall beyond the depth"; cat "$T/r.tsv" "$T/r.err"; }
awk -F'\t' '$1 ~ /^q[02468]$|^q1[02468]$/' "$T/rank10.tsv" > "$T/found.tsv"
"$BIN/hse-eval" retrieval -q "$T/found.tsv" > "$T/f.tsv" && grep -q "^recall@100	1.0" "$T/f.tsv" \
  && ok "queries that found their item: recall@100 is known from depth 10" || { bad "found items"; cat "$T/f.tsv"; }
expect "--ks 1,50 on depth 10: refused" 3 "recall@50 needs rankings of depth 50" "$BIN/hse-eval" retrieval --ks 1,50 "$T/rank10.tsv"

# 3. References: inline and --references together need --reference-source.
$PY - "$D/radiology_text_reports/train_reports.csv" "$T/inline.jsonl" <<'PYEOF'
import csv, json, sys
with open(sys.argv[2], "w") as f:
    for r in csv.DictReader(open(sys.argv[1])):
        f.write(json.dumps({"id": r["VolumeName"], "prediction": r["Impressions_EN"], "reference": r["Impressions_EN"]}) + "\n")
PYEOF
REP="$D/radiology_text_reports/train_reports.csv"
expect "inline references and --references: exit 2" 2 "reference-source" "$BIN/hse-eval" report --references "$REP" "$T/inline.jsonl"
"$BIN/hse-eval" report -q "$T/inline.jsonl" > "$T/a.tsv" && "$BIN/hse-eval" report -q --references "$REP" --reference-source inline "$T/inline.jsonl" > "$T/b.tsv" \
  && cmp -s "$T/a.tsv" "$T/b.tsv" && ok "--reference-source inline = the inline references" || bad "--reference-source inline"
"$BIN/hse-eval" report -q --references "$REP" --reference-source file "$T/inline.jsonl" > "$T/c.tsv" \
  && ! cmp -s "$T/a.tsv" "$T/c.tsv" && ok "--reference-source file scores against Findings_EN" || bad "--reference-source file"

# 5. VQA: a CSV whose finding repeats (one row per anatomy) scores against itself.
VQA="$D/radgenome_files/train_vqa_location.csv"
$PY - "$VQA" "$T/vqa.jsonl" <<'PYEOF'
import csv, json, sys
seen = {}
with open(sys.argv[2], "w") as f:
    for r in csv.DictReader(open(sys.argv[1])):
        i = r["Volumename"] + "|" + r["Abnormality"]
        seen[i] = seen.get(i, 0) + 1
        if seen[i] > 1:
            i += f"#{seen[i]}"
        f.write(json.dumps({"id": i, "prediction": r["Anatomy"]}) + "\n")
assert any(v > 1 for v in seen.values()), "no repeated finding in this CSV"
PYEOF
"$BIN/hse-eval" vqa -q --references "$VQA" "$T/vqa.jsonl" > "$T/v.tsv" && grep -q "^acc_minor	1.000000" "$T/v.tsv" \
  && ok "VQA ids with #2 score against their own CSV" || { bad "VQA #n ids"; cat "$T/v.tsv"; }

# Small things.
expect "hse-eval reprot" 2 "unknown subcommand 'reprot'" "$BIN/hse-eval" reprot x.jsonl
"$BIN/hse-slice" -q --no-resample --image-size 32 --slices 4 -o "$T/sl.h5" "$V2" || bad "hse-slice"
"$BIN/hse-info" "$T/one.h5" "$T/sl.h5" > "$T/info.tsv" && [ "$(grep -c '^path	' "$T/info.tsv")" = 2 ] \
  && grep -q "^kind	volumes" "$T/info.tsv" && grep -q "^kind	slices" "$T/info.tsv" \
  && ok "hse-info a.h5 b.h5 of different kinds describes each" || { bad "hse-info mixed kinds"; cat "$T/info.tsv"; }
"$BIN/hse-info" "$T/one.h5" "$T/ids.h5" | grep -q "^items	3" && ok "hse-info: files of one kind are one set" || bad "hse-info one set"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
