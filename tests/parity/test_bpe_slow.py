#!/usr/bin/env python3
"""Parity: hse's slow tokenizer mode (--tokenizer-mode slow) against transformers' slow classes.

HSENet loads Phi-4-mini's tokenizer with use_fast=False: transformers' slow GPT2Tokenizer,
which reads vocab.json + merges.txt and pre-tokenizes with GPT-2's fixed regex instead of the
o200k split pattern of tokenizer.json. This test builds both files from the o200k ranks
(../shared/data/o200k, tests/parity/o200k_ref.py) and encodes CT report text plus edge cases
(hyphenated words, numbers of 4+ digits, leading punctuation, newlines, contractions,
whitespace runs, non-Latin scripts, special tokens inside text).

References, each compared exactly (ids):
  A. a transcription of transformers 4.x's slow GPT2Tokenizer (tokenize: special tokens split
     out first, then regex.findall(GPT-2 pattern), byte->unicode, bpe() by merge rank): the
     class HSENet ran;
  B. transformers' GPT2Tokenizer(vocab.json, merges.txt) of the installed version (5.x: the
     same pipeline on tokenizers);
  C. for the fast mode, PreTrainedTokenizerFast(tokenizer.json).
hse side (driver: unit_test_bpe -tc="driver: bpe"): slow mode of tokenizer.json, and
from_vocab_merges(vocab.json, merges.txt); fast mode of tokenizer.json. RoBERTa-style
add_prefix_space=True (bert-score) against A and B with it. The test also requires that slow
and fast differ on the report text (the reason the mode exists).
Exit: 0 pass, 1 fail, 77 skip (a missing Python module, or missing o200k data outside CI).
"""
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402
import o200k_ref  # noqa: E402

pc.offline_env()
with pc.needs_modules():
    import regex
    import tiktoken  # noqa: F401  (o200k_ref)
    from transformers import GPT2Tokenizer, PreTrainedTokenizerFast

DRIVER = pc.driver("unit_test_bpe")
check = pc.Tally(max_printed=20)

GPT2_PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


class SlowGpt2:
    """transformers 4.x tokenization_gpt2.GPT2Tokenizer, encode(text) without added BOS/EOS."""

    def __init__(self, vocab, merges, specials, add_prefix_space=False):
        self.encoder = vocab
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.b2u = o200k_ref.byte_to_unicode()
        self.specials = sorted(specials, key=len, reverse=True)
        self.add_prefix_space = add_prefix_space
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        if not pairs:
            return [token]
        while True:
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        self.cache[token] = list(word)
        return list(word)

    def split_specials(self, text):
        # the added-tokens trie: leftmost match, longest at that position
        out, i, start = [], 0, 0
        while i < len(text):
            hit = next((s for s in self.specials if text.startswith(s, i)), None)
            if hit:
                if start < i:
                    out.append((False, text[start:i]))
                out.append((True, hit))
                i += len(hit)
                start = i
            else:
                i += 1
        if start < len(text):
            out.append((False, text[start:]))
        return out

    def encode(self, text):
        if self.add_prefix_space:
            text = " " + text
        ids = []
        for special, chunk in self.split_specials(text):
            if special:
                ids.append(self.encoder[chunk])
                continue
            for tok in GPT2_PAT.findall(chunk):
                mapped = "".join(self.b2u[b] for b in tok.encode("utf-8"))
                ids.extend(self.encoder[t] for t in self.bpe(mapped))
        return ids


def report_lines(rng):
    organs = ["lung", "pleura", "mediastinum", "aorta", "liver", "T12-L1 vertebrae", "left kidney"]
    finds = ["ground-glass opacities", "a 12-mm nodule", "non-specific fibrotic bands", "pleural effusion",
             "atelectasis (subsegmental)", "calcified plaques", "emphysematous changes"]
    lines = []
    for _ in range(120):
        s = []
        for _ in range(rng.randint(1, 4)):
            s.append(f"{rng.choice(['There is', 'No', 'Mild', 'Stable'])} {rng.choice(finds)} in the "
                     f"{rng.choice(organs)}{rng.choice(['.', ',', ';', ':'])}")
        lines.append(rng.choice([" ", "\n", "\n\n", "  "]).join(s))
    return lines


EDGE = ["non-specific", "ground-glass", "T12-L1", "post-operative changes", "1234", "20231231", "12345678901",
        "3.14159 and 2,500,000", "(Left) lung", "'quoted'", "\"double\"", "...trailing", "-leading hyphen",
        "line one\nline two\n\nline three\n", "\r\nwindows\r\n", "tabs\tand\t\tmore", "   three spaces",
        "trailing   ", "It's the patient's CT; they'll see, we're done, I've, I'd, I'm", "IT'S LOUD",
        "Größe 5 cm, naïve, café", "肺结节 3 mm", "emoji 🫁 lungs", "Ελληνικά και русский",
        "a\u00a0b", "x\u3000y", "p\u2028q", "ctl\x1cfs\x1fus", "mongol\u180evowel",
        "<|user|>Describe the CT.<|end|><|assistant|>Findings:", "text<|endoftext|>", "", " ", "\n"]


def run(tmp, env, lines, tag):
    inp, out = os.path.join(tmp, f"{tag}.in"), os.path.join(tmp, f"{tag}.out")
    with open(inp, "w", encoding="utf-8") as f:
        for x in lines:
            f.write(json.dumps({"text": x, "add_special_tokens": False}, ensure_ascii=False) + "\n")
    p = pc.run_driver(DRIVER, "bpe", dict(env, HSE_BPE_IN=inp, HSE_BPE_OUT=out))
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-2000:])
        check(False, f"{tag}: driver exited {p.returncode}")
        return None
    with open(out, encoding="utf-8") as f:
        return [json.loads(l)["ids"] for l in f]


def compare(tag, lines, got, ref):
    if got is None or len(got) != len(ref):
        check(False, f"{tag}: {None if got is None else len(got)} records for {len(ref)} lines")
        return
    bad = [t for t, g, r in zip(lines, got, ref) if g != r]
    for t in bad[:3]:
        i = lines.index(t)
        print(f"  [{tag}] mismatch on {t[:60]!r}\n    hse: {got[i][:30]}\n    ref: {ref[i][:30]}")
    print(f"  [{tag}] {len(lines)} lines, {sum(map(len, ref))} ids, {len(bad)} mismatching")
    check(not bad, f"{tag}: {len(bad)} lines differ")


def main(tmp):
    d = o200k_ref.build(tmp)
    if d is None:
        pc.skip(f"o200k data missing at {o200k_ref.O200K} (../shared beside the repository)")
    rng = random.Random(7)
    lines = report_lines(rng) + EDGE
    specials = list(d["special"])
    vocab = json.load(open(d["vocab_json"], encoding="utf-8"))
    merges = [l.rstrip("\n").split(" ") for l in open(d["merges_txt"], encoding="utf-8") if not l.startswith("#")]

    for prefix in (False, True):
        sfx = "+prefix" if prefix else ""
        ref_a = [SlowGpt2(vocab, merges, specials, prefix).encode(t) for t in lines]
        hf = GPT2Tokenizer(d["vocab_json"], d["merges_txt"], add_prefix_space=prefix)
        hf.add_special_tokens({"additional_special_tokens": [s for s in specials if s != "<|endoftext|>"]})
        ref_b = [hf.encode(t, add_special_tokens=False) for t in lines]
        # B's ByteLevel(add_prefix_space) prefixes every chunk between special tokens, and none
        # that starts with a space; the slow class puts one space before any text. With the
        # prefix, B is compared on the non-empty lines without special tokens or leading
        # whitespace (bert-score strips its input).
        keep = [i for i, t in enumerate(lines)
                if not prefix or (t.strip() == t and t and not any(s in t for s in specials))]
        check(all(ref_a[i] == ref_b[i] for i in keep), f"reference A == reference B{sfx}")
        env = {"HSE_BPE_MODE": "slow", "HSE_BPE_TOKENIZER": d["tokenizer_json"],
               "HSE_BPE_PREFIX_SPACE": "1" if prefix else "0"}
        got = run(tmp, env, lines, "slow-json" + sfx)
        compare("slow tokenizer.json vs transformers 4.x slow" + sfx, lines, got, ref_a)
        compare("slow tokenizer.json vs GPT2Tokenizer" + sfx, [lines[i] for i in keep],
                [got[i] for i in keep] if got else None, [ref_b[i] for i in keep])
        env = {"HSE_BPE_VOCAB": d["vocab_json"], "HSE_BPE_MERGES": d["merges_txt"],
               "HSE_BPE_SPECIALS": json.dumps(specials), "HSE_BPE_PREFIX_SPACE": "1" if prefix else "0"}
        compare("vocab.json+merges.txt vs transformers 4.x slow" + sfx, lines, run(tmp, env, lines, "vm" + sfx), ref_a)

    fast = PreTrainedTokenizerFast(tokenizer_file=d["tokenizer_json"])
    ref_c = [fast.encode(t, add_special_tokens=False) for t in lines]
    got_fast = run(tmp, {"HSE_BPE_TOKENIZER": d["tokenizer_json"]}, lines, "fast")
    compare("fast tokenizer.json vs PreTrainedTokenizerFast", lines, got_fast, ref_c)
    slow = [SlowGpt2(vocab, merges, specials).encode(t) for t in lines]
    n_rep = len(lines) - len(EDGE)
    differ = sum(a != b for a, b in zip(slow[:n_rep], ref_c[:n_rep]))
    print(f"  slow and fast differ on {differ} of {n_rep} report lines and on "
          f"{sum(a != b for a, b in zip(slow[n_rep:], ref_c[n_rep:]))} of {len(EDGE)} edge cases")
    for t in ["non-specific", "ground-glass", "It's the patient's CT; they'll see, we're done, I've, I'd, I'm",
              "line one\nline two\n\nline three\n"]:
        i = lines.index(t)
        check(slow[i] != ref_c[i], f"slow and fast differ on {t!r}")
    check(differ > n_rep // 4, f"slow and fast differ on {differ} of {n_rep} report lines (expected many)")


if __name__ == "__main__":
    pc.run_in_tmp("hse_bpe_slow_", main)
    sys.exit(check.finish())
