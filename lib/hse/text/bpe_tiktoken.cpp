// BpeTokenizer from a tiktoken ranks file (base64 token, rank) and its metadata JSON.
#include "hse/text/bpe_impl.h"

namespace hse::text {

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

}  // namespace hse::text
