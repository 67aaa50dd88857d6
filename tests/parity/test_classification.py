#!/usr/bin/env python3
"""Parity test: hse-eval classification against scikit-learn and CT-CLIP's evaluation.

References, per label:
  - auroc: sklearn roc_curve + auc (CT-CLIP scripts/eval.py), which equals roc_auc_score;
  - ap: sklearn average_precision_score;
  - threshold: CT-CLIP's find_threshold (scripts/bootstrap_values.py), written out below: over
    numpy.linspace(0, 1, 100), predicting p > t, the t with the smallest distance
    sqrt((1 - TPR)^2 + FPR^2) from sklearn's confusion_matrix, `<=` so the larger t wins ties;
  - at that threshold: f1_score(average="weighted") (CT-CLIP's F1), f1_score (positive class),
    accuracy_score, precision_score (zero_division=0), recall_score, and specificity TN/(TN+FP);
  - the macro figures: the plain mean over the labels scored.
Cases: random scores with many ties (probabilities on a 0.05 grid, as a softmax rounded), exact
ties at grid thresholds, perfect and inverted rankings, a label with one class only (left out of
the macro means with a warning), and a refusal for a probability outside [0, 1].

Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402

with pc.needs_modules():
    import numpy as np
    from sklearn.metrics import (accuracy_score, auc, average_precision_score, confusion_matrix, f1_score,
                                 precision_score, recall_score, roc_curve)

BIN = os.environ.get("HSE_BIN_DIR", "build/bin")


def ctclip_threshold(p, y):
    best_t, best = 0.0, 10000.0
    for t in np.linspace(0, 1, 100):
        pred = (p > t).astype(int)
        cm = confusion_matrix(y, pred, labels=[0, 1])
        tn, fp, fn, tp = cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]
        d = math.sqrt((1 - tp / (tp + fn)) ** 2 + (fp / (fp + tn)) ** 2)
        if d <= best:
            best, best_t = d, t
    return best_t


def reference(p, y):
    fpr, tpr, _ = roc_curve(y, p)
    t = ctclip_threshold(p, y)
    pred = (p > t).astype(int)
    cm = confusion_matrix(y, pred, labels=[0, 1])
    return {"auroc": auc(fpr, tpr), "ap": average_precision_score(y, p), "threshold": t,
            "f1_weighted": f1_score(y, pred, average="weighted"), "f1": f1_score(y, pred, zero_division=0),
            "accuracy": accuracy_score(y, pred), "precision": precision_score(y, pred, zero_division=0),
            "recall": recall_score(y, pred), "specificity": cm[0, 0] / (cm[0, 0] + cm[0, 1])}


def slug(s):
    return "".join(c.lower() if c.isalnum() else "_" for c in s)


def main():
    check = pc.Tally(max_printed=20)
    rng = np.random.default_rng(7)
    n = 150
    labels = ["Lung nodule", "Emphysema", "Pleural effusion", "Cardiomegaly", "Hiatal hernia", "Constant one"]
    Y = rng.integers(0, 2, (n, len(labels)))
    Y[:, -1] = 1  # one class only
    P = np.zeros((n, len(labels)))
    P[:, 0] = np.round(np.clip(0.25 * Y[:, 0] + rng.random(n) * 0.75, 0, 1) / 0.05) * 0.05  # ties on a grid
    P[:, 1] = rng.random(n)                                                                   # chance
    P[:, 2] = np.where(Y[:, 2] == 1, 0.9, 0.1)                                                # perfect
    P[:, 3] = np.where(Y[:, 3] == 1, 0.2, 0.7)                                                # inverted
    P[:, 4] = np.round(rng.random(n) * 99) / 99                                               # on the threshold grid
    P[:, 5] = rng.random(n)
    with tempfile.TemporaryDirectory() as d:
        with open(f"{d}/labels.csv", "w") as f:
            f.write("VolumeName,Unused," + ",".join(labels) + "\n")
            for i in range(n):
                f.write(f"v{i},0," + ",".join(str(int(x)) for x in Y[i]) + "\n")
        with open(f"{d}/p.tsv", "w") as f:
            f.write("id\tlabel\tprobability\n")
            for i in range(n):
                for j, lab in enumerate(labels):
                    f.write(f"v{i}\t{lab}\t{P[i, j]!r}\n")
        r = subprocess.run([f"{BIN}/hse-eval", "classification", "--labels", f"{d}/labels.csv", "--json", f"{d}/p.tsv"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"hse-eval classification exit {r.returncode}: {r.stderr}")
        if r.returncode != 0:
            return check.finish()
        got = json.loads(r.stdout)
        check("Constant one" in r.stderr and "left out" in r.stderr, f"one-class label warned about: {r.stderr}")
        check(f"auroc_{slug('Constant one')}" not in got, "one-class label has no AUROC")
        refs = []
        for j, lab in enumerate(labels[:-1]):
            ref = reference(P[:, j], Y[:, j])
            refs.append(ref)
            for k, v in ref.items():
                key = f"{k}_{slug(lab)}"
                check(key in got and abs(got[key] - v) <= 1e-6, f"{key}: hse {got.get(key)} sklearn {v}")
        for k in refs[0]:
            if k == "threshold":
                continue
            mean = float(np.mean([x[k] for x in refs]))
            check(abs(got[f"{k}_macro"] - mean) <= 1e-6, f"{k}_macro: hse {got[f'{k}_macro']} reference {mean}")
        check(got["labels_scored"] == 5, f"labels_scored {got['labels_scored']}")
        # Refusals: a probability outside [0, 1], a label missing from the CSV.
        with open(f"{d}/bad.tsv", "w") as f:
            f.write("v0\tLung nodule\t1.5\n")
        r = subprocess.run([f"{BIN}/hse-eval", "classification", "--labels", f"{d}/labels.csv", f"{d}/bad.tsv"],
                           capture_output=True, text=True)
        check(r.returncode == 3 and "outside [0, 1]" in r.stderr, f"probability 1.5: exit {r.returncode} {r.stderr}")
        with open(f"{d}/bad2.tsv", "w") as f:
            f.write("v0\tNo such label\t0.5\n")
        r = subprocess.run([f"{BIN}/hse-eval", "classification", "--labels", f"{d}/labels.csv", f"{d}/bad2.tsv"],
                           capture_output=True, text=True)
        check(r.returncode == 3 and "no column 'No such label'" in r.stderr, f"unknown label: {r.returncode} {r.stderr}")
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
