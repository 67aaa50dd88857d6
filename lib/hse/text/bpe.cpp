// Byte-level BPE tokenizer (Hugging Face tokenizers semantics); see bpe.h.
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

namespace {

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

const ByteTables& bytes_table() {
  static const ByteTables t;
  return t;
}

std::string byte_level_map(std::string_view s) {
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
U8 utf8_at(const unsigned char* s, std::size_t n, std::size_t i, std::size_t& len) {
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

const char kReplacement[] = "\xEF\xBF\xBD";

// Appends the valid UTF-8 of s (from_utf8_lossy); with hold_incomplete, stops before an
// incomplete sequence at the end and returns its start, else returns s.size().
std::size_t utf8_lossy_append(std::string& out, std::string_view s, bool hold_incomplete) {
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

bool utf8_is_valid(std::string_view s) {
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
char32_t utf8_cp(std::string_view s, std::size_t i, std::size_t& len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char c = p[i];
  len = utf8_len(c);
  if (len == 1) return c;
  char32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
  return cp;
}

// The start of the last code point of s[0..end).
std::size_t utf8_prev(std::string_view s, std::size_t end) {
  std::size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Unicode White_Space (Rust's char::is_whitespace, regex \s, Oniguruma \s).
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ------------------------------------------------------------------ PCRE2 regex

// Rewrites Oniguruma's \s / \S (Unicode White_Space) for PCRE2; everything else is kept.
std::string onig_to_pcre2(const std::string& p) {
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

pcre2_match_data* thread_match_data() {
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
bool is_word_char(char32_t c) {
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

std::shared_ptr<const Regex> gpt2_regex() {
  static const std::shared_ptr<const Regex> re = std::make_shared<Regex>(kGpt2Pattern, false);
  return re;
}

// Applies a Split step (NormalizedString::split + Pattern::find_matches) to `s`, appending
// the non-empty pieces to out.
void split_piece(const PreStep& st, const std::string& s, std::vector<std::string>& out) {
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

std::string normalize_with(const std::vector<Norm>& norms, const std::string& s) {
  if (norms.empty()) return s;
  std::u32string u = utf8_decode(s);
  for (Norm n : norms) u = n == Norm::NFC ? nfc(u) : nfd(u);
  return utf8_encode(u);
}

constexpr std::size_t kCacheCapacity = 100000;
constexpr std::size_t kCacheMaxWord = 256;

}  // namespace

// ------------------------------------------------------------------ Impl

struct BpeTokenizer::Impl {
  std::string source;

  // model
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> vocab_r;
  std::vector<uint8_t> vocab_has;
  std::vector<std::pair<std::string, std::string>> merges;
  PairMap merge_map;
  std::optional<std::string> unk_token, prefix, suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  BpeMode mode = BpeMode::fast;
  bool prefix_space = false;  // slow mode's add_prefix_space: one space before the whole text
  std::vector<int32_t> char_ids;  // code point (< 1024) -> id of that one-character token, or -1
  int32_t unk_id = -1;

  // added vocabulary
  std::map<int64_t, BpeAddedToken> added;  // by id
  std::unordered_map<std::string, int64_t> added_map;
  std::unordered_map<int64_t, std::string> normalized_cache;
  std::unordered_set<std::string> special_set;
  Trie trie_raw, trie_norm;

  // pipeline
  std::vector<Norm> norms;
  std::vector<PreStep> pre;
  std::vector<Template> post;
  bool byte_level_decoder = false;

  // the sections written back by save()
  ojson j_truncation, j_padding, j_normalizer, j_pre, j_post, j_decoder;

  mutable std::shared_mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  [[noreturn]] void fail(const std::string& msg) const { cli::fail_input(source, "{}", msg); }

  // ---------------------------------------------------------------- model
  void set_vocab_entry(const std::string& tok, int64_t id) {
    if (id < 0 || id > INT32_MAX - 1) fail("vocab id " + std::to_string(id) + " out of range for '" + tok + "'");
    vocab[tok] = static_cast<int32_t>(id);
  }

  // Builds vocab_r, merge_map and char_ids from vocab, merges and the options.
  void build_model() {
    int32_t max_id = -1;
    for (const auto& [k, v] : vocab) max_id = std::max(max_id, v);
    if (max_id >= 0 && static_cast<std::size_t>(max_id) > 4 * vocab.size() + 65536)  // mostly holes
      fail("vocab ids are too sparse: max id " + std::to_string(max_id) + " for " + std::to_string(vocab.size()) +
           " tokens");
    vocab_r.assign(static_cast<std::size_t>(max_id + 1), std::string());
    vocab_has.assign(static_cast<std::size_t>(max_id + 1), 0);
    // tokens sharing an id: the smallest string wins (deterministic)
    for (const auto& [k, v] : vocab) {
      auto i = static_cast<std::size_t>(v);
      if (!vocab_has[i] || k < vocab_r[i]) vocab_r[i] = k;
      vocab_has[i] = 1;
    }
    const std::size_t plen = prefix ? prefix->size() : 0;
    merge_map = PairMap();
    merge_map.reserve(merges.size());
    for (std::size_t r = 0; r < merges.size(); ++r) {
      const auto& [a, b] = merges[r];
      auto ia = vocab.find(a);
      if (ia == vocab.end()) fail("merge " + std::to_string(r) + ": token '" + a + "' is not in the vocabulary");
      auto ib = vocab.find(b);
      if (ib == vocab.end()) fail("merge " + std::to_string(r) + ": token '" + b + "' is not in the vocabulary");
      if (b.size() < plen) fail("merge " + std::to_string(r) + ": token '" + b + "' lacks the continuing_subword_prefix");
      const std::string merged = a + b.substr(plen);
      auto im = vocab.find(merged);
      if (im == vocab.end()) fail("merge " + std::to_string(r) + ": token '" + merged + "' is not in the vocabulary");
      merge_map.insert_or_assign(pair_key(ia->second, ib->second), MergeVal{static_cast<int32_t>(r), im->second});
    }
    char_ids.assign(1024, -1);
    for (const auto& [k, v] : vocab) {
      if (k.empty() || !utf8_is_valid(k)) continue;
      std::size_t len = 0;
      const char32_t cp = utf8_cp(k, 0, len);
      if (len == k.size() && cp < 1024) char_ids[cp] = v;
    }
    unk_id = -1;
    if (unk_token) {
      auto it = vocab.find(*unk_token);
      if (it != vocab.end()) unk_id = it->second;
    }
    std::unique_lock lk(cache_mu);
    cache.clear();
  }

  std::optional<int32_t> model_id(const std::string& s) const {
    auto it = vocab.find(s);
    if (it == vocab.end()) return std::nullopt;
    return it->second;
  }

  void merge_word(const std::string& w, std::vector<int32_t>& out) const {
    struct Sym {
      int32_t c, prev, next, len;
    };
    thread_local std::vector<Sym> syms;
    syms.clear();
    auto add = [&](int32_t id, int32_t len) {
      const auto n = static_cast<int32_t>(syms.size());
      if (n > 0) syms.back().next = n;
      syms.push_back({id, n - 1, -1, len});
    };
    const bool fast = !prefix && !suffix;
    bool have_unk = false;
    int32_t unk_c = -1, unk_len = 0;
    const std::size_t n = w.size();
    std::string s;
    for (std::size_t i = 0; i < n;) {
      std::size_t clen = 0;
      const char32_t cp = utf8_cp(w, i, clen);
      const bool is_first = i == 0, is_last = i + clen >= n;
      int32_t id = -1;
      bool built = false;
      if (fast && cp < 1024) {
        id = char_ids[cp];
      } else {
        s.clear();
        if (!is_first && prefix) s += *prefix;
        s.append(w, i, clen);
        if (is_last && suffix) s += *suffix;
        built = true;
        auto it = vocab.find(s);
        if (it != vocab.end()) id = it->second;
      }
      if (id >= 0) {
        if (have_unk) {
          add(unk_c, unk_len);
          have_unk = false;
        }
        add(id, static_cast<int32_t>(clen));
        i += clen;
        continue;
      }
      if (!built) {
        s.assign(w, i, clen);
        if (!is_first && prefix) s.insert(0, *prefix);
        if (is_last && suffix) s += *suffix;
      }
      if (byte_fallback) {
        std::vector<int32_t> bt;
        bool ok = true;
        for (unsigned char b : s) {
          char code[8];
          std::snprintf(code, sizeof code, "<0x%02X>", b);
          auto it = vocab.find(code);
          if (it == vocab.end()) {
            ok = false;
            break;
          }
          bt.push_back(it->second);
        }
        if (ok) {
          for (int32_t t : bt) add(t, 1);
          i += clen;
          continue;
        }
      }
      if (unk_token) {
        if (unk_id < 0) throw std::runtime_error("unk_token '" + *unk_token + "' is not in the vocabulary");
        if (have_unk && fuse_unk) {
          unk_len += static_cast<int32_t>(clen);
        } else {
          if (have_unk) add(unk_c, unk_len);
          have_unk = true;
          unk_c = unk_id;
          unk_len = static_cast<int32_t>(clen);
        }
      }
      i += clen;
    }
    if (have_unk) add(unk_c, unk_len);

    // Word::merge_all: a min-heap on (rank, pos).
    struct QE {
      int32_t rank, pos, new_id;
    };
    auto worse = [](const QE& a, const QE& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
    thread_local std::vector<QE> heap;
    heap.clear();
    for (std::size_t k = 0; k + 1 < syms.size(); ++k)
      if (const MergeVal* m = merge_map.find(pair_key(syms[k].c, syms[k + 1].c)))
        heap.push_back({m->rank, static_cast<int32_t>(k), m->new_id});
    std::make_heap(heap.begin(), heap.end(), worse);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), worse);
      const QE top = heap.back();
      heap.pop_back();
      Sym& cur = syms[static_cast<std::size_t>(top.pos)];
      if (cur.len == 0 || cur.next == -1) continue;
      const auto next_pos = static_cast<std::size_t>(cur.next);
      const Sym right = syms[next_pos];
      const MergeVal* m = merge_map.find(pair_key(cur.c, right.c));
      if (!m || m->new_id != top.new_id) continue;
      cur.c = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      syms[next_pos].len = 0;
      if (right.next > -1 && static_cast<std::size_t>(right.next) < syms.size())
        syms[static_cast<std::size_t>(right.next)].prev = top.pos;
      const Sym current = syms[static_cast<std::size_t>(top.pos)];
      if (current.prev >= 0) {
        const Sym& p = syms[static_cast<std::size_t>(current.prev)];
        if (const MergeVal* pm = merge_map.find(pair_key(p.c, current.c))) {
          heap.push_back({pm->rank, current.prev, pm->new_id});
          std::push_heap(heap.begin(), heap.end(), worse);
        }
      }
      if (current.next >= 0 && static_cast<std::size_t>(current.next) < syms.size()) {
        const Sym& nx = syms[static_cast<std::size_t>(current.next)];
        if (const MergeVal* nm = merge_map.find(pair_key(current.c, nx.c))) {
          heap.push_back({nm->rank, top.pos, nm->new_id});
          std::push_heap(heap.begin(), heap.end(), worse);
        }
      }
    }
    for (const Sym& sy : syms)
      if (sy.len != 0) out.push_back(sy.c);
  }

  void model_tokenize(const std::string& w, std::vector<int32_t>& out) const {
    if (w.empty()) return;
    if (ignore_merges) {
      auto it = vocab.find(w);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    const bool cacheable = w.size() < kCacheMaxWord;
    if (cacheable) {
      std::shared_lock lk(cache_mu);
      auto it = cache.find(w);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const std::size_t start = out.size();
    merge_word(w, out);
    if (cacheable) {
      std::unique_lock lk(cache_mu);
      if (cache.size() < kCacheCapacity) cache.emplace(w, std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
    }
  }

  // ---------------------------------------------------------------- added vocabulary
  std::optional<int64_t> token_to_id(const std::string& s) const {
    auto it = added_map.find(s);
    if (it != added_map.end()) return it->second;
    if (auto m = model_id(s)) return *m;
    return std::nullopt;
  }

  static bool same_props(const BpeAddedToken& a, const BpeAddedToken& b) {
    return a.content == b.content && a.single_word == b.single_word && a.lstrip == b.lstrip && a.rstrip == b.rstrip &&
           a.normalized == b.normalized && a.special == b.special;
  }

  // AddedVocabulary::add_tokens. `fixed_next`: the id for new contents (add_special_tokens).
  int add_tokens(const std::vector<BpeAddedToken>& toks, std::optional<int64_t> fixed_next = std::nullopt) {
    const auto model_size = static_cast<int64_t>(vocab.size());
    int64_t next_id = model_size;
    if (!added.empty()) {
      const int64_t mx = added.rbegin()->first;
      next_id = (mx >= model_size || model_size == 0) ? mx + 1 : model_size;
    }
    if (fixed_next) next_id = *fixed_next;
    int fresh = 0;
    for (BpeAddedToken t : toks) {
      if (t.content.empty()) continue;
      auto it = added_map.find(t.content);
      if (it != added_map.end()) {
        auto r = added.find(it->second);
        if (r != added.end() && same_props(r->second, t)) continue;
      }
      int64_t id;
      if (auto e = token_to_id(t.content)) id = *e;
      else {
        id = next_id++;
        ++fresh;
      }
      if (t.normalized && !norms.empty()) {
        std::string nd = normalize_with(norms, t.content);
        if (nd != t.content) normalized_cache[id] = nd;
      }
      added_map[t.content] = id;
      if (t.special) special_set.insert(t.content);
      t.id = id;
      added[id] = t;
    }
    refresh_tries();
    return fresh;
  }

  void refresh_tries() {
    trie_raw.clear();
    trie_norm.clear();
    for (const auto& [id, t] : added) {
      if (t.normalized) {
        auto c = normalized_cache.find(id);
        trie_norm.insert(c != normalized_cache.end() ? c->second : t.content, id);
      } else {
        trie_raw.insert(t.content, id);
      }
    }
  }

  // AddedVocabulary::find_matches: calls f(id or -1, start, end) over s.
  template <class F>
  void find_added(std::string_view s, const Trie& trie, F&& f) const {
    if (s.empty()) return;
    if (trie.empty()) {
      f(-1, 0, s.size());
      return;
    }
    std::size_t start_offset = 0;
    const std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
      int64_t id = -1;
      const std::size_t len = trie.longest(s, i, id);
      if (len == 0) {
        ++i;
        continue;
      }
      std::size_t start = i, stop = i + len;
      i = stop;
      const BpeAddedToken& tok = added.at(id);
      if (tok.single_word) {
        bool start_space = true, stop_space = true;
        if (start > 0) {
          std::size_t l = 0;
          start_space = !is_word_char(utf8_cp(s, utf8_prev(s, start), l));
        }
        if (stop < n) {
          std::size_t l = 0;
          stop_space = !is_word_char(utf8_cp(s, stop, l));
        }
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) {
        std::size_t ns = start;
        while (ns > 0) {
          const std::size_t p = utf8_prev(s, ns);
          std::size_t l = 0;
          if (!is_white_space(utf8_cp(s, p, l))) break;
          ns = p;
        }
        start = std::max(ns, start_offset);
      }
      if (tok.rstrip) {
        while (stop < n) {
          std::size_t l = 0;
          if (!is_white_space(utf8_cp(s, stop, l))) break;
          stop += l;
        }
      }
      if (start_offset < start) f(-1, start_offset, start);
      f(id, start, stop);
      start_offset = stop;
    }
    if (start_offset != n) f(-1, start_offset, n);
  }

  // ---------------------------------------------------------------- pipeline
  void pre_tokenize_segment(std::string seg, std::vector<std::string>& out) const {
    std::vector<std::string> pieces, next;
    pieces.push_back(std::move(seg));
    for (const PreStep& st : pre) {
      next.clear();
      for (auto& p : pieces) {
        if (p.empty()) continue;
        if (!st.byte_level) {
          split_piece(st, p, next);
          continue;
        }
        if (st.add_prefix_space && p[0] != ' ') p.insert(0, 1, ' ');
        if (st.use_regex) {
          const std::size_t from = next.size();
          split_piece(st, p, next);
          for (std::size_t k = from; k < next.size(); ++k) next[k] = byte_level_map(next[k]);
        } else {
          next.push_back(byte_level_map(p));
        }
      }
      pieces.swap(next);
    }
    for (auto& p : pieces)
      if (!p.empty()) out.push_back(std::move(p));
  }

  // Calls on_token(id) for added tokens and on_piece(piece) for model pieces, in order.
  template <class T, class P>
  void walk(const std::string& text_in, T&& on_token, P&& on_piece) const {
    std::string valid, spaced;
    if (prefix_space) spaced = " " + text_in;
    const std::string& text = prefix_space ? spaced : text_in;
    std::string_view s = text;
    if (!utf8_is_valid(s)) {
      utf8_lossy_append(valid, s, false);
      s = valid;
    }
    std::vector<std::string> pieces;
    find_added(s, trie_raw, [&](int64_t id, std::size_t a, std::size_t b) {
      if (b <= a) return;
      if (id >= 0) {
        on_token(id, s.substr(a, b - a));
        return;
      }
      const std::string seg = normalize_with(norms, std::string(s.substr(a, b - a)));
      find_added(seg, trie_norm, [&](int64_t id2, std::size_t a2, std::size_t b2) {
        if (b2 <= a2) return;
        if (id2 >= 0) {
          on_token(id2, std::string_view(seg).substr(a2, b2 - a2));
          return;
        }
        pieces.clear();
        pre_tokenize_segment(seg.substr(a2, b2 - a2), pieces);
        for (const auto& p : pieces) on_piece(p);
      });
    });
  }

  std::vector<int64_t> encode(const std::string& text, bool add_special) const {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    walk(
        text, [&](int64_t id, std::string_view) { ids.push_back(static_cast<int32_t>(id)); },
        [&](const std::string& p) { model_tokenize(p, ids); });
    std::vector<int64_t> out(ids.begin(), ids.end());
    if (add_special) {
      for (const Template& t : post) {
        std::vector<int64_t> next;
        for (const TemplateItem& it : t) {
          if (it.sequence) next.insert(next.end(), out.begin(), out.end());
          else next.insert(next.end(), it.ids.begin(), it.ids.end());
        }
        out.swap(next);
      }
    }
    return out;
  }

  // The string a token id decodes from (added first, normalized form), or nullptr.
  const std::string* token_string(int64_t id) const {
    auto a = added.find(id);
    if (a != added.end()) {
      auto c = normalized_cache.find(id);
      return c != normalized_cache.end() ? &c->second : &a->second.content;
    }
    if (id >= 0 && static_cast<std::size_t>(id) < vocab_r.size() && vocab_has[static_cast<std::size_t>(id)])
      return &vocab_r[static_cast<std::size_t>(id)];
    return nullptr;
  }

  void append_token_bytes(const std::string& tok, std::string& out) const {
    if (!byte_level_decoder) {
      out += tok;
      return;
    }
    const auto& t = bytes_table();
    const std::size_t start = out.size();
    for (std::size_t i = 0; i < tok.size();) {
      std::size_t l = 0;
      const char32_t cp = utf8_cp(tok, i, l);
      if (cp >= t.cp_to_byte.size() || t.cp_to_byte[cp] < 0) {
        out.resize(start);
        out += tok;
        return;
      }
      out += static_cast<char>(t.cp_to_byte[cp]);
      i += l;
    }
  }

  // ---------------------------------------------------------------- JSON
  void load(const nlohmann::json& j);
  void load_model(const nlohmann::json& m);
  void load_normalizer(const nlohmann::json& n);
  void load_pre(const nlohmann::json& p);
  void load_post(const nlohmann::json& p);
  void load_decoder(const nlohmann::json& d);
  std::string to_json() const;
};

namespace {

std::string type_of(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return "<no type>";
  return j["type"].get<std::string>();
}

bool get_bool(const nlohmann::json& j, const char* key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  return j[key].get<bool>();
}

std::optional<std::string> get_opt_string(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<std::string>();
}

}  // namespace

void BpeTokenizer::Impl::load_model(const nlohmann::json& m) {
  if (!m.is_object()) fail("no \"model\" object");
  const std::string type = type_of(m);
  if (type != "BPE") fail("unsupported tokenizer model type " + type + " (supported: BPE)");
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
    fail("unsupported BPE dropout " + m["dropout"].dump() + " (only null or 0: dropout is random)");
  unk_token = get_opt_string(m, "unk_token");
  prefix = get_opt_string(m, "continuing_subword_prefix");
  suffix = get_opt_string(m, "end_of_word_suffix");
  fuse_unk = get_bool(m, "fuse_unk", false);
  byte_fallback = get_bool(m, "byte_fallback", false);
  ignore_merges = get_bool(m, "ignore_merges", false);
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail("model has no \"vocab\" object");
  if (!m.contains("merges") || !m["merges"].is_array()) fail("model has no \"merges\" array");
  vocab.clear();
  vocab.reserve(m["vocab"].size());
  for (const auto& [k, v] : m["vocab"].items()) {
    if (!v.is_number_integer()) fail("vocab entry '" + k + "' is not an integer id");
    set_vocab_entry(k, v.get<int64_t>());
  }
  merges.clear();
  merges.reserve(m["merges"].size());
  std::size_t line = 0;
  for (const auto& e : m["merges"]) {
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      if (s.rfind("#version", 0) == 0) continue;
      ++line;
      const std::size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail("merge " + std::to_string(line) + " '" + s + "' is not two tokens separated by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      ++line;
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      fail("merge " + std::to_string(line + 1) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  build_model();
}

void BpeTokenizer::Impl::load_normalizer(const nlohmann::json& n) {
  j_normalizer = ojson::parse(n.dump());
  norms.clear();
  std::function<void(const nlohmann::json&)> add = [&](const nlohmann::json& x) {
    if (x.is_null()) return;
    const std::string t = type_of(x);
    if (t == "NFC") norms.push_back(Norm::NFC);
    else if (t == "NFD") norms.push_back(Norm::NFD);
    else if (t == "Sequence" && x.contains("normalizers") && x["normalizers"].is_array())
      for (const auto& y : x["normalizers"]) add(y);
    else
      fail("unsupported normalizer " + t + " (supported: null, NFC, NFD, Sequence of those)");
  };
  add(n);
}

void BpeTokenizer::Impl::load_pre(const nlohmann::json& p) {
  j_pre = ojson::parse(p.dump());
  pre.clear();
  std::function<void(const nlohmann::json&)> add = [&](const nlohmann::json& x) {
    if (x.is_null()) return;
    const std::string t = type_of(x);
    if (t == "ByteLevel") {
      PreStep st;
      st.byte_level = true;
      st.add_prefix_space = get_bool(x, "add_prefix_space", true);
      st.use_regex = get_bool(x, "use_regex", true);
      if (st.use_regex) st.re = gpt2_regex();
      pre.push_back(st);
    } else if (t == "Split") {
      PreStep st;
      if (!x.contains("pattern") || !x["pattern"].is_object()) fail("Split pre_tokenizer without a pattern");
      const auto& pat = x["pattern"];
      try {
        if (pat.contains("Regex")) st.re = std::make_shared<Regex>(pat["Regex"].get<std::string>(), false);
        else if (pat.contains("String")) st.re = std::make_shared<Regex>(pat["String"].get<std::string>(), true);
        else fail("Split pattern is neither Regex nor String");
      } catch (const std::invalid_argument& e) {
        fail(std::string("Split pre_tokenizer: ") + e.what());
      }
      const std::string b = x.contains("behavior") ? x["behavior"].get<std::string>() : "";
      if (b == "Removed") st.behavior = Behavior::Removed;
      else if (b == "Isolated") st.behavior = Behavior::Isolated;
      else if (b == "MergedWithPrevious") st.behavior = Behavior::MergedWithPrevious;
      else if (b == "MergedWithNext") st.behavior = Behavior::MergedWithNext;
      else if (b == "Contiguous") st.behavior = Behavior::Contiguous;
      else fail("Split pre_tokenizer: unknown behavior '" + b + "'");
      st.invert = get_bool(x, "invert", false);
      pre.push_back(st);
    } else if (t == "Sequence" && x.contains("pretokenizers") && x["pretokenizers"].is_array()) {
      for (const auto& y : x["pretokenizers"]) add(y);
    } else {
      fail("unsupported pre_tokenizer " + t + " (supported: null, ByteLevel, Split, Sequence of those)");
    }
  };
  add(p);
}

void BpeTokenizer::Impl::load_post(const nlohmann::json& p) {
  j_post = ojson::parse(p.dump());
  post.clear();
  auto id_of = [&](const std::string& tok, const nlohmann::json& given) -> int64_t {
    if (given.is_number_integer()) return given.get<int64_t>();
    if (auto id = token_to_id(tok)) return *id;
    fail("post_processor: special token '" + tok + "' is not in the vocabulary");
  };
  std::function<void(const nlohmann::json&)> add = [&](const nlohmann::json& x) {
    if (x.is_null()) return;
    const std::string t = type_of(x);
    if (t == "ByteLevel") return;
    if (t == "Sequence" && x.contains("processors") && x["processors"].is_array()) {
      for (const auto& y : x["processors"]) add(y);
      return;
    }
    if (t == "BertProcessing" || t == "RobertaProcessing") {
      const auto& cls = x.at("cls");
      const auto& sep = x.at("sep");
      Template tp;
      tp.push_back({false, {id_of(cls.at(0).get<std::string>(), cls.at(1))}});
      tp.push_back({true, {}});
      tp.push_back({false, {id_of(sep.at(0).get<std::string>(), sep.at(1))}});
      post.push_back(tp);
      return;
    }
    if (t == "TemplateProcessing") {
      std::map<std::string, std::vector<int64_t>> specials;
      if (x.contains("special_tokens") && x["special_tokens"].is_object())
        for (const auto& [k, v] : x["special_tokens"].items()) specials[k] = v.at("ids").get<std::vector<int64_t>>();
      Template tp;
      const auto& single = x.at("single");
      auto special_piece = [&](const std::string& name) {
        auto it = specials.find(name);
        if (it == specials.end()) fail("TemplateProcessing: missing special token '" + name + "'");
        tp.push_back({false, it->second});
      };
      if (single.is_array()) {
        for (const auto& piece : single) {
          if (piece.contains("Sequence")) tp.push_back({true, {}});
          else if (piece.contains("SpecialToken")) special_piece(piece["SpecialToken"].at("id").get<std::string>());
          else fail("TemplateProcessing: unknown template piece " + piece.dump());
        }
      } else if (single.is_string()) {  // "<s> $A </s>" (pieces may carry ":type_id")
        const std::string s = single.get<std::string>();
        std::size_t i = 0;
        while (i < s.size()) {
          while (i < s.size() && s[i] == ' ') ++i;
          std::size_t j = s.find(' ', i);
          if (j == std::string::npos) j = s.size();
          if (j > i) {
            std::string w = s.substr(i, j - i);
            const std::size_t colon = w.rfind(':');
            if (colon != std::string::npos && colon > 0 && colon + 1 < w.size() &&
                std::all_of(w.begin() + static_cast<std::ptrdiff_t>(colon) + 1, w.end(), ::isdigit))
              w.resize(colon);
            if (w[0] == '$') tp.push_back({true, {}});
            else special_piece(w);
          }
          i = j;
        }
      } else {
        fail("TemplateProcessing: \"single\" is neither a list nor a string");
      }
      post.push_back(tp);
      return;
    }
    fail("unsupported post_processor " + t +
         " (supported: null, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)");
  };
  add(p);
}

void BpeTokenizer::Impl::load_decoder(const nlohmann::json& d) {
  j_decoder = ojson::parse(d.dump());
  byte_level_decoder = false;
  if (d.is_null()) return;
  const std::string t = type_of(d);
  if (t == "ByteLevel") {
    byte_level_decoder = true;
    return;
  }
  if (t == "Sequence" && d.contains("decoders") && d["decoders"].is_array() && d["decoders"].size() == 1 &&
      type_of(d["decoders"][0]) == "ByteLevel") {
    byte_level_decoder = true;
    return;
  }
  fail("unsupported decoder " + t + " (supported: null, ByteLevel)");
}

void BpeTokenizer::Impl::load(const nlohmann::json& j) {
  if (!j.is_object()) fail("not a tokenizer.json: the top level is not a JSON object");
  if (!j.contains("model")) fail("not a tokenizer.json: no \"model\"");
  auto sec = [&](const char* k) -> nlohmann::json { return j.contains(k) ? j[k] : nlohmann::json(); };
  j_truncation = ojson::parse(sec("truncation").dump());
  j_padding = ojson::parse(sec("padding").dump());
  load_model(j["model"]);
  load_normalizer(sec("normalizer"));
  load_pre(sec("pre_tokenizer"));
  load_decoder(sec("decoder"));
  // added tokens (after the normalizer: normalized ones are matched in their normalized form)
  std::vector<BpeAddedToken> toks;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail("\"added_tokens\" is not a list");
    for (const auto& a : j["added_tokens"]) {
      BpeAddedToken t;
      t.id = a.contains("id") && a["id"].is_number_integer() ? a["id"].get<int64_t>() : -1;
      t.content = a.at("content").get<std::string>();
      t.single_word = get_bool(a, "single_word", false);
      t.lstrip = get_bool(a, "lstrip", false);
      t.rstrip = get_bool(a, "rstrip", false);
      t.special = get_bool(a, "special", false);
      t.normalized = get_bool(a, "normalized", !t.special);
      toks.push_back(t);
    }
  }
  add_tokens(toks);
  load_post(sec("post_processor"));  // its special tokens may be added tokens
}

std::string BpeTokenizer::Impl::to_json() const {
  // The small sections through nlohmann; the model by hand (ordered_json inserts are linear).
  ojson j;
  j["version"] = "1.0";
  j["truncation"] = j_truncation;
  j["padding"] = j_padding;
  ojson at = ojson::array();
  for (const auto& [id, t] : added) {
    ojson a;
    a["id"] = id;
    a["content"] = t.content;
    a["single_word"] = t.single_word;
    a["lstrip"] = t.lstrip;
    a["rstrip"] = t.rstrip;
    a["normalized"] = t.normalized;
    a["special"] = t.special;
    at.push_back(a);
  }
  j["added_tokens"] = at;
  j["normalizer"] = j_normalizer;
  j["pre_tokenizer"] = j_pre;
  j["post_processor"] = j_post;
  j["decoder"] = j_decoder;

  // The model vocab, plus the added tokens when tokenizers' numbering on load
  // (AddedVocabulary::add_tokens in id order) would give them other ids.
  std::vector<std::pair<int64_t, std::string>> entries;
  entries.reserve(vocab.size() + added.size());
  for (const auto& [k, v] : vocab) entries.emplace_back(v, k);
  {
    const auto model_size = static_cast<int64_t>(vocab.size());
    int64_t next = model_size;
    bool same = true;
    for (const auto& [id, t] : added) {
      auto m = vocab.find(t.content);
      const int64_t got = m != vocab.end() ? m->second : next++;
      if (got != id) same = false;
    }
    if (!same)
      for (const auto& [id, t] : added)
        if (!vocab.count(t.content)) entries.emplace_back(id, t.content);
  }
  std::sort(entries.begin(), entries.end());
  auto q = [](const std::string& s) { return ojson(s).dump(); };
  auto opt = [&](const std::optional<std::string>& s) { return s ? q(*s) : std::string("null"); };
  std::string m;
  m.reserve(entries.size() * 24 + merges.size() * 32);
  m += "{\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": " + opt(unk_token) +
       ",\n    \"continuing_subword_prefix\": " + opt(prefix) + ",\n    \"end_of_word_suffix\": " + opt(suffix) +
       ",\n    \"fuse_unk\": " + (fuse_unk ? "true" : "false") +
       ",\n    \"byte_fallback\": " + (byte_fallback ? "true" : "false") +
       ",\n    \"ignore_merges\": " + (ignore_merges ? "true" : "false") + ",\n    \"vocab\": {";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    m += i ? ",\n      " : "\n      ";
    m += q(entries[i].second);
    m += ": ";
    m += std::to_string(entries[i].first);
  }
  m += entries.empty() ? "}" : "\n    }";
  m += ",\n    \"merges\": [";
  for (std::size_t i = 0; i < merges.size(); ++i) {
    m += i ? ",\n      [" : "\n      [";
    m += q(merges[i].first);
    m += ", ";
    m += q(merges[i].second);
    m += "]";
  }
  m += merges.empty() ? "]" : "\n    ]";
  m += "\n  }";
  std::string out = j.dump(2);  // ends with "\n}"
  out.resize(out.size() - 2);
  out += ",\n  \"model\": " + m + "\n}\n";
  return out;
}

// ------------------------------------------------------------------ BpeTokenizer

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer BpeTokenizer::from_json(const std::string& json_text, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(source, "malformed JSON: {}", e.what());
  }
  try {
    impl->load(j);
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(source, "malformed tokenizer.json: {}", e.what());
  }
  return BpeTokenizer(std::move(impl));
}

BpeTokenizer BpeTokenizer::from_file(const std::string& path) { return from_json(io::read_file(path), path); }

const char* bpe_mode_name(BpeMode m) { return m == BpeMode::slow ? "slow" : "fast"; }

BpeMode parse_bpe_mode(const std::string& s) {
  if (s == "fast") return BpeMode::fast;
  if (s == "slow") return BpeMode::slow;
  throw std::invalid_argument("tokenizer mode must be fast or slow, got '" + s + "'");
}

namespace {

bool mentions_byte_level(const nlohmann::json& x) {
  if (x.is_object()) {
    if (x.contains("type") && x["type"] == "ByteLevel") return true;
    for (const auto& [k, v] : x.items())
      if (mentions_byte_level(v)) return true;
  } else if (x.is_array()) {
    for (const auto& v : x)
      if (mentions_byte_level(v)) return true;
  }
  return false;
}

// The slow classes' pipeline over a byte-level tokenizer.json (see BpeMode::slow).
BpeTokenizer slow_from_json(nlohmann::json j, const std::string& source, bool add_prefix_space) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    cli::fail_input(source, "not a tokenizer.json: no \"model\"");
  if (!(j.contains("pre_tokenizer") && mentions_byte_level(j["pre_tokenizer"])) &&
      !(j.contains("decoder") && mentions_byte_level(j["decoder"])))
    throw cli::Error(cli::Exit::incompatible, source,
                     "tokenizer mode slow needs a byte-level BPE tokenizer (GPT-2 family: a ByteLevel "
                     "pre-tokenizer or decoder)",
                     "use --tokenizer-mode fast");
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"]["ignore_merges"] = false;
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (auto& a : j["added_tokens"])
      if (a.is_object()) a["normalized"] = false;
  auto t = BpeTokenizer::from_json(j.dump(), source);
  t.impl_for_mode().mode = BpeMode::slow;
  t.impl_for_mode().prefix_space = add_prefix_space;
  return t;
}

}  // namespace

BpeTokenizer BpeTokenizer::from_file(const std::string& path, BpeMode mode, bool add_prefix_space) {
  if (mode == BpeMode::fast) {
    if (add_prefix_space) throw std::invalid_argument("add_prefix_space is a slow-mode option");
    return from_file(path);
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(path, "malformed JSON: {}", e.what());
  }
  return slow_from_json(std::move(j), path, add_prefix_space);
}

BpeTokenizer BpeTokenizer::from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                             const std::vector<std::string>& specials, bool add_prefix_space) {
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(io::read_file(vocab_json));
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(vocab_json, "malformed JSON: {}", e.what());
  }
  if (!vocab.is_object()) cli::fail_input(vocab_json, "vocab.json is not a JSON object of token: id");
  nlohmann::json merges = nlohmann::json::array();
  {
    std::istringstream in(io::read_file(merges_txt));
    std::size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
      if (line.empty()) continue;
      const auto sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
        cli::fail_input(merges_txt, "line {}: a merge is two tokens separated by one space", line_no);
      merges.push_back(nlohmann::json::array({line.substr(0, sp), line.substr(sp + 1)}));
    }
  }
  nlohmann::json added = nlohmann::json::array();
  for (const auto& c : specials) {
    if (!vocab.contains(c) || !vocab[c].is_number_integer())
      cli::fail_input(vocab_json, "special token '{}' is not in the vocabulary", c);
    added.push_back({{"id", vocab[c]}, {"content", c}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  nlohmann::json j = {{"version", "1.0"},
                      {"added_tokens", added},
                      {"pre_tokenizer", {{"type", "ByteLevel"}}},
                      {"model",
                       {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", nullptr},
                        {"fuse_unk", false},
                        {"byte_fallback", false},
                        {"vocab", std::move(vocab)},
                        {"merges", std::move(merges)}}}};
  return slow_from_json(std::move(j), vocab_json, add_prefix_space);
}

BpeMode BpeTokenizer::mode() const { return impl_->mode; }

BpeTokenizer BpeTokenizer::with_mode(BpeMode mode, bool add_prefix_space) const {
  if (mode == BpeMode::fast) {
    if (add_prefix_space) throw std::invalid_argument("add_prefix_space is a slow-mode option");
    return from_json(to_json(), impl_->source);
  }
  return slow_from_json(nlohmann::json::parse(to_json()), impl_->source, add_prefix_space);
}

namespace {

std::string base64_decode(std::string_view s, bool& ok) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = i;
    return t;
  }();
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  ok = true;
  for (char c : s) {
    if (c == '=') break;
    const int v = table[static_cast<unsigned char>(c)];
    if (v < 0) {
      ok = false;
      return out;
    }
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

ojson byte_level_json(bool add_prefix_space, bool use_regex) {
  ojson j;
  j["type"] = "ByteLevel";
  j["add_prefix_space"] = add_prefix_space;
  j["trim_offsets"] = true;
  j["use_regex"] = use_regex;
  return j;
}

// pre_tokenizer Sequence[Split(Regex(pattern), Isolated), ByteLevel(false, use_regex=false)]
ojson split_byte_level_json(const std::string& pattern) {
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

}  // namespace

BpeTokenizer BpeTokenizer::from_tiktoken(const std::string& ranks_path, const std::string& meta_json_path) {
  auto impl = std::make_unique<Impl>();
  impl->source = ranks_path;
  const std::string data = io::read_file(ranks_path);
  // rank -> bytes
  std::vector<std::string> by_rank;
  std::unordered_map<std::string_view, int32_t> rank_of;
  {
    std::size_t line = 0;
    std::vector<std::pair<int64_t, std::string>> rows;
    for (std::size_t i = 0; i < data.size();) {
      std::size_t e = data.find('\n', i);
      if (e == std::string::npos) e = data.size();
      std::string_view l(data.data() + i, e - i);
      i = e + 1;
      ++line;
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      if (l.empty()) continue;
      const std::size_t sp = l.find(' ');
      bool ok = sp != std::string_view::npos && sp > 0;
      int64_t r = -1;
      std::string tok;
      if (ok) {
        tok = base64_decode(l.substr(0, sp), ok);
        const std::string num(l.substr(sp + 1));
        ok = ok && !num.empty() && std::all_of(num.begin(), num.end(), ::isdigit) && num.size() < 10;
        if (ok) r = std::stoll(num);
      }
      if (!ok) cli::fail_input(ranks_path, "line {}: expected 'base64token rank'", line);
      rows.emplace_back(r, std::move(tok));
    }
    if (rows.empty()) cli::fail_input(ranks_path, "no ranks");
    int64_t max_rank = 0;
    for (const auto& [r, t] : rows) max_rank = std::max(max_rank, r);
    // The same density rule as tokenizer.json's vocab ids: a few sparse ranks must not size a
    // table of millions of entries.
    if (max_rank > 4 * static_cast<int64_t>(rows.size()) + 65536)
      cli::fail_input(ranks_path, "ranks are too sparse: max rank {} for {} tokens", max_rank, rows.size());
    by_rank.assign(static_cast<std::size_t>(max_rank + 1), std::string());
    std::vector<uint8_t> has(by_rank.size(), 0);
    for (auto& [r, t] : rows) {
      if (has[static_cast<std::size_t>(r)]) cli::fail_input(ranks_path, "rank {} appears twice", r);
      has[static_cast<std::size_t>(r)] = 1;
      by_rank[static_cast<std::size_t>(r)] = std::move(t);
    }
    rank_of.reserve(by_rank.size() * 2);
    for (std::size_t r = 0; r < by_rank.size(); ++r)
      if (has[r]) {
        if (!rank_of.emplace(by_rank[r], static_cast<int32_t>(r)).second)
          cli::fail_input(ranks_path, "token of rank {} appears twice", r);
        impl->set_vocab_entry(byte_level_map(by_rank[r]), static_cast<int64_t>(r));
      }
  }
  // merges: the last two parts of a rank-limited BPE over each token's own bytes
  std::vector<std::pair<std::size_t, std::size_t>> parts;
  for (std::size_t r = 0; r < by_rank.size(); ++r) {
    const std::string& t = by_rank[r];
    if (t.size() < 2 || !rank_of.count(t)) continue;
    parts.clear();
    for (std::size_t k = 0; k < t.size(); ++k) parts.emplace_back(k, k + 1);
    while (parts.size() > 2) {
      int32_t best = INT32_MAX;
      std::size_t bi = 0;
      for (std::size_t k = 0; k + 1 < parts.size(); ++k) {
        auto it = rank_of.find(std::string_view(t.data() + parts[k].first, parts[k + 1].second - parts[k].first));
        if (it != rank_of.end() && it->second < static_cast<int32_t>(r) && it->second < best) {
          best = it->second;
          bi = k;
        }
      }
      if (best == INT32_MAX) break;
      parts[bi].second = parts[bi + 1].second;
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(bi) + 1);
    }
    if (parts.size() != 2) continue;  // reachable only as a whole piece (ignore_merges)
    const std::string a = t.substr(0, parts[0].second), b = t.substr(parts[1].first);
    if (!rank_of.count(a) || !rank_of.count(b)) continue;
    impl->merges.emplace_back(byte_level_map(a), byte_level_map(b));
  }
  impl->ignore_merges = true;

  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(io::read_file(meta_json_path));
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(meta_json_path, "malformed JSON: {}", e.what());
  }
  std::vector<BpeAddedToken> specials;
  std::string pat;
  try {
    if (!meta.is_object() || !meta.contains("pat_str")) cli::fail_input(meta_json_path, "no \"pat_str\"");
    pat = meta["pat_str"].get<std::string>();
    if (meta.contains("special_tokens") && meta["special_tokens"].is_object())
      for (const auto& [k, v] : meta["special_tokens"].items()) {
        BpeAddedToken t;
        t.content = k;
        t.id = v.get<int64_t>();
        t.special = true;
        specials.push_back(t);
      }
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(meta_json_path, "malformed tiktoken metadata: {}", e.what());
  }
  std::sort(specials.begin(), specials.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& t : specials) {
    if (impl->vocab.count(t.content)) cli::fail_input(meta_json_path, "special token '{}' is also a rank", t.content);
    if (t.id >= 0 && static_cast<std::size_t>(t.id) < by_rank.size() && rank_of.count(by_rank[static_cast<std::size_t>(t.id)]))
      cli::fail_input(meta_json_path, "special token '{}' has id {}, a rank of the BPE", t.content, t.id);
    impl->set_vocab_entry(t.content, t.id);  // keeps its id through tokenizers' loader
  }
  impl->build_model();
  impl->source = meta_json_path;
  impl->load_pre(nlohmann::json::parse(split_byte_level_json(pat).dump()));
  impl->load_decoder(nlohmann::json::parse(byte_level_json(true, true).dump()));
  impl->load_normalizer(nlohmann::json());
  impl->load_post(nlohmann::json());
  impl->add_tokens(specials);
  impl->source = ranks_path;
  return BpeTokenizer(std::move(impl));
}

// ------------------------------------------------------------------ training

BpeTokenizer BpeTokenizer::train(const std::vector<std::string>& texts, int vocab_size, const std::string& pattern,
                                 const std::vector<std::string>& special_tokens) {
  if (vocab_size < 1) throw std::invalid_argument("BPE training: vocab_size must be positive");
  auto impl = std::make_unique<Impl>();
  impl->source = "<trained>";
  try {
    if (pattern.empty()) impl->load_pre(nlohmann::json::parse(byte_level_json(false, true).dump()));
    else impl->load_pre(nlohmann::json::parse(split_byte_level_json(pattern).dump()));
  } catch (const cli::Error& e) {
    throw std::invalid_argument(std::string("BPE training: ") + e.what());
  }
  impl->load_decoder(nlohmann::json::parse(byte_level_json(true, true).dump()));
  impl->load_normalizer(nlohmann::json());
  impl->load_post(nlohmann::json());

  // vocab: specials, then the 256 byte symbols
  std::vector<BpeAddedToken> specials;
  std::vector<std::string> id_to_tok;
  for (const auto& s : special_tokens) {
    if (s.empty() || impl->vocab.count(s)) continue;
    impl->vocab[s] = static_cast<int32_t>(id_to_tok.size());
    id_to_tok.push_back(s);
    BpeAddedToken t;
    t.content = s;
    t.special = true;
    specials.push_back(t);
  }
  const auto& bt = bytes_table();
  std::array<int32_t, 324> cp_id{};
  cp_id.fill(-1);
  for (int b = 0; b < 256; ++b) {
    const std::string& u = bt.byte_to_utf8[static_cast<std::size_t>(b)];
    auto it = impl->vocab.find(u);
    int32_t id;
    if (it != impl->vocab.end()) id = it->second;  // a special token spelled as one byte symbol
    else {
      id = static_cast<int32_t>(id_to_tok.size());
      impl->vocab[u] = id;
      id_to_tok.push_back(u);
    }
    cp_id[bt.byte_to_cp[static_cast<std::size_t>(b)]] = id;
  }
  impl->build_model();
  impl->add_tokens(specials);

  // word counts over the pre-tokenised texts (special tokens split out)
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& text : texts)
    impl->walk(
        text, [](int64_t, std::string_view) {}, [&](const std::string& p) { ++counts[p]; });
  std::vector<std::pair<std::string, int64_t>> wc(counts.begin(), counts.end());
  std::sort(wc.begin(), wc.end());
  counts.clear();
  std::vector<std::vector<int32_t>> words(wc.size());
  std::vector<int64_t> freq(wc.size());
  for (std::size_t w = 0; w < wc.size(); ++w) {
    freq[w] = wc[w].second;
    const std::string& s = wc[w].first;
    for (std::size_t i = 0; i < s.size();) {
      std::size_t l = 0;
      const char32_t cp = utf8_cp(s, i, l);
      words[w].push_back(cp < cp_id.size() ? cp_id[cp] : 0);
      i += l;
    }
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (std::size_t w = 0; w < words.size(); ++w)
    for (std::size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      auto& v = where[k];
      if (v.empty() || v.back() != static_cast<int32_t>(w)) v.push_back(static_cast<int32_t>(w));
    }
  struct Cand {
    int64_t count;
    uint64_t pair;
  };
  auto lower = [](const Cand& a, const Cand& b) { return a.count != b.count ? a.count < b.count : a.pair > b.pair; };
  std::vector<Cand> heap;
  for (const auto& [k, c] : pair_count)
    if (c > 0) heap.push_back({c, k});
  std::make_heap(heap.begin(), heap.end(), lower);
  auto push = [&](int64_t c, uint64_t k) {
    heap.push_back({c, k});
    std::push_heap(heap.begin(), heap.end(), lower);
  };

  std::vector<int32_t> merged;
  while (static_cast<int64_t>(impl->vocab.size()) < vocab_size && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    const Cand top = heap.back();
    heap.pop_back();
    auto pc = pair_count.find(top.pair);
    const int64_t actual = pc == pair_count.end() ? 0 : pc->second;
    if (actual != top.count) {
      if (actual > 0) push(actual, top.pair);
      continue;
    }
    if (actual <= 0) break;
    const auto a = static_cast<int32_t>(top.pair >> 32), b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    const std::string tok = id_to_tok[static_cast<std::size_t>(a)] + id_to_tok[static_cast<std::size_t>(b)];
    int32_t c;
    auto vt = impl->vocab.find(tok);
    if (vt != impl->vocab.end()) c = vt->second;
    else {
      c = static_cast<int32_t>(id_to_tok.size());
      impl->vocab[tok] = c;
      id_to_tok.push_back(tok);
    }
    impl->merges.emplace_back(id_to_tok[static_cast<std::size_t>(a)], id_to_tok[static_cast<std::size_t>(b)]);

    std::vector<int32_t> ws = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    std::unordered_map<uint64_t, int64_t> delta;
    for (int32_t wi : ws) {
      auto& w = words[static_cast<std::size_t>(wi)];
      const int64_t f = freq[static_cast<std::size_t>(wi)];
      bool has = false;
      for (std::size_t i = 0; i + 1 < w.size() && !has; ++i) has = w[i] == a && w[i + 1] == b;
      if (!has) continue;
      for (std::size_t i = 0; i + 1 < w.size(); ++i) delta[pair_key(w[i], w[i + 1])] -= f;
      merged.clear();
      for (std::size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          merged.push_back(c);
          ++i;
        } else {
          merged.push_back(w[i]);
        }
      }
      w.swap(merged);
      for (std::size_t i = 0; i + 1 < w.size(); ++i) {
        const uint64_t k = pair_key(w[i], w[i + 1]);
        delta[k] += f;
        if (w[i] == c || w[i + 1] == c) {
          auto& v = where[k];
          if (v.empty() || v.back() != wi) v.push_back(wi);
        }
      }
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      const int64_t now = (pair_count[k] += d);
      if (now <= 0) pair_count.erase(k);
      else if (d > 0) push(now, k);
    }
  }
  impl->build_model();
  return BpeTokenizer(std::move(impl));
}

// ------------------------------------------------------------------ API

std::vector<int64_t> BpeTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}

std::vector<std::vector<int64_t>> BpeTokenizer::encode_batch(const std::vector<std::string>& texts,
                                                             bool add_special_tokens, int threads) const {
  std::vector<std::vector<int64_t>> out(texts.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads), texts.size()));
  if (threads <= 1) {
    for (std::size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr err;
  std::mutex err_mu;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (std::size_t i; (i = next++) < texts.size();) {
        try {
          out[i] = encode(texts[i], add_special_tokens);
        } catch (...) {
          std::lock_guard lk(err_mu);
          if (!err) err = std::current_exception();
        }
      }
    });
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
  return out;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& text) const {
  std::vector<std::string> out;
  impl_->walk(
      text, [&](int64_t, std::string_view content) { out.emplace_back(content); },
      [&](const std::string& p) { out.push_back(p); });
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string out;
  if (impl_->byte_level_decoder) {
    std::string bytes;
    for (int64_t id : ids) {
      const std::string* t = impl_->token_string(id);
      if (!t || (skip_special_tokens && impl_->special_set.count(*t))) continue;
      impl_->append_token_bytes(*t, bytes);
    }
    utf8_lossy_append(out, bytes, false);
    return out;
  }
  bool first = true;
  for (int64_t id : ids) {
    const std::string* t = impl_->token_string(id);
    if (!t || (skip_special_tokens && impl_->special_set.count(*t))) continue;
    if (!first) out += ' ';
    out += *t;
    first = false;
  }
  return out;
}

std::string BpeTokenizer::token_bytes(int64_t id) const {
  std::string out;
  if (const std::string* t = impl_->token_string(id)) impl_->append_token_bytes(*t, out);
  return out;
}

std::optional<int64_t> BpeTokenizer::token_to_id(const std::string& token) const { return impl_->token_to_id(token); }

std::optional<std::string> BpeTokenizer::id_to_token(int64_t id) const {
  if (const std::string* t = impl_->token_string(id)) return *t;
  return std::nullopt;
}

int64_t BpeTokenizer::vocab_size() const {
  int64_t mx = static_cast<int64_t>(impl_->vocab_r.size()) - 1;
  if (!impl_->added.empty()) mx = std::max(mx, impl_->added.rbegin()->first);
  return mx + 1;
}

bool BpeTokenizer::is_special(int64_t id) const {
  auto a = impl_->added.find(id);
  return a != impl_->added.end() && impl_->special_set.count(a->second.content) > 0;
}

std::vector<BpeAddedToken> BpeTokenizer::added_tokens() const {
  std::vector<BpeAddedToken> out;
  for (const auto& [id, t] : impl_->added) out.push_back(t);
  return out;
}

int BpeTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<BpeAddedToken> toks;
  for (const auto& s : tokens) {
    BpeAddedToken t;
    t.content = s;
    t.special = true;
    toks.push_back(t);
  }
  return impl_->add_tokens(toks, vocab_size());
}

std::string BpeTokenizer::to_json() const { return impl_->to_json(); }

void BpeTokenizer::save(const std::string& path) const {
  io::AtomicFile f(path, true);
  f.stream() << impl_->to_json();
  f.commit();
}

// ------------------------------------------------------------------ streaming decode

BpeDecodeStream::BpeDecodeStream(const BpeTokenizer& tokenizer, bool skip_special_tokens)
    : tok_(&tokenizer), skip_(skip_special_tokens) {}

std::string BpeDecodeStream::step(int64_t id) {
  const auto& impl = *tok_->impl_;
  const std::string* t = impl.token_string(id);
  if (!t || (skip_ && impl.special_set.count(*t))) return {};
  if (!impl.byte_level_decoder && !first_) pending_ += ' ';
  first_ = false;
  impl.append_token_bytes(*t, pending_);
  std::string out;
  const std::size_t held = utf8_lossy_append(out, pending_, true);
  pending_.erase(0, held);
  return out;
}

std::string BpeDecodeStream::flush() {
  std::string out;
  utf8_lossy_append(out, pending_, false);
  pending_.clear();
  first_ = true;
  return out;
}

}  // namespace hse::text
