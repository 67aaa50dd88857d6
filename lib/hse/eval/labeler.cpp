// Rule-based CT-RATE labeler and multi-label scores (see labeler.h for the rules).
#include "hse/eval/labeler.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "hse/cli/cli.h"

namespace hse::eval {

const std::array<const char*, kNumLabels> kLabelNames = {
    "Medical material",   "Arterial wall calcification", "Cardiomegaly",
    "Pericardial effusion", "Coronary artery wall calcification", "Hiatal hernia",
    "Lymphadenopathy",    "Emphysema",                   "Atelectasis",
    "Lung nodule",        "Lung opacity",                "Pulmonary fibrotic sequela",
    "Pleural effusion",   "Mosaic attenuation pattern",  "Peribronchial thickening",
    "Consolidation",      "Bronchiectasis",              "Interlobular septal thickening",
};

namespace {

enum L : int {
  kMaterial = 0, kArterial, kCardiomegaly, kPericardial, kCoronary, kHiatal, kLymph, kEmphysema,
  kAtelectasis, kNodule, kOpacity, kFibrotic, kPleural, kMosaic, kPeribronchial, kConsolidation,
  kBronchiectasis, kSeptal,
};

using Clause = std::vector<std::string>;

// --- tokenising ----------------------------------------------------------------

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
char low(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

const std::vector<std::string>& clause_break_words() {
  static const std::vector<std::string> w = {"but",    "however", "although",     "though",
                                             "whereas", "except", "nevertheless", "nonetheless"};
  return w;
}

std::vector<Clause> split_clauses(const std::string& text) {
  std::vector<Clause> out;
  Clause cur;
  std::string word;
  auto flush_word = [&] {
    if (word.empty()) return;
    if (std::find(clause_break_words().begin(), clause_break_words().end(), word) != clause_break_words().end()) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(word);
    }
    word.clear();
  };
  auto flush_clause = [&] {
    flush_word();
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = low(text[i]);
    if (is_alnum(c)) {
      word += c;
      continue;
    }
    if (c == '\'' || (c == '\xe2' && i + 2 < n && text[i + 1] == '\x80' && text[i + 2] == '\x99')) {
      // apostrophe (ASCII or U+2019): "n't" -> " not", otherwise dropped inside a word
      const std::size_t next = c == '\'' ? i + 1 : i + 3;
      if (!word.empty() && word.back() == 'n' && next < n && low(text[next]) == 't' &&
          (next + 1 >= n || !is_alnum(low(text[next + 1])))) {
        word.pop_back();
        if (word == "ca") word = "can";  // can't
        flush_word();
        cur.push_back("not");
        i = next;
      } else if (c != '\'') {
        i += 2;
      }
      continue;
    }
    if (c == '.' && !word.empty() && word.back() >= '0' && word.back() <= '9' && i + 1 < n && text[i + 1] >= '0' &&
        text[i + 1] <= '9') {
      word += c;  // decimal point
      continue;
    }
    flush_word();
    switch (c) {
      case '.': case '!': case '?': case ';': case ':': case '\n': case '\r':
        flush_clause();
        break;
      case ',':
        cur.emplace_back(",");
        break;
      case '/':
        cur.emplace_back("/");
        break;
      default:
        break;
    }
  }
  flush_clause();
  return out;
}

// --- patterns --------------------------------------------------------------------

struct Atom {
  std::vector<std::pair<std::string, bool>> alts;  // word, prefix match
  int gap = -1;                                    // >= 0: up to `gap` arbitrary words
};
using Pattern = std::vector<Atom>;

Pattern compile(std::string_view spec) {
  Pattern p;
  std::size_t i = 0;
  while (i < spec.size()) {
    while (i < spec.size() && spec[i] == ' ') ++i;
    std::size_t j = i;
    while (j < spec.size() && spec[j] != ' ') ++j;
    if (j == i) break;
    std::string_view w = spec.substr(i, j - i);
    Atom a;
    if (w[0] == '~') {
      a.gap = std::atoi(std::string(w.substr(1)).c_str());
    } else {
      std::size_t k = 0;
      while (k <= w.size()) {
        std::size_t e = w.find('|', k);
        if (e == std::string_view::npos) e = w.size();
        std::string alt(w.substr(k, e - k));
        bool prefix = !alt.empty() && alt.back() == '*';
        if (prefix) alt.pop_back();
        a.alts.emplace_back(alt, prefix);
        k = e + 1;
      }
    }
    p.push_back(std::move(a));
    i = j;
  }
  return p;
}

std::vector<Pattern> compile_all(std::initializer_list<const char*> specs) {
  std::vector<Pattern> v;
  for (const char* s : specs) v.push_back(compile(s));
  return v;
}

bool atom_hit(const Atom& a, const std::string& t) {
  for (const auto& [w, prefix] : a.alts)
    if (prefix ? t.compare(0, w.size(), w) == 0 && t.size() >= w.size() : t == w) return true;
  return false;
}

// End (exclusive) of the shortest match of p[ai..] at token i, or -1.
int match_from(const Pattern& p, std::size_t ai, const Clause& c, int i) {
  if (ai == p.size()) return i;
  const Atom& a = p[ai];
  const int n = static_cast<int>(c.size());
  if (a.gap >= 0) {
    for (int k = 0; k <= a.gap && i + k <= n; ++k) {
      if (k > 0 && c[static_cast<std::size_t>(i + k - 1)] == ",") break;
      const int e = match_from(p, ai + 1, c, i + k);
      if (e >= 0) return e;
    }
    return -1;
  }
  if (i >= n || !atom_hit(a, c[static_cast<std::size_t>(i)])) return -1;
  return match_from(p, ai + 1, c, i + 1);
}

struct Span {
  int s, e;
};

std::vector<Span> find_all(const std::vector<Pattern>& pats, const Clause& c) {
  std::vector<Span> out;
  for (int i = 0; i < static_cast<int>(c.size()); ++i)
    for (const auto& p : pats) {
      const int e = match_from(p, 0, c, i);
      if (e > i) out.push_back({i, e});
    }
  return out;
}

// --- cues ----------------------------------------------------------------------------

enum class Cue { pre_neg, post_neg, uncertain, term };

const std::vector<Pattern>& cue_patterns(Cue k) {
  static const std::vector<Pattern> unc = compile_all({
      "cannot|can|could not be excluded|ruled", "cannot|can|could not be completely|entirely excluded|ruled",
      "cannot|can|could not exclude|rule", "not excluded", "not ruled out", "cannot exclude|rule",
      "cannot be excluded|ruled", "possibl*", "probabl*", "likely", "suspicious", "suspicion", "suspect*",
      "questionable", "question of", "equivocal", "may", "might", "could", "rule out", "differential diagnos*",
      "concern for", "concerning for", "suggestive", "suggest", "suggests", "suggesting", "versus", "vs"});
  static const std::vector<Pattern> post = compile_all({
      "not observed|seen|detected|identified|present|evident|noted|visualized|visualised|found|demonstrated|"
      "appreciated|visible|shown|depicted|apparent|encountered|recognized|recognised|determined|observable|"
      "detectable",
      "absent", "is|are|was|were|been excluded", "ruled out", "resolved", "disappeared"});
  static const std::vector<Pattern> pre = compile_all({"no", "not", "without", "absence of", "negative for",
                                                       "free of", "clear of", "lack of", "neither", "nor", "none",
                                                       "resolution of"});
  static const std::vector<Pattern> term = compile_all({
      "there is|are|was|were", "seen", "observed", "noted", "detected", "identified", "present", "visualized",
      "visualised", "demonstrated", "found", "evident", "shown", "which", "apart from", "aside from",
      "other than", "besides", "with the exception of"});
  switch (k) {
    case Cue::uncertain: return unc;
    case Cue::post_neg: return post;
    case Cue::pre_neg: return pre;
    default: return term;
  }
}

struct CueHit {
  int s, e;
  Cue kind;
};

// Cues of a clause: uncertainty first, then post- and pre-negation, then terminators; a token
// belongs to at most one cue (the longest at its position, earlier kinds first).
std::vector<CueHit> find_cues(const Clause& c) {
  std::vector<CueHit> out;
  std::vector<char> used(c.size(), 0);
  for (Cue k : {Cue::uncertain, Cue::post_neg, Cue::pre_neg, Cue::term}) {
    for (int i = 0; i < static_cast<int>(c.size()); ++i) {
      if (used[static_cast<std::size_t>(i)]) continue;
      int best = -1;
      for (const auto& p : cue_patterns(k)) best = std::max(best, match_from(p, 0, c, i));
      if (best <= i) continue;
      bool free = true;
      for (int j = i; j < best; ++j) free = free && !used[static_cast<std::size_t>(j)];
      if (!free) continue;
      for (int j = i; j < best; ++j) used[static_cast<std::size_t>(j)] = 1;
      out.push_back({i, best, k});
      i = best - 1;
    }
  }
  return out;
}

bool blocked(const std::vector<CueHit>& cues, int a, int b) {  // a terminator inside [a, b)
  for (const auto& t : cues)
    if (t.kind == Cue::term && t.s >= a && t.e <= b) return true;
  return false;
}

// Polarity of the mention occupying [s, e).
Mention polarity(const std::vector<CueHit>& cues, int s, int e) {
  bool neg = false, unc = false;
  for (const auto& q : cues) {
    if (q.kind == Cue::term) continue;
    const bool inside = q.s < e && q.e > s;
    const bool before = q.e <= s && !blocked(cues, q.e, s);
    const bool after = q.s >= e && !blocked(cues, e, q.s);
    switch (q.kind) {
      case Cue::uncertain: unc = unc || inside || before || after; break;
      case Cue::pre_neg: neg = neg || inside || before; break;
      case Cue::post_neg: neg = neg || inside || after; break;
      default: break;
    }
  }
  if (unc) return Mention::uncertain;
  if (neg) return Mention::negative;
  return Mention::positive;
}

Mention combine_mention(Mention a, Mention b) {  // a finding and its required context
  if (a == Mention::negative || b == Mention::negative) return Mention::negative;
  if (a == Mention::uncertain || b == Mention::uncertain) return Mention::uncertain;
  return Mention::positive;
}

// --- rules -------------------------------------------------------------------------------

struct Rule {
  std::vector<int> labels;
  std::vector<Pattern> pats;
  std::vector<Pattern> require;       // one must occur in the clause (nearest one's polarity counts too)
  std::vector<Pattern> suppress;      // none may occur in the clause ...
  std::vector<Pattern> unless;        // ... unless one of these does
  std::vector<Pattern> exclude_near;  // none may occur within `near` words of the match
  int near = 3;
};

const std::vector<Pattern>& coronary_terms() {
  static const auto v = compile_all({"coronar*", "lad", "circumflex", "left anterior descending", "lcx", "rca"});
  return v;
}
const std::vector<Pattern>& aortic_terms() {
  static const auto v = compile_all({"aort*", "carotid*", "subclavian", "brachiocephalic", "innominate", "iliac",
                                     "supraaortic", "great vessel*", "arcus"});
  return v;
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = [] {
    std::vector<Rule> v;
    auto add = [&](std::vector<int> labels, std::initializer_list<const char*> pats) -> Rule& {
      Rule x;
      x.labels = std::move(labels);
      x.pats = compile_all(pats);
      v.push_back(std::move(x));
      return v.back();
    };
    // Medical material
    add({kMaterial}, {"catheter*", "pacemaker*", "stent", "stents", "stented", "port", "ports", "port a cath*",
                      "portacath*", "tube", "tubes", "cannula*", "tracheostomy", "tracheotomy", "clip", "clips",
                      "prosthes*", "prosthetic", "sternotomy", "sternal wire*", "sternal suture*", "cerclage*",
                      "defibrillator*", "icd", "valve replacement", "coil", "coils", "drain", "drains",
                      "implant*", "electrode*", "surgical material*", "surgical suture*", "staple*", "screw*",
                      "osteosynthesis", "fixation material*", "metallic", "metal", "embolization material*"});
    // Arterial wall calcification
    {
      Rule& x = add({kArterial}, {"atheroscler*", "arterioscler*", "atherom*", "calcified plaque*",
                                  "calcific plaque*", "mural calcif*"});
      x.suppress = coronary_terms();
      for (const auto& p : compile_all({"pleura*"})) x.suppress.push_back(p);
      x.unless = aortic_terms();
    }
    {
      Rule& x = add({kArterial}, {"calcif*"});
      x.require = aortic_terms();
    }
    {
      Rule& x = add({kArterial}, {"calcif*"});
      x.require = compile_all({"vascular", "vessel*", "arterial", "artery", "arteries", "valve*"});
      x.suppress = coronary_terms();
      x.unless = aortic_terms();
    }
    // Cardiomegaly
    add({kCardiomegaly},
        {"cardiomegal*", "cardiac enlargement", "enlargement of ~1 heart", "enlarged heart",
         "enlarged cardiac silhouette|size|shadow|contour*", "heart ~3 enlarged", "heart ~3 increased",
         "increased ~2 heart size", "increased ~2 cardiac size|silhouette|diameter", "cardiac size ~3 increased",
         "cardiac silhouette ~3 enlarged|increased", "cardiothoracic ratio ~3 increased",
         "increased cardiothoracic ratio"});
    // Pericardial effusion (effusion wording: handled in effusion_mentions)
    add({kPericardial}, {"pericardial fluid", "fluid ~3 pericard*", "hemopericardium", "haemopericardium"});
    // Coronary artery wall calcification
    {
      Rule& x = add({kCoronary}, {"calcif*", "plaque*", "atheroscler*", "atherom*"});
      x.require = coronary_terms();
    }
    // Hiatal hernia
    add({kHiatal}, {"hiatal hernia*", "hiatus hernia*", "hiatal herniation", "herni* ~5 hiatus",
                    "paraesophageal hernia*", "para esophageal hernia*", "sliding ~2 hernia*"});
    // Lymphadenopathy
    add({kLymph}, {"lymphadenopath*", "adenopath*", "lymphadenomegal*", "enlarged ~4 node*",
                   "enlargement of ~3 lymph node*", "lymph node* ~4 enlarge*", "lymph node* ~8 pathologic*",
                   "pathologic* ~4 lymph node*", "bulky ~3 node*", "conglomerat* ~3 node*"});
    // Emphysema
    {
      Rule& x = add({kEmphysema}, {"emphysem*", "bulla", "bullae", "bullous", "bleb", "blebs"});
      x.exclude_near = compile_all({"subcutaneous", "soft", "mediastinal", "pneumomediastinum"});
      x.near = 2;
    }
    // Atelectasis
    add({kAtelectasis, kFibrotic}, {"fibroatelecta*", "fibro atelecta*"});
    add({kAtelectasis}, {"atelecta*"});
    {
      Rule& x = add({kAtelectasis}, {"collaps*"});
      x.exclude_near = compile_all({"vertebr*", "corpus", "corpora", "fracture*", "compression", "body", "bodies"});
      x.near = 4;
    }
    // Lung nodule
    {
      Rule& x = add({kNodule}, {"nodul*", "micronodul*"});
      x.exclude_near = compile_all({"thyroid*", "adrenal*", "goiter*", "goitre*", "liver", "hepatic", "renal",
                                    "kidney*", "breast*", "spleen", "splenic", "pancrea*", "skin", "subcutaneous"});
      x.near = 8;
    }
    // Lung opacity
    {
      Rule& x = add({kOpacity}, {"opacit*", "ground glass", "ggo", "ggos", "infiltrat*", "increased density",
                                 "increased densities", "density increase*", "increased attenuation", "haziness",
                                 "hazy"});
      x.exclude_near = compile_all({"fatty", "fat", "liver", "hepatic", "pancrea*", "breast*", "muscle*"});
      x.near = 3;
    }
    add({kOpacity, kSeptal}, {"crazy paving"});
    // Pulmonary fibrotic sequela
    add({kFibrotic}, {"fibrotic", "fibrosis", "fibroses", "fibrous", "sequel*", "scar", "scars", "scarring",
                      "honeycomb*", "parenchymal band*"});
    add({kFibrotic, kBronchiectasis}, {"traction bronchiecta*"});
    // Pleural effusion (effusion wording: handled in effusion_mentions)
    add({kPleural}, {"pleural fluid", "fluid ~3 pleura*", "hydrothorax", "hydropneumothorax", "hemothorax",
                     "haemothorax"});
    // Mosaic attenuation
    add({kMosaic}, {"mosaic*"});
    // Peribronchial thickening
    add({kPeribronchial}, {"peribronchial ~2 thicken*", "peribronchial cuffing", "bronchial wall* ~2 thicken*",
                           "thicken* ~4 bronchial wall*", "thicken* ~2 peribronchial", "thickened ~2 bronch*",
                           "bronchial thickening", "peribronchovascular ~2 thicken*"});
    // Consolidation
    add({kConsolidation}, {"consolidat*", "air bronchogram*"});
    // Bronchiectasis
    add({kBronchiectasis}, {"bronchiecta*", "bronchial dilat*", "dilat* ~3 bronchi|bronchus|bronchial|bronchioles"});
    // Interlobular septal thickening
    {
      Rule& x = add({kSeptal}, {"septal thickening", "interlobular sept* ~3 thicken*", "thicken* ~4 interlobular sept*",
                                "thickened ~2 sept*", "kerley", "septal lines"});
      x.exclude_near = compile_all({"interatrial", "interventricular", "atrial", "ventricular", "nasal"});
      x.near = 4;
    }
    return v;
  }();
  return r;
}

void raise(std::array<Mention, kNumLabels>& out, int label, Mention m) {
  auto& cur = out[static_cast<std::size_t>(label)];
  if (static_cast<int>(m) > static_cast<int>(cur)) cur = m;
}

bool any_in(const std::vector<Pattern>& pats, const Clause& c, int a, int b) {
  a = std::max(a, 0);
  b = std::min(b, static_cast<int>(c.size()));
  for (int i = a; i < b; ++i)
    for (const auto& p : pats) {
      const int e = match_from(p, 0, c, i);
      if (e > i && e <= b) return true;
    }
  return false;
}

void apply_rules(const Clause& c, const std::vector<CueHit>& cues, std::array<Mention, kNumLabels>& out) {
  const int n = static_cast<int>(c.size());
  for (const Rule& r : rules()) {
    const auto hits = find_all(r.pats, c);
    if (hits.empty()) continue;
    if (!r.suppress.empty() && any_in(r.suppress, c, 0, n) && !any_in(r.unless, c, 0, n)) continue;
    std::vector<Span> ctx;
    if (!r.require.empty()) {
      ctx = find_all(r.require, c);
      if (ctx.empty()) continue;
    }
    for (const Span& h : hits) {
      if (!r.exclude_near.empty() && any_in(r.exclude_near, c, h.s - r.near, h.e + r.near)) continue;
      Mention m = polarity(cues, h.s, h.e);
      if (!ctx.empty()) {
        const Span* best = nullptr;
        int bd = 1 << 30;
        for (const Span& x : ctx) {
          const int d = x.s >= h.e ? x.s - h.e : (h.s >= x.e ? h.s - x.e : 0);
          if (d < bd) bd = d, best = &x;
        }
        m = combine_mention(m, polarity(cues, best->s, best->e));
      }
      for (int l : r.labels) raise(out, l, m);
    }
  }
}

// "effusion(s)": pleural or pericardial from qualifiers around it (lists included).
void effusion_mentions(const Clause& c, const std::vector<CueHit>& cues, std::array<Mention, kNumLabels>& out) {
  static const std::vector<std::string> before_ok = {
      "pleural", "pericardial", "or", "and", ",", "/", "bilateral", "left", "right", "sided", "minimal", "mild",
      "small", "moderate", "large", "massive", "trace", "slight", "significant", "loculated", "free", "a", "an",
      "any", "both", "of", "mild", "minor", "little", "amount", "some", "new", "increased", "decreased",
      "bilaterally", "millimetric", "thin", "layering", "simple", "complex", "the"};
  static const std::vector<std::string> after_ok = {"in", "the", "of", "both", "on", "at", "within", "into",
                                                    "left", "right", "sided", "spaces", "space", "cavity",
                                                    "cavities", "sac", "pleural", "pericardial", "sides", "side"};
  const int n = static_cast<int>(c.size());
  bool clause_pleura = false, clause_peri = false;
  for (const auto& t : c) {
    clause_pleura = clause_pleura || t.rfind("pleura", 0) == 0 || t == "hemithorax" || t == "hemithoraces";
    clause_peri = clause_peri || t.rfind("pericard", 0) == 0;
  }
  for (int i = 0; i < n; ++i) {
    const std::string& t = c[static_cast<std::size_t>(i)];
    if (t != "effusion" && t != "effusions") continue;
    bool pleural = false, peri = false;
    int s = i;
    for (int j = i - 1; j >= 0 && i - j <= 7; --j) {
      const std::string& w = c[static_cast<std::size_t>(j)];
      if (std::find(before_ok.begin(), before_ok.end(), w) == before_ok.end()) break;
      if (w == "pleural") pleural = true, s = j;
      if (w == "pericardial") peri = true, s = j;
    }
    int e = i + 1;
    for (int j = i + 1; j < n && j - i <= 5; ++j) {
      const std::string& w = c[static_cast<std::size_t>(j)];
      const bool pl = w.rfind("pleura", 0) == 0 || w == "hemithorax" || w == "hemithoraces";
      const bool pc = w.rfind("pericard", 0) == 0;
      if (!pl && !pc && std::find(after_ok.begin(), after_ok.end(), w) == after_ok.end()) break;
      if (pl) pleural = true, e = j + 1;
      if (pc) peri = true, e = j + 1;
    }
    if (!pleural && !peri) {
      if (clause_peri && !clause_pleura)
        peri = true;
      else
        pleural = true;
    }
    const Mention m = polarity(cues, s, e);
    if (pleural) raise(out, kPleural, m);
    if (peri) raise(out, kPericardial, m);
  }
}

}  // namespace

std::array<Mention, kNumLabels> label_mentions(const std::string& report) {
  std::array<Mention, kNumLabels> out;
  out.fill(Mention::absent);
  for (const Clause& c : split_clauses(report)) {
    const auto cues = find_cues(c);
    apply_rules(c, cues, out);
    effusion_mentions(c, cues, out);
  }
  return out;
}

Labels extract_labels(const std::string& report, Uncertain policy) {
  const auto m = label_mentions(report);
  Labels out{};
  for (int i = 0; i < kNumLabels; ++i) {
    const Mention x = m[static_cast<std::size_t>(i)];
    out[static_cast<std::size_t>(i)] =
        x == Mention::positive || (x == Mention::uncertain && policy == Uncertain::positive) ? 1 : 0;
  }
  return out;
}

namespace {
double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }
double f1_of(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }
}  // namespace

LabelScores score_labels(const std::vector<Labels>& pred, const std::vector<Labels>& ref) {
  if (pred.size() != ref.size())
    cli::fail_input({}, "label scores: {} predicted label rows but {} reference rows", pred.size(), ref.size());
  LabelScores s;
  s.n = pred.size();
  long exact = 0;
  for (std::size_t r = 0; r < pred.size(); ++r) {
    bool same = true;
    for (std::size_t l = 0; l < static_cast<std::size_t>(kNumLabels); ++l) {
      const bool p = pred[r][l] == 1, t = ref[r][l] == 1;
      s.tp[l] += p && t;
      s.fp[l] += p && !t;
      s.fn[l] += !p && t;
      same = same && p == t;
    }
    exact += same;
  }
  long TP = 0, FP = 0, FN = 0, total_support = 0;
  for (std::size_t l = 0; l < static_cast<std::size_t>(kNumLabels); ++l) {
    s.support[l] = s.tp[l] + s.fn[l];
    s.precision[l] = ratio(static_cast<double>(s.tp[l]), static_cast<double>(s.tp[l] + s.fp[l]));
    s.recall[l] = ratio(static_cast<double>(s.tp[l]), static_cast<double>(s.support[l]));
    s.f1[l] = f1_of(s.precision[l], s.recall[l]);
    if (s.support[l] + s.fp[l] > 0) {  // the label occurs in the reference or the prediction
      ++s.n_present;
      s.macro_precision += s.precision[l];
      s.macro_recall += s.recall[l];
      s.macro_f1 += s.f1[l];
    }
    s.weighted_precision += s.precision[l] * static_cast<double>(s.support[l]);
    s.weighted_recall += s.recall[l] * static_cast<double>(s.support[l]);
    s.weighted_f1 += s.f1[l] * static_cast<double>(s.support[l]);
    TP += s.tp[l], FP += s.fp[l], FN += s.fn[l], total_support += s.support[l];
  }
  s.macro_precision = ratio(s.macro_precision, s.n_present);
  s.macro_recall = ratio(s.macro_recall, s.n_present);
  s.macro_f1 = ratio(s.macro_f1, s.n_present);
  s.weighted_precision = ratio(s.weighted_precision, static_cast<double>(total_support));
  s.weighted_recall = ratio(s.weighted_recall, static_cast<double>(total_support));
  s.weighted_f1 = ratio(s.weighted_f1, static_cast<double>(total_support));
  s.micro_precision = ratio(static_cast<double>(TP), static_cast<double>(TP + FP));
  s.micro_recall = ratio(static_cast<double>(TP), static_cast<double>(TP + FN));
  s.micro_f1 = f1_of(s.micro_precision, s.micro_recall);
  s.exact_match = ratio(static_cast<double>(exact), static_cast<double>(s.n));
  return s;
}

}  // namespace hse::eval
