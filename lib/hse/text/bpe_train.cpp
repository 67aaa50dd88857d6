// BpeTokenizer::train: a byte-level BPE learnt from texts (tokenizers' BpeTrainer semantics).
#include "hse/text/bpe_impl.h"

namespace hse::text {

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

}  // namespace hse::text
