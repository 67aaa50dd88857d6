#!/usr/bin/env python3
"""Parity test: hse::text::BpeTokenizer against the Python `tokenizers` package and `tiktoken`.

C++ side: $HSE_BIN_DIR/unit_test_bpe -tc="driver: bpe" (see tests/unit/test_bpe.cpp), which
encodes every JSONL line and writes ids, decode(ids), decode(ids, skip_special_tokens=True)
and the streaming decode. Compared exactly, line by line:

 1. GPT-2-style byte-level BPE tokenizers trained here with tokenizers' BpeTrainer on a
    generated corpus (radiology sentences; CJK, emoji incl. ZWJ/flags, combining marks,
    accents, Arabic, Hebrew, Devanagari, Thai...; whitespace runs with tabs, \\n, \\r\\n, NBSP,
    U+3000, U+0085, U+2028, U+180E; digit runs; contractions; special tokens inside words and
    between spaces), with added tokens (special; lstrip/rstrip; single_word; normalized) in
    four configurations: (a) ByteLevel(add_prefix_space=False); (b) NFC normalizer,
    ByteLevel(add_prefix_space=True), TemplateProcessing with a BOS token (half of the lines
    encoded with add_special_tokens=True), merges in the legacy "a b" form; (c) o200k's split
    regex + ByteLevel(use_regex=False), ignore_merges; (d) Split behaviors (MergedWithNext,
    Contiguous+invert, MergedWithPrevious on a String pattern, Removed); (e) Llama 3's layout
    (its (?i:...) split regex, ignore_merges, Sequence[ByteLevel, TemplateProcessing] with
    add_special_tokens=True on half of the lines). Also lines of raw
    bytes that are not UTF-8 (reference: the text decoded with errors="replace"), and every
    code point U+0000..U+2FFFF assigned in Unicode 14 in context (all in (a), a quarter in
    (c); unassigned ones are reported, not failed: PCRE2 10.42 has Unicode 14 tables).
 1e. 25 tokenizers with random added-token sets (overlapping contents, lstrip/rstrip,
    single_word, normalized, NFC/NFD, add_prefix_space) on random strings; the strings on which
    tokenizers itself panics ("AddedVocabulary bad split") are skipped and counted.
 1f. 16 tokenizers over the model options unk_token x fuse_unk x byte_fallback x
    continuing_subword_prefix x end_of_word_suffix (Split pre-tokenizer, no decoder).
 2. o200k_base (../shared/data/o200k beside the repository, or $HSE_O200K_DIR): a tokenizer.json built here (vocab = the ranks through
    the byte<->unicode table, merges recovered from the ranks, Split(pat_str, Isolated) +
    ByteLevel(use_regex=False), ignore_merges, decoder ByteLevel, Phi-4-mini-like special
    tokens <|endoftext|> 199999, <|dummy_k|>, <|endofprompt|> 200018, <|assistant|>, <|end|>,
    <|user|>, ...). Compared: C++ from_file vs tokenizers, C++ from_tiktoken vs tiktoken,
    tokenizers vs tiktoken, and the C++-saved tokenizer.json loaded by tokenizers. Plus
    TestPlans-o200k.txt (gpt-tokenizer's expected ids) and a ~1 MB text (timed).
 3. The C++ trainer: its tokenizer.json loads in tokenizers, which encodes the corpus exactly
    as the C++ does, and decode(encode(text)) == text.

Environment: HSE_BIN_DIR (the build's bin/). Prints "N passed, M failed". Exit 0 pass, 77 skip,
1 fail.
"""
import json
import os
import random
import sys
import tempfile
import time
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402
import o200k_ref  # noqa: E402

os.environ.setdefault("RUST_BACKTRACE", "0")  # tokenizers' panics in part 1e: one line, not a backtrace

with pc.needs_modules():
    import tiktoken
    import tiktoken.load
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

DRIVER = pc.driver("unit_test_bpe")
# The shared data sit beside the repository: <repo>/../shared/data/o200k.
O200K = o200k_ref.O200K

check = pc.Tally(max_printed=40)
T0 = check.t0
notes = []


# ---------------------------------------------------------------- corpus
rng = random.Random(20240607)
LOBES = ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe", "lingula"]
FIND = ["nodule", "ground-glass opacity", "consolidation", "atelectasis", "pleural effusion", "emphysema",
        "bronchiectasis", "mass", "calcified granuloma", "lymphadenopathy", "pneumothorax", "fibrotic band"]
SPECIALS = ["<|endoftext|>", "<im_patch>", "<bx_start>", "<bx_end>", "[SEG]"]
UNI = ["中文报告：右肺上叶见一结节，大小约12毫米。", "日本語のテキスト、東京タワー。", "한국어 문장입니다 폐결절",
       "😀😃🫠👍🏽👩‍⚕️👨‍👩‍👧‍👦🇪🇸🇫🇷🏳️‍🌈", "e\u0301 a\u0300 n\u0303 Z\u0335\u0336\u0337 q\u20dd",
       "Élargissement café naïve façade Ångström Øresund Łódź", "مرحبا بالعالم ٣٤٥ ورم رئوي", "שלום עולם",
       "नमस्ते दुनिया फेफड़ा", "สวัสดีครับ ปอด", "Привет, мир! ЁЖИК Лёгкие", "Ελληνικά Σίσυφος ΣΊΣΥΦΟΣ",
       "ﬁne ﬂow Ⅻ ½ ² ℌ ㎜ ﷺ", "𝐀𝐁𝐂 𝔸𝔹 𝟘𝟙", "Ꭰ ᏸ ꮀ", "\u0915\u094d\u0937 \u0dc1\u0dca\u200d\u0dbb\u0dd3"]
WS = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n ", "\u00a0", "\u3000",
      "\u2009", "\u0085", "\u2028", "\u180e", "\u200b", "\x0b", "\x0c", " \t \n", "\r", "  \n\t "]
CONTR = ["it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "THEY'RE", "We'Ve",
         "o'clock", "rock'n'roll", "'s", "'", "''", "patient's", "lungs'"]
PUNCT = [".", ",", ";", ":", "!", "?", "...", "(", ")", "[", "]", "{", "}", "\"", "«»", "—", "–", "-", "/",
         "\\", "@#$%", "+/-", "->", "<", ">", "</", "/>", "|", "<|", "|>", "~", "`"]


def digits():
    k = rng.randint(1, 4)
    if k == 1:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    if k == 2:
        return f"{rng.randint(0, 99)}.{rng.randint(0, 99)} x {rng.randint(0, 99)}.{rng.randint(0, 9)} cm"
    if k == 3:
        return rng.choice(["1,234,567.89", "٣٤٥٦", "१२३", "①②③", "T6-T9", "C5/6", "2024-01-31", "10:45", "-3.5e-7"])
    return f"{rng.randint(1, 40)} mm"


def sentence():
    s = rng.choice([
        f"There is a {digits()} {rng.choice(FIND)} in the {rng.choice(LOBES)}.",
        f"No {rng.choice(FIND)} is seen.",
        f"The {rng.choice(FIND)} (series {rng.randint(1, 9)}, image {rng.randint(1, 300)}) is unchanged.",
        f"Findings: \"{rng.choice(FIND)}\" at the {rng.choice(LOBES)}; heart size is normal.",
        f"IMPRESSION: {rng.choice(FIND).upper()} IN THE {rng.choice(LOBES).upper()}.",
    ])
    return s


def piece():
    k = rng.randint(0, 9)
    if k <= 2:
        return sentence()
    if k == 3:
        return rng.choice(UNI)
    if k == 4:
        return rng.choice(WS)
    if k == 5:
        return digits()
    if k == 6:
        return rng.choice(CONTR)
    if k == 7:
        return rng.choice(PUNCT)
    if k == 8:
        return rng.choice(SPECIALS + ["nodule", "lobe", "café", "cafe\u0301", "<|im_start|>"])
    return rng.choice(FIND)


def line():
    parts = [piece() for _ in range(rng.randint(1, 8))]
    seps = ["", " ", " ", "  ", "\t", "\n", "\r\n"]
    return "".join(p + rng.choice(seps) for p in parts)


corpus = [line() for _ in range(2500)]
corpus += [sentence() + " " + sentence() for _ in range(600)]
corpus += ["a [SEG] b", "x  [SEG]\n y", "<im_patch><im_patch><im_patch>", "<|endoftext|>the", "the<|endoftext|>",
           "  [SEG]  ", "[SEG][SEG]", "nodule", "nodules", "a nodule.", "_nodule", "nodule_", "lobe  lobe\tlobe",
           "café", "cafe\u0301", "CAFÉ", "", " ", "\n", "\r\n", "   \n  ", "'s", "x's", "<bx_start>12 34<bx_end>",
           "<|endoftext|><|endoftext|>", "<|endoftext", "endoftext|>", "\u0085\u0085 a", "a\u180eb", "🫠" * 20,
           "a" * 3000, ("nodule " * 400).strip(), " ".join(str(i) for i in range(300))]
TRAIN = corpus[:1500]

# every code point assigned in Unicode 14 (Python's unicodedata), in context, 48 a line
assigned, unassigned = [], []
for c in range(0x30000):
    if 0xD800 <= c <= 0xDFFF:
        continue
    (unassigned if unicodedata.category(chr(c)) == "Cn" else assigned).append(chr(c))


def cp_lines(cps, n):
    out = []
    for i in range(0, len(cps), n):
        out.append(" ".join(f"a{c}1{c}{c} {c}" for c in cps[i:i + n]))
    return out


CP_LINES = cp_lines(assigned, 48)
UNASSIGNED_LINES = cp_lines(unassigned, 48)
BAD_BYTES = [b"a\xe2\x82Ab\xf0\x9f\x98c\xed\xa0\x80d\xc0\xafe\xf4\x90\x80\x80f\xe0\x80g\xff",
             b"\xff\xfe\xfd", b"nodule\x80\x80 lobe", "café".encode("latin-1"), b"\xe4\xb8", b"[SEG]\xc3",
             b"<|endoftext|>\xf0\x9f\x98\x80\xf0\x9f"]

if os.environ.get("HSE_BPE_KEEP"):  # keep the inputs and outputs (debugging)
    TMP = tempfile.mkdtemp(prefix="hse_parity_bpe_")
    print("files in", TMP)
else:
    tmp = tempfile.TemporaryDirectory(prefix="hse_parity_bpe_")
    TMP = tmp.name


def run_driver(env_extra, lines, tag, quiet=False):
    """Runs the C++ driver on lines (str, bytes, or (text, add_special_tokens)); returns its records."""
    inp = os.path.join(TMP, f"{tag}.in.jsonl")
    out = os.path.join(TMP, f"{tag}.out.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for x in lines:
            add = False
            if isinstance(x, tuple):
                x, add = x
            rec = {"hex": x.hex()} if isinstance(x, bytes) else {"text": x}
            rec["add_special_tokens"] = add
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    t0 = time.time()
    p = pc.run_driver(DRIVER, "bpe", dict(env_extra, HSE_BPE_IN=inp, HSE_BPE_OUT=out))
    wall = time.time() - t0
    info = [l for l in p.stderr.splitlines() if l.startswith(("loaded", "trained"))] + [f"driver ran {wall:.1f} s"]
    if not quiet:
        print(f"  [{tag}] C++: " + " | ".join(info))
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        check(False, f"{tag}: driver exited {p.returncode}")
        return None
    with open(out, encoding="utf-8") as f:
        return [json.loads(l) for l in f]


def reference(tok, lines):
    """tokenizers' ids, decode and decode(skip_special_tokens=True) for lines (batched)."""
    texts, adds = [], []
    for x in lines:
        add = False
        if isinstance(x, tuple):
            x, add = x
        texts.append(x.decode("utf-8", "replace") if isinstance(x, bytes) else x)
        adds.append(add)
    ids = [None] * len(texts)
    for flag in (False, True):
        idx = [i for i, a in enumerate(adds) if a == flag]
        if idx:
            for i, e in zip(idx, tok.encode_batch([texts[i] for i in idx], add_special_tokens=flag)):
                ids[i] = e.ids
    dec = tok.decode_batch(ids, skip_special_tokens=False)
    dec_skip = tok.decode_batch(ids, skip_special_tokens=True)
    return texts, ids, dec, dec_skip


def compare(tag, tok, lines, got, report_only=False, quiet=False):
    """Compares driver records with tokenizers' encode/decode; returns (lines, ids, mismatching lines)."""
    bad = []
    if got is None or len(got) != len(lines):
        check(False, f"{tag}: driver gave {None if got is None else len(got)} records for {len(lines)} lines")
        return 0, 0, []
    texts, ids, dec, dec_skip = reference(tok, lines)
    n_ids = sum(len(r) for r in ids)
    for text, g, ref, d, ds in zip(texts, got, ids, dec, dec_skip):
        ok = g["ids"] == ref
        ok_dec = g["decoded"] == d
        ok_skip = g["decoded_skip"] == ds
        ok_stream = g["stream"] == g["decoded"]
        if not (ok and ok_dec and ok_skip and ok_stream):
            bad.append(text)
            if not report_only and len(bad) <= 5:
                print(f"  [{tag}] mismatch on {text[:80]!r}: ids {ok} decode {ok_dec} skip {ok_skip} stream {ok_stream}")
                if not ok:
                    print("    C++:", g["ids"][:40], "\n    ref:", ref[:40])
        if not report_only:
            check(ok and ok_dec and ok_skip and ok_stream, f"{tag}: {text[:60]!r}")
    if not quiet or bad:
        print(f"  [{tag}] {len(lines)} lines, {n_ids} ids compared, {len(bad)} mismatching lines")
    return len(lines), n_ids, bad


totals = {"lines": 0, "ids": 0}


def tally(r):
    totals["lines"] += r[0]
    totals["ids"] += r[1]


# ---------------------------------------------------------------- 1. tokenizers-trained byte-level BPE
print(f"1. tokenizers-trained byte-level BPE (corpus ready at {time.time() - T0:.1f} s)")
base = Tokenizer(models.BPE())
base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
base.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<|endoftext|>"], show_progress=False,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
base.train_from_iterator(TRAIN, trainer)
base.add_special_tokens([AddedToken("<im_patch>", special=True), AddedToken("<bx_start>", special=True),
                         AddedToken("<bx_end>", special=True),
                         AddedToken("[SEG]", special=True, lstrip=True, rstrip=True, normalized=False)])
base.add_tokens([AddedToken("nodule", single_word=True), AddedToken("lobe", lstrip=True, rstrip=False),
                 AddedToken("café", normalized=True), AddedToken("<|im_start|>", normalized=False)])
path_a = os.path.join(TMP, "a.json")
base.save(path_a)
cfg = json.load(open(path_a, encoding="utf-8"))


def variant(name, mutate):
    j = json.loads(json.dumps(cfg))
    mutate(j)
    p = os.path.join(TMP, f"{name}.json")
    with open(p, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    return p, Tokenizer.from_file(p)


def mut_b(j):
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    eot = next(t["id"] for t in j["added_tokens"] if t["content"] == "<|endoftext|>")
    j["post_processor"] = json.loads(processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", eot)]).__getstate__())
    j["model"]["merges"] = [a + " " + b for a, b in j["model"]["merges"]]


META = json.load(open(os.path.join(O200K, "o200k_base.json"), encoding="utf-8")) if os.path.isdir(O200K) else None
O200K_PAT = META["pat_str"] if META else r"""[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def mut_c(j):
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": O200K_PAT}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j["model"]["ignore_merges"] = True


def mut_d(j):
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\s+"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\p{N}"}, "behavior": "Contiguous", "invert": True},
        {"type": "Split", "pattern": {"String": "."}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"String": "\t"}, "behavior": "Removed", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}


LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")


def mut_e(j):  # Llama 3's layout: case-insensitive contractions, Sequence[ByteLevel, TemplateProcessing]
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_PAT}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j["model"]["ignore_merges"] = True
    eot = next(t["id"] for t in j["added_tokens"] if t["content"] == "<|endoftext|>")
    j["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        json.loads(processors.TemplateProcessing(single="<|endoftext|> $A",
                                                 special_tokens=[("<|endoftext|>", eot)]).__getstate__())]}


configs = [("a", (path_a, Tokenizer.from_file(path_a))), ("b", variant("b", mut_b)), ("c", variant("c", mut_c)),
           ("d", variant("d", mut_d)), ("e", variant("e", mut_e))]
for name, (path, tok) in configs:
    lines = list(corpus) + BAD_BYTES
    if name in ("b", "e"):
        lines = [(x, i % 2 == 0) if isinstance(x, str) else x for i, x in enumerate(lines)]
    if name == "a":
        lines += CP_LINES
    if name == "c":
        lines += CP_LINES[::4]
    got = run_driver({"HSE_BPE_TOKENIZER": path}, lines, name)
    tally(compare(name, tok, lines, got))
    if name == "a":
        got = run_driver({"HSE_BPE_TOKENIZER": path}, UNASSIGNED_LINES, "a-unassigned")
        _, _, bad = compare("a-unassigned", tok, UNASSIGNED_LINES, got, report_only=True)
        if bad:
            notes.append(f"{len(bad)} of {len(UNASSIGNED_LINES)} lines of code points unassigned in Unicode 14 "
                         f"pre-tokenize differently (newer Unicode tables in tokenizers)")

# ---------------------------------------------------------------- 1e/1f. added-token fuzz, model options
print(f"1e. random added-token sets ({time.time() - T0:.1f} s)")
small_cfg = json.loads(json.dumps(cfg))
ALPH = ["a", "b", "c", " ", "  ", "\t", "\n", "é", "e\u0301", "[", "]", "\u3000", "_", "1"]
fuzz_lines = fuzz_ids = fuzz_bad = fuzz_panics = 0
for k in range(25):
    j = json.loads(json.dumps(small_cfg))
    if rng.random() < 0.5:
        j["normalizer"] = {"type": rng.choice(["NFC", "NFD"])}
    if rng.random() < 0.3:
        j["pre_tokenizer"]["add_prefix_space"] = True
    j["added_tokens"] = [{"id": 0, "content": "".join(rng.choice(ALPH) for _ in range(rng.randint(1, 4))),
                          "single_word": rng.random() < 0.3, "lstrip": rng.random() < 0.4,
                          "rstrip": rng.random() < 0.4, "normalized": rng.random() < 0.5,
                          "special": rng.random() < 0.5} for _ in range(rng.randint(1, 6))]
    p = os.path.join(TMP, f"fuzz{k}.json")
    with open(p, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    tok = Tokenizer.from_file(p)
    pool = ALPH + [a["content"] for a in j["added_tokens"]] * 2
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(120)]
    ok_texts = []
    for x in texts:  # tokenizers panics ("AddedVocabulary bad split") on some overlapping strips
        try:
            tok.encode(x)
            ok_texts.append(x)
        except BaseException:  # noqa: B036 (pyo3's PanicException)
            fuzz_panics += 1
    got = run_driver({"HSE_BPE_TOKENIZER": p}, texts, f"fuzz{k}", quiet=True)
    if got is None:
        continue
    got = [g for x, g in zip(texts, got) if x in ok_texts]
    n, i, bad = compare(f"fuzz{k}", tok, ok_texts, got, quiet=True)
    fuzz_lines += n
    fuzz_ids += i
    fuzz_bad += len(bad)
    tally((n, i))
print(f"  [fuzz] 25 tokenizers, {fuzz_lines} lines, {fuzz_ids} ids compared, {fuzz_bad} mismatching "
      f"({fuzz_panics} texts skipped: tokenizers panics on them, the C++ does not)")

print(f"1f. unk_token / fuse_unk / byte_fallback / continuing_subword_prefix / end_of_word_suffix ({time.time() - T0:.1f} s)")
OPT_ALPH = "abcdefghij klmn éü中\t"
opt_texts = ["".join(rng.choice(OPT_ALPH) for _ in range(rng.randint(0, 30))) for _ in range(300)]
opt_lines = opt_ids = opt_bad = 0
for prefix in (None, "##"):
    for suffix in (None, "</w>"):
        for fuse in (False, True):
            for bf in (False, True):
                kw = {k: v for k, v in (("continuing_subword_prefix", prefix), ("end_of_word_suffix", suffix)) if v}
                tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=fuse, **kw))
                tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s+"), behavior="removed")
                tok.train_from_iterator(opt_texts[:150], trainers.BpeTrainer(
                    vocab_size=120, special_tokens=["<unk>"], limit_alphabet=8, show_progress=False, **kw))
                j = json.loads(tok.to_str())
                j["model"]["byte_fallback"] = bf
                if bf:
                    n = max(j["model"]["vocab"].values()) + 1
                    for b in range(0, 256, 3):
                        j["model"]["vocab"][f"<0x{b:02X}>"] = n
                        n += 1
                tag = f"opt-{prefix is not None:d}{suffix is not None:d}{fuse:d}{bf:d}"
                p = os.path.join(TMP, tag + ".json")
                with open(p, "w", encoding="utf-8") as f:
                    json.dump(j, f, ensure_ascii=False)
                tok = Tokenizer.from_file(p)
                n, i, bad = compare(tag, tok, opt_texts, run_driver({"HSE_BPE_TOKENIZER": p}, opt_texts, tag, quiet=True),
                                    quiet=True)
                opt_lines += n
                opt_ids += i
                opt_bad += len(bad)
                tally((n, i))
print(f"  [options] 16 tokenizers, {opt_lines} lines, {opt_ids} ids compared, {opt_bad} mismatching")

# ---------------------------------------------------------------- 2. o200k
if META is None:
    pc.optional_part(f"2. o200k: no data in {O200K}", check)
    notes.append("o200k data missing: part 2 skipped")
else:
    print(f"2. o200k_base ({time.time() - T0:.1f} s)")
    t0 = time.time()
    o2 = o200k_ref.build(TMP)
    ranks, merges, phi, path_o = o2["ranks"], o2["merges"], o2["special"], o2["tokenizer_json"]
    tok_o = Tokenizer.from_file(path_o)
    check(tok_o.token_to_id("<|endoftext|>") == 199999 and tok_o.token_to_id("<|im_end|>") == 200030,
          "o200k tokenizer.json: special token ids")
    enc = tiktoken.Encoding("o200k_hse", pat_str=META["pat_str"], mergeable_ranks=ranks, special_tokens=phi)
    print(f"  built o200k tokenizer.json ({len(merges)} merges) and tiktoken in {time.time() - t0:.1f} s")

    # ~1 MB of varied text, timed in the C++ driver
    big = []
    size = 0
    while size < (1 << 20):
        s = line()
        big.append(s)
        size += len(s.encode())
    big_text = "".join(big)
    o_lines = list(corpus) + BAD_BYTES + CP_LINES[::8] + [big_text]

    saved = os.path.join(TMP, "o200k-from-cpp.json")
    got_j = run_driver({"HSE_BPE_TOKENIZER": path_o}, o_lines, "o200k-json")
    tally(compare("o200k-json", tok_o, o_lines, got_j))
    got_t = run_driver({"HSE_BPE_TIKTOKEN": os.path.join(O200K, "o200k_base.tiktoken"),
                        "HSE_BPE_TIKTOKEN_META": os.path.join(O200K, "o200k_base.json"), "HSE_BPE_SAVE": saved},
                       [x for x in o_lines if not isinstance(x, bytes)], "o200k-tiktoken")

    # tiktoken: its own special tokens are only the two of o200k_base.json in from_tiktoken
    enc2 = tiktoken.Encoding("o200k_base", pat_str=META["pat_str"], mergeable_ranks=ranks,
                             special_tokens=META["special_tokens"])
    n_tt = n_tt_ids = bad_tt = bad_hf_tt = 0
    t1 = time.time()
    for x, g_json, g_tt in zip([x for x in o_lines if not isinstance(x, bytes)],
                               [g for x, g in zip(o_lines, got_j or []) if not isinstance(x, bytes)], got_t or []):
        ref_full = enc.encode(x, allowed_special="all")  # all Phi-like specials
        ref_base = enc2.encode(x, allowed_special="all")
        n_tt += 1
        n_tt_ids += len(ref_base)
        if g_tt["ids"] != ref_base or g_tt["decoded"] != enc2.decode(ref_base):
            bad_tt += 1
            if bad_tt <= 3:
                print(f"  [o200k-tiktoken] mismatch on {x[:60]!r}")
        if g_json["ids"] != ref_full:
            bad_hf_tt += 1
    check(got_t is not None and bad_tt == 0, f"C++ from_tiktoken vs tiktoken: {bad_tt} mismatching lines")
    check(got_j is not None and bad_hf_tt == 0, f"tokenizer.json (C++ = tokenizers) vs tiktoken: {bad_hf_tt} lines")
    print(f"  [o200k-tiktoken] {n_tt} lines, {n_tt_ids} ids vs tiktoken: {bad_tt} mismatching; "
          f"tokenizer.json route vs tiktoken: {bad_hf_tt} mismatching ({time.time() - t1:.1f} s)")
    totals["lines"] += n_tt
    totals["ids"] += n_tt_ids

    # the tokenizer.json the C++ wrote (from_tiktoken + save) loads in tokenizers and encodes the same
    if os.path.exists(saved):
        tok_s = Tokenizer.from_file(saved)
        check(tok_s.token_to_id("<|endoftext|>") == 199999 and tok_s.token_to_id("<|endofprompt|>") == 200018,
              "C++-saved o200k: special ids")
        bad_s = sum(1 for e, x in zip(tok_s.encode_batch(corpus, add_special_tokens=False), corpus)
                    if e.ids != enc2.encode(x, allowed_special="all"))
        check(bad_s == 0, f"C++-saved o200k tokenizer.json in tokenizers vs tiktoken: {bad_s} lines")
        print(f"  [o200k-saved] C++-saved tokenizer.json in tokenizers: {len(corpus)} lines, {bad_s} mismatching")
    else:
        check(False, "C++ did not save the o200k tokenizer.json")

    # TestPlans-o200k.txt: expected ids from gpt-tokenizer
    plans = []
    with open(os.path.join(O200K, "TestPlans-o200k.txt"), encoding="utf-8") as f:
        block = {}
        for l in f.read().split("\n"):
            if l.startswith("Sample: "):
                block["s"] = l[len("Sample: "):]
            elif l.startswith("Encoded: "):
                plans.append((block["s"], json.loads(l[len("Encoded: "):])))
    got_p = run_driver({"HSE_BPE_TOKENIZER": path_o}, [s for s, _ in plans], "testplans")
    bad_p = sum(1 for (s, e), g in zip(plans, got_p or []) if g["ids"] != e or g["decoded"] != s)
    bad_p_tt = sum(1 for s, e in plans if enc2.encode(s) != e)
    check(got_p is not None and len(got_p) == len(plans) and bad_p == 0, f"TestPlans-o200k: {bad_p} mismatching")
    print(f"  [testplans] {len(plans)} samples: C++ {bad_p} mismatching, tiktoken {bad_p_tt} mismatching")

# ---------------------------------------------------------------- 3. the C++ trainer
print(f"3. C++ trainer ({time.time() - T0:.1f} s)")
train_in = os.path.join(TMP, "train.jsonl")
with open(train_in, "w", encoding="utf-8") as f:
    for x in TRAIN:
        f.write(json.dumps({"text": x}, ensure_ascii=False) + "\n")
for tag, pattern, vocab_size in [("train-gpt2", "", 2000), ("train-o200k", O200K_PAT, 1500)]:
    out_json = os.path.join(TMP, f"{tag}.json")
    env = {"HSE_BPE_TRAIN_IN": train_in, "HSE_BPE_TRAIN_OUT": out_json, "HSE_BPE_TRAIN_VOCAB": str(vocab_size),
           "HSE_BPE_TRAIN_PATTERN": pattern, "HSE_BPE_TRAIN_SPECIALS": json.dumps(SPECIALS),
           "HSE_BPE_TOKENIZER": out_json}
    lines = list(corpus) + BAD_BYTES
    got = run_driver(env, lines, tag)
    try:
        tok_t = Tokenizer.from_file(out_json)
    except Exception as e:  # noqa: BLE001
        check(False, f"{tag}: tokenizers cannot load the C++-trained tokenizer.json: {e}")
        continue
    check(tok_t.get_vocab_size() == vocab_size, f"{tag}: vocab size {tok_t.get_vocab_size()} != {vocab_size}")
    check(all(tok_t.token_to_id(s) == i for i, s in enumerate(SPECIALS)), f"{tag}: special token ids")
    tally(compare(tag, tok_t, lines, got))
    rt = sum(1 for x, g in zip(lines, got or []) if isinstance(x, str) and g["decoded"] != x)
    check(got is not None and rt == 0, f"{tag}: decode(encode(text)) != text on {rt} lines")
    print(f"  [{tag}] round trip: {rt} lines differ")

print(f"compared {totals['lines']} lines, {totals['ids']} ids; {time.time() - T0:.1f} s")
for n in notes:
    print("note:", n)
sys.exit(check.finish(timed=False))
