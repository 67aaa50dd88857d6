#!/usr/bin/env python3
"""Parity: BERTScore with a RoBERTa model (bert-score's English default is roberta-large, layer 17,
the setting HSENet reports) through `hse-eval report --bertscore-model DIR`, against bert-score.

The model: a tiny random RobertaModel written by transformers (save_pretrained, safetensors;
pad_token_id 1, 514 positions, one token type) with a byte-level BPE trained here by `tokenizers`
(vocab.json + merges.txt, specials <s> <pad> </s> <unk> <mask> = 0..4) and a tokenizer_config.json
giving model_max_length 512 (as roberta-large's). Reference: bert_score.score(cands, refs,
model_type=DIR, num_layers=L, idf=..., batch_size=64), with and without idf, for several layers,
and with rescale_with_baseline=True and a baseline file (baseline_path). bert-score passes
add_prefix_space=True to tokenizer.encode for RoBERTa; transformers 5 ignores that argument, so the
reference's tokenizer is built with add_prefix_space=True, which gives what transformers 4 (the
version HSENet ran) gave per call. Pairs: radiology sentences, identical, empty and duplicated
ones, and one longer than 512 tokens (truncated).
Compared: corpus means bertscore_{precision,recall,f1} and the per-item F (--per-item) with
|hse - bert-score| <= 1e-5; also the refusal of a model directory without a vocabulary (exit 3).
Exit: 0 pass, 1 fail, 77 skip (a missing Python module).
"""
import csv
import io
import contextlib
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402

pc.offline_env()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
with pc.needs_modules():
    import torch
    import bert_score
    import bert_score.utils as bsu
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    pc.quiet_transformers()

BIN = os.environ.get("HSE_BIN_DIR", "build/bin")
TOOL = os.path.join(BIN, "hse-eval")
check = pc.Tally(max_printed=20)
torch.set_num_threads(1)

SENTS = ["The lungs are clear.", "No pleural effusion or pneumothorax.", "Mild atelectasis in the left lower lobe.",
         "Heart size is normal; the aorta measures 45 mm.", "A 12-mm ground-glass nodule in the right upper lobe.",
         "Calcified plaques in the coronary arteries.", "Degenerative changes of the thoracic spine (T12-L1).",
         "Emphysematous changes, predominantly upper-lobe.", "Bilateral non-specific fibrotic bands.",
         "Status post sternotomy. No acute findings."]


def make_model(d):
    os.makedirs(d, exist_ok=True)
    rng = random.Random(1)
    corpus = [" ".join(rng.sample(SENTS, 3)) for _ in range(300)]
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus, vocab_size=500, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.save_model(d)
    n = len(json.load(open(os.path.join(d, "vocab.json"))))
    torch.manual_seed(0)
    cfg = RobertaConfig(vocab_size=n, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    RobertaModel(cfg, add_pooling_layer=False).eval().save_pretrained(d, safe_serialization=True)
    json.dump({"model_max_length": 512, "tokenizer_class": "RobertaTokenizer"},
              open(os.path.join(d, "tokenizer_config.json"), "w"))


def pairs():
    rng = random.Random(3)
    cands = [" ".join(rng.sample(SENTS, rng.randint(1, 3))) for _ in range(30)]
    refs = [" ".join(rng.sample(SENTS, rng.randint(1, 3))) for _ in range(30)]
    long = " ".join(SENTS * 12)  # > 512 tokens
    cands += ["The lungs are clear.", "", "  padded text  ", long, SENTS[3]]
    refs += ["The lungs are clear.", SENTS[1], SENTS[2], long[:700], ""]
    return cands, refs


pc.patch_bert_score_empty()


def reference(d, cands, refs, layer, idf, baseline=None):
    orig = bsu.get_tokenizer

    def get_tokenizer(model_type, use_fast=False):
        return AutoTokenizer.from_pretrained(model_type, use_fast=use_fast, add_prefix_space=True)

    bert_score.score.__globals__["get_tokenizer"] = get_tokenizer
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            P, R, F = bert_score.score(cands, refs, model_type=d, num_layers=layer, idf=idf, batch_size=64,
                                       device="cpu", nthreads=1, rescale_with_baseline=baseline is not None,
                                       baseline_path=baseline, lang="en" if baseline else None)
    finally:
        bert_score.score.__globals__["get_tokenizer"] = orig
    return P.tolist(), R.tolist(), F.tolist()


def hse(tmp, d, cands, refs, layer, idf, baseline=None):
    fin = os.path.join(tmp, "pred.jsonl")
    with open(fin, "w", encoding="utf-8") as f:
        for i, (c, r) in enumerate(zip(cands, refs)):
            f.write(json.dumps({"id": str(i), "prediction": c, "reference": r}) + "\n")
    per = os.path.join(tmp, "per.tsv")
    args = [TOOL, "report", "--json", "-q", "--bertscore-model", d, "--bertscore-layer", str(layer),
            "--per-item", per, fin] + (["--bertscore-idf"] if idf else []) + (
        ["--bertscore-baseline", baseline] if baseline else [])
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr[-1500:])
        return None
    with open(per, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return json.loads(p.stdout), [float(r["bertscore_f1"]) for r in rows]


def main(tmp):
    d = os.path.join(tmp, "roberta")
    make_model(d)
    cands, refs = pairs()
    base = os.path.join(tmp, "baseline.tsv")
    with open(base, "w") as f:
        f.write("LAYER,P,R,F\n0,0.90,0.91,0.905\n1,0.80,0.81,0.805\n2,0.70,0.72,0.71\n3,0.60,0.62,0.61\n")
    for layer, idf, b in [(3, False, None), (2, False, None), (2, True, None), (0, False, None), (2, False, base)]:
        label = f"layer {layer} idf={idf}" + (" baseline" if b else "")
        P, R, F = reference(d, cands, refs, layer, idf, b)
        got = hse(tmp, d, cands, refs, layer, idf, b)
        if got is None:
            check(False, f"{label}: hse-eval failed")
            continue
        j, per_f = got
        means = {"precision": sum(P) / len(P), "recall": sum(R) / len(R), "f1": sum(F) / len(F)}
        worst = max(abs(j[f"bertscore_{k}"] - v) for k, v in means.items())
        worst_item = max(abs(a - b_) for a, b_ in zip(per_f, F)) if len(per_f) == len(F) else float("inf")
        print(f"  {label}: {len(F)} pairs, means max|diff| {worst:.2e}, per-item F max|diff| {worst_item:.2e} "
              f"(mean F {means['f1']:.4f})")
        check(worst <= 1e-5 and worst_item <= 1e-5, f"{label}: max|diff| {max(worst, worst_item)}")
    # a directory without a vocabulary
    os.remove(os.path.join(d, "merges.txt"))
    p = subprocess.run([TOOL, "report", "-q", "--bertscore-model", d, os.path.join(tmp, "pred.jsonl")],
                       capture_output=True, text=True)
    check(p.returncode == 3 and "vocab.json + merges.txt" in p.stderr and len(p.stderr.strip().splitlines()) <= 2,
          f"no vocabulary: exit 3 and one line (got {p.returncode}: {p.stderr.strip()[:200]})")


if __name__ == "__main__":
    pc.run_in_tmp("hse_bs_roberta_", main)
    sys.exit(check.finish())
