#include "hse/text/wordpiece.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "hse/cli/cli.h"
#include "hse/text/unicode_tables.h"
#include "hse/text/utf8.h"

namespace hse::text {

namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;
constexpr std::size_t kMaxInputCharsPerWord = 100;

bool is_whitespace(char32_t c) {  // transformers' _is_whitespace
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || unicode::category(c) == unicode::Category::Zs;
}

bool is_control(char32_t c) {  // transformers' _is_control: category C* except \t \n \r
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return unicode::is_other(unicode::category(c));
}

bool is_punctuation(char32_t c) {  // transformers' _is_punctuation
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return unicode::is_punctuation(unicode::category(c));
}

bool is_chinese_char(char32_t cp) {  // BasicTokenizer._is_chinese_char
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Python's str.split() (no argument) over code points.
std::vector<std::u32string> py_split(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && py_isspace(s[i])) ++i;
    if (i == s.size()) break;
    std::size_t j = i;
    while (j < s.size() && !py_isspace(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Python's str.replace(old, new) on UTF-8 (patterns are ASCII, so byte matching is exact).
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  for (;;) {
    const std::size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// Python's str.strip() on UTF-8.
std::string py_strip(const std::string& s) {
  const std::u32string u = utf8_decode(s);
  std::size_t b = 0, e = u.size();
  while (b < e && py_isspace(u[b])) ++b;
  while (e > b && py_isspace(u[e - 1])) --e;
  if (b == 0 && e == u.size()) return s;
  return utf8_encode(u.substr(b, e - b));
}

void canonical_order(std::u32string& s) {
  // Stable sort of every run of non-starters by combining class.
  std::size_t i = 0;
  while (i < s.size()) {
    if (unicode::combining_class(s[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && unicode::combining_class(s[j]) != 0) ++j;
    if (j - i > 1)
      std::stable_sort(s.begin() + i, s.begin() + j, [](char32_t a, char32_t b) {
        return unicode::combining_class(a) < unicode::combining_class(b);
      });
    i = j;
  }
}

}  // namespace

// ------------------------------------------------------------------ Unicode helpers

std::u32string nfd(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size() + s.size() / 4);
  for (char32_t c : s) {
    if (c >= kSBase && c < kSBase + kSCount) {
      const int si = static_cast<int>(c - kSBase);
      out.push_back(kLBase + si / kNCount);
      out.push_back(kVBase + (si % kNCount) / kTCount);
      if (si % kTCount != 0) out.push_back(kTBase + si % kTCount);
      continue;
    }
    const char32_t* d = nullptr;
    const std::size_t n = unicode::decomposition(c, &d);
    if (n == 0) out.push_back(c);
    else out.append(d, n);
  }
  canonical_order(out);
  return out;
}

std::u32string nfc(const std::u32string& s) {
  const std::u32string d = nfd(s);
  std::u32string out;
  out.reserve(d.size());
  std::ptrdiff_t starter = -1;  // index in `out` of the last starter
  int last_cc = 0;              // class of the last code point appended after it
  for (char32_t c : d) {
    const int cc = unicode::combining_class(c);
    if (starter >= 0) {
      const char32_t st = out[static_cast<std::size_t>(starter)];
      const bool adjacent = static_cast<std::ptrdiff_t>(out.size()) - 1 == starter;
      const bool blocked = !adjacent && (last_cc == 0 || last_cc >= cc);
      if (!blocked) {
        char32_t comp = 0;
        if (st >= kLBase && st < kLBase + kLCount && c >= kVBase && c < kVBase + kVCount) {
          comp = kSBase + ((st - kLBase) * kVCount + (c - kVBase)) * kTCount;
        } else if (st >= kSBase && st < kSBase + kSCount && (st - kSBase) % kTCount == 0 && c > kTBase &&
                   c < kTBase + kTCount) {
          comp = st + (c - kTBase);
        } else {
          comp = unicode::compose(st, c);
        }
        if (comp != 0) {
          out[static_cast<std::size_t>(starter)] = comp;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    last_cc = cc;
    out.push_back(c);
  }
  return out;
}

std::u32string py_lower_u32(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char32_t c = s[i];
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE
      out.push_back(0x69);
      out.push_back(0x307);
    } else if (c == 0x3A3) {
      // CPython's handle_capital_sigma(): final when \p{cased}\p{case-ignorable}* precedes
      // and no \p{case-ignorable}*\p{cased} follows.
      std::size_t j = i;
      char32_t prev = 0;
      bool found = false;
      while (j > 0) {
        prev = s[--j];
        if (!unicode::is_case_ignorable(prev)) {
          found = true;
          break;
        }
      }
      bool final_sigma = found && unicode::is_cased(prev);
      if (final_sigma && i + 1 < n) {
        std::size_t k = i + 1;
        for (; k < n; ++k)
          if (!unicode::is_case_ignorable(s[k])) break;
        final_sigma = k == n || !unicode::is_cased(s[k]);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(unicode::lower_simple(c));
    }
  }
  return out;
}

// ------------------------------------------------------------------ vocabulary

WordPieceTokenizer WordPieceTokenizer::from_file(const std::string& vocab_path) {
  std::ifstream in(vocab_path, std::ios::binary);
  if (!in) cli::fail_input(vocab_path, "cannot open the vocabulary file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) cli::fail_input(vocab_path, "cannot read the vocabulary file");
  const std::string data = ss.str();
  if (data.empty()) cli::fail_input(vocab_path, "empty vocabulary file");
  const std::u32string u = utf8_decode(data);
  for (char32_t c : u)
    if (c >= 0xDC80 && c <= 0xDCFF) cli::fail_input(vocab_path, "the vocabulary is not valid UTF-8");
  // Python's readlines() in text mode: universal newlines (\n, \r\n, \r), each line's "\n" removed.
  std::vector<std::string> lines;
  std::string cur;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const char ch = data[i];
    if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) lines.push_back(std::move(cur));
  return WordPieceTokenizer(std::move(lines), vocab_path);
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> tokens, const std::string& source)
    : tokens_(std::move(tokens)) {
  if (tokens_.empty()) cli::fail_input(source, "empty vocabulary");
  vocab_.reserve(tokens_.size() * 2);
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    vocab_[tokens_[i]] = static_cast<int64_t>(i);
    max_token_chars_ = std::max(max_token_chars_, utf8_decode(tokens_[i]).size());
  }
  auto need = [&](const char* name) {
    auto it = vocab_.find(name);
    if (it == vocab_.end()) cli::fail_input(source, "the vocabulary has no {} token", name);
    return it->second;
  };
  unk_id_ = need("[UNK]");
  cls_id_ = need("[CLS]");
  sep_id_ = need("[SEP]");
  pad_id_ = need("[PAD]");
  if (auto it = vocab_.find("[MASK]"); it != vocab_.end()) mask_id_ = it->second;
  for (const char* s : {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"})
    if (vocab_.count(s)) {
      specials_.emplace_back(s);
      specials_u32_.push_back(utf8_decode(s));
    }
}

int64_t WordPieceTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? unk_id_ : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int64_t id) const {
  static const std::string unk = "[UNK]";
  if (id < 0 || id >= static_cast<int64_t>(tokens_.size())) return unk;
  const std::string& t = tokens_[static_cast<std::size_t>(id)];
  // ids_to_tokens is built from the token -> id dict: a token repeated later shadows this id.
  auto it = vocab_.find(t);
  return it != vocab_.end() && it->second == id ? t : unk;
}

bool WordPieceTokenizer::is_special(const std::u32string& word) const {
  return std::find(specials_u32_.begin(), specials_u32_.end(), word) != specials_u32_.end();
}

// ------------------------------------------------------------------ tokenizing

void WordPieceTokenizer::basic_tokenize_into(const std::u32string& text, std::vector<std::string>& out) const {
  // _clean_text and _tokenize_chinese_chars
  std::u32string t;
  t.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      t.push_back(' ');
    } else if (is_chinese_char(c)) {
      t.push_back(' ');
      t.push_back(c);
      t.push_back(' ');
    } else {
      t.push_back(c);
    }
  }
  const std::u32string normalized = nfc(t);
  std::vector<std::u32string> split_tokens;
  for (const std::u32string& word : py_split(normalized)) {
    if (is_special(word)) {  // never_split: kept whole, not lowercased
      split_tokens.push_back(word);
      continue;
    }
    std::u32string w = nfd(py_lower_u32(word));
    w.erase(std::remove_if(w.begin(), w.end(),
                           [](char32_t c) { return unicode::category(c) == unicode::Category::Mn; }),
            w.end());
    // _run_split_on_punc
    bool start_new = true;
    for (char32_t c : w) {
      if (is_punctuation(c)) {
        split_tokens.emplace_back(1, c);
        start_new = true;
      } else {
        if (start_new) split_tokens.emplace_back();
        start_new = false;
        split_tokens.back().push_back(c);
      }
    }
  }
  std::u32string joined;  // whitespace_tokenize(" ".join(split_tokens))
  for (std::size_t k = 0; k < split_tokens.size(); ++k) {
    if (k) joined.push_back(' ');
    joined += split_tokens[k];
  }
  for (const std::u32string& tok : py_split(joined)) out.push_back(utf8_encode(tok));
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(const std::string& text) const {
  std::vector<std::string> out;
  basic_tokenize_into(utf8_decode(text), out);
  return out;
}

std::vector<std::string> WordPieceTokenizer::wordpiece(const std::string& word) const {
  std::vector<std::string> out;
  for (const std::u32string& chars : py_split(utf8_decode(word))) {  // whitespace_tokenize
    if (chars.size() > kMaxInputCharsPerWord) {
      out.push_back("[UNK]");
      continue;
    }
    std::vector<std::string> sub;
    bool bad = false;
    std::size_t start = 0;
    while (start < chars.size()) {
      std::size_t end = std::min(chars.size(), start + max_token_chars_);
      std::string found;
      bool ok = false;
      while (start < end) {
        std::string substr = start > 0 ? "##" : "";
        for (std::size_t k = start; k < end; ++k) utf8_append(substr, chars[k]);
        if (vocab_.count(substr)) {
          found = std::move(substr);
          ok = true;
          break;
        }
        --end;
      }
      if (!ok) {
        bad = true;
        break;
      }
      sub.push_back(std::move(found));
      start = end;
    }
    if (bad) out.push_back("[UNK]");
    else out.insert(out.end(), std::make_move_iterator(sub.begin()), std::make_move_iterator(sub.end()));
  }
  return out;
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  const std::u32string u = utf8_decode(text);
  std::vector<std::string> out;
  // The added-token trie: cut at each special token (none is a prefix of another).
  std::size_t seg = 0, i = 0;
  auto flush = [&](std::size_t end) {
    if (end <= seg) return;
    std::vector<std::string> words;
    basic_tokenize_into(u.substr(seg, end - seg), words);
    for (const std::string& w : words) {
      // BertTokenizer._tokenize checks basic_tokenizer.never_split, which is empty by
      // default, so even a special word goes through WordPiece (where it matches itself).
      std::vector<std::string> pieces = wordpiece(w);
      out.insert(out.end(), std::make_move_iterator(pieces.begin()), std::make_move_iterator(pieces.end()));
    }
  };
  while (i < u.size()) {
    std::size_t matched = 0;
    if (u[i] == '[') {
      for (const std::u32string& sp : specials_u32_)
        if (u.compare(i, sp.size(), sp) == 0) {
          matched = sp.size();
          break;
        }
    }
    if (matched) {
      flush(i);
      out.push_back(utf8_encode(u.substr(i, matched)));
      i += matched;
      seg = i;
    } else {
      ++i;
    }
  }
  flush(u.size());
  return out;
}

// ------------------------------------------------------------------ encoding

Encoding WordPieceTokenizer::encode(const std::string& text, int max_length, bool pad_to_max, bool truncate) const {
  if (truncate && max_length < 2)
    throw std::invalid_argument("WordPieceTokenizer::encode: max_length must be >= 2 to hold [CLS] and [SEP]");
  const std::vector<std::string> toks = tokenize(text);
  std::size_t n = toks.size();
  if (truncate) n = std::min(n, static_cast<std::size_t>(max_length) - 2);
  Encoding e;
  const std::size_t total = std::max<std::size_t>(n + 2, pad_to_max && max_length > 0 ? max_length : 0);
  e.ids.reserve(total);
  e.ids.push_back(cls_id_);
  for (std::size_t k = 0; k < n; ++k) e.ids.push_back(token_to_id(toks[k]));
  e.ids.push_back(sep_id_);
  e.attention_mask.assign(e.ids.size(), 1);
  if (pad_to_max)
    while (static_cast<int64_t>(e.ids.size()) < max_length) {
      e.ids.push_back(pad_id_);
      e.attention_mask.push_back(0);
    }
  e.token_type_ids.assign(e.ids.size(), 0);
  return e;
}

std::vector<Encoding> WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts, int max_length,
                                                       bool pad_to_max, bool truncate) const {
  std::vector<Encoding> out(texts.size());
#pragma omp parallel for schedule(dynamic, 16) if (texts.size() > 64)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(texts.size()); ++i)
    out[static_cast<std::size_t>(i)] = encode(texts[static_cast<std::size_t>(i)], max_length, pad_to_max, truncate);
  return out;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens,
                                       bool clean_up_tokenization_spaces) const {
  std::string s;
  bool first = true;
  for (int64_t id : ids) {
    if (skip_special_tokens && (id == pad_id_ || id == unk_id_ || id == cls_id_ || id == sep_id_ ||
                                (mask_id_ >= 0 && id == mask_id_)))
      continue;
    if (!first) s.push_back(' ');
    first = false;
    s += id_to_token(id);
  }
  s = py_strip(replace_all(std::move(s), " ##", ""));
  if (clean_up_tokenization_spaces) {
    for (const char* p : {" .", " ?", " !", " ,"}) s = replace_all(std::move(s), p, std::string(p + 1));
    s = replace_all(std::move(s), " ' ", "'");
    for (const char* p : {" n't", " 'm", " 's", " 've", " 're"}) s = replace_all(std::move(s), p, std::string(p + 1));
  }
  return s;
}

// ------------------------------------------------------------------ HSENet text handling

std::string hsenet_clean(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text)
    if (c != '"' && c != '\'' && c != '(' && c != ')') out.push_back(c);
  return out;
}

PyRandom::PyRandom(uint64_t seed) {
  // init_genrand(19650218) then init_by_array(key) with key = the 32-bit words of seed
  // (little-endian, at least one), as CPython's random_seed() for an int argument.
  uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const int key_length = (seed >> 32) ? 2 : 1;
  mt_[0] = 19650218u;
  for (int i = 1; i < 624; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  int i = 1, j = 0;
  for (int k = std::max(624, key_length); k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = 623; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
  }
  mt_[0] = 0x80000000u;
  index_ = 624;
}

uint32_t PyRandom::genrand_uint32() {
  static const uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
  if (index_ >= 624) {
    int kk = 0;
    uint32_t y;
    for (; kk < 624 - 397; ++kk) {
      y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7fffffffu);
      mt_[kk] = mt_[kk + 397] ^ (y >> 1) ^ mag01[y & 1u];
    }
    for (; kk < 623; ++kk) {
      y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7fffffffu);
      mt_[kk] = mt_[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1u];
    }
    y = (mt_[623] & 0x80000000u) | (mt_[0] & 0x7fffffffu);
    mt_[623] = mt_[396] ^ (y >> 1) ^ mag01[y & 1u];
    index_ = 0;
  }
  uint32_t y = mt_[index_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

uint64_t PyRandom::getrandbits(int k) {
  if (k <= 32) return genrand_uint32() >> (32 - k);
  const uint64_t lo = genrand_uint32();
  const uint64_t hi = genrand_uint32() >> (64 - k);
  return lo | (hi << 32);
}

uint64_t PyRandom::randbelow(uint64_t n) {
  int k = 0;
  while (k < 64 && (n >> k) != 0) ++k;  // n.bit_length()
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

std::string hsenet_truncate(const std::string& text, const WordPieceTokenizer& tokenizer, int max_tokens,
                            uint64_t seed) {
  PyRandom rng(seed);
  return hsenet_truncate(text, tokenizer, max_tokens, rng);
}

std::string hsenet_truncate(const std::string& text, const WordPieceTokenizer& tokenizer, int max_tokens,
                            PyRandom& rng) {
  const int64_t budget = max_tokens;
  if (static_cast<int64_t>(tokenizer.count_tokens(text)) <= budget) return text;
  std::vector<std::string> sentences;  // text.split(".")
  std::size_t pos = 0;
  for (;;) {
    const std::size_t dot = text.find('.', pos);
    if (dot == std::string::npos) break;
    sentences.push_back(text.substr(pos, dot - pos));
    pos = dot + 1;
  }
  sentences.push_back(text.substr(pos));
  std::vector<std::string> selected;
  selected.push_back(sentences.front());
  sentences.erase(sentences.begin());
  int64_t current = 0;
  while (current <= budget && !sentences.empty()) {
    const std::size_t idx = static_cast<std::size_t>(rng.randbelow(sentences.size()));
    const std::string s = sentences[idx];
    const int64_t n = static_cast<int64_t>(tokenizer.count_tokens(s));
    if (current + n <= budget && std::find(selected.begin(), selected.end(), s) == selected.end()) {
      selected.push_back(s);
      current += n;
    } else {
      sentences.erase(std::find(sentences.begin(), sentences.end(), s));  // list.remove: the first equal
    }
  }
  std::string out;
  for (std::size_t k = 0; k < selected.size(); ++k) {
    if (k) out.push_back('.');
    out += selected[k];
  }
  return out;
}

}  // namespace hse::text
