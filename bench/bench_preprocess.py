#!/usr/bin/env python3
"""Benchmark: hse-preprocess vs HSENet's Python preprocessing (nibabel + torch + monai), side by side.

One realistic 512x512x300 int16 .nii.gz from hse-synth, the same cores for both (torch threads =
hse --threads). Prints the wall times, the ratio, and the share of each spent reading/decompressing.

    python3 bench/bench_preprocess.py [--bin build/bin] [--threads N] [--repeat 3]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "parity"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="realistic")
    a = ap.parse_args()

    import torch
    from hsenet_ref import hsenet_3d
    torch.set_num_threads(a.threads)

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([os.path.join(a.bin, "hse-synth"), "-o", tmp, "--size", a.size, "--n-train", "0",
                        "--n-valid", "1", "--seed", "7", "-q"], check=True)
        meta = os.path.join(tmp, "dataset", "metadata", "validation_metadata.csv")
        root = os.path.join(tmp, "dataset")
        import csv
        row = next(csv.DictReader(open(meta)))
        name = row["VolumeName"]
        p = name.replace(".nii.gz", "").split("_")
        path = os.path.join(root, p[0], "_".join(p[:2]), "_".join(p[:3]), name)
        xy = float(row["XYSpacing"][1:][:-2].split(",")[0])
        rescale = True  # decided per file by hse; the reference is told the truth
        import json
        for line in open(os.path.join(root, "truth.jsonl")):
            j = json.loads(line)
            if j["id"] == name:
                rescale = j["convention"] == "v1"
        print(f"volume: {name} {row['Rows']}x{row['Columns']}x{row['NumberofSlices']} "
              f"({os.path.getsize(path) / 2**20:.1f} MiB gzip), threads {a.threads}")

        hse_t, hse_read = [], []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            r = subprocess.run([os.path.join(a.bin, "hse-preprocess"), "-v", "--threads", str(a.threads),
                                "--metadata", meta, "-o", os.path.join(tmp, "o.h5"), path],
                               capture_output=True, text=True, check=True)
            hse_t.append(time.perf_counter() - t0)
            m = re.search(r"read ([0-9.]+) s", r.stderr)
            hse_read.append(float(m.group(1)) if m else float("nan"))
        py_t, py_read = [], []
        for _ in range(a.repeat):
            tm = {}
            hsenet_3d(path, slope=float(row["RescaleSlope"]) if rescale else 1.0,
                      intercept=float(row["RescaleIntercept"]) if rescale else 0.0,
                      spacing_zxy=(float(row["ZSpacing"]), xy, xy), timings=tm)
            py_t.append(tm["total"])
            py_read.append(tm["read"])
        h, p_ = min(hse_t), min(py_t)
        hr = hse_read[hse_t.index(h)]
        pr = py_read[py_t.index(p_)]
        print(f"hse-preprocess: {h:.3f} s (read+decompress {hr:.3f} s = {100 * hr / h:.0f}%), process start included")
        print(f"python (nibabel+torch+monai): {p_:.3f} s (read+decompress {pr:.3f} s = {100 * pr / p_:.0f}%)")
        print(f"ratio python/hse: {p_ / h:.2f}x")


if __name__ == "__main__":
    main()
