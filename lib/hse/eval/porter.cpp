// nltk's PorterStemmer (NLTK_EXTENSIONS) and Python's str.lower()/str.split().
//
// The stemmer follows nltk/stem/porter.py (nltk 3.9/3.10) rule for rule: the
// irregular-form pool, the NLTK step 1a/1b/1c/2 extensions, the "*d" pseudo
// suffix, the conditions evaluated on the same substrings as nltk (step 2's
// "logi" on word[:-3], step 5b's "ll" on word[:-1]) and the length check on the
// word as given (before lowercasing). tests/parity/test_meteor.py compares it
// with nltk on thousands of WordNet lemmas.
#include "hse/eval/porter.h"
#include "hse/text/utf8.h"
#include "hse/text/wordpiece.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>

namespace hse::eval {

namespace {

std::u32string decode(std::string_view s) { return text::utf8_decode(s); }
void encode_to(std::string& out, char32_t c) { text::utf8_append(out, c); }

std::string encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) encode_to(out, c);
  return out;
}

bool is_space(char32_t c) { return text::py_isspace(c); }
// Python's str.lower() (full mapping, final sigma): the tables generated from CPython's
// unicodedata in lib/hse/text/unicode_tables.cpp.
std::u32string lower_u32(const std::u32string& s) { return text::py_lower_u32(s); }

// ---------------------------------------------------------------- the stemmer
using U = std::u32string;

bool is_vowel(char32_t c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

bool ends_with(const U& w, std::string_view suffix) {
  if (suffix.size() > w.size()) return false;
  const std::size_t off = w.size() - suffix.size();
  for (std::size_t k = 0; k < suffix.size(); ++k)
    if (w[off + k] != static_cast<char32_t>(static_cast<unsigned char>(suffix[k]))) return false;
  return true;
}

U u(std::string_view ascii) { return U(ascii.begin(), ascii.end()); }

U drop(const U& w, std::size_t k) { return k >= w.size() ? U() : w.substr(0, w.size() - k); }

// _is_consonant(word, i), verbatim (including its backwards walk over a run of 'y').
bool is_consonant(const U& w, std::size_t i) {
  if (is_vowel(w[i])) return false;
  if (w[i] == 'y') {
    bool negate = false;
    while (i > 0 && w[i] == 'y') {
      negate = !negate;
      --i;
    }
    return (!is_vowel(w[i])) != negate;
  }
  return true;
}

// _consonant_flags(): a 'y' is a consonant iff it starts the word or follows a vowel.
std::vector<bool> consonant_flags(const U& w) {
  std::vector<bool> f(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (is_vowel(w[i])) f[i] = false;
    else if (w[i] == 'y') f[i] = (i == 0) ? true : !f[i - 1];
    else f[i] = true;
  }
  return f;
}

// Occurrences of "vc" in the c/v sequence.
int measure(const U& stem) {
  const auto f = consonant_flags(stem);
  int m = 0;
  for (std::size_t i = 0; i + 1 < f.size(); ++i)
    if (!f[i] && f[i + 1]) ++m;
  return m;
}

bool has_positive_measure(const U& stem) { return measure(stem) > 0; }

bool contains_vowel(const U& stem) {
  for (bool c : consonant_flags(stem))
    if (!c) return true;
  return false;
}

bool ends_double_consonant(const U& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

bool ends_cvc(const U& w) {
  const std::size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != 'w' &&
      w[n - 1] != 'x' && w[n - 1] != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);  // NLTK_EXTENSIONS
}

struct Rule {
  std::string_view suffix;
  U replacement;
  std::function<bool(const U&)> condition;  // empty: unconditional
};

// _apply_rule_list(): the first rule whose suffix matches decides, whether or not
// its condition holds.
U apply_rule_list(const U& word, const std::vector<Rule>& rules) {
  for (const Rule& r : rules) {
    if (r.suffix == "*d" && ends_double_consonant(word)) {
      U stem = drop(word, 2);
      if (!r.condition || r.condition(stem)) return stem + r.replacement;
      return word;
    }
    if (ends_with(word, r.suffix)) {
      U stem = drop(word, r.suffix.size());
      if (!r.condition || r.condition(stem)) return stem + r.replacement;
      return word;
    }
  }
  return word;
}

U step1a(const U& word) {
  if (ends_with(word, "ies") && word.size() == 4) return drop(word, 3) + u("ie");
  return apply_rule_list(word, {{"sses", u("ss"), {}}, {"ies", u("i"), {}}, {"ss", u("ss"), {}}, {"s", U(), {}}});
}

U step1b(const U& word) {
  if (ends_with(word, "ied")) return drop(word, 3) + (word.size() == 4 ? u("ie") : u("i"));
  if (ends_with(word, "eed")) {
    U stem = drop(word, 3);
    if (measure(stem) > 0) return stem + u("ee");
    return word;
  }
  bool ok = false;
  U inter;
  for (std::string_view suffix : {std::string_view("ed"), std::string_view("ing")}) {
    if (ends_with(word, suffix)) {
      inter = drop(word, suffix.size());
      if (contains_vowel(inter)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) return word;
  const char32_t last = inter.back();
  return apply_rule_list(
      inter, {{"at", u("ate"), {}},
              {"bl", u("ble"), {}},
              {"iz", u("ize"), {}},
              {"*d", U(1, last), [last](const U&) { return last != 'l' && last != 's' && last != 'z'; }},
              {"", u("e"), [](const U& stem) { return measure(stem) == 1 && ends_cvc(stem); }}});
}

U step1c(const U& word) {
  return apply_rule_list(
      word, {{"y", u("i"), [](const U& stem) { return stem.size() > 1 && is_consonant(stem, stem.size() - 1); }}});
}

U step2(const U& word) {
  if (ends_with(word, "alli") && has_positive_measure(drop(word, 4))) return step2(drop(word, 4) + u("al"));
  const auto pm = [](const U& s) { return has_positive_measure(s); };
  std::vector<Rule> rules = {
      {"ational", u("ate"), pm}, {"tional", u("tion"), pm}, {"enci", u("ence"), pm},  {"anci", u("ance"), pm},
      {"izer", u("ize"), pm},    {"bli", u("ble"), pm},     {"alli", u("al"), pm},     {"entli", u("ent"), pm},
      {"eli", u("e"), pm},       {"ousli", u("ous"), pm},   {"ization", u("ize"), pm}, {"ation", u("ate"), pm},
      {"ator", u("ate"), pm},    {"alism", u("al"), pm},    {"iveness", u("ive"), pm}, {"fulness", u("ful"), pm},
      {"ousness", u("ous"), pm}, {"aliti", u("al"), pm},    {"iviti", u("ive"), pm},   {"biliti", u("ble"), pm},
      {"fulli", u("ful"), pm},
      {"logi", u("log"), [&word](const U&) { return has_positive_measure(drop(word, 3)); }},
  };
  return apply_rule_list(word, rules);
}

U step3(const U& word) {
  const auto pm = [](const U& s) { return has_positive_measure(s); };
  return apply_rule_list(word, {{"icate", u("ic"), pm},
                                {"ative", U(), pm},
                                {"alize", u("al"), pm},
                                {"iciti", u("ic"), pm},
                                {"ical", u("ic"), pm},
                                {"ful", U(), pm},
                                {"ness", U(), pm}});
}

U step4(const U& word) {
  const auto gt1 = [](const U& s) { return measure(s) > 1; };
  return apply_rule_list(
      word, {{"al", U(), gt1},
             {"ance", U(), gt1},
             {"ence", U(), gt1},
             {"er", U(), gt1},
             {"ic", U(), gt1},
             {"able", U(), gt1},
             {"ible", U(), gt1},
             {"ant", U(), gt1},
             {"ement", U(), gt1},
             {"ment", U(), gt1},
             {"ent", U(), gt1},
             {"ion", U(), [](const U& s) { return measure(s) > 1 && (s.back() == 's' || s.back() == 't'); }},
             {"ou", U(), gt1},
             {"ism", U(), gt1},
             {"ate", U(), gt1},
             {"iti", U(), gt1},
             {"ous", U(), gt1},
             {"ive", U(), gt1},
             {"ize", U(), gt1}});
}

U step5a(const U& word) {
  if (ends_with(word, "e")) {
    U stem = drop(word, 1);
    const int m = measure(stem);
    if (m > 1) return stem;
    if (m == 1 && !ends_cvc(stem)) return stem;
  }
  return word;
}

U step5b(const U& word) {
  return apply_rule_list(word, {{"ll", u("l"), [&word](const U&) { return measure(drop(word, 1)) > 1; }}});
}

const std::unordered_map<std::u32string, std::u32string>& irregular_pool() {
  static const auto* pool = [] {
    auto* m = new std::unordered_map<std::u32string, std::u32string>;
    const std::vector<std::pair<const char*, std::vector<const char*>>> forms = {
        {"sky", {"sky", "skies"}},
        {"die", {"dying"}},
        {"lie", {"lying"}},
        {"tie", {"tying"}},
        {"news", {"news"}},
        {"inning", {"innings", "inning"}},
        {"outing", {"outings", "outing"}},
        {"canning", {"cannings", "canning"}},
        {"howe", {"howe"}},
        {"proceed", {"proceed"}},
        {"exceed", {"exceed"}},
        {"succeed", {"succeed"}},
    };
    for (const auto& [key, vals] : forms)
      for (const char* v : vals) (*m)[u(v)] = u(key);
    return m;
  }();
  return *pool;
}

}  // namespace

std::string py_lower(std::string_view utf8) {
  bool ascii = true;
  for (char c : utf8)
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) {
    std::string out(utf8);
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
  }
  return encode(lower_u32(decode(utf8)));
}

std::vector<std::string> py_split(std::string_view utf8) {
  std::vector<std::string> out;
  const std::u32string s = decode(utf8);
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i == s.size()) break;
    std::size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    out.push_back(encode(s.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::string PorterStemmer::stem(const std::string& word) const {
  const U original = decode(word);
  U s = lower_u32(original);
  const auto& pool = irregular_pool();
  if (auto it = pool.find(s); it != pool.end()) return encode(it->second);
  if (original.size() <= 2) return encode(s);  // nltk tests len(word), the word before lowercasing
  s = step1a(s);
  s = step1b(s);
  s = step1c(s);
  s = step2(s);
  s = step3(s);
  s = step4(s);
  s = step5a(s);
  s = step5b(s);
  return encode(s);
}

}  // namespace hse::eval
