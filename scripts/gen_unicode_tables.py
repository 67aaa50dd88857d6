#!/usr/bin/env python3
"""Generates lib/hse/text/unicode_tables.cpp from Python's unicodedata.

The tables give hse::text the Unicode data that BERT's (Python) BasicTokenizer uses,
exactly as the Python that runs the reference sees it (CPython 3.11.7: Unicode 14.0.0):

  - general category of every code point (ranges; unassigned = Cn, surrogates = Cs);
  - canonical combining class (ranges of equal non-zero class);
  - full canonical decomposition (NFD of one code point; Hangul syllables excluded,
    they are decomposed algorithmically);
  - primary composites for NFC: (first, second) -> composite, for every code point
    with a two-code-point canonical decomposition that NFC gives back unchanged
    (which leaves out singletons, non-starter decompositions and the
    composition exclusions); Hangul is composed algorithmically;
  - str.lower() for one code point (runs of equal delta and stride; U+0130 is the only
    code point whose lowercase is longer than one and is handled in C++), and the
    Cased / Case_Ignorable properties that CPython's final-sigma rule uses, derived
    from str.lower() itself.

Usage: python3 scripts/gen_unicode_tables.py [output.cpp]
(default: lib/hse/text/unicode_tables.cpp next to this script's repository root).
The output is deterministic: the same Python gives byte-identical files.
"""
import os
import sys
import unicodedata

MAXCP = 0x10FFFF
CATS = ["Cn", "Cc", "Cf", "Cs", "Co", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
        "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp"]


def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3


def category_ranges():
    out = []  # (start, cat index); a range runs to the next start
    prev = None
    for cp in range(MAXCP + 1):
        c = CATS.index(unicodedata.category(chr(cp)))
        if c != prev:
            out.append((cp, c))
            prev = c
    return out


def ccc_ranges():
    out = []  # (first, last, ccc), ccc != 0
    for cp in range(MAXCP + 1):
        k = unicodedata.combining(chr(cp))
        if k == 0:
            continue
        if out and out[-1][1] == cp - 1 and out[-1][2] == k:
            out[-1] = (out[-1][0], cp, k)
        else:
            out.append((cp, cp, k))
    return out


def decompositions():
    out = []  # (cp, full NFD sequence)
    for cp in range(MAXCP + 1):
        if is_hangul_syllable(cp) or 0xD800 <= cp <= 0xDFFF:
            continue
        d = unicodedata.normalize("NFD", chr(cp))
        if d != chr(cp):
            out.append((cp, [ord(x) for x in d]))
    return out


def compositions():
    out = []  # (first, second, composite)
    for cp in range(MAXCP + 1):
        if is_hangul_syllable(cp) or 0xD800 <= cp <= 0xDFFF:
            continue
        dec = unicodedata.decomposition(chr(cp))
        if not dec or dec.startswith("<"):
            continue
        parts = [int(x, 16) for x in dec.split()]
        if len(parts) != 2:
            continue
        if unicodedata.normalize("NFC", chr(cp)) != chr(cp):
            continue  # composition exclusion / non-starter decomposition
        out.append((parts[0], parts[1], cp))
    out.sort()
    return out


def lower_runs():
    pairs = []
    for cp in range(MAXCP + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        lo = chr(cp).lower()
        if lo == chr(cp):
            continue
        if len(lo) != 1:
            assert cp == 0x130 and lo == "i\u0307", (hex(cp), lo)
            continue
        pairs.append((cp, ord(lo) - cp))
    runs = []  # (first, count, stride, delta)
    i = 0
    while i < len(pairs):
        cp, d = pairs[i]
        best = (1, 1)
        for stride in (1, 2):
            n = 1
            while i + n < len(pairs) and pairs[i + n] == (cp + n * stride, d):
                n += 1
            if n > best[0]:
                best = (n, stride)
        runs.append((cp, best[0], best[1], d))
        i += best[0]
    return runs


def final_sigma(s):
    return s.lower()[-1] == "\u03c2"


def cased(cp):
    ch = chr(cp)
    return ch.islower() or ch.isupper() or unicodedata.category(ch) == "Lt"


def case_ignorable(cp):
    # CPython: Σ is final when \p{cased}\p{case-ignorable}* precedes it. An ignorable c
    # is skipped: "A"+c+"Σ" is final, c+"Σ" (nothing cased before) is not.
    ch = chr(cp)
    return final_sigma("A" + ch + "\u03a3") and not final_sigma(ch + "\u03a3")


def bool_ranges(pred):
    out = []
    for cp in range(MAXCP + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if pred(cp):
            if out and out[-1][1] == cp - 1:
                out[-1] = (out[-1][0], cp)
            else:
                out.append((cp, cp))
    return out


def fmt_rows(rows, _per_line=None, width=116):
    """Packs the entries greedily into lines of at most `width` characters."""
    lines, cur = [], "   "
    for r in rows:
        if len(cur) + 1 + len(r) > width and cur.strip():
            lines.append(cur)
            cur = "   "
        cur += " " + r
    if cur.strip():
        lines.append(cur)
    return "\n".join(lines)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "lib", "hse", "text", "unicode_tables.cpp")

    cats = category_ranges()
    cccs = ccc_ranges()
    decs = decompositions()
    comps = compositions()
    lows = lower_runs()
    cas = bool_ranges(cased)
    ign = bool_ranges(case_ignorable)

    pool = []
    dec_rows = []
    for cp, seq in decs:
        dec_rows.append(f"{{0x{cp:X}, {len(pool)}, {len(seq)}}},")
        pool.extend(seq)
    assert len(pool) < 65536 and max(len(s) for _, s in decs) < 256

    o = []
    o.append("// GENERATED by scripts/gen_unicode_tables.py from Python's unicodedata "
             f"(Unicode {unicodedata.unidata_version}, Python {sys.version.split()[0]}). Do not edit.")
    o.append('#include "hse/text/unicode_tables.h"')
    o.append("")
    o.append("#include <algorithm>")
    o.append("#include <iterator>")
    o.append("")
    o.append("namespace hse::text::unicode {")
    o.append("")
    o.append(f'const char* const kUnicodeVersion = "{unicodedata.unidata_version}";')
    o.append("")
    o.append("namespace {")
    o.append("")
    o.append("struct CatRange { char32_t first; unsigned char cat; };")
    o.append("struct CccRange { char32_t first, last; unsigned char ccc; };")
    o.append("struct Decomp { char32_t cp; unsigned short offset; unsigned char length; };")
    o.append("struct Comp { char32_t first, second, composite; };")
    o.append("struct LowerRun { char32_t first; unsigned short count; unsigned char stride; int delta; };")
    o.append("struct Range { char32_t first, last; };")
    o.append("")
    o.append(f"// General category: range i runs from first to ranges[i+1].first - 1 ({len(cats)} ranges).")
    o.append("const CatRange kCategories[] = {")
    o.append(fmt_rows([f"{{0x{a:X}, {c}}}," for a, c in cats], 7))
    o.append("};")
    o.append("")
    o.append(f"// Canonical combining class, non-zero only ({len(cccs)} ranges).")
    o.append("const CccRange kCcc[] = {")
    o.append(fmt_rows([f"{{0x{a:X}, 0x{b:X}, {k}}}," for a, b, k in cccs], 6))
    o.append("};")
    o.append("")
    o.append(f"// Full canonical decompositions ({len(decs)} code points, {len(pool)} pool entries).")
    o.append("const char32_t kDecompPool[] = {")
    o.append(fmt_rows([f"0x{x:X}," for x in pool], 12))
    o.append("};")
    o.append("const Decomp kDecomp[] = {")
    o.append(fmt_rows(dec_rows, 6))
    o.append("};")
    o.append("")
    o.append(f"// Primary composites, sorted by (first, second) ({len(comps)} pairs).")
    o.append("const Comp kComp[] = {")
    o.append(fmt_rows([f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in comps], 4))
    o.append("};")
    o.append("")
    o.append(f"// str.lower() of one code point: first, first+stride, ... (count of them) map to cp+delta ({len(lows)} runs).")
    o.append("const LowerRun kLower[] = {")
    o.append(fmt_rows([f"{{0x{a:X}, {n}, {s}, {d}}}," for a, n, s, d in lows], 6))
    o.append("};")
    o.append("")
    o.append(f"// Cased ({len(cas)} ranges) and Case_Ignorable ({len(ign)} ranges), as CPython's str.lower() sees them.")
    o.append("const Range kCased[] = {")
    o.append(fmt_rows([f"{{0x{a:X}, 0x{b:X}}}," for a, b in cas], 5))
    o.append("};")
    o.append("const Range kCaseIgnorable[] = {")
    o.append(fmt_rows([f"{{0x{a:X}, 0x{b:X}}}," for a, b in ign], 5))
    o.append("};")
    o.append("")
    o.append("template <std::size_t N>")
    o.append("bool in_ranges(const Range (&r)[N], char32_t c) {")
    o.append("  auto it = std::upper_bound(std::begin(r), std::end(r), c,")
    o.append("                             [](char32_t v, const Range& x) { return v < x.first; });")
    o.append("  return it != std::begin(r) && c <= std::prev(it)->last;")
    o.append("}")
    o.append("")
    o.append("}  // namespace")
    o.append("")
    o.append("Category category(char32_t c) {")
    o.append("  if (c > 0x10FFFF) return Category::Cn;")
    o.append("  auto it = std::upper_bound(std::begin(kCategories), std::end(kCategories), c,")
    o.append("                             [](char32_t v, const CatRange& x) { return v < x.first; });")
    o.append("  return static_cast<Category>(std::prev(it)->cat);")
    o.append("}")
    o.append("")
    o.append("int combining_class(char32_t c) {")
    o.append("  auto it = std::upper_bound(std::begin(kCcc), std::end(kCcc), c,")
    o.append("                             [](char32_t v, const CccRange& x) { return v < x.first; });")
    o.append("  if (it == std::begin(kCcc)) return 0;")
    o.append("  --it;")
    o.append("  return c <= it->last ? it->ccc : 0;")
    o.append("}")
    o.append("")
    o.append("std::size_t decomposition(char32_t c, const char32_t** out) {")
    o.append("  auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), c,")
    o.append("                             [](const Decomp& x, char32_t v) { return x.cp < v; });")
    o.append("  if (it == std::end(kDecomp) || it->cp != c) return 0;")
    o.append("  *out = kDecompPool + it->offset;")
    o.append("  return it->length;")
    o.append("}")
    o.append("")
    o.append("char32_t compose(char32_t first, char32_t second) {")
    o.append("  auto it = std::lower_bound(std::begin(kComp), std::end(kComp), first,")
    o.append("                             [](const Comp& x, char32_t v) { return x.first < v; });")
    o.append("  for (; it != std::end(kComp) && it->first == first; ++it)")
    o.append("    if (it->second == second) return it->composite;")
    o.append("  return 0;")
    o.append("}")
    o.append("")
    o.append("char32_t lower_simple(char32_t c) {")
    o.append("  auto it = std::upper_bound(std::begin(kLower), std::end(kLower), c,")
    o.append("                             [](char32_t v, const LowerRun& x) { return v < x.first; });")
    o.append("  if (it == std::begin(kLower)) return c;")
    o.append("  --it;")
    o.append("  const char32_t off = c - it->first;")
    o.append("  if (off % it->stride != 0 || off / it->stride >= it->count) return c;")
    o.append("  return static_cast<char32_t>(static_cast<int>(c) + it->delta);")
    o.append("}")
    o.append("")
    o.append("bool is_cased(char32_t c) { return in_ranges(kCased, c); }")
    o.append("bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, c); }")
    o.append("")
    o.append("}  // namespace hse::text::unicode")
    text = "\n".join(o) + "\n"
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    print(f"wrote {path}: {len(cats)} category ranges, {len(cccs)} ccc ranges, {len(decs)} decompositions, "
          f"{len(comps)} compositions, {len(lows)} lower runs, {len(cas)} cased, {len(ign)} case-ignorable ranges")


if __name__ == "__main__":
    main()
