#!/usr/bin/env python3
"""Which findings can a model see at this resolution? A label probe for hse volumes.

Trains a small 3-D CNN (4 conv blocks, max pooling, one linear layer; PyTorch, CPU) to
predict CT-RATE's 18 abnormality labels from preprocessed volumes (HDF5 kind `volumes`)
and prints each label's validation ROC AUC. A label the probe cannot predict (AUC near
0.5) is invisible to the demo's encoders too; used to choose hse-synth --lesion-scale
and the demo resolution (see hse-synth(1)).

  scripts/probe_findings.py --train volumes_train.h5 --valid volumes_valid.h5 \\
      --train-labels DATASET/multi_abnormality_labels/train_predicted_labels.csv \\
      --valid-labels DATASET/multi_abnormality_labels/valid_predicted_labels.csv

With --linear the inputs are hse-embed outputs instead (kind embeddings, e.g. --tokens of a
CLIP's towers) and the probe is a logistic regression on the standardised, flattened features:
what a decoder reading those tokens could know. It also prints the micro F1 of its thresholded
predictions against the labels, next to the same with the predictions moved to the item half
the list away (as scripts/shuffled_chance.py's rotation), at several thresholds.

Output (stdout, TSV): label, AUC, validation prevalence; progress on stderr.
"""
import argparse
import sys
import time

import h5py
import numpy as np
import pandas as pd
import torch


def load(volumes, labels, kind="volumes"):
    with h5py.File(volumes, "r") as f:
        if f.attrs.get("hse_kind") != kind:
            sys.exit(f"{volumes}: not an hse {kind} file")
        ids = [x.decode() if isinstance(x, bytes) else x for x in f["ids"][:]]
        x = torch.from_numpy(f[kind][:].astype(np.float32))
    table = pd.read_csv(labels).set_index("VolumeName")
    missing = [i for i in ids if i not in table.index]
    if missing:
        sys.exit(f"{labels}: no labels for {missing[0]} ({len(missing)} volumes)")
    return x, torch.tensor(table.loc[ids].values, dtype=torch.float32), list(table.columns)


def roc_auc(y, score):
    """ROC AUC as the Mann-Whitney statistic (average ranks for ties)."""
    r = pd.Series(score).rank().to_numpy()
    pos = y > 0.5
    n1, n0 = pos.sum(), (~pos).sum()
    return (r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def micro_f1(pred, y):
    tp = (pred * y).sum()
    return 2 * tp / max(pred.sum() + y.sum(), 1)


def linear_probe(xt, yt, xv, yv, names, steps=300, l2=1e-2):
    xt, xv = xt.flatten(1), xv.flatten(1)
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    xt, xv = (xt - mu) / sd, (xv - mu) / sd
    w = torch.zeros(xt.shape[1], len(names), requires_grad=True)
    b = torch.zeros(len(names), requires_grad=True)
    opt = torch.optim.Adam([w, b], 1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = torch.sigmoid(xv @ w + b).detach().numpy()
    y = yv.numpy()
    for th in (0.5, 0.6, 0.7, 0.8):
        pred = (p > th).astype(float)
        shuffled = np.roll(pred, len(pred) // 2, 0)
        print(f"threshold {th}: micro F1 {micro_f1(pred, y):.3f}, moved to other items {micro_f1(shuffled, y):.3f}",
              file=sys.stderr)
    print("label\tauc\tprevalence")
    for k, n in enumerate(names):
        auc = f"{roc_auc(y[:, k], p[:, k]):.3f}" if 0 < y[:, k].sum() < len(y) else "nan"
        print(f"{n}\t{auc}\t{y[:, k].mean():.3f}")


def block(i, o):
    return torch.nn.Sequential(torch.nn.Conv3d(i, o, 3, padding=1), torch.nn.BatchNorm3d(o), torch.nn.ReLU())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--train-labels", required=True)
    ap.add_argument("--valid-labels", required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--linear", action="store_true", help="inputs are hse-embed embeddings: logistic regression")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    kind = "embeddings" if a.linear else "volumes"
    xt, yt, names = load(a.train, a.train_labels, kind)
    xv, yv, _ = load(a.valid, a.valid_labels, kind)
    if a.linear:
        return linear_probe(xt, yt, xv, yv, names)
    net = torch.nn.Sequential(block(xt.shape[1], 16), torch.nn.MaxPool3d((1, 2, 2)), block(16, 32),
                              torch.nn.MaxPool3d(2), block(32, 64), torch.nn.MaxPool3d(2), block(64, 64),
                              torch.nn.AdaptiveMaxPool3d(1), torch.nn.Flatten(), torch.nn.Linear(64, len(names)))
    opt = torch.optim.AdamW(net.parameters(), a.lr)
    t0 = time.time()
    aucs = {}
    for ep in range(a.epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), a.batch_size):
            b = perm[i:i + a.batch_size]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            p = torch.cat([net(xv[i:i + 64]) for i in range(0, len(xv), 64)]).sigmoid().numpy()
        aucs = {n: roc_auc(yv[:, k].numpy(), p[:, k]) for k, n in enumerate(names) if 0 < yv[:, k].sum() < len(yv)}
        print(f"epoch {ep + 1}/{a.epochs}: loss {loss.item():.3f}, mean AUC {np.mean(list(aucs.values())):.3f}, "
              f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print("label\tauc\tprevalence")
    for k, n in enumerate(names):
        auc = f"{aucs[n]:.3f}" if n in aucs else "nan"
        print(f"{n}\t{auc}\t{yv[:, k].mean():.3f}")


if __name__ == "__main__":
    main()
