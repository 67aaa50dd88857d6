#!/usr/bin/env python3
"""Benchmark: preprocessing throughput over many files, hse-preprocess vs HSENet's Python recipe.

N realistic CT files (hse-synth --size realistic: 512x512x~300 int16 .nii.gz, about 80 MiB each)
are preprocessed to the paper's 32x256x256 float32 volumes, at each T of --threads:

- hse: one `hse-preprocess --threads T` run over all files into one HDF5 file (process start and
  the write included);
- Python: HSENet's steps (nibabel + torch + monai, tests/parity/hsenet_ref.py) over the same files
  in a multiprocessing pool of T processes, one torch thread each, each volume saved with np.save,
  as HSENet's preprocessing scripts do with their pool.

It prints volumes/min for both and the ratio, and, from hse's -vv log, where hse's time goes:
read + gzip inflate, HU+clamp, resample, normalise/transpose/crop, resize, and the HDF5 writes.

    python3 bench/bench_preprocess_throughput.py [--bin build/bin] [--files 32] [--threads 1,2] [--keep DIR]
"""
import argparse
import csv
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))


def ct_files(root, meta):
    """(path, slope, intercept, spacing_zxy) per volume, as bench_preprocess.py tells the reference."""
    truth = {}
    for line in open(os.path.join(root, "truth.jsonl")):
        j = json.loads(line)
        truth[j["id"]] = j["convention"] == "v1"
    out = []
    for row in csv.DictReader(open(meta)):
        name = row["VolumeName"]
        p = name.replace(".nii.gz", "").split("_")
        path = os.path.join(root, p[0], "_".join(p[:2]), "_".join(p[:3]), name)
        xy = float(row["XYSpacing"][1:][:-2].split(",")[0])
        rescale = truth[name]
        out.append((path, float(row["RescaleSlope"]) if rescale else 1.0,
                    float(row["RescaleIntercept"]) if rescale else 0.0, (float(row["ZSpacing"]), xy, xy)))
    return out


def _init_worker():
    import warnings
    import torch
    warnings.filterwarnings("ignore", category=FutureWarning)  # monai's deprecation notices
    torch.set_num_threads(1)


def _python_one(args):
    import numpy as np
    from hsenet_ref import hsenet_3d
    (path, slope, intercept, spacing), out = args
    v = hsenet_3d(path, slope=slope, intercept=intercept, spacing_zxy=spacing)
    np.save(os.path.join(out, os.path.basename(path).replace(".nii.gz", ".npy")), v)


def run_python(files, threads, out):
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(threads, initializer=_init_worker) as pool:
        pool.map(_python_one, [(f, out) for f in files], chunksize=1)
    return time.perf_counter() - t0


def run_hse(binary, meta, root, threads, out):
    t0 = time.perf_counter()
    r = subprocess.run([binary, "-vv", "--threads", str(threads), "--metadata", meta, "--root", root, "-o", out],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"hse-preprocess failed: {r.stderr}")
    split = {}
    for m in re.finditer(r": read ([0-9.]+) s, steps", r.stderr):
        split["read+inflate"] = split.get("read+inflate", 0) + float(m.group(1))
    for line in r.stderr.splitlines():
        if "steps: " in line:
            for name, sec in re.findall(r"(\w+) ([0-9.]+) s", line.split("steps: ", 1)[1]):
                split[name] = split.get(name, 0) + float(sec)
    m = re.search(r"output writes ([0-9.]+) s", r.stderr)
    if m:
        split["hdf5_write"] = float(m.group(1))
    return wall, split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--threads", default="1,2", help="comma-separated T values")
    ap.add_argument("--keep", help="work here (the CT files are made once and reused)")
    a = ap.parse_args()
    tmp_ctx = tempfile.TemporaryDirectory() if not a.keep else None
    work = a.keep or tmp_ctx.name
    ct = os.path.join(work, "ct")
    root = os.path.join(ct, "dataset")
    meta = os.path.join(root, "metadata", "validation_metadata.csv")
    if not os.path.exists(meta):
        t0 = time.perf_counter()
        subprocess.run([os.path.join(a.bin, "hse-synth"), "-o", ct, "--size", "realistic", "--n-train", "0",
                        "--n-valid", str(a.files), "--seed", "5", "-q"], check=True)
        print(f"made {a.files} realistic CT files in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    files = ct_files(root, meta)
    mib = sum(os.path.getsize(f[0]) for f in files) / 2**20
    print(f"{len(files)} realistic .nii.gz files ({mib:.0f} MiB gzip) -> 32x256x256 float32; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'T':>3} {'hse vol/min':>12} {'python vol/min':>15} {'ratio':>7}")
    splits = {}
    for t in [int(x) for x in a.threads.split(",")]:
        hse_wall, split = run_hse(os.path.join(a.bin, "hse-preprocess"), meta, root, t,
                                  os.path.join(work, f"hse-T{t}.h5"))
        py_wall = run_python(files, t, os.path.join(work, f"py-T{t}"))
        n = len(files)
        print(f"{t:3d} {60 * n / hse_wall:12.1f} {60 * n / py_wall:15.1f} {py_wall / hse_wall:6.2f}x", flush=True)
        splits[t] = (hse_wall, split)
    for t, (wall, split) in splits.items():
        total = sum(split.values())
        parts = ", ".join(f"{k} {v:.1f} s ({100 * v / total:.0f}%)" for k, v in split.items())
        print(f"hse T={t}: wall {wall:.1f} s; summed over files and threads: {parts}")
    if tmp_ctx:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
