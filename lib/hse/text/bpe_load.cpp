// BpeTokenizer from tokenizer.json (the fast pipeline, or transformers' slow GPT-2 classes) and
// back to JSON.
#include "hse/text/bpe_impl.h"

namespace hse::text {

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

}  // namespace hse::text
