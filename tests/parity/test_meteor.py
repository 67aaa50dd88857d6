#!/usr/bin/env python3
"""Parity test: hse::eval METEOR, PorterStemmer and WordNet against nltk.

The reference is nltk itself: nltk.translate.meteor_score.meteor_score(
[ref.split()], pred.split(), wordnet=wn) with wn a WordNetCorpusReader over
Debian's wordnet-base files (/usr/share/wordnet), nltk.stem.porter.PorterStemmer()
and wn.synsets(word). No nltk_data is downloaded: the database files are copied
to a temporary directory together with the `lexnames` file nltk requires (Debian
does not ship it), and the reader's OMW version mapping (which would look for
nltk_data's "wordnet" corpus) is switched off; neither affects synsets().

The C++ side is the unit test binary's "driver: ..." test cases
($HSE_BIN_DIR/unit_test_meteor -tc="driver: meteor" with HSE_METEOR_IN/OUT, and
likewise HSE_PORTER_* and HSE_WORDNET_*).

Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

try:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import meteor_score
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)

WN_DIR = "/usr/share/wordnet"
WN_FILES = [f"{k}.{p}" for k in ("index", "data") for p in ("noun", "verb", "adj", "adv")] + [
    f"{p}.exc" for p in ("noun", "verb", "adj", "adv")
]
if not all(os.path.exists(os.path.join(WN_DIR, f)) for f in WN_FILES):
    print(f"skip: no WordNet database in {WN_DIR} (Debian/Ubuntu package wordnet-base)")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "")
DRIVER = os.path.join(BIN, "unit_test_meteor")
if not os.access(DRIVER, os.X_OK):
    print(f"FAIL: {DRIVER} not found (set HSE_BIN_DIR to the build's bin/)")
    sys.exit(1)

LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()

passed = 0
failed = 0


def record(ok, msg):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        if failed <= 25:
            print("FAIL " + msg)


def open_wordnet(tmp):
    root = os.path.join(tmp, "wordnet")
    os.makedirs(root)
    for f in os.listdir(WN_DIR):
        src = os.path.join(WN_DIR, f)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(root, f))  # copies: nltk refuses symlinks leaving its root
    if not os.path.exists(os.path.join(root, "lexnames")):
        with open(os.path.join(root, "lexnames"), "w") as fh:
            for i, name in enumerate(LEXNAMES):
                fh.write("%02d\t%s\t%d\n" % (i, name, {"noun": 1, "verb": 2, "adj": 3, "adv": 4}[name.split(".")[0]]))
    nltk.data.path.insert(0, root)  # nltk's path sandbox only opens files under known roots

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # OMW mapping only; needs nltk_data
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Reader(root, None)


def run_driver(tmp, name, rows):
    inp = os.path.join(tmp, f"{name}_in.jsonl")
    out = os.path.join(tmp, f"{name}_out.jsonl")
    with open(inp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    env = dict(os.environ)
    env[f"HSE_{name.upper()}_IN"] = inp
    env[f"HSE_{name.upper()}_OUT"] = out
    t0 = time.time()
    p = subprocess.run([DRIVER, f"-tc=driver: {name}"], env=env, capture_output=True, text=True)
    dt = time.time() - t0
    if p.returncode != 0:
        print(p.stdout[-3000:])
        print(p.stderr[-3000:])
        print(f"FAIL: driver {name} exited {p.returncode}")
        sys.exit(1)
    with open(out, encoding="utf-8") as fh:
        res = [json.loads(line) for line in fh if line.strip()]
    if len(res) != len(rows):
        print(f"FAIL: driver {name} wrote {len(res)} lines for {len(rows)} inputs")
        sys.exit(1)
    return res, dt


# --------------------------------------------------------------------------- corpus
SENTENCES = [
    "The heart is enlarged.",
    "The heart size is normal.",
    "No pleural effusion.",
    "There is a small right pleural effusion.",
    "Bilateral pleural effusions are present.",
    "A 5 mm nodule is seen in the right upper lobe.",
    "A 12 mm solid nodule is noted in the left lower lobe.",
    "Multiple pulmonary nodules are scattered throughout both lungs.",
    "There is no pneumothorax.",
    "Small pericardial effusion is present.",
    "The lungs are clear.",
    "Mild emphysematous changes are seen in the upper lobes.",
    "Atelectasis is observed in the left lower lobe.",
    "There is consolidation in the right middle lobe consistent with pneumonia.",
    "Ground glass opacities are seen bilaterally.",
    "The trachea and main bronchi are patent.",
    "Mediastinal lymph nodes are not enlarged.",
    "An enlarged lymph node measuring 15 mm is seen in the subcarinal region.",
    "Coronary artery calcifications are noted.",
    "The thoracic aorta is of normal caliber.",
    "Mild dilatation of the ascending aorta is observed.",
    "There is a hiatal hernia.",
    "Degenerative changes are present in the thoracic spine.",
    "No acute osseous abnormality.",
    "The visualized upper abdomen is unremarkable.",
    "A hypodense lesion is seen in the liver, likely a cyst.",
    "Bronchiectasis is noted in the lower lobes.",
    "Interlobular septal thickening is present.",
    "Peribronchial thickening is seen.",
    "There is a calcified granuloma in the right lung.",
    "Honeycombing suggests pulmonary fibrosis.",
    "The esophagus appears normal.",
    "The thyroid gland is enlarged with a nodule.",
    "Mosaic attenuation pattern is present.",
    "The lesion has grown since the previous examination.",
    "The nodules were stable compared with prior imaging.",
    "Findings are consistent with chronic obstructive pulmonary disease.",
    "Cardiomegaly with small bilateral effusions.",
    "A little lesion was noted in the lingula.",
    "The big mass is compressing the bronchus.",
    "Lung volumes are reduced.",
    "Pleural thickening was seen on the left side.",
    "A big tumor is seen in the chest.",
    "There is a small scar in the left lung region.",
    "Fluid is present in the bowel.",
    "A thin wall cyst is seen in the liver area.",
    "A new mild spot is seen in the thorax.",
]

SWAPS = [
    ("enlarged", "large"), ("enlarged", "big"), ("large", "big"), ("lesion", "nodule"), ("nodule", "lesion"),
    ("small", "little"), ("little", "small"), ("seen", "observed"), ("noted", "seen"), ("present", "seen"),
    ("normal", "unremarkable"), ("mass", "lesion"), ("lungs", "lung"), ("nodules", "nodule"), ("nodule", "nodules"),
    ("effusion", "effusions"), ("effusions", "effusion"), ("is", "was"), ("are", "were"), ("was", "is"),
    ("were", "are"), ("has grown", "grew"), ("seen", "seeing"), ("noted", "noting"), ("changes", "changed"),
    ("right", "left"), ("left", "right"), ("upper", "lower"), ("lower", "upper"), ("mild", "moderate"),
    ("5 mm", "7 mm"), ("12 mm", "1.2 cm"), ("The", "the"), ("heart", "Heart"), ("lobe", "lobes"),
    ("thickening", "thickened"), ("calcifications", "calcified"), ("reduced", "decreased"),
    ("compressing", "compresses"), ("stable", "unchanged"), ("dilatation", "dilation"),
    ("big", "great"), ("tumor", "neoplasm"), ("chest", "thorax"), ("thorax", "chest"), ("region", "area"),
    ("area", "region"), ("small", "minor"), ("fluid", "liquid"), ("scar", "cicatrix"), ("thin", "slender"),
    ("new", "fresh"), ("mild", "modest"), ("spot", "patch"), ("bowel", "gut"),
]

UNICODE = [
    "Épanchement pleural gauche.",
    "Kleiner Rundherd im rechten Oberlappen, Größe 5 mm.",
    "ΟΔΟΣ ΣΟΦΙΑΣ ΚΑΡΔΙΑ",  # Greek capitals: final sigma on lowering
    "İSTANBUL hastanesi: akciğer nodülü",
    "肺结节 5 mm",
    "The\u00a0heart\u3000is enlarged\u2003today.",  # Unicode whitespace
    "zero\u200bwidth space is not whitespace",
    "naïve café résumé coöperate",
    "nodule 🫁 lung ✓",
    "ＦＵＬＬＷＩＤＴＨ Ｎｏｄｕｌｅ",
]


def report(rng, n):
    return " ".join(rng.sample(SENTENCES, n))


def perturb(rng, text):
    sents = [s for s in text.split(". ")]
    ops = rng.sample(["drop", "swap", "syn", "syn", "shuffle", "tense", "case"], rng.randint(1, 3))
    out = text
    for op in ops:
        if op == "drop" and len(sents) > 1:
            sents.pop(rng.randrange(len(sents)))
            out = ". ".join(sents)
        elif op == "shuffle":
            rng.shuffle(sents)
            out = ". ".join(sents)
        elif op in ("syn", "tense", "swap"):
            cands = [(a, b) for a, b in SWAPS if a in out]
            for a, b in rng.sample(cands, min(len(cands), rng.randint(1, 4))):
                out = out.replace(a, b, 1)
        elif op == "case":
            out = out.upper() if rng.random() < 0.5 else out.lower()
    return out


def make_pairs():
    rng = random.Random(20240611)
    pairs = []
    # single sentences against their own perturbations
    for s in SENTENCES:
        pairs.append((perturb(rng, s), s))
        pairs.append((s, s))
    # hand-picked synonym / morphology cases
    pairs += [
        ("The heart is big.", "The heart is enlarged."),
        ("the heart is big", "the heart is large"),
        ("A little nodule.", "A small lesion."),
        ("lesions are seen", "nodules were observed"),
        ("The nodules grew.", "The nodule has grown."),
        ("effusions", "effusion"),
        ("The lungs were clearing", "The lung is clear"),
        ("dying lying tying skies", "die lie tie sky"),
        ("news innings outings", "news inning outing"),
        ("", "No pleural effusion."),
        ("No pleural effusion.", ""),
        ("", ""),
        ("   ", "a"),
        ("mm mm mm", "mm"),
        ("the the the the", "the"),
        ("a b c d e f", "f e d c b a"),
        ("big large enlarged", "large enlarged big"),
        ("A great neoplasm in the thorax.", "A big tumor in the chest."),
        ("minor cicatrix in the lung area", "small scar in the lung region"),
        ("Liquid in the gut.", "Fluid in the bowel."),
    ]
    # multi-sentence reports, perturbed
    for _ in range(120):
        ref = report(rng, rng.randint(2, 7))
        pairs.append((perturb(rng, ref), ref))
    # shuffled pairing: a prediction for another study
    refs = [report(rng, rng.randint(2, 6)) for _ in range(30)]
    for i, r in enumerate(refs):
        pairs.append((perturb(rng, refs[(i + 7) % len(refs)]), r))
    # unicode
    for u in UNICODE:
        pairs.append((u, u))
        pairs.append((u.lower(), u))
        pairs.append((u + " " + rng.choice(SENTENCES), rng.choice(SENTENCES) + " " + u))
    # long reports (300+ words)
    for _ in range(8):
        ref = " ".join(rng.choice(SENTENCES) for _ in range(60))
        pairs.append((perturb(rng, ref), ref))
        pairs.append((" ".join(rng.choice(SENTENCES) for _ in range(55)), ref))
    return pairs


def porter_words(wn_root):
    words = []
    for pos in ("noun", "verb"):
        with open(os.path.join(wn_root, f"index.{pos}"), encoding="utf-8") as fh:
            lemmas = [line.split()[0] for line in fh if not line.startswith(" ")]
        words += lemmas[:: max(1, len(lemmas) // 1500)]
    for pos in ("noun", "verb", "adj"):
        with open(os.path.join(wn_root, f"{pos}.exc"), encoding="utf-8") as fh:
            exc = [line.split()[0] for line in fh if line.strip()]
        words += exc[:: max(1, len(exc) // 400)]
    verbs = words[1500:2500]
    words += [v + s for v in verbs[::3] for s in ("s", "ed", "ing", "ies", "ational", "ization", "fulness", "alli", "logi")]
    words += [w for s in SENTENCES + SWAPS_FLAT for w in s.split()]
    words += [
        "", "a", "is", "as", "yy", "yyy", "syzygy", "toy", "ies", "dies", "ied", "tied", "feed", "eed",
        "bled", "sing", "hopping", "filing", "controlling", "roll", "generalizations", "oscillators",
        "Effusions", "NODULES", "ÉPANCHEMENTS", "naïveties", "İstanbul", "ΟΔΟΣ", "hello*d", "x*ded",
        "logi", "analogi", "alli", "happily", "fully", "1990s", "co-operating", "o'clock",
    ]
    return words


SWAPS_FLAT = [w for pair in SWAPS for w in pair]


def text_cases():
    """Every code point (surrogates excepted) for str.lower()/str.split(), and the
    Final_Sigma contexts for every code point below U+20000 and a sample above."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    rows = ["".join(chr(c) for c in cps[i : i + 2000]) for i in range(0, len(cps), 2000)]
    probe = [c for c in cps if c < 0x20000] + cps[0x20000::97]
    for i in range(0, len(probe), 400):
        chunk = probe[i : i + 400]
        rows.append(" ".join("\u0391" + chr(c) + "\u03a3" for c in chunk))  # preceded by c (A c SIGMA)
        rows.append(" ".join(chr(c) + "\u03a3" for c in chunk))
        rows.append(" ".join("\u0391\u03a3" + chr(c) + "\u0391" for c in chunk))  # followed by c
        rows.append(" ".join("\u0391\u03a3" + chr(c) for c in chunk))
    rows += ["", "  ", "\u0130\u0130", "\u03a3\u03a3\u03a3", "a\u00adΣ", "Σ\u00ad", "x\x1cy\x1dz\x85w"]
    return rows


def main():
    tmp = tempfile.mkdtemp(prefix="hse-meteor-")
    try:
        wn = open_wordnet(tmp)
        wn_root = os.path.join(tmp, "wordnet")

        # ---------------------------------------------------------------- str.lower / str.split
        texts = text_cases()
        res, dt = run_driver(tmp, "text", [{"text": t} for t in texts])
        p0, f0 = passed, failed
        for t, r in zip(texts, res):
            record(r["lower"] == t.lower(), f"lower of {t[:20]!r}...")
            record(r["split"] == t.split(), f"split of {t[:20]!r}...")
        print(f"text: {len(texts)} strings, {passed - p0} equal, {failed - f0} differ ({dt:.2f} s)")

        # ---------------------------------------------------------------- Porter
        ps = PorterStemmer()
        words = porter_words(wn_root)
        res, dt = run_driver(tmp, "porter", [{"word": w} for w in words])
        p0, f0 = passed, failed
        for w, r in zip(words, res):
            want = ps.stem(w)
            record(r["stem"] == want, f"porter {w!r}: hse {r['stem']!r} nltk {want!r}")
        print(f"porter: {len(words)} words, {passed - p0} equal, {failed - f0} differ ({dt:.2f} s)")

        # ---------------------------------------------------------------- WordNet synonyms
        wwords = sorted(set(w.lower().strip(".,:") for w in words if w) | set(w for s in SENTENCES for w in s.lower().split()))
        wwords += [ps.stem(w) for w in wwords[::2]]
        res, dt = run_driver(tmp, "wordnet", [{"word": w} for w in wwords])
        p0, f0 = passed, failed
        for w, r in zip(wwords, res):
            want = sorted(set(name for ss in wn.synsets(w) for name in ss.lemma_names()))
            record(r["synonyms"] == want, f"synonyms {w!r}: hse {r['synonyms'][:8]} nltk {want[:8]}")
        print(f"wordnet: {len(wwords)} words, {passed - p0} equal, {failed - f0} differ ({dt:.2f} s)")

        # ---------------------------------------------------------------- METEOR
        pairs = make_pairs()
        t0 = time.time()
        want = [meteor_score([ref.split()], pred.split(), wordnet=wn) for pred, ref in pairs]
        t_nltk = time.time() - t0
        res, dt = run_driver(tmp, "meteor", [{"pred": p, "ref": r} for p, r in pairs])
        p0, f0 = passed, failed
        worst = 0.0
        for (pred, ref), w, r in zip(pairs, want, res):
            d = abs(r["score"] - w)
            worst = max(worst, d)
            record(d <= 1e-6, f"meteor pred={pred[:60]!r} ref={ref[:60]!r}: hse {r['score']:.9f} nltk {w:.9f}")
        nonzero = sum(1 for w in want if w > 0)
        with_stem = sum(1 for r in res if r["stem"] > 0)
        with_syn = sum(1 for r in res if r["synonym"] > 0)
        print(f"meteor: pairs with stem-stage matches {with_stem}, with synonym-stage matches {with_syn}")
        record(with_stem > 20 and with_syn > 10, "meteor corpus exercises the stem and synonym stages")
        longest = max(len(p.split()) + len(r.split()) for p, r in pairs)
        print(
            f"meteor: {len(pairs)} pairs ({nonzero} non-zero, longest {longest} tokens), "
            f"{passed - p0} equal, {failed - f0} differ, max |diff| {worst:.2e} "
            f"(hse {dt:.2f} s incl. WordNet load, nltk {t_nltk:.2f} s)"
        )
        record(nonzero > len(pairs) // 2, f"meteor corpus too easy to zero: {nonzero} non-zero of {len(pairs)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
