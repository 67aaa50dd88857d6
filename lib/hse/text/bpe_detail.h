// Internals of the byte-level BPE tokenizer (bpe.h), shared by its translation units (bpe.cpp:
// encoding and decoding; bpe_load.cpp: tokenizer.json and the slow mode; bpe_tiktoken.cpp;
// bpe_train.cpp): the byte-to-Unicode table, UTF-8 helpers, PCRE2 regexes, the added-token trie,
// the merge table and the pre-tokenizer, normalizer and post-processor steps. Not installed.
#pragma once
#include "hse/text/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#if PCRE2_MAJOR < 10 || (PCRE2_MAJOR == 10 && PCRE2_MINOR < 40)
#error "PCRE2 >= 10.40 is needed (Unicode binary properties such as White_Space and Alphabetic)"
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"
#include "hse/text/utf8.h"
#include "hse/text/wordpiece.h"  // nfc, nfd

namespace hse::text {

using ojson = nlohmann::ordered_json;

namespace bpe_detail {

// ------------------------------------------------------------------ byte <-> unicode table

struct ByteTables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 324> cp_to_byte{};  // -1: not a byte-level character
  ByteTables() {
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    std::array<bool, 256> direct{};
    for (int b : bs) direct[static_cast<std::size_t>(b)] = true;
    cp_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = direct[static_cast<std::size_t>(b)] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      byte_to_cp[static_cast<std::size_t>(b)] = cp;
      cp_to_byte[cp] = static_cast<int16_t>(b);
      std::string u;
      utf8_append(u, cp);
      byte_to_utf8[static_cast<std::size_t>(b)] = u;
    }
  }
};

inline const ByteTables& bytes_table() {
  static const ByteTables t;
  return t;
}

inline std::string byte_level_map(std::string_view s) {
  const auto& t = bytes_table();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) out += t.byte_to_utf8[c];
  return out;
}

// ------------------------------------------------------------------ UTF-8

enum class U8 { valid, invalid, incomplete };

// Classifies the sequence at s[i]: valid (len = its length), invalid (len = the length of the
// maximal invalid subpart, >= 1) or incomplete (a valid prefix cut by the end of s).
inline U8 utf8_at(const unsigned char* s, std::size_t n, std::size_t i, std::size_t& len) {
  const unsigned char c = s[i];
  if (c < 0x80) {
    len = 1;
    return U8::valid;
  }
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 2;
  else if (c == 0xE0) need = 3, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 3;
  else if (c == 0xED) need = 3, hi = 0x9F;
  else if (c == 0xF0) need = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) need = 4;
  else if (c == 0xF4) need = 4, hi = 0x8F;
  else {
    len = 1;
    return U8::invalid;
  }
  std::size_t k = 1;
  if (i + k >= n) {
    len = k;
    return U8::incomplete;
  }
  if (s[i + k] < lo || s[i + k] > hi) {
    len = k;
    return U8::invalid;
  }
  for (++k; k < need; ++k) {
    if (i + k >= n) {
      len = k;
      return U8::incomplete;
    }
    if ((s[i + k] & 0xC0) != 0x80) {
      len = k;
      return U8::invalid;
    }
  }
  len = need;
  return U8::valid;
}

inline const char kReplacement[] = "\xEF\xBF\xBD";

// Appends the valid UTF-8 of s (from_utf8_lossy); with hold_incomplete, stops before an
// incomplete sequence at the end and returns its start, else returns s.size().
inline std::size_t utf8_lossy_append(std::string& out, std::string_view s, bool hold_incomplete) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0, run = 0;  // run: start of the pending valid run
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    const U8 k = utf8_at(p, n, i, len);
    if (k == U8::valid) {
      i += len;
      continue;
    }
    out.append(s.data() + run, i - run);
    if (k == U8::incomplete && hold_incomplete) return i;
    out += kReplacement;
    i += len;
    run = i;
  }
  out.append(s.data() + run, n - run);
  return n;
}

inline bool utf8_is_valid(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    if (utf8_at(p, n, i, len) != U8::valid) return false;
    i += len;
  }
  return true;
}

inline std::size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

// The code point at s[i] (s valid UTF-8).
inline char32_t utf8_cp(std::string_view s, std::size_t i, std::size_t& len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char c = p[i];
  len = utf8_len(c);
  if (len == 1) return c;
  char32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
  return cp;
}

// The start of the last code point of s[0..end).
inline std::size_t utf8_prev(std::string_view s, std::size_t end) {
  std::size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Unicode White_Space (Rust's char::is_whitespace, regex \s, Oniguruma \s).
inline bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ------------------------------------------------------------------ PCRE2 regex

// Rewrites Oniguruma's \s / \S (Unicode White_Space) for PCRE2; everything else is kept.
inline std::string onig_to_pcre2(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 16);
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '\\' || i + 1 >= p.size()) {
      out += p[i];
      continue;
    }
    const char e = p[i + 1];
    if (e == 'Q') {  // \Q...\E: literal text
      const std::size_t end = p.find("\\E", i + 2);
      const std::size_t stop = end == std::string::npos ? p.size() : end + 2;
      out.append(p, i, stop - i);
      i = stop - 1;
      continue;
    }
    if (e == 's') out += "\\p{White_Space}";
    else if (e == 'S') out += "\\P{White_Space}";
    else {
      out += '\\';
      out += e;
    }
    ++i;
  }
  return out;
}

struct MatchData {
  pcre2_match_data* md = nullptr;
  MatchData() : md(pcre2_match_data_create(64, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(md); }
};

inline pcre2_match_data* thread_match_data() {
  thread_local MatchData d;
  return d.md;
}

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message.
  Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    std::string p = pattern;
    if (literal) opts |= PCRE2_LITERAL;  // (takes no UCP / MULTILINE)
    else {
      opts |= PCRE2_UCP | PCRE2_MULTILINE;
      p = onig_to_pcre2(pattern);
    }
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), opts, &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof buf);
      throw std::invalid_argument("invalid regex '" + pattern + "' at offset " + std::to_string(off) + ": " +
                                  reinterpret_cast<const char*>(buf));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  const std::string& pattern() const { return pattern_; }

  // Calls f(start, end) for each match in s with the iteration of Rust's onig/regex crates
  // (an empty match right after the previous match is skipped). s must be valid UTF-8.
  template <class F>
  void find_iter(std::string_view s, F&& f) const {
    pcre2_match_data* md = thread_match_data();
    const std::size_t n = s.size();
    std::size_t last_end = 0;
    bool have_last = false;
    std::size_t last_match_end = 0;
    while (last_end <= n) {
      int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), n, last_end, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), n, last_end, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                         md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(rc, buf, sizeof buf);
        throw std::runtime_error("regex '" + pattern_ + "': " + reinterpret_cast<const char*>(buf));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const std::size_t st = ov[0], en = ov[1];
      if (st == en && have_last && last_match_end == en) {
        if (last_end >= n) return;
        last_end += utf8_len(static_cast<unsigned char>(s[last_end]));
        continue;
      }
      last_end = en;
      last_match_end = en;
      have_last = true;
      f(st, en);
    }
  }

 private:
  std::string pattern_;
  pcre2_code* code_ = nullptr;
};

// Rust regex's \w (Unicode): Alphabetic, M, Nd, Pc, Join_Control.
inline bool is_word_char(char32_t c) {
  static const Regex re(R"(^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]$)", false);
  std::string u;
  utf8_append(u, c);
  bool m = false;
  re.find_iter(u, [&](std::size_t, std::size_t) { m = true; });
  return m;
}

// ------------------------------------------------------------------ added-token trie

class Trie {
 public:
  // Keeps the first value for a repeated pattern.
  void insert(const std::string& s, int64_t id) {
    if (s.empty()) return;
    std::size_t node = 0;
    for (unsigned char c : s) {
      int nx = -1;
      for (const auto& [b, child] : nodes_[node].next)
        if (b == c) nx = child;
      if (nx < 0) {
        nx = static_cast<int>(nodes_.size());
        nodes_[node].next.emplace_back(c, nx);
        nodes_.emplace_back();
      }
      node = static_cast<std::size_t>(nx);
    }
    if (nodes_[node].value < 0) nodes_[node].value = id;
    first_[static_cast<unsigned char>(s[0])] = true;
    empty_ = false;
  }
  bool empty() const { return empty_; }
  void clear() { *this = Trie(); }
  // The longest pattern starting at s[i]: its length (0: none) and id.
  std::size_t longest(std::string_view s, std::size_t i, int64_t& id) const {
    if (!first_[static_cast<unsigned char>(s[i])]) return 0;
    std::size_t node = 0, best = 0;
    for (std::size_t k = i; k < s.size(); ++k) {
      const unsigned char c = static_cast<unsigned char>(s[k]);
      int nx = -1;
      for (const auto& [b, child] : nodes_[node].next)
        if (b == c) {
          nx = child;
          break;
        }
      if (nx < 0) break;
      node = static_cast<std::size_t>(nx);
      if (nodes_[node].value >= 0) {
        best = k + 1 - i;
        id = nodes_[node].value;
      }
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> next;
    int64_t value = -1;
  };
  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_{};
  bool empty_ = true;
};

// ------------------------------------------------------------------ merge map

struct MergeVal {
  int32_t rank;
  int32_t new_id;
};

class PairMap {
 public:
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < 2 * n + 2) cap <<= 1;
    rehash(cap);
  }
  void insert_or_assign(uint64_t k, MergeVal v) {
    if (keys_.empty() || 2 * (size_ + 1) > keys_.size()) rehash(keys_.empty() ? 16 : keys_.size() * 2);
    std::size_t i = slot(k);
    if (keys_[i] == kEmpty) {
      keys_[i] = k;
      ++size_;
    }
    vals_[i] = v;
  }
  const MergeVal* find(uint64_t k) const {
    if (keys_.empty()) return nullptr;
    const std::size_t i = slot(k);
    return keys_[i] == kEmpty ? nullptr : &vals_[i];
  }
  std::size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  std::size_t slot(uint64_t k) const {
    const std::size_t mask = keys_.size() - 1;
    std::size_t i = static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (keys_[i] != kEmpty && keys_[i] != k) i = (i + 1) & mask;
    return i;
  }
  void rehash(std::size_t cap) {
    std::vector<uint64_t> ok = std::move(keys_);
    std::vector<MergeVal> ov = std::move(vals_);
    keys_.assign(cap, kEmpty);
    vals_.assign(cap, MergeVal{0, 0});
    size_ = 0;
    for (std::size_t j = 0; j < ok.size(); ++j)
      if (ok[j] != kEmpty) {
        const std::size_t i = slot(ok[j]);
        keys_[i] = ok[j];
        vals_[i] = ov[j];
        ++size_;
      }
  }
  std::vector<uint64_t> keys_;
  std::vector<MergeVal> vals_;
  std::size_t size_ = 0;
};

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// ------------------------------------------------------------------ pipeline pieces

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
enum class Norm { NFC, NFD };

struct PreStep {
  bool byte_level = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = true;
  // Split (and ByteLevel's GPT-2 regex when use_regex)
  std::shared_ptr<const Regex> re;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
};

struct TemplateItem {
  bool sequence = false;
  std::vector<int64_t> ids;
};
using Template = std::vector<TemplateItem>;

inline std::shared_ptr<const Regex> gpt2_regex() {
  static const std::shared_ptr<const Regex> re = std::make_shared<Regex>(kGpt2Pattern, false);
  return re;
}

// Applies a Split step (NormalizedString::split + Pattern::find_matches) to `s`, appending
// the non-empty pieces to out.
inline void split_piece(const PreStep& st, const std::string& s, std::vector<std::string>& out) {
  if (s.empty()) return;
  struct M {
    std::size_t a, b;
    bool match;
  };
  std::vector<M> ms;
  std::size_t prev = 0;
  st.re->find_iter(s, [&](std::size_t a, std::size_t b) {
    if (prev != a) ms.push_back({prev, a, false});
    ms.push_back({a, b, true});
    prev = b;
  });
  if (prev != s.size()) ms.push_back({prev, s.size(), false});
  if (st.invert)
    for (auto& m : ms) m.match = !m.match;
  std::vector<std::pair<std::size_t, std::size_t>> keep;
  switch (st.behavior) {
    case Behavior::Isolated:
      for (const auto& m : ms) keep.emplace_back(m.a, m.b);
      break;
    case Behavior::Removed:
      for (const auto& m : ms)
        if (!m.match) keep.emplace_back(m.a, m.b);
      break;
    case Behavior::Contiguous: {
      bool previous = false;
      for (const auto& m : ms) {
        if (m.match == previous && !keep.empty()) keep.back().second = m.b;
        else keep.emplace_back(m.a, m.b);
        previous = m.match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool previous = false;
      for (const auto& m : ms) {
        if (m.match && !previous && !keep.empty()) keep.back().second = m.b;
        else keep.emplace_back(m.a, m.b);
        previous = m.match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous = false;
      for (auto it = ms.rbegin(); it != ms.rend(); ++it) {
        if (it->match && !previous && !keep.empty()) keep.back().first = it->a;
        else keep.emplace_back(it->a, it->b);
        previous = it->match;
      }
      std::reverse(keep.begin(), keep.end());
      break;
    }
  }
  for (const auto& [a, b] : keep)
    if (b > a) out.emplace_back(s, a, b - a);
}

inline std::string normalize_with(const std::vector<Norm>& norms, const std::string& s) {
  if (norms.empty()) return s;
  std::u32string u = utf8_decode(s);
  for (Norm n : norms) u = n == Norm::NFC ? nfc(u) : nfd(u);
  return utf8_encode(u);
}

inline constexpr std::size_t kCacheCapacity = 100000;
inline constexpr std::size_t kCacheMaxWord = 256;

// tokenizer.json sections of a byte-level pipeline (tiktoken files and trained tokenizers).
inline ojson byte_level_json(bool add_prefix_space, bool use_regex) {
  ojson j;
  j["type"] = "ByteLevel";
  j["add_prefix_space"] = add_prefix_space;
  j["trim_offsets"] = true;
  j["use_regex"] = use_regex;
  return j;
}

// pre_tokenizer Sequence[Split(Regex(pattern), Isolated), ByteLevel(false, use_regex=false)]
inline ojson split_byte_level_json(const std::string& pattern) {
  ojson split;
  split["type"] = "Split";
  split["pattern"] = ojson{{"Regex", pattern}};
  split["behavior"] = "Isolated";
  split["invert"] = false;
  ojson seq;
  seq["type"] = "Sequence";
  seq["pretokenizers"] = ojson::array({split, byte_level_json(false, false)});
  return seq;
}

}  // namespace bpe_detail

}  // namespace hse::text
