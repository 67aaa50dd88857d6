// rouge_score's ROUGE-N and ROUGE-L; see rouge.h.
#include "hse/eval/rouge.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "hse/eval/porter.h"

namespace hse::eval {
namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one
// (such bytes are separators, as any non-ASCII character).
std::size_t utf8_len(const std::string& s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) len = 3;
  else if (c >= 0xF0 && c <= 0xF4) len = 4;
  if (len == 0 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  const auto c1 = static_cast<unsigned char>(s[i + 1]);
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
    return 0;  // overlong, surrogate or > U+10FFFF
  return len;
}

}  // namespace

std::vector<std::string> rouge_tokenize(const std::string& text, bool stem) {
  // text.lower(), then NON_ALPHANUM_RE.sub(" ", text) and SPACES_RE.split(text).
  std::vector<std::string> raw;
  std::string cur;
  auto cut = [&] {
    if (!cur.empty()) raw.push_back(std::move(cur)), cur.clear();
  };
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      if (alnum(l)) cur.push_back(l);
      else cut();
      ++i;
      continue;
    }
    const std::size_t len = utf8_len(text, i);
    if (len == 2 && u == 0xC4 && static_cast<unsigned char>(text[i + 1]) == 0xB0) {
      cur.push_back('i');  // U+0130 -> "i" U+0307: the combining dot then separates
      cut();
    } else if (len == 3 && text.compare(i, 3, "\xE2\x84\xAA") == 0) {
      cur.push_back('k');  // U+212A KELVIN SIGN -> "k"
    } else {
      cut();
    }
    i += len ? len : 1;
  }
  cut();
  std::vector<std::string> out;
  out.reserve(raw.size());
  for (auto& t : raw) {
    if (stem && t.size() > 3) t = PorterStemmer().stem(t);
    if (!t.empty() && std::all_of(t.begin(), t.end(), alnum)) out.push_back(std::move(t));
  }
  return out;
}

double rouge_fmeasure(double precision, double recall) {
  if (precision + recall > 0) return 2 * precision * recall / (precision + recall);
  return 0.0;
}

RougeScore rouge_n(const std::vector<std::string>& target, const std::vector<std::string>& pred, int n) {
  if (n <= 0) throw std::invalid_argument("rouge_n: n must be positive");
  auto counts = [n](const std::vector<std::string>& toks) {
    std::unordered_map<std::string, std::size_t> c;
    std::size_t total = 0;
    for (std::size_t i = 0; i + n <= toks.size(); ++i) {
      std::string key = toks[i];
      for (int k = 1; k < n; ++k) key.append(" ").append(toks[i + k]);
      ++c[key];
      ++total;
    }
    return std::make_pair(std::move(c), total);
  };
  const auto [tc, tn] = counts(target);
  const auto [pc, pn] = counts(pred);
  std::size_t overlap = 0;
  for (const auto& [key, count] : tc) {
    const auto it = pc.find(key);
    if (it != pc.end()) overlap += std::min(count, it->second);
  }
  RougeScore s;
  s.precision = static_cast<double>(overlap) / static_cast<double>(std::max<std::size_t>(pn, 1));
  s.recall = static_cast<double>(overlap) / static_cast<double>(std::max<std::size_t>(tn, 1));
  s.fmeasure = rouge_fmeasure(s.precision, s.recall);
  return s;
}

RougeScore rouge_lcs(const std::vector<std::string>& target, const std::vector<std::string>& pred) {
  if (target.empty() || pred.empty()) return {0, 0, 0};
  // Tokens as ids, then the LCS table row by row.
  std::unordered_map<std::string, int> ids;
  auto to_ids = [&](const std::vector<std::string>& toks) {
    std::vector<int> v;
    v.reserve(toks.size());
    for (const auto& t : toks) v.push_back(ids.emplace(t, static_cast<int>(ids.size())).first->second);
    return v;
  };
  const auto a = to_ids(target), b = to_ids(pred);
  std::vector<std::size_t> prev(b.size() + 1, 0), row(b.size() + 1, 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j)
      row[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], row[j - 1]);
    std::swap(prev, row);
  }
  const double lcs = static_cast<double>(prev[b.size()]);
  RougeScore s;
  s.precision = lcs / static_cast<double>(pred.size());
  s.recall = lcs / static_cast<double>(target.size());
  s.fmeasure = rouge_fmeasure(s.precision, s.recall);
  return s;
}

RougeResult rouge(const std::string& pred, const std::string& ref, bool stem) {
  const auto t = rouge_tokenize(ref, stem);
  const auto p = rouge_tokenize(pred, stem);
  return {rouge_n(t, p, 1), rouge_n(t, p, 2), rouge_lcs(t, p)};
}

}  // namespace hse::eval
