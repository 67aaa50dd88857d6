#!/usr/bin/env bash
# hse-synth: file tree, CSV headers, NIfTI headers (v1/v2), determinism, exit codes.
set -uo pipefail
BIN="${HSE_BIN_DIR:?HSE_BIN_DIR not set}/hse-synth"
PY="${PYTHON:-python3}"
[ -x "$BIN" ] || { echo "skip: $BIN not built"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" --help >"$tmp/help" || fail "--help exit code"
grep -q -- "--n-train" "$tmp/help" || fail "--help lacks --n-train"

"$BIN" -o "$tmp/a" --size tiny --n-train 4 --n-valid 2 --seed 1 --progress never >"$tmp/out" 2>"$tmp/err" \
  || { cat "$tmp/err"; fail "hse-synth failed"; }
[ ! -s "$tmp/out" ] || fail "stdout is not empty"
d="$tmp/a/dataset"
for f in radiology_text_reports/train_reports.csv radiology_text_reports/validation_reports.csv \
         metadata/train_metadata.csv metadata/validation_metadata.csv \
         multi_abnormality_labels/train_predicted_labels.csv multi_abnormality_labels/valid_predicted_labels.csv \
         radgenome_files/train_vqa_location.csv radgenome_files/validation_vqa_location.csv truth.jsonl \
         train/train_1/train_1_a/train_1_a_1.nii.gz valid/valid_2/valid_2_a/valid_2_a_1.nii.gz; do
  [ -s "$d/$f" ] || fail "missing $f"
done
[ "$(ls "$d/train" | wc -l)" -eq 4 ] || fail "expected 4 training patients"
[ "$(ls "$d/valid" | wc -l)" -eq 2 ] || fail "expected 2 validation patients"
[ -z "$(find "$tmp/a" -name ".*.tmp-*")" ] || fail "temporary files left behind"

for f in "$d"/*/*.csv; do
  ! grep -q '^$' "$f" || fail "$f has empty lines"
done
expect_header() {
  [ "$(head -n 1 "$1")" = "$2" ] || fail "$1: header is '$(head -n 1 "$1")'"
}
expect_header "$d/radiology_text_reports/train_reports.csv" \
  "VolumeName,ClinicalInformation_EN,Technique_EN,Findings_EN,Impressions_EN"
expect_header "$d/multi_abnormality_labels/valid_predicted_labels.csv" \
  "VolumeName,Medical material,Arterial wall calcification,Cardiomegaly,Pericardial effusion,Coronary artery wall calcification,Hiatal hernia,Lymphadenopathy,Emphysema,Atelectasis,Lung nodule,Lung opacity,Pulmonary fibrotic sequela,Pleural effusion,Mosaic attenuation pattern,Peribronchial thickening,Consolidation,Bronchiectasis,Interlobular septal thickening"
expect_header "$d/radgenome_files/train_vqa_location.csv" "Volumename,Anatomy,Abnormality"
expect_header "$d/metadata/train_metadata.csv" \
  "VolumeName,Manufacturer,SeriesDescription,ManufacturerModelName,PatientSex,PatientAge,ReconstructionDiameter,DistanceSourceToDetector,DistanceSourceToPatient,GantryDetectorTilt,TableHeight,RotationDirection,ExposureTime,XRayTubeCurrent,Exposure,FilterType,GeneratorPower,FocalSpots,ConvolutionKernel,PatientPosition,RevolutionTime,SingleCollimationWidth,TotalCollimationWidth,TableSpeed,TableFeedPerRotation,SpiralPitchFactor,DataCollectionCenterPatient,ReconstructionTargetCenterPatient,ExposureModulationType,CTDIvol,ImagePositionPatient,ImageOrientationPatient,SliceLocation,SamplesPerPixel,PhotometricInterpretation,Rows,Columns,XYSpacing,RescaleIntercept,RescaleSlope,RescaleType,NumberofSlices,ZSpacing,StudyDate"

if "$PY" -c "import nibabel, numpy" 2>/dev/null; then
  "$PY" - "$d" <<'EOF' || fail "python checks"
import csv, json, os, sys
import nibabel as nib, numpy as np
d = sys.argv[1]
truth = [json.loads(l) for l in open(os.path.join(d, "truth.jsonl"))]
assert len(truth) >= 6, len(truth)
def rows(p):
    with open(os.path.join(d, p), newline="") as f:
        return list(csv.DictReader(f))
meta = {r["VolumeName"]: r for r in rows("metadata/train_metadata.csv") + rows("metadata/validation_metadata.csv")}
labels = {r["VolumeName"]: r for r in rows("multi_abnormality_labels/train_predicted_labels.csv") + rows("multi_abnormality_labels/valid_predicted_labels.csv")}
reports = {r["VolumeName"]: r for r in rows("radiology_text_reports/train_reports.csv") + rows("radiology_text_reports/validation_reports.csv")}
vqa = rows("radgenome_files/train_vqa_location.csv") + rows("radgenome_files/validation_vqa_location.csv")
names = ["Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
         "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis",
         "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion", "Mosaic attenuation pattern",
         "Peribronchial thickening", "Consolidation", "Bronchiectasis", "Interlobular septal thickening"]
seen = set()
for t in truth:
    name = t["id"]
    assert set(meta) == set(labels) == set(reports) and name in meta, name
    img = nib.load(os.path.join(os.path.dirname(d), t["path"]))
    assert img.get_data_dtype() == np.int16, (name, img.get_data_dtype())
    a = np.asarray(img.dataobj)
    assert a.dtype == np.int16 and list(a.shape) == t["dims"], (name, a.shape, t["dims"])
    nx, ny, nz = t["dims"]
    assert 96 <= nx <= 128 and nx == ny and 32 <= nz <= 48, t["dims"]
    zooms = img.header.get_zooms()
    if t["convention"] == "v1":
        assert zooms == (1.0, 1.0, 1.0), (name, zooms)
        hu = a.astype(np.float64) * t["slope"] + t["intercept"]
        assert a.min() >= 0, (name, a.min())  # raw values, not HU
    else:
        assert np.allclose(zooms, t["spacing"], atol=1e-4), (name, zooms, t["spacing"])
        assert t["intercept"] == -1024 and t["slope"] == 1
        hu = a.astype(np.float64)
    assert -1024 <= hu.min() < -950 and 900 < hu.max() <= 3071, (name, hu.min(), hu.max())
    assert abs(np.median(hu[:, :4, :]) + 1000) < 30, name  # anterior rows are air
    m = meta[name]
    assert float(m["RescaleIntercept"]) == t["intercept"] and float(m["RescaleSlope"]) == t["slope"]
    xy = [float(v) for v in m["XYSpacing"][1:-1].split(",")]
    assert np.allclose(xy, t["spacing"][:2]) and float(m["ZSpacing"]) == t["spacing"][2], (m["XYSpacing"], t["spacing"])
    assert int(m["Rows"]) == ny and int(m["Columns"]) == nx and int(m["NumberofSlices"]) == nz
    assert len(m["PatientAge"]) == 4 and m["PatientAge"].endswith("Y")
    lab = [int(labels[name][n]) for n in names]
    assert lab == t["labels"], (name, lab, t["labels"])
    assert lab == [int(any(f["label_index"] == i for f in t["findings"])) for i in range(18)]
    text = reports[name]["Findings_EN"]
    assert text and reports[name]["Impressions_EN"], name
    for f in t["findings"]:
        if f["type"] == "Lung nodule":
            assert f"{round(f['size_mm'])} mm" in text, (name, text)
    if t["recon"] == 1:
        rows_here = [r for r in vqa if r["Volumename"] == name]
        assert len(rows_here) == sum(len(f["anatomy"]) for f in t["findings"]), name
    seen.add(t["convention"])
print("ok", len(truth), "volumes", sorted(seen))
EOF
else
  echo "note: nibabel not available, NIfTI checks skipped" >&2
fi

# same seed -> identical files, whatever the thread count; another seed -> different volumes
"$BIN" -o "$tmp/b" --size tiny --n-train 4 --n-valid 2 --seed 1 --threads 1 -q || fail "second run"
diff -r "$tmp/a" "$tmp/b" >/dev/null || fail "same seed gave different files"
cmp -s "$d/train/train_1/train_1_a/train_1_a_1.nii.gz" "$tmp/b/dataset/train/train_1/train_1_a/train_1_a_1.nii.gz" \
  || fail "cmp"
"$BIN" -o "$tmp/c" --size tiny --n-train 1 --n-valid 0 --seed 2 -q || fail "third run"
cmp -s "$d/train/train_1/train_1_a/train_1_a_1.nii.gz" "$tmp/c/dataset/train/train_1/train_1_a/train_1_a_1.nii.gz" \
  && fail "different seeds gave the same volume"

# unwritable output: exit 1, one line naming the path
"$BIN" -o /proc/hse-synth-x/out --size tiny --n-train 1 --n-valid 0 -q 2>"$tmp/err2"
rc=$?
[ "$rc" -eq 1 ] || fail "unwritable output: exit $rc, expected 1"
[ "$(wc -l <"$tmp/err2")" -eq 1 ] || fail "unwritable output: expected one line, got: $(cat "$tmp/err2")"
grep -q "/proc/hse-synth-x" "$tmp/err2" || fail "error does not name the path: $(cat "$tmp/err2")"

# usage errors: exit 2
for args in "--size huge" "--n-train -1" "--n-train 0 --n-valid 0" "--gzip-level 0" "--lesion-scale 5" "--lesion-scale 0" "--bogus"; do
  # shellcheck disable=SC2086
  "$BIN" -o "$tmp/u" $args 2>/dev/null
  rc=$?
  [ "$rc" -eq 2 ] || fail "'$args': exit $rc, expected 2"
done
"$BIN" --size tiny 2>/dev/null
[ $? -eq 2 ] || fail "missing -o should be a usage error"
echo "ok"
