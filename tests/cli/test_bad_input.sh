#!/usr/bin/env bash
# Bad input: each case must give a one-line error naming the file, the
# documented exit code, and leave no output (nor temporary) file behind.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

$PY - "$T" <<'PYEOF' || exit 77
import sys, os
import numpy as np, nibabel as nib, h5py
t = sys.argv[1]
rng = np.random.default_rng(0)
good = (rng.normal(-500, 300, (40, 40, 20))).astype(np.int16)
img = nib.Nifti1Image(good, np.diag([0.8, 0.8, 2.0, 1.0]))
nib.save(img, f"{t}/good.nii.gz")
raw = open(f"{t}/good.nii.gz", "rb").read()
open(f"{t}/truncated.nii.gz", "wb").write(raw[: len(raw) // 2])
open(f"{t}/text.nii.gz", "w").write("this is not an image\n")
open(f"{t}/empty.nii.gz", "wb").close()
nib.save(nib.Nifti1Image(good[:, :, :1], np.eye(4)), f"{t}/flat.nii.gz")
nib.save(nib.Nifti1Image(np.zeros((10, 10, 10, 3), np.int16), np.eye(4)), f"{t}/fourd.nii.gz")
nan = good.astype(np.float32); nan[5, 5, 5] = np.nan
nib.save(nib.Nifti1Image(nan, np.eye(4)), f"{t}/nan.nii.gz")
open(f"{t}/meta.csv", "w").write("VolumeName,XYSpacing,ZSpacing,RescaleIntercept,RescaleSlope\nother.nii.gz,\"[0.8, 0.8]\",2,-1024,1\n")
for name, kind, ver in [("wrongkind.h5", "embeddings", "1.0"), ("future.h5", "volumes", "2.0")]:
    with h5py.File(f"{t}/{name}", "w") as f:
        f.attrs["hse_format"] = "hse"; f.attrs["hse_format_version"] = ver; f.attrs["hse_kind"] = kind
        f["ids"] = np.array([b"a"])
os.makedirs(f"{t}/emptydir")
PYEOF
mkdir -p "$T/ro" && chmod 555 "$T/ro"

# expect NAME CODE NEEDLE OUTPUT -- command...
expect() {
  local name=$1 code=$2 needle=$3 out=$4
  shift 5
  local err rc lines
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  lines=$(printf '%s\n' "$err" | grep -v ': hint: ' | grep -c .)
  local why=""
  [ "$rc" = "$code" ] || why="exit $rc, expected $code"
  [ "$lines" = 1 ] || why="$why; $lines error lines"
  [[ "$err" == *"$needle"* ]] || why="$why; message lacks '$needle'"
  if [ -n "$out" ] && [ -e "$out" ]; then why="$why; output $out left behind"; fi
  if ls -a "$(dirname "${out:-$T/x}")" 2>/dev/null | grep -q '\.tmp-'; then why="$why; temporary file left behind"; fi
  if [ -z "$why" ]; then
    pass=$((pass + 1))
    echo "ok   $name"
  else
    fail=$((fail + 1))
    echo "FAIL $name: $why"
    printf '     stderr: %s\n' "$err"
  fi
}

P="$BIN/hse-preprocess"
O="$T/out.h5"
expect truncated-gzip 3 "truncated.nii.gz" "$O" -- "$P" -o "$O" "$T/truncated.nii.gz"
expect text-as-nifti 3 "text.nii.gz: " "$O" -- "$P" -o "$O" "$T/text.nii.gz"
expect two-d-image 3 "flat.nii.gz: 2-D image" "$O" -- "$P" -o "$O" "$T/flat.nii.gz"
expect four-d-image 3 "fourd.nii.gz: 4-D image" "$O" -- "$P" -o "$O" "$T/fourd.nii.gz"
expect zero-length 3 "empty.nii.gz: empty file" "$O" -- "$P" -o "$O" "$T/empty.nii.gz"
expect nan-voxels 3 "nan.nii.gz: 1 voxel is NaN" "$O" -- "$P" -o "$O" "$T/nan.nii.gz"
expect missing-metadata-row 3 "good.nii.gz: no row for 'good.nii.gz'" "$O" -- "$P" -o "$O" --metadata "$T/meta.csv" "$T/good.nii.gz"
expect missing-file 3 "nosuch.nii.gz: no such file" "$O" -- "$P" -o "$O" "$T/nosuch.nii.gz"
expect unknown-option 2 "--frobnicate" "$O" -- "$P" -o "$O" --frobnicate "$T/good.nii.gz"
expect missing-argument 2 "--output" "$O" -- "$P" "$T/good.nii.gz"
expect missing-option-value 2 "--window" "$O" -- "$P" -o "$O" "$T/good.nii.gz" --window
# root ignores directory permissions: use /proc, where nobody may create files.
RO="$T/ro"; [ "$(id -u)" = 0 ] && RO=/proc
expect unwritable-output 1 "$RO/out.h5: cannot write output" "$RO/out.h5" -- "$P" -o "$RO/out.h5" "$T/good.nii.gz"
expect missing-output-dir 1 "nodir/out.h5: cannot write output" "$T/nodir/out.h5" -- "$P" -o "$T/nodir/out.h5" "$T/good.nii.gz"
expect no-dicom-in-dir 3 "emptydir" "$O" -- "$P" -o "$O" "$T/emptydir"
expect h5-wrong-kind 3 "wrongkind.h5: kind is 'embeddings', expected 'volumes'" "" -- "$BIN/hse-info" --kind volumes "$T/wrongkind.h5"
expect h5-future-version 3 "future.h5: format version 2.0 is not supported" "" -- "$BIN/hse-info" --kind volumes "$T/future.h5"
expect not-hdf5 3 "good.nii.gz: not an HDF5 file" "" -- "$BIN/hse-info" "$T/good.nii.gz"
expect bad-shard 2 "--shard" "$O" -- "$P" -o "$O" --shard 2/2 "$T/good.nii.gz"
if [ -x "$BIN/hse-slice" ]; then
  expect slice-truncated 3 "truncated.nii.gz" "$O" -- "$BIN/hse-slice" -o "$O" "$T/truncated.nii.gz"
  expect slice-4d 3 "fourd.nii.gz: 4-D image" "$O" -- "$BIN/hse-slice" -o "$O" "$T/fourd.nii.gz"
fi

# --keep-going writes the good volumes, lists the failures, exits 1.
"$P" -q -o "$O" --keep-going --failures "$T/failed.tsv" "$T/good.nii.gz" "$T/truncated.nii.gz" 2>/dev/null
rc=$?
if [ "$rc" = 1 ] && [ -s "$O" ] && grep -q truncated.nii.gz "$T/failed.tsv" && [ "$("$BIN/hse-info" --ids "$O")" = good.nii.gz ]; then
  pass=$((pass + 1)); echo "ok   keep-going"
else
  fail=$((fail + 1)); echo "FAIL keep-going (rc $rc)"
fi
rm -f "$O"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
