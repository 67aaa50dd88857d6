#!/usr/bin/env python3
"""Benchmark: the volume storage codecs, read throughput against raw float32 and float16.

Makes N realistic CT volumes (hse-synth --size realistic, 512x512x~300 int16 .nii.gz) and
preprocesses them at the paper's size (hse-preprocess: 32x256x256 float32). bin/bench_storage then
writes that file once per type (float32, float16) and codec (none, gzip, lz4, blosc, bitshuffle),
reads every volume back through h5::Reader (the trainers' read path, one thread), checks that the
data are unchanged, and reports size, compression ratio and volumes/s. Finally each file is opened
with plain h5py, with HDF5_PLUGIN_PATH pointing at Debian's plugin directory, and compared with the
source: the files stay readable outside hse. Codecs whose plugin is not installed are skipped.

    python3 bench/bench_storage.py [--bin build/bin] [--volumes 16] [--repeat 3] [--keep DIR]
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time

PLUGINS = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"


def h5py_check(path, source, plugin_dir):
    """Reads `path` with h5py in a fresh process (HDF5_PLUGIN_PATH set there): volumes/s, and
    the largest difference from the float32 source."""
    code = f"""
import sys, time, h5py, numpy as np
src = h5py.File({source!r}, "r")["volumes"]
f = h5py.File({path!r}, "r")["volumes"]
for i in range(f.shape[0]):  # a warm pass, as bench_storage's
    f[i]
t0 = time.perf_counter()
for i in range(f.shape[0]):
    f[i]
rate = f.shape[0] / (time.perf_counter() - t0)
worst = max(float(np.abs(f[i].astype(np.float32) - src[i]).max()) for i in range(f.shape[0]))
print(rate, worst)
"""
    env = dict(os.environ, HDF5_PLUGIN_PATH=plugin_dir)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"
    rate, worst = r.stdout.split()
    return float(rate), float(worst)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--volumes", type=int, default=16, help="synthetic scans (hse-synth may reconstruct some twice)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--keep", help="work here (reused: the CT files and source volumes are made once)")
    ap.add_argument("--plugin-dir", default=PLUGINS)
    a = ap.parse_args()

    tmp_ctx = tempfile.TemporaryDirectory() if not a.keep else None
    work = a.keep or tmp_ctx.name
    os.makedirs(work, exist_ok=True)
    source = os.path.join(work, "source.h5")
    if not os.path.exists(source):
        ct = os.path.join(work, "ct")
        t0 = time.perf_counter()
        subprocess.run([os.path.join(a.bin, "hse-synth"), "-o", ct, "--size", "realistic", "--n-train", "0",
                        "--n-valid", str(a.volumes), "--seed", "11", "-q"], check=True)
        meta = os.path.join(ct, "dataset", "metadata", "validation_metadata.csv")
        subprocess.run([os.path.join(a.bin, "hse-preprocess"), "-q", "--threads", str(a.threads), "--metadata", meta,
                        "--root", os.path.join(ct, "dataset"), "-o", source], check=True)
        print(f"made {a.volumes} realistic CT volumes and preprocessed them in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    out = os.path.join(work, "codecs")
    r = subprocess.run([os.path.join(a.bin, "bench_storage"), source, out, "--repeat", str(a.repeat)],
                       capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        sys.exit(f"bench_storage failed ({r.returncode})")
    rows = list(csv.DictReader(io.StringIO(r.stdout), delimiter="\t"))
    base = next(x for x in rows if x["dtype"] == "float32" and x["codec"] == "none")
    base_rate = float(base["read_volumes_per_s"])
    import h5py
    n = h5py.File(source, "r")["volumes"].shape[0]
    print(f"{len(rows)} files of {n} volumes (32x256x256, from {a.volumes} synthetic scans); read by hse "
          f"(h5::Reader, 1 thread) and h5py, from the page cache")
    print(f"{'dtype':8} {'codec':11} {'MiB':>8} {'ratio':>6} {'write s':>8} {'hse vol/s':>10} {'vs f32 raw':>10} "
          f"{'h5py vol/s':>10}  h5py max |diff|")
    for x in rows:
        rate = float(x["read_volumes_per_s"])
        path = os.path.join(out, f"{x['dtype']}-{x['codec']}.h5")
        py_rate, worst = h5py_check(path, source, a.plugin_dir)
        py = f"{py_rate:10.1f}  {worst:.3g}" if py_rate is not None else f"{'-':>10}  unreadable: {worst}"
        print(f"{x['dtype']:8} {x['codec']:11} {float(x['bytes']) / 2**20:8.1f} {float(x['ratio']):6.2f} "
              f"{float(x['write_s']):8.2f} {rate:10.1f} {rate / base_rate:9.2f}x {py}")
    if tmp_ctx:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
