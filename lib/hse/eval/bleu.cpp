// sacrebleu / HF evaluate BLEU; see bleu.h.
#include "hse/eval/bleu.h"
#include "hse/text/utf8.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

namespace hse::eval {
namespace {

using text::utf8_append;
using text::utf8_decode;
inline bool py_space(char32_t c) { return text::py_isspace(c); }

bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }

// str.replace(from, to): one left-to-right pass, non-overlapping.
std::u32string replace_all(const std::u32string& s, const std::u32string& from, const std::u32string& to) {
  if (s.find(from) == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  for (;;) {
    const std::size_t hit = s.find(from, pos);
    if (hit == std::u32string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::u32string::npos);
  return out;
}

// [\{-\~\[-\` -\&\(-\+\:-\@\/]: space ! " # $ % & ( ) * + / : ; < = > ? @ [ \ ] ^ _ ` { | } ~
bool punct13a(char32_t c) {
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

// Tokenizer13a()(line) as code points, before the final whitespace split.
std::u32string tokenize_13a_raw(std::u32string line) {
  line = replace_all(line, U"<skipped>", U"");
  line = replace_all(line, U"-\n", U"");
  line = replace_all(line, U"\n", U" ");
  if (line.find(U'&') != std::u32string::npos) {
    line = replace_all(line, U"&quot;", U"\"");
    line = replace_all(line, U"&amp;", U"&");
    line = replace_all(line, U"&lt;", U"<");
    line = replace_all(line, U"&gt;", U">");
  }
  // TokenizerRegexp on f' {line} '
  std::u32string s;
  s.reserve(line.size() * 2 + 2);
  s.push_back(U' ');
  for (char32_t c : line) {
    if (punct13a(c)) {
      s.push_back(U' ');
      s.push_back(c);
      s.push_back(U' ');
    } else {
      s.push_back(c);
    }
  }
  s.push_back(U' ');

  // re.sub with a fixed two-character pattern: leftmost, non-overlapping matches.
  auto sub2 = [](const std::u32string& in, auto match, auto emit) {
    std::u32string out;
    out.reserve(in.size() + in.size() / 4);
    std::size_t i = 0;
    while (i < in.size()) {
      if (i + 1 < in.size() && match(in[i], in[i + 1])) {
        emit(out, in[i], in[i + 1]);
        i += 2;
      } else {
        out.push_back(in[i]);
        ++i;
      }
    }
    return out;
  };
  auto dot_comma = [](char32_t c) { return c == U'.' || c == U','; };
  // ([^0-9])([\.,]) -> \1 \2 ␣
  s = sub2(
      s, [&](char32_t a, char32_t b) { return !is_digit(a) && dot_comma(b); },
      [](std::u32string& o, char32_t a, char32_t b) {
        o.push_back(a), o.push_back(U' '), o.push_back(b), o.push_back(U' ');
      });
  // ([\.,])([^0-9]) -> ␣\1 \2
  s = sub2(
      s, [&](char32_t a, char32_t b) { return dot_comma(a) && !is_digit(b); },
      [](std::u32string& o, char32_t a, char32_t b) {
        o.push_back(U' '), o.push_back(a), o.push_back(U' '), o.push_back(b);
      });
  // ([0-9])(-) -> \1 \2 ␣
  s = sub2(
      s, [](char32_t a, char32_t b) { return is_digit(a) && b == U'-'; },
      [](std::u32string& o, char32_t a, char32_t b) {
        o.push_back(a), o.push_back(U' '), o.push_back(b), o.push_back(U' ');
      });
  return s;
}

std::vector<std::string> split_py(const std::u32string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_tok = false;
  for (char32_t c : s) {
    if (py_space(c)) {
      if (in_tok) out.push_back(std::move(cur)), cur.clear(), in_tok = false;
    } else {
      utf8_append(cur, c);
      in_tok = true;
    }
  }
  if (in_tok) out.push_back(std::move(cur));
  return out;
}

std::u32string rstrip_py(std::u32string s) {
  while (!s.empty() && py_space(s.back())) s.pop_back();
  return s;
}

// sacrebleu's _preprocess_segment (lowercase off): tokenizer(sent.rstrip()).
std::vector<std::string> bleu_tokens(const std::string& sent) {
  return split_py(tokenize_13a_raw(rstrip_py(utf8_decode(sent))));
}

// n-gram counts for orders 1..max_order; tokens never contain a space, so the
// space-joined key is unambiguous (and encodes the order).
using Counts = std::unordered_map<std::string, std::size_t>;
Counts ngram_counts(const std::vector<std::string>& toks, int max_order) {
  Counts c;
  c.reserve(toks.size() * static_cast<std::size_t>(max_order));
  for (std::size_t i = 0; i < toks.size(); ++i) {
    std::string key;
    for (int n = 1; n <= max_order && i + n <= toks.size(); ++n) {
      if (n > 1) key.push_back(' ');
      key += toks[i + n - 1];
      ++c[key];
    }
  }
  return c;
}

int key_order(const std::string& key) { return 1 + static_cast<int>(std::count(key.begin(), key.end(), ' ')); }

// sacrebleu's my_log: log floored at -9999999999 for 0.
double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

// ---------------------------------------------------------------- 13a
std::string tokenize_13a(const std::string& line) {
  const auto toks = split_py(tokenize_13a_raw(utf8_decode(line)));
  std::string out;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    if (i) out.push_back(' ');
    out += toks[i];
  }
  return out;
}

std::vector<std::string> tokens_13a(const std::string& line) {
  return split_py(tokenize_13a_raw(utf8_decode(line)));
}

// ---------------------------------------------------------------- sacrebleu
Smooth parse_smooth(const std::string& name) {
  if (name == "none") return Smooth::none;
  if (name == "floor") return Smooth::floor;
  if (name == "add-k" || name == "add_k") return Smooth::add_k;
  if (name == "exp") return Smooth::exp;
  throw std::invalid_argument("unknown BLEU smoothing method '" + name + "' (none, floor, add-k, exp)");
}

const char* smooth_name(Smooth s) {
  switch (s) {
    case Smooth::none: return "none";
    case Smooth::floor: return "floor";
    case Smooth::add_k: return "add-k";
    case Smooth::exp: return "exp";
  }
  return "?";
}

double smooth_default(Smooth s) {
  switch (s) {
    case Smooth::floor: return 0.1;
    case Smooth::add_k: return 1.0;
    default: return 0.0;
  }
}

BleuStats& BleuStats::operator+=(const BleuStats& o) {
  sys_len += o.sys_len;
  ref_len += o.ref_len;
  for (int i = 0; i < 4; ++i) correct[i] += o.correct[i], total[i] += o.total[i];
  return *this;
}

BleuStats bleu_stats(const std::string& hyp, const std::string& ref) {
  const auto h = bleu_tokens(hyp);
  const auto r = bleu_tokens(ref);
  BleuStats st;
  st.sys_len = h.size();
  st.ref_len = r.size();  // the closest reference length, with one reference
  const Counts rc = ngram_counts(r, 4);
  const Counts hc = ngram_counts(h, 4);
  for (const auto& [key, count] : hc) {
    const int n = key_order(key) - 1;
    st.total[n] += count;
    const auto it = rc.find(key);
    if (it != rc.end()) st.correct[n] += std::min(count, it->second);
  }
  return st;
}

BleuResult bleu_from_stats(const BleuStats& st, Smooth s, double smooth_value, bool effective_order) {
  if (!(smooth_value > 0)) smooth_value = smooth_default(s);
  BleuResult res{};
  res.sys_len = st.sys_len;
  res.ref_len = st.ref_len;
  // BLEU.compute_bleu
  double bp = 1.0;
  if (st.sys_len < st.ref_len)
    bp = st.sys_len > 0 ? std::exp(1.0 - static_cast<double>(st.ref_len) / static_cast<double>(st.sys_len)) : 0.0;
  res.bp = bp;
  for (int max_order = 1; max_order <= 4; ++max_order) {
    double prec[4] = {0, 0, 0, 0};
    bool any = false;
    for (int n = 0; n < max_order; ++n) any = any || st.correct[n] != 0;
    double score = 0.0;
    if (any) {  // "Early stop if there are no matches (#141)"
      double smooth_mteval = 1.0;
      int eff_order = max_order;
      for (int n = 1; n <= max_order; ++n) {
        double correct = static_cast<double>(st.correct[n - 1]);
        double total = static_cast<double>(st.total[n - 1]);
        if (s == Smooth::add_k && n > 1) correct += smooth_value, total += smooth_value;
        if (total == 0) break;
        if (effective_order) eff_order = n;
        if (correct == 0) {
          if (s == Smooth::exp) {
            smooth_mteval *= 2;
            prec[n - 1] = 100. / (smooth_mteval * total);
          } else if (s == Smooth::floor) {
            prec[n - 1] = 100. * smooth_value / total;
          }
        } else {
          prec[n - 1] = 100. * correct / total;
        }
      }
      double sum = 0.0;
      for (int n = 0; n < eff_order; ++n) sum += my_log(prec[n]);
      score = bp * std::exp(sum / eff_order);
    }
    res.bleu[max_order - 1] = score / 100.0;
    if (max_order == 4)
      for (int n = 0; n < 4; ++n) res.precisions[n] = prec[n] / 100.0;
  }
  return res;
}

BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs, Smooth s,
                       double smooth_value) {
  if (hyps.size() != refs.size())
    throw std::invalid_argument("corpus_bleu: " + std::to_string(hyps.size()) + " hypotheses but " +
                                std::to_string(refs.size()) + " references");
  BleuStats sum;
  for (std::size_t i = 0; i < hyps.size(); ++i) sum += bleu_stats(hyps[i], refs[i]);
  return bleu_from_stats(sum, s, smooth_value, false);
}

BleuResult sentence_bleu(const std::string& hyp, const std::string& ref, Smooth s, double smooth_value) {
  return bleu_from_stats(bleu_stats(hyp, ref), s, smooth_value, true);
}

// ---------------------------------------------------------------- HF evaluate
HfBleu hf_bleu(const std::string& pred, const std::string& ref, int max_order) {
  if (max_order < 1) throw std::invalid_argument("hf_bleu: max_order must be >= 1");
  const auto t = tokens_13a(pred);  // evaluate calls the tokenizer without rstrip
  const auto r = tokens_13a(ref);
  HfBleu out;
  out.translation_length = t.size();
  out.reference_length = r.size();
  std::vector<std::size_t> matches(max_order, 0), possible(max_order, 0);
  const Counts rc = ngram_counts(r, max_order);
  const Counts tc = ngram_counts(t, max_order);
  for (const auto& [key, count] : tc) {
    const auto it = rc.find(key);
    if (it != rc.end()) matches[key_order(key) - 1] += std::min(count, it->second);
  }
  for (int order = 1; order <= max_order; ++order) {
    const long long pm = static_cast<long long>(t.size()) - order + 1;
    if (pm > 0) possible[order - 1] += static_cast<std::size_t>(pm);
  }
  out.precisions.assign(max_order, 0.0);
  for (int i = 0; i < max_order; ++i)
    if (possible[i] > 0) out.precisions[i] = static_cast<double>(matches[i]) / static_cast<double>(possible[i]);
  double geo_mean = 0;
  if (*std::min_element(out.precisions.begin(), out.precisions.end()) > 0) {
    double p_log_sum = 0;
    for (double p : out.precisions) p_log_sum += (1. / max_order) * std::log(p);
    geo_mean = std::exp(p_log_sum);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (r.empty()) {  // ratio = translation_length / 0: ZeroDivisionError in Python
    out.length_ratio = out.brevity_penalty = out.bleu = nan;
    return out;
  }
  const double ratio = static_cast<double>(t.size()) / static_cast<double>(r.size());
  out.length_ratio = ratio;
  if (ratio > 1.0) out.brevity_penalty = 1.0;
  else if (ratio == 0.0) out.brevity_penalty = nan;  // 1. / ratio: ZeroDivisionError
  else out.brevity_penalty = std::exp(1 - 1. / ratio);
  out.bleu = geo_mean * out.brevity_penalty;
  return out;
}

std::array<double, 4> hf_bleu_precisions(const std::string& pred, const std::string& ref) {
  const HfBleu b = hf_bleu(pred, ref, 4);
  return {b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3]};
}

}  // namespace hse::eval
