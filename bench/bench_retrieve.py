#!/usr/bin/env python3
"""bench_retrieve: hse-retrieve's time and peak memory as the collection grows, next to FAISS's
exact flat inner-product search (faiss.IndexFlatIP, faiss-cpu) on the same threads.

N synthetic L2-normalised embeddings (dimension D) are both the queries and the items, as in
report-to-volume retrieval over a validation set of N patients; each engine returns the top K per
query. Every run is a separate process, so its peak RSS (wait4) is its own. Prints one row per N:
seconds and peak MiB of each, their time ratio (faiss / hse: above 1, hse is faster; the
convention of bench/README.md), and the share of hse's top-K ids that FAISS also
returns (1.0: the same neighbours).

  python3 bench/bench_retrieve.py --bin build/bin --sizes 1000,10000,50000 --threads 2
"""
import argparse, os, resource, subprocess, sys, tempfile, time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import timed  # noqa: E402


def write_embeddings(path, x):
    with h5py.File(path, "w") as f:
        f.attrs["hse_format"] = "hse"
        f.attrs["hse_format_version"] = "1.0"
        f.attrs["hse_kind"] = "embeddings"
        f.attrs["modality"] = "image"
        f.create_dataset("embeddings", data=x, chunks=(min(len(x), 256), x.shape[1]))
        f.create_dataset("ids", data=np.array([f"v{i}" for i in range(len(x))], dtype=object),
                         dtype=h5py.string_dtype())


FAISS = r"""
import sys, h5py, numpy as np, faiss
path, k, threads, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
faiss.omp_set_num_threads(threads)
x = np.ascontiguousarray(h5py.File(path)["embeddings"][:], dtype=np.float32)
index = faiss.IndexFlatIP(x.shape[1])
index.add(x)
_, ids = index.search(x, k)
np.save(out, ids)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    try:
        import faiss  # noqa: F401
        have_faiss = True
    except ImportError:
        have_faiss = False
        print("faiss-cpu is not installed (pip install faiss-cpu): hse only", file=sys.stderr)
    rng = np.random.default_rng(0)
    print(f"# D={a.dim} top-{a.k} threads={a.threads} load average {os.getloadavg()[0]:.2f}")
    print("N\thse_s\thse_peak_MiB\tfaiss_s\tfaiss_peak_MiB\tfaiss/hse\tsame_ids")
    with tempfile.TemporaryDirectory() as d:
        for n in [int(s) for s in a.sizes.split(",")]:
            x = rng.standard_normal((n, a.dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            h5 = os.path.join(d, f"e{n}.h5")
            write_embeddings(h5, x)
            del x  # a spawned child counts the parent's resident pages in its peak RSS
            tsv = os.path.join(d, f"r{n}.tsv")
            with open(tsv, "w") as out:
                hs, hm = timed([os.path.join(a.bin, "hse-retrieve"), "--queries", h5, "--items", h5, "-k", str(a.k),
                                "--threads", str(a.threads), "-q"], stdout=out)
            hse_ids = np.array([int(l.split("\t")[2][1:]) for l in open(tsv)]).reshape(n, a.k)
            if have_faiss:
                npy = os.path.join(d, f"f{n}.npy")
                fs, fm = timed([sys.executable, "-c", FAISS, h5, str(a.k), str(a.threads), npy])
                f_ids = np.load(npy)
                same = np.mean([len(set(hse_ids[i]) & set(f_ids[i])) / a.k for i in range(n)])
                print(f"{n}\t{hs:.2f}\t{hm:.0f}\t{fs:.2f}\t{fm:.0f}\t{fs / hs:.2f}\t{same:.4f}", flush=True)
            else:
                print(f"{n}\t{hs:.2f}\t{hm:.0f}\t-\t-\t-\t-", flush=True)


if __name__ == "__main__":
    main()
