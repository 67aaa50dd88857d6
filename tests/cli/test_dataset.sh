#!/usr/bin/env bash
# hse-synth --layout bimcv-r and hse-dataset bimcv-r: BIMCV-R's layout (CT<n>/ct/*.nii.gz and
# BIMCV-R.csv), rows paired with files by the file name in ct_path and never by the ID columns
# (the "negative cohort" rows name another study), rows without a file and files without a row
# counted on stderr, the split by row order with each patient on one side, the ids the other tools
# give the files, and the refusals (no CSV, two CSVs, a path column without file names).
set -u
BIN=${HSE_BIN_DIR:?HSE_BIN_DIR not set}
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"

"$BIN/hse-synth" -q -o "$T/s" --layout bimcv-r --size tiny --n-train 8 --n-valid 4 --seed 5 || bad "hse-synth --layout bimcv-r"
R="$T/s/dataset"
n_files=$(ls "$R"/CT1/ct/*.nii.gz | wc -l)
odd=$(ls "$R"/CT1/ct | grep -cvE '^sub-S[0-9]+_ses-E[0-9]+_run-[0-9]_bp-chest_ct\.nii\.gz$')
[ -s "$R/BIMCV-R.csv" ] && [ "$n_files" -ge 12 ] && [ "$odd" = 0 ] && [ ! -d "$R/metadata" ] \
  && head -1 "$R/BIMCV-R.csv" | grep -qx "PatientID,ReportID,Report,Labels,Localizations,LabelsLocalizationsBySentence,labelCUIS,LocalizationsCUIS,num,path,Report_en,ct_path" \
  && ok "hse-synth --layout bimcv-r: CT1/ct/sub-S.._ses-E.._run-N_bp-chest_ct.nii.gz and BIMCV-R.csv ($n_files files)" \
  || bad "hse-synth --layout bimcv-r layout ($n_files files, $odd odd names)"
$PY - "$R/BIMCV-R.csv" <<'PYEOF' && ok "one row in six names another study in PatientID/ReportID; ct_path names its own file" || bad "negative-cohort rows"
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
wrong = [r for r in rows if not os.path.basename(r["ct_path"]).startswith(r["PatientID"] + "_" + r["ReportID"] + "_")]
assert len(wrong) == len(rows) // 6 and all("covid19_neg" in r["ct_path"] for r in wrong), (len(wrong), len(rows))
assert all(os.path.dirname(r["ct_path"]) == r["path"] for r in rows)
PYEOF

# A real BIMCV-R CSV has rows without files and files without rows; one row is repeated.
cp "$R/BIMCV-R.csv" "$T/orig.csv"
{ cat "$T/orig.csv"; sed -n 2p "$T/orig.csv"; echo 'sub-S1,ses-E1,x,[],[],[],[],[],0.0,/d,Missing.,/d/sub-S1_ses-E1_run-1_bp-chest_ct.nii.gz'; } > "$R/BIMCV-R.csv"
extra="$R/CT1/ct/sub-S99999_ses-E99999_run-1_bp-chest_ct.nii.gz"
cp "$(ls "$R"/CT1/ct/*.nii.gz | head -1)" "$extra"
"$BIN/hse-dataset" bimcv-r "$R" --train-fraction 0.7 -o "$T/split" > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 0 ] && [ ! -s "$T/out" ] && grep -q "1 of .* rows name no volume file" "$T/err" && grep -q "1 rows name a volume file an earlier row names" "$T/err" \
  && grep -q "1 volume files under .* have no row" "$T/err" \
  && ok "hse-dataset: rows without a file, a repeated row and a file without a row are counted on stderr" || { cat "$T/err"; bad "hse-dataset warnings (rc $rc)"; }
rm -f "$extra"; cp "$T/orig.csv" "$R/BIMCV-R.csv"
$PY - "$T/split" "$T/orig.csv" <<'PYEOF' && ok "split: CSV order, 70% of the cases, no patient on both sides, reports keyed by the file name" || bad "split"
import csv, os, sys
d, orig = sys.argv[1], list(csv.DictReader(open(sys.argv[2])))
tr = list(csv.DictReader(open(os.path.join(d, "train_reports.csv"))))
va = list(csv.DictReader(open(os.path.join(d, "valid_reports.csv"))))
vols = {s: [l.strip() for l in open(os.path.join(d, s + "_volumes.txt"))] for s in ("train", "valid")}
assert len(tr) + len(va) == len(orig) and abs(len(tr) - 0.7 * len(orig)) <= 3, (len(tr), len(va))
for rows, s in ((tr, "train"), (va, "valid")):
    assert [os.path.basename(p) for p in vols[s]] == [r["VolumeName"] for r in rows]
    assert all(os.path.isabs(p) and os.path.exists(p) for p in vols[s])
    for r in rows:
        assert r["VolumeName"] == os.path.basename(r["ct_path"])  # the file, whatever PatientID says
subj = lambda rows: {r["VolumeName"].split("_")[0] for r in rows}
assert not subj(tr) & subj(va)
order = [os.path.basename(r["ct_path"]) for r in orig]
assert [order.index(r["VolumeName"]) for r in tr] == sorted(order.index(r["VolumeName"]) for r in tr)
PYEOF
# The other tools name the volumes by their file names, so the reports CSV pairs with them.
"$BIN/hse-preprocess" -q --no-resample --size 8,32,32 -o "$T/v.h5" - < "$T/split/valid_volumes.txt" \
  && [ "$("$BIN/hse-info" --ids "$T/v.h5" | tr '\n' ' ')" = "$(tail -n +2 "$T/split/valid_reports.csv" | cut -d, -f1 | tr '\n' ' ')" ] \
  && ok "hse-preprocess ids are the VolumeName of valid_reports.csv" || bad "ids of the BIMCV-R volumes"
"$BIN/hse-slice" -q --dataset bimcv-r --slices 4 --image-size 16 -o "$T/sl.h5" - < "$T/split/valid_volumes.txt" \
  && "$BIN/hse-info" "$T/sl.h5" | grep -q "^attr	dataset	bimcv-r" && ok "hse-slice --dataset bimcv-r on the split" || bad "hse-slice --dataset bimcv-r"

# A file not named as BIMCV-R names its files: its VolumeName is the id the other tools give it.
R2="$T/r2"
cp -r "$R" "$R2" && mkdir -p "$R2/CT2/ct" && cp "$(ls "$R"/CT1/ct/*.nii.gz | head -1)" "$R2/CT2/ct/scan_x.nii.gz"
echo 'sub-S9,ses-E9,x,[],[],[],[],[],0.0,/d,Odd name.,/d/scan_x.nii.gz' >> "$R2/BIMCV-R.csv"
"$BIN/hse-dataset" -q bimcv-r "$R2" --train-fraction 0.7 -o "$T/s2" \
  && "$BIN/hse-preprocess" -q --no-resample --size 8,32,32 -o "$T/v2.h5" - < "$T/s2/valid_volumes.txt" \
  && [ "$("$BIN/hse-info" --ids "$T/v2.h5" | tr '\n' ' ')" = "$(tail -n +2 "$T/s2/valid_reports.csv" | cut -d, -f1 | tr '\n' ' ')" ] \
  && grep -q "^CT2/ct/scan_x.nii.gz," "$T/s2/valid_reports.csv" \
  && ok "a file of another name: VolumeName is hse-preprocess's id (CT2/ct/scan_x.nii.gz)" || bad "VolumeName of an odd file name"

# Refusals.
refused "no report CSV" 3 "$T/empty" "no report CSV" "$T/o1" -- bash -c "mkdir -p '$T/empty/CT1/ct' && '$BIN/hse-dataset' bimcv-r '$T/empty' -o '$T/o1'"
mkdir -p "$R/meta" && cp "$R/BIMCV-R.csv" "$R/meta/curated_ct_report_path_En.csv"
refused "two report CSVs" 3 "$R" "has both BIMCV-R.csv and meta/curated_ct_report_path_En.csv" "$T/o2" -- "$BIN/hse-dataset" bimcv-r "$R" -o "$T/o2"
"$BIN/hse-dataset" bimcv-r "$R" --csv "$R/meta/curated_ct_report_path_En.csv" --train-fraction 0.7 -q -o "$T/o3" \
  && ok "--csv chooses between them" || bad "--csv"
refused "a path column of folders" 3 "$R/BIMCV-R.csv" "column path holds .* not a .nii or .nii.gz file" "$T/o4" -- \
  "$BIN/hse-dataset" bimcv-r "$R" --csv "$R/BIMCV-R.csv" --path-column path -o "$T/o4"
refused "no validation case" 2 "" "--train-fraction 0.99: leaves no validation case" "$T/o5" -- \
  "$BIN/hse-dataset" bimcv-r "$R" --csv "$R/BIMCV-R.csv" --train-fraction 0.99 -o "$T/o5"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
