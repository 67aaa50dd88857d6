"""o200k_base as Hugging Face files, built from the tiktoken ranks beside the repository.

build(tmp) writes, from ../shared/data/o200k (or $HSE_O200K_DIR):
  tokenizer.json  as the tiktoken conversions are written (vocab = the ranks through GPT-2's
                  byte<->unicode table, one merge per token of two or more bytes: the two parts
                  a rank-limited BPE of its bytes ends with, rank order; Split(pat_str,
                  Isolated) + ByteLevel(use_regex=False); ignore_merges; decoder ByteLevel),
                  with Phi-4-mini's special tokens (<|endoftext|> 199999 ... <|im_end|> 200030);
  vocab.json + merges.txt  the same vocabulary and merges, the files transformers' slow
                  GPT2Tokenizer reads (Phi-4-mini ships both kinds).
Returns a dict: dir, tokenizer_json, vocab_json, merges_txt, ranks, special (content -> id),
pat_str. None when the data are missing.
"""
import json
import os

_REPO = os.environ.get("HSE_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
O200K = os.environ.get("HSE_O200K_DIR") or os.path.normpath(os.path.join(_REPO, "..", "shared", "data", "o200k"))


def byte_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


PHI_SPECIALS = ["<|assistant|>", "<|end|>", "<|user|>", "<|system|>", "<|tool|>", "<|/tool|>", "<|tool_call|>",
                "<|/tool_call|>", "<|tool_response|>", "<|tag|>", "<|im_start|>", "<|im_end|>"]


def phi_special_tokens():
    phi = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
    for i in range(200000, 200018):
        phi[f"<|dummy_{i - 200000}|>"] = i
    for i, name in enumerate(PHI_SPECIALS):
        phi[name] = 200019 + i
    return phi


def build(tmp):
    if not os.path.isdir(O200K):
        return None
    import tiktoken.load
    meta = json.load(open(os.path.join(O200K, "o200k_base.json"), encoding="utf-8"))
    ranks = tiktoken.load.load_tiktoken_bpe(os.path.join(O200K, "o200k_base.tiktoken"))
    b2u = byte_to_unicode()

    def u(bb):
        return "".join(b2u[x] for x in bb)

    def bpe_parts(token, max_rank):
        parts = [bytes([x]) for x in token]
        while True:
            mi, mr = None, None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (mr is None or r < mr):
                    mi, mr = i, r
            if mr is None or mr >= max_rank:
                return parts
            parts = parts[:mi] + [parts[mi] + parts[mi + 1]] + parts[mi + 2:]

    merges = []
    for tokb, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tokb) > 1:
            p = bpe_parts(tokb, rank)
            if len(p) == 2:
                merges.append([u(p[0]), u(p[1])])
    phi = phi_special_tokens()
    vocab = {u(k): v for k, v in ranks.items()}
    vocab.update(phi)
    tj = {"version": "1.0", "truncation": None, "padding": None,
          "added_tokens": [{"id": v, "content": k, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True} for k, v in sorted(phi.items(), key=lambda kv: kv[1])],
          "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": meta["pat_str"]}, "behavior": "Isolated", "invert": False},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
          "post_processor": None,
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                    "vocab": vocab, "merges": merges}}
    out = {"dir": tmp, "ranks": ranks, "special": phi, "pat_str": meta["pat_str"], "meta": meta,
           "merges": merges, "tokenizer_json": os.path.join(tmp, "tokenizer.json"),
           "vocab_json": os.path.join(tmp, "vocab.json"), "merges_txt": os.path.join(tmp, "merges.txt")}
    with open(out["tokenizer_json"], "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(out["vocab_json"], "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(out["merges_txt"], "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return out
