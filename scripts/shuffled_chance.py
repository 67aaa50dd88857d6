#!/usr/bin/env python3
"""Chance-level predictions for hse-eval: permute hse-generate's predictions across volumes.

Usage:
  scripts/shuffled_chance.py [--group patient|volume|id] [--unique-ids] [--no-shuffle] [IN.jsonl|-] > OUT.jsonl
  hse-eval report OUT.jsonl      # or: hse-eval vqa OUT.jsonl

hse-generate --task vqa writes unique ids ("VolumeName|Abnormality", "#2", ... on repeats);
for JSONL from elsewhere whose ids repeat (hse-eval refuses those: "id ... repeats line ..."),
--unique-ids rewrites the ids as "VolumeName|k" (k = the 0-based line number); with
--no-shuffle the file is only re-id'd, which gives the model's own score under the same ids:
  scripts/shuffled_chance.py --unique-ids --no-shuffle answers.jsonl > model.jsonl
  scripts/shuffled_chance.py --unique-ids answers.jsonl > chance.jsonl

Every line keeps its "id", "prompt" and "reference"; only "prediction" is replaced by the
prediction of another item, so the same hse-eval command scores the shuffled file and the
difference between the two numbers is what the model gets from the image.

Permutation (deterministic, no random numbers): a rotation of the items in file order,
  shuffled[i].prediction = original[(i + s) mod n].prediction,
with s the first shift in the order n//2, n//2 + 1, ..., n - 1, 1, 2, ..., n//2 - 1 for which
no item receives a prediction of its own group. A rotation by 0 < s < n is a derangement;
the group condition also keeps every prediction away from the other questions about the same
volume (vqa) and from the other reconstructions of the same scan (mrg, same report).

Groups (--group): "patient" (default) = CT-RATE's split_patient prefix of the volume name
(valid_12_a_2.nii.gz -> valid_12), or BIMCV-R's subject (sub-S03825_ses-E07697_run-2_bp-chest_ct.nii.gz
-> sub-S03825), "volume" = the volume name, "id" = the whole id. The volume
name is the id up to its first "|" (hse-generate --task vqa ids are "VolumeName|...", mrg ids
are the VolumeName). When no rotation avoids every group (one group holds more than half of
the items: tiny test sets), the next finer grouping is used (patient -> volume -> id). The
chosen grouping and shift are written to standard error.
"""
import argparse
import json
import re
import sys


def volume_of(item_id: str) -> str:
    return str(item_id).split("|", 1)[0]


def patient_of(item_id: str) -> str:
    vol = volume_of(item_id)
    m = re.match(r"^(sub-S\d+)_ses-", vol) or re.match(r"^([A-Za-z]+_\d+)_", vol)
    return m.group(1) if m else vol


def group_key(item, how: str) -> str:
    i = str(item.get("id", ""))
    if how == "patient":
        return patient_of(i)
    if how == "volume":
        return volume_of(i)
    return i


def choose_shift(groups):
    n = len(groups)
    half = n // 2
    order = list(range(half, n)) + list(range(1, half))
    for s in order:
        if all(groups[i] != groups[(i + s) % n] for i in range(n)):
            return s
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("input", nargs="?", default="-", help="hse-generate JSONL (default stdin)")
    ap.add_argument("--group", choices=("patient", "volume", "id"), default="patient",
                    help="items of one group never receive each other's predictions (default patient)")
    ap.add_argument("--unique-ids", action="store_true",
                    help='write the ids as "VolumeName|k", k the 0-based line number (vqa)')
    ap.add_argument("--no-shuffle", action="store_true",
                    help="keep the predictions in place (with --unique-ids: only re-id the file)")
    args = ap.parse_args()
    src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    items = [json.loads(line) for line in src if line.strip()]
    n = len(items)
    if n < 2:
        sys.exit("shuffled_chance: need at least 2 items")
    # Tiny sets (a test's two patients) may have no rotation for the chosen grouping: fall
    # back to finer groups (patient -> volume -> id), saying so on stderr.
    order = ("patient", "volume", "id")
    s, how = 0, args.group
    for how in order[order.index(args.group):]:
        groups = [group_key(it, how) for it in items]
        s = 0 if args.no_shuffle else choose_shift(groups)
        if s is not None:
            break
        print(f"shuffled_chance: no rotation of the {n} items avoids their own {how} "
              f"(one {how} holds more than half of them); trying finer groups", file=sys.stderr)
    if s is None:
        sys.exit(f"shuffled_chance: no rotation of the {n} items avoids their own id")
    if not args.no_shuffle:
        print(f"shuffled_chance: {n} items, {len(set(groups))} {how} groups, rotation by {s}",
              file=sys.stderr)
    out = sys.stdout
    for i, it in enumerate(items):
        row = dict(it)
        row["prediction"] = items[(i + s) % n].get("prediction", "")
        if args.unique_ids:
            row["id"] = f"{volume_of(it.get('id', ''))}|{i}"
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
