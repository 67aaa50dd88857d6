// Unit tests for hse::text::BpeTokenizer (byte-level BPE, Hugging Face tokenizers semantics).
// The expected ids below were produced by Python `tokenizers` 0.23.3 on the same
// tokenizer.json (built here by small_json(), mirrored in Python).
// The "driver: bpe" case doubles as the C++ side of tests/parity/test_bpe.py.
#include <doctest/doctest.h>

#include "require_all.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/text/bpe.h"
#include "hse/text/utf8.h"

using hse::text::BpeDecodeStream;
using hse::text::BpeTokenizer;
using Ids = std::vector<int64_t>;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// GPT-2's byte -> unicode table.
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<int> bs;
    for (int c = '!'; c <= '~'; ++c) bs.push_back(c);
    for (int c = 0xA1; c <= 0xAC; ++c) bs.push_back(c);
    for (int c = 0xAE; c <= 0xFF; ++c) bs.push_back(c);
    std::vector<std::string> t(256);
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool direct = std::find(bs.begin(), bs.end(), c) != bs.end();
      std::string u;
      hse::text::utf8_append(u, static_cast<char32_t>(direct ? c : 256 + n++));
      t[static_cast<std::size_t>(c)] = u;
    }
    return t;
  }();
  return table[static_cast<std::size_t>(b)];
}

json added_token(const std::string& content, bool special, bool lstrip = false, bool rstrip = false,
                 bool single_word = false) {
  return {{"id", 0},           {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", !special}, {"special", special}};
}

json byte_level(bool add_prefix_space, bool use_regex = true) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

// 256 byte symbols (id = byte) + the merges below (ids 256..274), as tests/parity mirrors.
json small_json(bool pairs = false) {
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"Ġ", "t"},  {"h", "e"},  {"Ġt", "he"}, {"n", "o"},   {"no", "d"},   {"u", "l"},    {"nod", "ul"},
      {"nodul", "e"}, {"Ġ", "nodule"}, {"Ġ", "l"}, {"Ġl", "u"}, {"n", "g"}, {"Ġlu", "ng"}, {"'", "s"},
      {"1", "2"},  {"Ã", "©"},  {"c", "a"},   {"ca", "f"},  {"caf", "Ã©"}};
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  json ms = json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    if (pairs) ms.push_back(json::array({a, b}));
    else ms.push_back(a + " " + b);
  }
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = json::array();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = byte_level(false);
  j["post_processor"] = nullptr;
  j["decoder"] = byte_level(true);
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", ms}};
  return j;
}

json with_added(json j) {
  j["added_tokens"] = json::array({added_token("<|endoftext|>", true), added_token("[SEG]", true, true, true),
                                   added_token("<im_patch>", true), added_token("lung", false, false, false, true),
                                   added_token("café", false)});
  return j;
}

BpeTokenizer load(const json& j) { return BpeTokenizer::from_json(j.dump(), "small.json"); }

const std::vector<std::string> kTexts = {"the nodule",
                                          " the lungs nodule's 123",
                                          "lung lungs xlung lung_ lung",
                                          "a  [SEG]  b[SEG]c <|endoftext|>the<im_patch>",
                                          "café cafe\xCC\x81 CAFÉ",
                                          "é中\xF0\x9F\x98\x80 \t\n\r\n  x",
                                          ""};

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("hse_test_bpe_" + std::to_string(::getpid()) + "_" + name)).string();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// Throws? Returns the error (exit code 3 and the file named are checked by the caller).
std::optional<hse::cli::Error> load_error(const std::string& path) {
  try {
    BpeTokenizer::from_file(path);
  } catch (const hse::cli::Error& e) {
    return e;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("bpe: merges, both merge formats") {
  for (bool pairs : {false, true}) {
    const auto t = load(small_json(pairs));
    CHECK(t.vocab_size() == 275);
    CHECK(t.encode(kTexts[0]) == Ids{116, 257, 264});
    CHECK(t.encode(kTexts[1]) == Ids{258, 268, 115, 264, 269, 32, 270, 51});
    CHECK(t.encode(kTexts[2]) == Ids{108, 117, 267, 268, 115, 32, 120, 108, 117, 267, 268, 95, 268});
    CHECK(t.encode(kTexts[4]) == Ids{274, 32, 273, 101, 204, 129, 32, 67, 65, 70, 195, 137});
    CHECK(t.encode(kTexts[5]) == Ids{271, 228, 184, 173, 240, 159, 152, 128, 32, 9, 10, 13, 10, 32, 32, 120});
    CHECK(t.encode("").empty());
    for (const auto& s : kTexts) CHECK(t.decode(t.encode(s)) == s);
    CHECK(t.token_to_id("Ġnodule") == 264);
    CHECK(t.id_to_token(258) == std::optional<std::string>("Ġthe"));
    CHECK(!t.id_to_token(9999).has_value());
    CHECK(t.pre_tokenize(" the lungs") == std::vector<std::string>{"Ġthe", "Ġlungs"});
  }
}

TEST_CASE("bpe: added tokens (special, lstrip/rstrip, single_word, normalized) and decode") {
  const auto t = load(with_added(small_json()));
  CHECK(t.vocab_size() == 280);
  CHECK(t.token_to_id("<|endoftext|>") == 275);  // ids renumbered as tokenizers does (the file says 0)
  CHECK(t.token_to_id("[SEG]") == 276);
  CHECK(t.token_to_id("café") == 279);
  CHECK(t.is_special(275));
  CHECK(!t.is_special(278));
  CHECK(t.encode(kTexts[2]) == Ids{278, 268, 115, 32, 120, 108, 117, 267, 268, 95, 32, 278});
  const Ids seg = t.encode(kTexts[3]);
  CHECK(seg == Ids{97, 276, 98, 276, 99, 32, 275, 116, 257, 277});
  CHECK(t.decode(seg) == "a[SEG]b[SEG]c <|endoftext|>the<im_patch>");
  CHECK(t.decode(seg, true) == "abc the");
  // an added token's characters go through the byte-level decoder: "é" alone is byte 0xE9
  const Ids cafe = t.encode(kTexts[4]);
  CHECK(cafe == Ids{279, 32, 273, 101, 204, 129, 32, 67, 65, 70, 195, 137});
  CHECK(t.decode(cafe) == "caf\xEF\xBF\xBD" " cafe\xCC\x81 CAFÉ");
  CHECK(t.decode({275, 99999, 116}) == "<|endoftext|>t");  // an unknown id is skipped

  // NFC normalizer: "cafe\u0301" becomes "café", the normalized added token matches it
  auto jn = with_added(small_json());
  jn["normalizer"] = {{"type", "NFC"}};
  CHECK(load(jn).encode(kTexts[4]) == Ids{279, 32, 279, 32, 67, 65, 70, 195, 137});

  // ByteLevel add_prefix_space: every piece between added tokens gets its space
  auto jp = with_added(small_json());
  jp["pre_tokenizer"] = byte_level(true);
  const auto tp = load(jp);
  CHECK(tp.encode(kTexts[0]) == Ids{258, 264});
  CHECK(tp.encode(kTexts[3]) == Ids{32, 97, 276, 32, 98, 276, 32, 99, 32, 275, 258, 277});
  CHECK(tp.decode(tp.encode(kTexts[3]), true) == " a b c  the");
}

TEST_CASE("bpe: Split pre-tokenizer and TemplateProcessing") {
  auto js = small_json();
  js["pre_tokenizer"] = {{"type", "Sequence"},
                         {"pretokenizers", json::array({{{"type", "Split"},
                                                         {"pattern", {{"Regex", "\\s+"}}},
                                                         {"behavior", "Removed"},
                                                         {"invert", false}},
                                                        byte_level(false, false)})}};
  const auto ts = load(js);
  CHECK(ts.encode(kTexts[1]) == Ids{116, 257, 108, 117, 267, 115, 263, 269, 270, 51});
  CHECK(ts.encode(kTexts[5]) == Ids{271, 228, 184, 173, 240, 159, 152, 128, 120});

  auto jt = small_json();
  jt["added_tokens"] = json::array({added_token("<s>", true), added_token("</s>", true)});
  jt["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {275}}, {"tokens", {"<s>"}}}}}}};
  const auto tt = load(jt);
  CHECK(tt.encode(kTexts[0], true) == Ids{275, 116, 257, 264});
  CHECK(tt.encode(kTexts[0], false) == Ids{116, 257, 264});
  CHECK(tt.encode("", true) == Ids{275});
  CHECK(tt.decode({275, 116, 257, 264}) == "<s>the nodule");
  CHECK(tt.decode({275, 116, 257, 264}, true) == "the nodule");
}

TEST_CASE("bpe: invalid UTF-8 input becomes U+FFFD (maximal subparts), never throws") {
  const auto t = load(with_added(small_json()));
  // U+FFFD is EF BF BD; "\xE2\x82" (a cut 3-byte sequence) is one subpart, "\xFF" another
  CHECK(t.encode("\xFF") == Ids{239, 191, 189});
  CHECK(t.encode("a\xE2\x82" "b\xFF") == t.encode("a\xEF\xBF\xBD" "b\xEF\xBF\xBD"));
  CHECK(t.encode("\xED\xA0\x80") == t.encode("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));  // a surrogate: 3 subparts
  CHECK(t.decode(t.encode("x\xC0\xAFy")) == "x\xEF\xBF\xBD\xEF\xBF\xBDy");
  // decoding ids whose bytes are not UTF-8
  CHECK(t.decode({0xE2, 0x82}) == "\xEF\xBF\xBD");
  CHECK(t.decode({0xF0, 0x9F, 0x98, 'a'}) == "\xEF\xBF\xBD" "a");
  CHECK(t.token_bytes(0xE9) == "\xE9");
}

TEST_CASE("bpe: streaming decode holds back incomplete UTF-8") {
  const auto t = load(with_added(small_json()));
  const std::string text = "é中\xF0\x9F\x98\x80 <|endoftext|>x[SEG]\xE2\x82";
  const Ids ids = t.encode(text);
  for (bool skip : {false, true}) {
    BpeDecodeStream ds(t, skip);
    std::string got;
    for (int64_t id : ids) {
      const std::string piece = ds.step(id);
      CHECK(hse::text::utf8_encode(hse::text::utf8_decode(piece)) == piece);
      got += piece;
    }
    got += ds.flush();
    CHECK(got == t.decode(ids, skip));
  }
  BpeDecodeStream ds(t);
  CHECK(ds.step(240).empty());  // F0: held back
  CHECK(ds.step(159).empty());
  CHECK(ds.step(152).empty());
  CHECK(ds.step(128) == "\xF0\x9F\x98\x80");
  CHECK(ds.step(0xE2).empty());
  CHECK(ds.step('a') == "\xEF\xBF\xBD" "a");
}

TEST_CASE("bpe: add_special_tokens, save and reload") {
  auto t = load(with_added(small_json()));
  CHECK(t.add_special_tokens({"<im_patch>", "<bx_start>", "<bx_end>", "[SEG]", "x"}) == 2);
  CHECK(t.token_to_id("<bx_start>") == 280);
  CHECK(t.token_to_id("<bx_end>") == 281);
  CHECK(t.token_to_id("<im_patch>") == 277);
  CHECK(t.token_to_id("x") == 120);  // already a token: keeps its id, becomes special
  CHECK(t.is_special(120));
  CHECK(t.vocab_size() == 282);
  CHECK(t.encode("a<bx_start>b x") == Ids{97, 280, 98, 32, 120});
  const std::string path = temp_path("saved.json");
  t.save(path);
  const auto r = BpeTokenizer::from_file(path);
  CHECK(r.vocab_size() == 282);
  for (const auto& s : kTexts) CHECK(r.encode(s) == t.encode(s));
  CHECK(r.encode("a<bx_start>b x") == Ids{97, 280, 98, 32, 120});
  CHECK(r.decode({97, 280, 98}, true) == "ab");
  fs::remove(path);
}

TEST_CASE("bpe: errors name the file, exit code 3") {
  const std::string path = temp_path("bad.json");
  auto expect = [&](const std::string& text, const std::string& what) {
    write(path, text);
    const auto e = load_error(path);
    REQUIRE(e.has_value());
    CHECK(e->code() == hse::cli::Exit::incompatible);
    CHECK(e->line().find(path) != std::string::npos);
    CHECK_MESSAGE(e->line().find(what) != std::string::npos, e->line());
  };
  expect("{\"model\": {", "malformed JSON");
  auto j = small_json();
  j["model"]["type"] = "WordPiece";
  expect(j.dump(), "unsupported tokenizer model type WordPiece");
  j = small_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect(j.dump(), "unsupported pre_tokenizer Whitespace");
  j = small_json();
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "▁"}}})}};  // Phi-3 / Llama 2
  expect(j.dump(), "unsupported normalizer Prepend");
  j = small_json();
  j["decoder"] = {{"type", "Metaspace"}};
  expect(j.dump(), "unsupported decoder Metaspace");
  j = small_json();
  j["model"]["merges"].push_back("zz qq");
  expect(j.dump(), "not in the vocabulary");
  j = small_json();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}, {"invert", false}};
  expect(j.dump(), "invalid regex");
  j = small_json();
  j["model"]["vocab"]["zzz"] = 2000000000;
  expect(j.dump(), "too sparse");
  fs::remove(path);
  const auto missing = load_error(temp_path("missing.json"));
  REQUIRE(missing.has_value());
  CHECK(missing->code() == hse::cli::Exit::incompatible);
}

TEST_CASE("bpe: slow mode (GPT-2 regex, merges on every piece) and vocab.json + merges.txt") {
  // A Split-regex file with ignore_merges: fast looks "nodule" up whole and splits on the file's
  // regex; slow splits with GPT-2's regex and merges from the bytes.
  auto j = small_json();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Split"},
                                                        {"pattern", {{"Regex", "[a-z']+|\\s+|[^a-z'\\s]+"}}},
                                                        {"behavior", "Isolated"},
                                                        {"invert", false}},
                                                       byte_level(false, false)})}};
  j["model"]["ignore_merges"] = true;
  j["model"]["vocab"]["nodules"] = 275;  // reachable whole only
  j = with_added(j);
  const std::string path = temp_path("slow.json");
  write(path, j.dump());
  const auto fast = BpeTokenizer::from_file(path);
  const auto slow = BpeTokenizer::from_file(path, hse::text::BpeMode::slow);
  CHECK(fast.mode() == hse::text::BpeMode::fast);
  CHECK(slow.mode() == hse::text::BpeMode::slow);
  CHECK(fast.encode("nodules") == Ids{275});
  CHECK(slow.encode("nodules") == Ids{263, 115});  // "nodule" + "s" by merges
  CHECK(fast.pre_tokenize("it's x") == std::vector<std::string>{"it's", "Ġ", "x"});
  CHECK(slow.pre_tokenize("it's x") == std::vector<std::string>{"it", "'s", "Ġx"});
  CHECK(slow.encode("<|endoftext|>the") == Ids{fast.token_to_id("<|endoftext|>").value(), 116, 257});
  CHECK(slow.decode(slow.encode(" the lungs")) == " the lungs");
  const auto spaced = BpeTokenizer::from_file(path, hse::text::BpeMode::slow, true);
  CHECK(spaced.encode("the") == Ids{258});  // " the"
  CHECK(hse::text::parse_bpe_mode("slow") == hse::text::BpeMode::slow);
  CHECK_THROWS_AS(hse::text::parse_bpe_mode("quick"), std::invalid_argument);

  // vocab.json + merges.txt: the same tokenizer as the slow mode of the tokenizer.json
  const std::string vp = temp_path("vocab.json"), mp = temp_path("merges.txt");
  write(vp, j["model"]["vocab"].dump());
  std::string merges = "#version: 0.2\n";
  for (const auto& m : j["model"]["merges"]) merges += m.get<std::string>() + "\n";
  write(mp, merges);
  const auto vm = BpeTokenizer::from_vocab_merges(vp, mp);
  for (const std::string s : {"the nodules", " the nodule's 123", "it's  x\n\n"})  // no added tokens
    CHECK(vm.encode(s) == slow.encode(s));
  try {
    BpeTokenizer::from_vocab_merges(vp, mp, {"<s>"});
    FAIL("a special token outside the vocabulary was accepted");
  } catch (const hse::cli::Error& e) {
    CHECK(e.code() == hse::cli::Exit::incompatible);
    CHECK(e.line().find("<s>") != std::string::npos);
  }
  write(mp, "#version: 0.2\nĠ t x\n");
  CHECK_THROWS_AS(BpeTokenizer::from_vocab_merges(vp, mp), hse::cli::Error);
  // a tokenizer that is not byte-level has no slow GPT-2 form
  auto ws = small_json();
  ws["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Removed"}, {"invert", false}};
  ws["decoder"] = nullptr;
  write(path, ws.dump());
  try {
    BpeTokenizer::from_file(path, hse::text::BpeMode::slow);
    FAIL("slow mode accepted a non-byte-level tokenizer");
  } catch (const hse::cli::Error& e) {
    CHECK(e.line().find("byte-level") != std::string::npos);
  }
  for (const auto& p : {path, vp, mp}) fs::remove(p);
}

TEST_CASE("bpe: training round-trips") {
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i) {
    texts.push_back("There is a " + std::to_string(i) + " mm nodule in the right upper lobe.");
    texts.push_back("No pleural effusion. Heart size is normal. <|endoftext|>");
    texts.push_back("Élargissement 中文 \xF0\x9F\x98\x80 it's they're\t\ttabs\r\n");
  }
  const auto t = BpeTokenizer::train(texts, 400, "", {"<|endoftext|>", "<pad>"});
  CHECK(t.vocab_size() > 300);  // this small corpus runs out of pairs before 400
  CHECK(t.vocab_size() <= 400);
  CHECK(t.token_to_id("<|endoftext|>") == 0);
  CHECK(t.token_to_id("<pad>") == 1);
  CHECK(t.token_to_id("!") == 2 + '!');
  const auto again = BpeTokenizer::train(texts, 400, "", {"<|endoftext|>", "<pad>"});
  CHECK(again.to_json() == t.to_json());  // deterministic
  for (const auto& s : texts) {
    const Ids ids = t.encode(s);
    CHECK(t.decode(ids) == s);
    CHECK(ids.size() < s.size());
  }
  CHECK(t.encode(" nodule").size() == 1);
  CHECK(BpeTokenizer::train(texts, 280).vocab_size() == 280);
  const std::string path = temp_path("trained.json");
  t.save(path);
  const auto r = BpeTokenizer::from_file(path);
  for (const auto& s : texts) CHECK(r.encode(s) == t.encode(s));
  fs::remove(path);
  // with a Split pattern
  const auto t2 = BpeTokenizer::train(texts, 300, R"(\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+)");
  CHECK(t2.vocab_size() == 300);
  for (const auto& s : texts) CHECK(t2.decode(t2.encode(s)) == s);
  CHECK_THROWS_AS(BpeTokenizer::train(texts, 300, "(bad"), std::invalid_argument);
}

TEST_CASE("bpe: o200k (tiktoken ranks) against gpt-tokenizer's TestPlans") {
  // The shared data sit beside the repository (<repo>/../shared/data/o200k), or $HSE_O200K_DIR.
  const char* dir_env = std::getenv("HSE_O200K_DIR");
  const char* src = std::getenv("HSE_SOURCE_DIR");
  const std::string dir = dir_env ? dir_env : std::string(src ? src : ".") + "/../shared/data/o200k";
  if (!fs::exists(dir + "/o200k_base.tiktoken") || !fs::exists(dir + "/TestPlans-o200k.txt")) {
    HSE_SKIP_OR_FAIL("no o200k data in " << dir);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto t = BpeTokenizer::from_tiktoken(dir + "/o200k_base.tiktoken", dir + "/o200k_base.json");
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("o200k loaded in " << load_s << " s");
  CHECK(t.vocab_size() == 200019);
  CHECK(t.token_to_id("<|endoftext|>") == 199999);
  std::ifstream f(dir + "/TestPlans-o200k.txt");
  std::string line, sample;
  int n = 0;
  while (std::getline(f, line)) {
    if (line.rfind("Sample: ", 0) == 0) sample = line.substr(8);
    if (line.rfind("Encoded: ", 0) == 0) {
      const Ids expect = json::parse(line.substr(9)).get<Ids>();
      CHECK_MESSAGE(t.encode(sample) == expect, sample);
      CHECK(t.decode(expect) == sample);
      ++n;
    }
  }
  CHECK(n >= 50);
  // about 1 MB of text
  std::string big;
  while (big.size() < (1u << 20))
    big += "The 12 mm ground-glass nodule in the right upper lobe (series 3, image 45) is unchanged; "
           "no pleural effusion. Élargissement 中文 \xF0\x9F\x98\x80 it's\r\n";
  const auto t1 = std::chrono::steady_clock::now();
  const Ids ids = t.encode(big);
  const double enc_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  MESSAGE("encoded " << big.size() << " bytes into " << ids.size() << " ids in " << enc_s << " s");
  CHECK(t.decode(ids) == big);
  CHECK(enc_s < 5.0);  // generous: shared CI cores
}

// ---------------------------------------------------------------- parity driver
// HSE_BPE_TOKENIZER (tokenizer.json) or HSE_BPE_TIKTOKEN + HSE_BPE_TIKTOKEN_META; HSE_BPE_IN
// (JSONL: {"text": ...} or {"hex": ...} for raw bytes, optional "add_special_tokens": bool)
// -> HSE_BPE_OUT (JSONL: {"ids", "decoded", "decoded_skip", "stream"}). HSE_BPE_SAVE: also
// save() the loaded tokenizer there. Training: HSE_BPE_TRAIN_IN (JSONL texts),
// HSE_BPE_TRAIN_OUT (tokenizer.json), HSE_BPE_TRAIN_VOCAB, HSE_BPE_TRAIN_PATTERN,
// HSE_BPE_TRAIN_SPECIALS (JSON list). Timings go to stderr.
TEST_CASE("driver: bpe") {
  auto env = [](const char* k) -> std::string {
    const char* v = std::getenv(k);
    return v ? v : "";
  };
  const std::string train_in = env("HSE_BPE_TRAIN_IN");
  if (!train_in.empty()) {
    std::vector<std::string> texts;
    std::ifstream fin(train_in);
    REQUIRE(fin.good());
    for (std::string line; std::getline(fin, line);)
      if (!line.empty()) texts.push_back(json::parse(line).at("text").get<std::string>());
    const int vocab = env("HSE_BPE_TRAIN_VOCAB").empty() ? 1000 : std::stoi(env("HSE_BPE_TRAIN_VOCAB"));
    const std::string specials = env("HSE_BPE_TRAIN_SPECIALS");
    const auto t0 = std::chrono::steady_clock::now();
    const auto t = BpeTokenizer::train(texts, vocab, env("HSE_BPE_TRAIN_PATTERN"),
                                       specials.empty() ? std::vector<std::string>{}
                                                        : json::parse(specials).get<std::vector<std::string>>());
    std::cerr << "trained on " << texts.size() << " texts: vocab " << t.vocab_size() << " in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
    REQUIRE(!env("HSE_BPE_TRAIN_OUT").empty());
    t.save(env("HSE_BPE_TRAIN_OUT"));
  }
  const std::string in = env("HSE_BPE_IN");
  if (in.empty()) return;
  const std::string out = env("HSE_BPE_OUT");
  REQUIRE_MESSAGE(!out.empty(), "HSE_BPE_OUT must be set with HSE_BPE_IN");
  const auto t0 = std::chrono::steady_clock::now();
  // HSE_BPE_MODE=slow (with HSE_BPE_TOKENIZER, or HSE_BPE_VOCAB + HSE_BPE_MERGES and the JSON list
  // HSE_BPE_SPECIALS); HSE_BPE_PREFIX_SPACE=1: add_prefix_space.
  const bool slow = env("HSE_BPE_MODE") == "slow", prefix = env("HSE_BPE_PREFIX_SPACE") == "1";
  const auto t = !env("HSE_BPE_VOCAB").empty()
                     ? BpeTokenizer::from_vocab_merges(env("HSE_BPE_VOCAB"), env("HSE_BPE_MERGES"),
                                                       env("HSE_BPE_SPECIALS").empty()
                                                           ? std::vector<std::string>{}
                                                           : json::parse(env("HSE_BPE_SPECIALS")).get<std::vector<std::string>>(),
                                                       prefix)
                 : slow ? BpeTokenizer::from_file(env("HSE_BPE_TOKENIZER"), hse::text::BpeMode::slow, prefix)
                 : env("HSE_BPE_TIKTOKEN").empty()
                     ? BpeTokenizer::from_file(env("HSE_BPE_TOKENIZER"))
                     : BpeTokenizer::from_tiktoken(env("HSE_BPE_TIKTOKEN"), env("HSE_BPE_TIKTOKEN_META"));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!env("HSE_BPE_SAVE").empty()) t.save(env("HSE_BPE_SAVE"));
  std::ifstream fin(in);
  REQUIRE(fin.good());
  std::vector<std::string> texts;
  std::vector<bool> specials;
  for (std::string line; std::getline(fin, line);) {
    if (line.empty()) continue;
    const auto j = json::parse(line);
    std::string text;
    if (j.contains("hex")) {
      const std::string h = j["hex"].get<std::string>();
      for (std::size_t i = 0; i + 1 < h.size(); i += 2) text += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    } else {
      text = j.at("text").get<std::string>();
    }
    texts.push_back(text);
    specials.push_back(j.value("add_special_tokens", false));
  }
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<Ids> all(texts.size());
  std::size_t n_ids = 0, n_bytes = 0;
  std::size_t longest = 0;
  double longest_s = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto a = std::chrono::steady_clock::now();
    all[i] = t.encode(texts[i], specials[i]);
    if (texts[i].size() > longest) {
      longest = texts[i].size();
      longest_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    }
    n_ids += all[i].size();
    n_bytes += texts[i].size();
  }
  const double enc_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const auto batch = t.encode_batch(texts, false, 2);
  for (std::size_t i = 0; i < texts.size(); ++i)
    if (!specials[i]) CHECK(batch[i] == all[i]);
  std::ofstream fout(out);
  REQUIRE(fout.good());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    BpeDecodeStream ds(t, false);
    std::string stream;
    for (int64_t id : all[i]) stream += ds.step(id);
    stream += ds.flush();
    json o;
    o["ids"] = all[i];
    o["decoded"] = t.decode(all[i], false);
    o["decoded_skip"] = t.decode(all[i], true);
    o["stream"] = stream;
    fout << o.dump() << '\n';
  }
  std::cerr << "loaded in " << load_s << " s; encoded " << texts.size() << " texts (" << n_bytes << " bytes, " << n_ids
            << " ids) in " << enc_s << " s (the longest, " << longest << " bytes, in " << longest_s << " s)\n";
}
