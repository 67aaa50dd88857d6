// BpeTokenizer::Impl: the model (vocabulary, merges), the added vocabulary and the pipeline of
// one tokenizer, with the encoding walk. Shared by the bpe*.cpp files; not installed.
#pragma once

#include "hse/text/bpe_detail.h"

namespace hse::text {

using namespace bpe_detail;

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

}  // namespace hse::text
