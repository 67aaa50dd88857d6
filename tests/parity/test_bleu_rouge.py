#!/usr/bin/env python3
"""Parity test: hse::eval BLEU/ROUGE against sacrebleu, HF evaluate's bleu and rouge_score.

References:
  - sacrebleu: BLEU(max_ngram_order=n, smooth_method, smooth_value, tokenize='13a'),
    corpus_score (effective_order off) and sentence_score (effective_order on,
    as sacrebleu.sentence_bleu), for n = 1..4 and the smoothing methods none,
    exp, floor (0.1 and 0.2), add-k (1 and 2); the 13a tokenisation itself.
  - HF evaluate "bleu": a torch-free copy of tensorflow/nmt compute_bleu (below)
    over evaluate's Tokenizer13a tokens (sacrebleu's Tokenizer13a, split; no
    rstrip), max_order 4 and 1, smooth=False. evaluate itself is not needed.
  - rouge_score: RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=False/True)
    .score(target=ref, prediction=pred), its tokens, and nltk's PorterStemmer.

The C++ side is the "driver" test case of unit_test_bleu_rouge: it reads the
pairs from $HSE_BLEU_ROUGE_IN (JSONL) and writes every metric to
$HSE_BLEU_ROUGE_OUT.

Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import collections
import json
import math
import os
import random
import subprocess
import sys
import tempfile

try:
    from nltk.stem.porter import PorterStemmer
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    import sacrebleu
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "")
DRIVER = os.path.join(BIN, "unit_test_bleu_rouge")
TOL = 1e-6

# --------------------------------------------------------------------------- corpus
SENTENCES = [
    "No focal consolidation, pleural effusion or pneumothorax is seen.",
    "The trachea and both main bronchi are patent.",
    "Heart size is within normal limits; no pericardial effusion.",
    "A 3.5 mm ground-glass nodule is noted in the right upper lobe (series 3, image 45).",
    "There is a 12x8 mm hypodense lesion in segment VII of the liver, likely a simple cyst.",
    "Mild centrilobular emphysema is present in both upper lobes.",
    "Bilateral lower-lobe atelectasis, more prominent on the left.",
    "Mediastinal lymph nodes measure up to 9 mm in short axis, within normal limits.",
    "Calcified atherosclerotic plaques are seen in the aortic arch and coronary arteries.",
    "The thoracic aorta has a normal calibre (ascending aorta 34 mm).",
    "Degenerative changes of the thoracic spine with osteophytes at T6-T9.",
    "No lytic or sclerotic bone lesions were identified.",
    "Thyroid gland appears heterogeneous with a 15 mm nodule in the left lobe.",
    "The oesophagus is mildly dilated and fluid-filled.",
    "Status post median sternotomy; sternal wires are intact.",
    "Bronchiectatic changes with peribronchial thickening in the right middle lobe.",
    "Interlobular septal thickening and honeycombing at the lung bases, consistent with UIP pattern.",
    "A 2.1 x 1.7 cm spiculated mass abuts the pleura in the left upper lobe; malignancy cannot be excluded.",
    "Small hiatal hernia.",
    "The visualised upper abdomen is unremarkable.",
    "Gallbladder contains multiple calcified gallstones, the largest measuring 11 mm.",
    "Both adrenal glands are normal in size and configuration.",
    "Right-sided pleural effusion with passive atelectasis of the adjacent lung parenchyma.",
    "There are tree-in-bud opacities in the left lower lobe, suggesting infectious bronchiolitis.",
    "Pulmonary artery trunk is enlarged (32 mm), suggestive of pulmonary hypertension.",
    "No pathologically enlarged axillary, hilar or mediastinal lymph nodes.",
    "Scattered subcentimetric pulmonary nodules (< 5 mm), unchanged compared with prior CT of 03/2019.",
    "The kidneys are partially imaged; a 7 mm non-obstructing calculus is seen in the left kidney.",
    "Mosaic attenuation pattern, possibly related to small-airway disease.",
    "Cardiomegaly with a cardiothoracic ratio of approximately 0.6.",
    "Endotracheal tube tip 4 cm above the carina; nasogastric tube coursing into the stomach.",
    "Diffuse ground-glass opacities bilaterally, predominantly peripheral and basal - consider COVID-19 pneumonia.",
    "The liver is enlarged (craniocaudal 19 cm) and shows diffusely decreased attenuation, compatible with steatosis.",
    "Old healed fractures of the right 5th and 6th ribs.",
    "Minimal pericardial thickening without effusion.",
    "Left breast implant is noted; no suspicious breast lesion.",
    "Nodular thickening of the left adrenal gland (13 mm), likely an adenoma.",
    "Paraseptal emphysema and apical bullae, the largest 25 mm on the right.",
    "The main pulmonary arteries show no filling defect to suggest embolism.",
    "Impression: no acute cardiopulmonary abnormality.",
    "Findings are stable compared with the previous examination dated 2020-11-04.",
    "Lung volumes are reduced; the diaphragm is elevated on the right.",
]

UNICODE = [
    "Opacité en verre dépoli du lobe inférieur droit, taille 8 µm × 6 µm.",
    "Nodule ≥ 6 mm: “follow-up” CT in 3–6 months recommended…",
    "右肺上叶见一磨玻璃结节，大小约5 mm。",
    "Lesion size ≤ 2 cm; ratio ≈ 0.5 ± 0.1 ‘stable’.",
    "Göttingen protocol: Größe 12 mm, Dichte 40 HU — unverändert.",
    "Temperature 310 \u212a and \u0130stanbul \u00bd dose; caf\u00e9 au lait spots.",
    "Non\u00a0breaking\u2009thin\u3000ideographic space and\u200bzero width.",
    "Emoji 🫁 lungs ok 👍 and mathematical 𝐛𝐨𝐥𝐝 letters.",
    "Combining e\u0301 accent versus \u00e9 precomposed, ﬁ ligature.",
    "Ⅻ roman numeral and ² superscript and ٣ arabic digit 3.",
]

PUNCT = [
    "(((Nodule))) -- [right] {upper} lobe!!! ??? ...",
    "&quot;No change&quot; &amp; stable &lt;5 mm&gt; <skipped> lesion.",
    "Size: 3.5mm/4.0mm; ratio=0.87; p<0.05; 1,000 HU; 5-6 cm; 10-fold.",
    "e.g. U.S.A. vs. i.e., etc.,... a.b,c.d 3.x x.3 1.-2.",
    "Hyphen-\nated line\nbreak, trailing   spaces   ",
    "Tabs\tand\r\nwindows line endings\r\n",
    "@#$%^&*()_+=`~|\\/<>:;\"' all the ASCII punctuation",
    "It's the patient's 2nd CT; O'Brien's sign -ve.",
    "12x8 mm, 3.5 mm, 2.1 x 1.7 cm, 19cm, 0.6, 03/2019, 2020-11-04, T6-T9.",
    "end with tokenized period .",
]

SWAPS = [("right", "left"), ("left", "right"), ("upper", "lower"), ("No ", "A "), ("normal", "abnormal"),
         ("mm", "cm"), ("is", "is not"), ("small", "large"), ("mild", "severe")]

VOCAB = sorted({w.strip(".,;:()").lower() for s in SENTENCES for w in s.split()} - {""})


def make_report(rng, k_lo=2, k_hi=7):
    return " ".join(rng.sample(SENTENCES, rng.randint(k_lo, k_hi)))


def noisy(rng, text, p=0.15):
    out = []
    for w in text.split(" "):
        r = rng.random()
        if r < p / 3:
            continue
        if r < 2 * p / 3:
            out.append(rng.choice(VOCAB))
        elif r < p:
            out.extend([w, rng.choice(VOCAB)])
        else:
            out.append(w)
    return " ".join(out)


def build_pairs():
    rng = random.Random(20240611)
    pairs = []
    reports = [make_report(rng) for _ in range(60)]
    for r in reports[:20]:  # identical
        pairs.append((r, r))
    for r in reports[20:40]:  # dropped sentences
        sents = r.split(". ")
        if len(sents) > 1:
            sents.pop(rng.randrange(len(sents)))
        pairs.append((". ".join(sents), r))
    for r in reports[:30]:  # swapped findings / reordered sentences
        p = r
        for a, b in rng.sample(SWAPS, 3):
            p = p.replace(a, b, 1)
        sents = p.split(". ")
        rng.shuffle(sents)
        pairs.append((". ".join(sents), r))
    for r in reports[30:60]:  # word noise
        pairs.append((noisy(rng, r), r))
    shuffled = reports[:]
    rng.shuffle(shuffled)
    for p, r in zip(shuffled[:25], reports[:25]):  # shuffled pairing
        pairs.append((p, r))
    pairs += [("", reports[0]), (reports[1], ""), ("", ""), ("   ", "\t\n"), ("a", "a"), ("a", "b"),
              ("x y", "x y z w"), (reports[2].upper(), reports[2]), (reports[3].lower(), reports[3]),
              (reports[4] + "   \n", reports[4] + " -\n"), (reports[5] + "-\n", reports[5] + "-")]
    for u in UNICODE:  # unicode
        pairs.append((u, u))
        pairs.append((noisy(rng, u, 0.3), u))
        pairs.append((u + " " + make_report(rng, 1, 2), make_report(rng, 1, 2) + " " + u))
    for q in PUNCT:  # punctuation-heavy
        pairs.append((q, q))
        pairs.append((q, rng.choice(PUNCT)))
        pairs.append((noisy(rng, q, 0.3), q + " " + rng.choice(SENTENCES)))
    for _ in range(3):  # very long texts (2000+ words)
        long_ref = " ".join(rng.choice(SENTENCES + UNICODE + PUNCT) for _ in range(260))
        pairs.append((noisy(rng, long_ref, 0.2), long_ref))
    long_ref = " ".join(rng.choice(SENTENCES) for _ in range(250))
    pairs.append((make_report(rng), long_ref))  # very short hypothesis against a long reference
    pairs.append((long_ref, make_report(rng)))
    return pairs


# --------------------------------------------------------------------------- references
TOK13A = Tokenizer13a()


def _get_ngrams(segment, max_order):
    ngram_counts = collections.Counter()
    for order in range(1, max_order + 1):
        for i in range(0, len(segment) - order + 1):
            ngram_counts[tuple(segment[i:i + order])] += 1
    return ngram_counts


def compute_bleu(reference_corpus, translation_corpus, max_order=4, smooth=False):
    """tensorflow/nmt nmt/scripts/bleu.py compute_bleu, as vendored by HF evaluate."""
    matches_by_order = [0] * max_order
    possible_matches_by_order = [0] * max_order
    reference_length = 0
    translation_length = 0
    for (references, translation) in zip(reference_corpus, translation_corpus):
        reference_length += min(len(r) for r in references)
        translation_length += len(translation)
        merged_ref_ngram_counts = collections.Counter()
        for reference in references:
            merged_ref_ngram_counts |= _get_ngrams(reference, max_order)
        translation_ngram_counts = _get_ngrams(translation, max_order)
        overlap = translation_ngram_counts & merged_ref_ngram_counts
        for ngram in overlap:
            matches_by_order[len(ngram) - 1] += overlap[ngram]
        for order in range(1, max_order + 1):
            possible_matches = len(translation) - order + 1
            if possible_matches > 0:
                possible_matches_by_order[order - 1] += possible_matches
    precisions = [0] * max_order
    for i in range(0, max_order):
        if smooth:
            precisions[i] = (matches_by_order[i] + 1.0) / (possible_matches_by_order[i] + 1.0)
        else:
            if possible_matches_by_order[i] > 0:
                precisions[i] = float(matches_by_order[i]) / possible_matches_by_order[i]
            else:
                precisions[i] = 0.0
    if min(precisions) > 0:
        p_log_sum = sum((1.0 / max_order) * math.log(p) for p in precisions)
        geo_mean = math.exp(p_log_sum)
    else:
        geo_mean = 0
    ratio = float(translation_length) / reference_length
    if ratio > 1.0:
        bp = 1.0
    else:
        bp = math.exp(1 - 1.0 / ratio)
    bleu = geo_mean * bp
    return (bleu, precisions, bp, ratio, translation_length, reference_length)


def hf_tokenize(line):  # evaluate's Tokenizer13a returns line.split() of the same string
    return TOK13A(line).split()


def hf_bleu(pred, ref, max_order):
    """evaluate.load('bleu').compute(predictions=[pred], references=[[ref]], max_order=...).
    Python raises ZeroDivisionError for an empty prediction/reference; the
    precisions are computed before that point, the rest is then None."""
    try:
        bleu, precisions, bp, ratio, tl, rl = compute_bleu([[hf_tokenize(ref)]], [hf_tokenize(pred)], max_order)
        return dict(bleu=bleu, precisions=precisions, brevity_penalty=bp, length_ratio=ratio,
                    translation_length=tl, reference_length=rl)
    except ZeroDivisionError:
        t, r = hf_tokenize(pred), hf_tokenize(ref)
        m = collections.Counter()
        for ng, c in (_get_ngrams(t, max_order) & _get_ngrams(r, max_order)).items():
            m[len(ng)] += c
        precisions = [m[n] / (len(t) - n + 1) if len(t) - n + 1 > 0 else 0.0 for n in range(1, max_order + 1)]
        ratio = None if not r else len(t) / len(r)
        return dict(bleu=None, precisions=precisions, brevity_penalty=None, length_ratio=ratio,
                    translation_length=len(t), reference_length=len(r))


VARIANTS = {"none": ("none", None), "exp": ("exp", None), "floor": ("floor", None), "add-k": ("add-k", None),
            "floor0.2": ("floor", 0.2), "add-k2": ("add-k", 2)}


def sacre(n, variant, eff):
    method, value = VARIANTS[variant]
    return BLEU(max_ngram_order=n, smooth_method=method, smooth_value=value, effective_order=eff, tokenize="13a")


# --------------------------------------------------------------------------- compare
stats = collections.Counter()
fails = collections.Counter()
examples = []


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return False
    return abs(float(a) - float(b)) <= TOL


def check(kind, ok, msg):
    stats[kind] += 1
    if not ok:
        fails[kind] += 1
        if len(examples) < 40:
            examples.append(f"{kind}: {msg}")


def main():
    if not os.path.exists(DRIVER):
        print(f"FAIL: {DRIVER} not found (set HSE_BIN_DIR)")
        return 1
    pairs = build_pairs()
    words = set()
    extra = ["generalization", "rational", "conditional", "valenci", "hesitanci", "digitizer", "conformabli",
             "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication", "operator",
             "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti", "sensibiliti",
             "triplicate", "formative", "formalize", "electriciti", "electrical", "hopeful", "goodness",
             "revival", "allowance", "inference", "airliner", "gyroscopic", "adjustable", "defensible",
             "irritant", "replacement", "adjustment", "dependent", "adoption", "homologou", "communism",
             "activate", "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease",
             "controll", "roll", "caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered",
             "bled", "motoring", "sing", "conflated", "troubled", "sized", "hopping", "tanned", "falling",
             "hissing", "fizzed", "failing", "filing", "happy", "sky", "skies", "dying", "lying", "tying",
             "news", "innings", "outings", "cannings", "howe", "proceed", "exceed", "succeed", "fulli", "beautifulli",
             "analogi", "apologi", "etymologi", "spied", "died", "tied", "flies", "yyyy", "syzygy", "yelling",
             "eeed", "bleed", "crying", "ying", "aing", "oed", "ated", "abled", "ized", "bbed", "ssed", "lled",
             "zzed", "hoped", "ringing", "bying", "cyying"]
    rng = random.Random(7)
    stems = ["form", "act", "nod", "opac", "sens", "rel", "bronch", "calc", "hop", "tan", "fil", "ab", "y",
             "xy", "dy", "cr", "troub", "siz", "plast", "conf", "val", "gen", "agre", "contr", "hiss", "fizz"]
    suffixes = ["", "s", "es", "ies", "ied", "ed", "eed", "ing", "ings", "ational", "tional", "enci", "anci",
                "izer", "bli", "abli", "alli", "entli", "eli", "ousli", "ization", "ation", "ator", "alism",
                "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli", "logi", "icate", "ative",
                "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible", "ant",
                "ement", "ment", "ent", "sion", "tion", "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize", "e",
                "ll", "y", "ly", "ies", "ness", "ities", "ations", "izations", "fully", "ically"]
    for _ in range(3000):
        w = rng.choice(stems) + rng.choice(suffixes) + (rng.choice(suffixes) if rng.random() < 0.4 else "")
        words.add(w)
    words.update(extra)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    scorer_st = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for p, r in pairs:
        words.update(t for t in scorer._tokenizer.tokenize(p) + scorer._tokenizer.tokenize(r) if len(t) > 3)
    words = sorted(words)

    with tempfile.TemporaryDirectory(prefix="hse-bleu-") as tmp:
        fin, fout = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(fin, "w", encoding="utf-8") as f:
            for p, r in pairs:
                f.write(json.dumps({"pred": p, "ref": r}, ensure_ascii=False) + "\n")
            f.write(json.dumps({"words": words}) + "\n")
        env = dict(os.environ, HSE_BLEU_ROUGE_IN=fin, HSE_BLEU_ROUGE_OUT=fout)
        proc = subprocess.run([DRIVER, "-tc=driver*"], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            print("FAIL: driver exited", proc.returncode)
            return 1
        with open(fout, encoding="utf-8") as f:
            out = [json.loads(line) for line in f]

    stem_line = [o for o in out if "stems" in o]
    corpus_line = [o for o in out if "corpus" in o]
    rows = [o for o in out if "tok_pred" in o]
    if len(rows) != len(pairs) or len(stem_line) != 1 or len(corpus_line) != 1:
        print(f"FAIL: driver wrote {len(rows)} rows for {len(pairs)} pairs")
        return 1
    print(f"{len(pairs)} pairs, {len(words)} stemmer words; longest reference "
          f"{max(len(r.split()) for _, r in pairs)} words")

    # Porter stemmer
    ps = PorterStemmer()
    for w, s in zip(words, stem_line[0]["stems"]):
        check("stemmer", ps.stem(w) == s, f"{w!r}: nltk {ps.stem(w)!r}, hse {s!r}")

    sent_objs = {(n, v): sacre(n, v, True) for n in range(1, 5) for v in VARIANTS}
    for i, ((p, r), o) in enumerate(zip(pairs, rows)):
        tag = f"pair {i} ({p[:40]!r} | {r[:40]!r})"
        check("13a tokens", TOK13A(p) == o["tok_pred"] and TOK13A(r) == o["tok_ref"],
              f"{tag}: {TOK13A(p)!r} vs {o['tok_pred']!r}")
        # sacrebleu sentence BLEU (effective order), every variant and order
        for v in VARIANTS:
            got = o["sentence"][v]
            for n in range(1, 5):
                ref = sent_objs[(n, v)].sentence_score(p, [r])
                check(f"sentence BLEU-{n} [{v}]", close(got["bleu"][n - 1], ref.score / 100),
                      f"{tag}: sacrebleu {ref.score / 100}, hse {got['bleu'][n - 1]}")
                if n == 4:
                    ok = all(close(got["precisions"][k], ref.precisions[k] / 100) for k in range(4))
                    ok = ok and close(got["bp"], ref.bp) and got["sys_len"] == ref.sys_len and got["ref_len"] == ref.ref_len
                    check(f"sentence precisions/BP [{v}]", ok,
                          f"{tag}: sacrebleu {ref.precisions} {ref.bp}, hse {got['precisions']} {got['bp']}")
        # sacrebleu.sentence_bleu itself (its defaults: exp, effective order, n = 4)
        sb = sacrebleu.sentence_bleu(p, [r], smooth_method="exp")
        check("sacrebleu.sentence_bleu [exp]", close(o["sentence"]["exp"]["bleu"][3], sb.score / 100),
              f"{tag}: {sb.score / 100} vs {o['sentence']['exp']['bleu'][3]}")
        # HF evaluate bleu
        h4, h1 = hf_bleu(p, r, 4), hf_bleu(p, r, 1)
        check("HF precisions (HSENet BLEU-n)", all(close(a, b) for a, b in zip(o["hf_precisions"], h4["precisions"])),
              f"{tag}: HF {h4['precisions']}, hse {o['hf_precisions']}")
        for name, h in (("hf4", h4), ("hf1", h1)):
            g = o[name]
            ok = all(close(g[k], h[k]) for k in ("bleu", "brevity_penalty", "length_ratio"))
            ok = ok and all(close(a, b) for a, b in zip(g["precisions"], h["precisions"]))
            ok = ok and g["translation_length"] == h["translation_length"] and g["reference_length"] == h["reference_length"]
            check(f"HF bleu max_order={name[2:]}", ok, f"{tag}: HF {h}, hse {g}")
        # rouge_score
        check("rouge tokens", scorer._tokenizer.tokenize(p) == o["rtok_pred"]
              and scorer_st._tokenizer.tokenize(r) == o["rtok_ref_stem"], f"{tag}: tokens differ")
        for key, sc in (("rouge", scorer), ("rouge_stem", scorer_st)):
            ref = sc.score(target=r, prediction=p)
            for t in ("rouge1", "rouge2", "rougeL"):
                a, b = o[key][t], ref[t]
                check(f"{key} {t}", close(a[0], b.precision) and close(a[1], b.recall) and close(a[2], b.fmeasure),
                      f"{tag}: rouge_score {b}, hse {a}")

    hyps, refs = [p for p, _ in pairs], [r for _, r in pairs]
    for v in VARIANTS:
        got = corpus_line[0]["corpus"][v]
        for n in range(1, 5):
            ref = sacre(n, v, False).corpus_score(hyps, [refs])
            check(f"corpus BLEU-{n} [{v}]", close(got["bleu"][n - 1], ref.score / 100),
                  f"sacrebleu {ref.score / 100}, hse {got['bleu'][n - 1]}")
            if n == 4:
                print(f"corpus BLEU-4 [{v}]: sacrebleu {ref.score / 100:.6f} hse {got['bleu'][3]:.6f}")
    # a few subsets, so that corpus BLEU is also checked where the BP is < 1
    for lo, hi in ((0, 20), (20, 40), (100, 140), (len(pairs) - 8, len(pairs))):
        sub_rows = pairs[lo:hi]
        with tempfile.TemporaryDirectory(prefix="hse-bleu-") as tmp:
            fin, fout = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
            with open(fin, "w", encoding="utf-8") as f:
                for p, r in sub_rows:
                    f.write(json.dumps({"pred": p, "ref": r}, ensure_ascii=False) + "\n")
            env = dict(os.environ, HSE_BLEU_ROUGE_IN=fin, HSE_BLEU_ROUGE_OUT=fout)
            subprocess.run([DRIVER, "-tc=driver*"], env=env, capture_output=True, check=True)
            with open(fout, encoding="utf-8") as f:
                c = [json.loads(line) for line in f][-1]["corpus"]
        for v in VARIANTS:
            for n in range(1, 5):
                ref = sacre(n, v, False).corpus_score([p for p, _ in sub_rows], [[r for _, r in sub_rows]])
                check(f"corpus BLEU-{n} [{v}] (subsets)", close(c[v]["bleu"][n - 1], ref.score / 100),
                      f"pairs {lo}:{hi}: sacrebleu {ref.score / 100}, hse {c[v]['bleu'][n - 1]}")
                if n == 4:
                    check(f"corpus BP [{v}] (subsets)", close(c[v]["bp"], ref.bp), f"pairs {lo}:{hi}: BP")

    # The default call of each library, through hse-eval report with no option changed:
    # sacrebleu's BLEU() corpus_score and sentence_bleu smooth with exp by default, rouge_score
    # scores without a stemmer.
    tool = os.path.join(BIN, "hse-eval")
    strip = [(p.strip(), r.strip()) for p, r in pairs]
    with tempfile.TemporaryDirectory(prefix="hse-bleu-") as tmp:
        fin = os.path.join(tmp, "pred.jsonl")
        with open(fin, "w", encoding="utf-8") as f:
            for i, (p, r) in enumerate(pairs):
                f.write(json.dumps({"id": str(i), "prediction": p, "reference": r}, ensure_ascii=False) + "\n")
        proc = subprocess.run([tool, "report", "--json", "-q", fin], capture_output=True, text=True)
    check("hse-eval report (defaults) runs", proc.returncode == 0, proc.stderr[-500:])
    if proc.returncode == 0:
        got = json.loads(proc.stdout)
        hs, rs = [p for p, _ in strip], [r for _, r in strip]
        for n in range(1, 5):
            ref = BLEU(max_ngram_order=n).corpus_score(hs, [rs])
            check("default call: corpus BLEU() = bleuN", close(got[f"bleu{n}"], ref.score / 100),
                  f"n {n}: sacrebleu {ref.score / 100}, hse {got[f'bleu{n}']}")
            sent = sum(BLEU(max_ngram_order=n, effective_order=True).sentence_score(p, [r]).score / 100
                       for p, r in strip) / len(strip)
            check("default call: sentence_score = sentence_bleuN", close(got[f"sentence_bleu{n}"], sent),
                  f"n {n}: sacrebleu {sent}, hse {got[f'sentence_bleu{n}']}")
        sb = sum(sacrebleu.sentence_bleu(p, [r]).score / 100 for p, r in strip) / len(strip)
        check("default call: sacrebleu.sentence_bleu = sentence_bleu4", close(got["sentence_bleu4"], sb),
              f"sacrebleu {sb}, hse {got['sentence_bleu4']}")
        for key in ("rouge1", "rouge2", "rougeL"):
            m = sum(scorer.score(r, p)[key].fmeasure for p, r in strip) / len(strip)
            check("default call: RougeScorer() = " + key, close(got[key], m), f"rouge_score {m}, hse {got[key]}")

    width = max(len(k) for k in stats)
    for k in sorted(stats):
        print(f"  {k:<{width}}  {stats[k] - fails[k]:5d}/{stats[k]:<5d}" + ("  FAIL" if fails[k] else ""))
    for e in examples:
        print("FAIL", e)
    total, failed = sum(stats.values()), sum(fails.values())
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
