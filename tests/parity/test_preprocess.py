"""Parity: hse-preprocess vs HSENet's 3-D preprocessing in Python (nibabel, torch, monai).

Volumes: hse-synth's tiny dataset (both intensity conventions, metadata spacing) plus NIfTI files
written here with nibabel (header spacing, float and int16, a non-square in-plane grid).
BIMCV-R files (hse-preprocess --no-resample) are compared with HSENet's BIMCV-R 3-D script.
Each synthetic volume is compared twice:
  - hse-preprocess --metadata (default: the HU decision per file) against the script run with the
    conversion each file needs (its metadata slope/intercept for v1, identity for v2 files,
    which are already HU): the script as it would run with correct metadata;
  - hse-preprocess --compat hsenet --metadata against the script literally (the slope and
    intercept applied to every file: v2 files are shifted by -1024 again).
Tolerance: max |difference| <= 1e-5 on [0, 1] outputs (hse resamples in float32, the script in
float64 before its float32 cast).
"""
import csv
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import nibabel as nib
    import numpy as np
    import torch  # noqa: F401
    import monai  # noqa: F401
except ImportError as e:  # pragma: no cover
    print(f"skip: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(__file__))
from hsenet_ref import hsenet_3d, hsenet_bimcv_3d  # noqa: E402

BIN = os.environ.get("HSE_BIN_DIR", "build/bin")
TOL = 1e-5


def run(args):
    r = subprocess.run([os.path.join(BIN, "hse-preprocess")] + args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
        raise SystemExit(f"hse-preprocess failed: {r.returncode}")
    return r


def phantom(shape, rng):
    """A body-like int16 HU volume: air, an ellipse of soft tissue, lungs, a bone rod."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    v = np.full(shape, -1000.0)
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 < 1
    v[body] = 40
    v[body & (((x - 0.35) / 0.25) ** 2 + (y / 0.35) ** 2 < 1)] = -850
    v[body & (((x + 0.35) / 0.25) ** 2 + (y / 0.35) ** 2 < 1)] = -850
    v[(x ** 2 + (y + 0.45) ** 2) < 0.01] = 700
    v[:, :, : max(1, shape[2] // 10)] = -1040  # an air slab below the body: the crop acts along z too
    v[:, :, : max(1, shape[2] // 10)][:, : shape[1] // 3] = -3024  # outside the field of view
    v += rng.normal(0, 15, shape)
    return v


def main():
    rng = np.random.default_rng(0)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = []  # (path, kwargs for the reference)
        # 1. hse-synth volumes through --root/--metadata (v1 raw and v2 HU, spacing from the CSV).
        synth = os.path.join(BIN, "hse-synth")
        meta_csv = None
        if os.path.exists(synth):
            subprocess.run([synth, "-o", os.path.join(tmp, "synth"), "--size", "tiny", "--n-train", "0",
                            "--n-valid", "4", "--seed", "3", "-q"], check=True)
            root = os.path.join(tmp, "synth", "dataset")
            meta_csv = os.path.join(root, "metadata", "validation_metadata.csv")
            truth = {}
            with open(os.path.join(root, "truth.jsonl")) as f:
                import json
                for line in f:
                    j = json.loads(line)
                    truth[j["id"]] = j
            with open(meta_csv) as f:
                for row in csv.DictReader(f):
                    name = row["VolumeName"]
                    parts = name.replace(".nii.gz", "").split("_")
                    path = os.path.join(root, parts[0], "_".join(parts[:2]), "_".join(parts[:3]), name)
                    xy = float(row["XYSpacing"][1:][:-2].split(",")[0])
                    conv = truth.get(name, {}).get("convention", "v1")
                    slope, icpt = float(row["RescaleSlope"]), float(row["RescaleIntercept"])
                    sp = (float(row["ZSpacing"]), xy, xy)
                    right = (slope, icpt) if conv == "v1" else (1.0, 0.0)
                    cases.append((path, dict(slope=right[0], intercept=right[1], spacing_zxy=sp),
                                  ["--metadata", meta_csv]))
                    cases.append((path, dict(slope=slope, intercept=icpt, spacing_zxy=sp),
                                  ["--metadata", meta_csv, "--compat", "hsenet"]))
        else:
            print("note: hse-synth not built; using nibabel volumes only")
        # 2. nibabel-written volumes with header spacing.
        for i, (shape, sp, dtype) in enumerate([((90, 80, 40), (0.9, 0.9, 2.0), np.int16),
                                               ((70, 96, 25), (1.1, 0.8, 3.0), np.float32),
                                               ((64, 64, 64), (0.75, 0.75, 1.5), np.int16)]):
            v = phantom(shape, rng).astype(dtype)
            img = nib.Nifti1Image(v, np.diag([sp[0], sp[1], sp[2], 1.0]))
            p = os.path.join(tmp, f"nib_{i}.nii.gz")
            nib.save(img, p)
            cases.append((p, dict(), []))  # spacing from the header (float32 pixdims), as nibabel gives it
        # 3. BIMCV-R: HSENet's BIMCV-R 3-D script is the CT-RATE one without resampling (--no-resample).
        for i, (shape, sp) in enumerate([((80, 72, 30), (0.7, 0.7, 5.0)), ((64, 64, 48), (0.8, 0.8, 1.25))]):
            p = os.path.join(tmp, f"sub-S{i + 1}_ses-E{i + 1}_run-1_bp-chest_ct.nii.gz")
            nib.save(nib.Nifti1Image(phantom(shape, rng).astype(np.int16), np.diag([sp[0], sp[1], sp[2], 1.0])), p)
            cases.append((p, dict(bimcv=True), ["--no-resample"]))

        for path, ref_kw, extra in cases:
            out = os.path.join(tmp, "out.h5")
            run(["-o", out, "-q", path] + extra)
            with h5py.File(out, "r") as f:
                got = f["volumes"][0]
                assert f.attrs["hse_kind"] == "volumes"
                assert f["volumes"].shape == (1, 1, 32, 256, 256), f["volumes"].shape
                c = f.attrs["compat"]
                c = c.decode() if isinstance(c, bytes) else c
                assert c == ("hsenet" if "--compat" in extra else ""), c  # provenance for hse-generate
            ref = hsenet_bimcv_3d(path) if ref_kw.pop("bimcv", False) else hsenet_3d(path, **ref_kw)
            d = float(np.abs(got - ref).max())
            ok = d <= TOL and got.min() >= 0 and got.max() <= 1
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(path)} {' '.join(extra[2:] if extra[:1] == ['--metadata'] else extra)}: max|diff| {d:.2e} "
                  f"(tol {TOL})")
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
