#!/usr/bin/env bash
# One volume written as NIfTI (.nii, .nii.gz, NIfTI-2), MetaImage (.mha, .mhd+.raw) and NRRD
# must preprocess to the same array; a real DICOM series (../shared/data/dicom/volume)
# reads as a volume; a single DICOM slice is refused as 2-D.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
PY=${PYTHON:-python3}
SHARED=${HSE_SOURCE_DIR:-.}/../shared
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$PY - "$T" <<'PYEOF' || exit 77
import sys, numpy as np, nibabel as nib
t = sys.argv[1]
rng = np.random.default_rng(1)
x, y, z = np.meshgrid(np.linspace(-1, 1, 48), np.linspace(-1, 1, 40), np.linspace(-1, 1, 24), indexing="ij")
v = np.where((x / 0.8) ** 2 + (y / 0.6) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 15, x.shape)
v = v.astype(np.int16)
sp = (0.9, 0.8, 2.5)
aff = np.diag([sp[0], sp[1], sp[2], 1.0])
nib.save(nib.Nifti1Image(v, aff), f"{t}/v.nii.gz")
nib.save(nib.Nifti1Image(v, aff), f"{t}/v.nii")
nib.save(nib.Nifti2Image(v, aff), f"{t}/v2.nii.gz")
raw = np.asfortranarray(v).tobytes(order="F")  # x fastest
hdr = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
       f"ElementSpacing = {sp[0]} {sp[1]} {sp[2]}\nDimSize = 48 40 24\nElementType = MET_SHORT\n")
open(f"{t}/v.mha", "wb").write((hdr + "ElementDataFile = LOCAL\n").encode() + raw)
open(f"{t}/v.mhd", "w").write(hdr + "ElementDataFile = v.raw\n")
open(f"{t}/v.raw", "wb").write(raw)
nh = ("NRRD0004\ntype: short\ndimension: 3\nsizes: 48 40 24\nspacings: 0.9 0.8 2.5\n"
      "endian: little\nencoding: raw\n\n")
open(f"{t}/v.nrrd", "wb").write(nh.encode() + raw)
PYEOF
fail=0
for f in v.nii.gz v.nii v2.nii.gz v.mha v.mhd v.nrrd; do
  "$BIN/hse-preprocess" -q -o "$T/$f.h5" "$T/$f" || { echo "FAIL $f: exit $?"; fail=1; }
done
$PY - "$T" <<'PYEOF' || fail=1
import sys, h5py, numpy as np
t = sys.argv[1]
ref = h5py.File(f"{t}/v.nii.gz.h5")["volumes"][:]
bad = 0
for f in ["v.nii", "v2.nii.gz", "v.mha", "v.mhd", "v.nrrd"]:
    d = float(np.abs(h5py.File(f"{t}/{f}.h5")["volumes"][:] - ref).max())
    ok = d <= 1e-6
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {f} vs v.nii.gz: max|diff| {d:.1e}")
sys.exit(1 if bad else 0)
PYEOF
if [ -d "$SHARED/data/dicom/volume" ]; then
  if "$BIN/hse-preprocess" -q -o "$T/dicom.h5" "$SHARED/data/dicom/volume" &&
     [ "$("$BIN/hse-info" --ids "$T/dicom.h5")" = volume ] &&
     "$BIN/hse-info" "$T/dicom.h5" | grep -q 'dataset	volumes	\[1,1,32,256,256\]'; then
    echo "ok   DICOM series directory"
  else
    echo "FAIL DICOM series directory"; fail=1
  fi
  for f in rle.dcm jpeg_lossless_sel1.dcm; do
    err=$("$BIN/hse-preprocess" -q -o "$T/one.h5" "$SHARED/data/dicom/$f" 2>&1)
    rc=$?
    if [ "$rc" = 3 ] && [[ "$err" == *"$f: 2-D image"* ]]; then echo "ok   $f refused as 2-D"; else echo "FAIL $f: rc $rc: $err"; fail=1; fi
  done
else
  echo "note: $SHARED/data/dicom not found; DICOM checks skipped"
fi
# --compression: lossless HDF5 filters store the same array as the uncompressed file, and plain
# h5py reads it (HDF5_PLUGIN_PATH at Debian's plugin directory, as hse-formats(5) says); a codec
# whose plugin this libhdf5 cannot find is refused with exit 4 and no output file.
PLUG=/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins
for c in gzip lz4 blosc bitshuffle; do
  err=$("$BIN/hse-preprocess" -q --compression $c -o "$T/c-$c.h5" "$T/v.nii.gz" 2>&1); rc=$?
  if [ $rc = 4 ] && [ "${CI:-}" != true ] && [ "${HSE_REQUIRE_ALL:-}" != 1 ]; then
    echo "note: --compression $c skipped, its plugin is not installed: $err"; continue
  fi
  if [ $rc = 0 ] && HDF5_PLUGIN_PATH=$PLUG $PY - "$T/v.nii.gz.h5" "$T/c-$c.h5" <<'PYEOF'; then
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["volumes"] for p in sys.argv[1:])
assert b.chunks == (1,) + b.shape[1:], b.chunks
assert np.array_equal(a[:], b[:])
PYEOF
    echo "ok   --compression $c: the same array, read by h5py"
  else
    echo "FAIL --compression $c (rc $rc): $err"; fail=1
  fi
done
mkdir -p "$T/noplug"
err=$(HDF5_PLUGIN_PATH="$T/noplug" "$BIN/hse-preprocess" -q --compression lz4 -o "$T/np.h5" "$T/v.nii.gz" 2>&1); rc=$?
if [ $rc = 4 ] && [[ "$err" == *"np.h5: cannot write lz4-compressed datasets"*"apt install hdf5-filter-plugin"* ]] && [ ! -e "$T/np.h5" ]; then
  echo "ok   --compression lz4 without its plugin: exit 4, no output"
else
  echo "FAIL --compression lz4 without its plugin (rc $rc): $err"; fail=1
fi
if [ "$fail" = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
