// Unit tests for hse::text::WordPieceTokenizer (BERT, HF BertTokenizer semantics).
// The "driver: wordpiece" case doubles as the C++ side of tests/parity/test_wordpiece.py:
// with HSE_WP_IN (JSONL), HSE_WP_OUT and HSE_WP_VOCAB set it tokenizes every line.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/text/unicode_tables.h"
#include "hse/text/utf8.h"
#include "hse/text/wordpiece.h"

using hse::text::Encoding;
using hse::text::WordPieceTokenizer;
using V = std::vector<std::string>;

namespace {

// A small vocabulary: id = index.
WordPieceTokenizer small() {
  return WordPieceTokenizer({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cafe", "3", ".", "5", "##mm",
                             ",", "mm", "nodule", "un", "##aff", "##able", "in", "lung", "##s", "中", "国", "(",
                             ")", "t", "##6", "-", "##9", "ground", "glass", "σ", "##ς", "##σ", "a", "'", "n",
                             "##t", "don", "?"});
}

std::string u8(const char32_t* s) { return hse::text::utf8_encode(s); }

}  // namespace

TEST_CASE("wordpiece: basic tokenizer cases") {
  const auto t = small();
  CHECK(t.tokenize("Café") == V{"cafe"});
  CHECK(t.tokenize("CAFE\xCC\x81") == V{"cafe"});                 // combining acute stripped
  CHECK(t.tokenize("3.5mm,") == V{"3", ".", "5", "##mm", ","});
  CHECK(t.basic_tokenize("3.5mm, nodule") == V{"3", ".", "5mm", ",", "nodule"});
  CHECK(t.tokenize("中国") == V{"中", "国"});
  CHECK(t.basic_tokenize("x中y") == V{"x", "中", "y"});
  CHECK(t.tokenize("unaffable") == V{"un", "##aff", "##able"});
  CHECK(t.tokenize("lungs") == V{"lung", "##s"});
  CHECK(t.tokenize("µ") == V{"[UNK]"});                             // unknown character
  CHECK(t.tokenize("unaffablex") == V{"[UNK]"});                    // a remainder that matches nothing
  CHECK(t.tokenize("T6-T9") == V{"t", "##6", "-", "t", "##9"});
  CHECK(t.tokenize("ground-glass") == V{"ground", "-", "glass"});
  CHECK(t.tokenize("  \t\n ") == V{});
  CHECK(t.tokenize("") == V{});
  CHECK(t.tokenize("the\xC2\xA0nodule") == V{"the", "nodule"});    // NBSP is whitespace
  CHECK(t.tokenize("no\xE2\x80\x8B" "dule") == V{"nodule"});        // zero-width space (Cf) dropped
  CHECK(t.tokenize(std::string("the\0nodule", 10)) == V{"[UNK]"});  // NUL dropped: "thenodule"
  CHECK(t.tokenize("\xCE\xA3\xCE\xA3") == V{"σ", "##ς"});           // ΣΣ -> σς (final sigma)
  CHECK(t.tokenize("\xCE\xA3") == V{"σ"});
  CHECK(t.tokenize(std::string(101, 'a')) == V{"[UNK]"});           // > 100 characters
  CHECK(t.tokenize("the[CLS]the [cls]") == V{"the", "[CLS]", "the", "[UNK]", "[UNK]", "[UNK]"});
  CHECK(t.tokenize("don't") == V{"don", "'", "t"});
}

TEST_CASE("wordpiece: unicode helpers") {
  using namespace hse::text;
  CHECK(nfd(U"\u00E9") == U"e\u0301");
  CHECK(nfc(U"e\u0301") == U"\u00E9");
  CHECK(nfd(U"\uAC01") == U"\u1100\u1161\u11A8");
  CHECK(nfc(U"\u1100\u1161\u11A8") == U"\uAC01");
  CHECK(nfd(U"a\u0301\u0316") == U"a\u0316\u0301");  // canonical ordering (220 before 230)
  CHECK(nfc(U"\u212B") == U"\u00C5");                // ANGSTROM SIGN -> Å (singleton)
  CHECK(py_lower_u32(U"\u0130") == U"i\u0307");
  CHECK(py_lower_u32(U"\u039F\u0394\u039F\u03A3") == U"\u03BF\u03B4\u03BF\u03C2");
  CHECK(unicode::category(U'\u00B5') == unicode::Category::Ll);
  CHECK(unicode::category(0x378) == unicode::Category::Cn);
  CHECK(std::string(unicode::kUnicodeVersion) == "14.0.0");
}

TEST_CASE("wordpiece: encode, truncation and padding") {
  const auto t = small();
  Encoding e = t.encode("the nodule", 6);
  CHECK(e.ids == std::vector<int64_t>{2, 5, 13, 3, 0, 0});
  CHECK(e.attention_mask == std::vector<int64_t>{1, 1, 1, 1, 0, 0});
  CHECK(e.token_type_ids == std::vector<int64_t>(6, 0));
  e = t.encode("the nodule in the lungs", 5);
  CHECK(e.ids == std::vector<int64_t>{2, 5, 13, 17, 3});
  CHECK(e.attention_mask == std::vector<int64_t>(5, 1));
  e = t.encode("the nodule in the lungs", 5, false, false);
  CHECK(e.ids == std::vector<int64_t>{2, 5, 13, 17, 5, 18, 19, 3});
  e = t.encode("the", 5, false, true);
  CHECK(e.ids == std::vector<int64_t>{2, 5, 3});
  e = t.encode("", 4);
  CHECK(e.ids == std::vector<int64_t>{2, 3, 0, 0});
  CHECK_THROWS_AS(t.encode("the", 1), std::invalid_argument);
  const auto b = t.encode_batch({"the", "nodule"}, 4);
  REQUIRE(b.size() == 2);
  CHECK(b[1].ids == std::vector<int64_t>{2, 13, 3, 0});
  CHECK(t.count_tokens("the lungs") == 5);
}

TEST_CASE("wordpiece: decode") {
  const auto t = small();
  const std::vector<int64_t> ids{2, 14, 15, 16, 13, 11, 37, 34, 36, 38, 3, 0, 999};
  // Expected values: transformers' slow BertTokenizer over the same vocabulary.
  CHECK(t.decode(ids) == "[CLS] unaffable nodule, don 't? [SEP] [PAD] [UNK]");
  CHECK(t.decode(ids, true) == "unaffable nodule, don 't? [UNK]");  // an out-of-range id is no special id
  CHECK(t.decode(ids, true, false) == "unaffable nodule , don 't ? [UNK]");
  const std::vector<int64_t> ids2{2, 14, 15, 16, 13, 11, 37, 34, 24, 38, 3};
  CHECK(t.decode(ids2) == "[CLS] unaffable nodule, don't? [SEP]");
  CHECK(t.decode(ids2, true) == "unaffable nodule, don't?");
  CHECK(t.decode(ids2, true, false) == "unaffable nodule , don ' t ?");
}

TEST_CASE("wordpiece: vocabulary errors") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "hse_test_wordpiece";
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& body) {
    std::ofstream(dir / name, std::ios::binary) << body;
    return (dir / name).string();
  };
  auto code = [](const std::string& path) {
    try {
      WordPieceTokenizer::from_file(path);
    } catch (const hse::cli::Error& e) {
      CHECK(e.file() == path);
      return static_cast<int>(e.code());
    }
    return 0;
  };
  CHECK(code((dir / "missing.txt").string()) == 3);
  CHECK(code(write("empty.txt", "")) == 3);
  CHECK(code(write("nounk.txt", "[PAD]\n[CLS]\n[SEP]\n")) == 3);
  CHECK(code(write("bad.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xFF\n")) == 3);
  const auto t = WordPieceTokenizer::from_file(write("crlf.txt", "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\nthe\nthe"));
  CHECK(t.vocab_size() == 6);
  CHECK(t.cls_id() == 2);
  CHECK(t.mask_id() == -1);
  CHECK(t.token_to_id("the") == 5);        // the later duplicate wins
  CHECK(t.id_to_token(4) == "[UNK]");      // the shadowed id decodes as [UNK]
  fs::remove_all(dir);
}

TEST_CASE("wordpiece: HSENet cleaning and truncation") {
  const auto t = small();
  CHECK(hse::text::hsenet_clean("a \"b\" 'c' (d)") == "a b c d");
  // Within the budget: unchanged.
  CHECK(hse::text::hsenet_truncate("the nodule. the lungs.", t, 512, 42) == "the nodule. the lungs.");
  // Python: random.seed(0); [random._randbelow(10) for _ in range(5)] == [6, 6, 0, 4, 8]
  hse::text::PyRandom r(0);
  std::vector<uint64_t> got;
  for (int i = 0; i < 5; ++i) got.push_back(r.randbelow(10));
  CHECK(got == std::vector<uint64_t>{6, 6, 0, 4, 8});
  // random.Random(2**40 + 5): getrandbits(40) x2, then _randbelow(2**33 + 1) x2
  hse::text::PyRandom r2((uint64_t{1} << 40) + 5);
  CHECK(r2.getrandbits(40) == 569101979940u);
  CHECK(r2.getrandbits(40) == 727003120297u);
  CHECK(r2.randbelow((uint64_t{1} << 33) + 1) == 3976222944u);
  CHECK(r2.randbelow((uint64_t{1} << 33) + 1) == 3829167211u);
  // Over the budget; expected: Python's random.seed(seed); truncate_text(text, 12).
  const std::string text = "the nodule. the lungs. in the lungs. nodule nodule nodule. the. a lung";
  CHECK(hse::text::hsenet_truncate(text, t, 12, 1) == "the nodule. in the lungs. a lung");
  CHECK(hse::text::hsenet_truncate(text, t, 12, 2) == "the nodule. the lungs. in the lungs");
  CHECK(hse::text::hsenet_truncate(text, t, 12, 42) == "the nodule. the lungs. the. a lung");
  // One stream over several texts (HSENet's retrieval scripts): Python's random.seed(42), then
  // truncate_text on each in turn (a text within the budget draws nothing).
  hse::text::PyRandom stream(42);
  CHECK(hse::text::hsenet_truncate(text, t, 12, stream) == "the nodule. the lungs. the. a lung");
  CHECK(hse::text::hsenet_truncate("the nodule. the lungs.", t, 12, stream) == "the nodule. the lungs.");
  CHECK(hse::text::hsenet_truncate(text, t, 12, stream) == "the nodule. a lung. the. the lungs");
  CHECK(hse::text::hsenet_truncate(text, t, 12, stream) == "the nodule. a lung. in the lungs");
}

// ---------------------------------------------------------------- parity driver
TEST_CASE("driver: wordpiece") {
  const char* in = std::getenv("HSE_WP_IN");
  if (!in) return;
  const char* out = std::getenv("HSE_WP_OUT");
  const char* vocab = std::getenv("HSE_WP_VOCAB");
  REQUIRE_MESSAGE(out != nullptr, "HSE_WP_OUT must be set with HSE_WP_IN");
  REQUIRE_MESSAGE(vocab != nullptr, "HSE_WP_VOCAB must be set with HSE_WP_IN");
  const auto t = WordPieceTokenizer::from_file(vocab);
  std::ifstream fin(in);
  REQUIRE(fin.good());
  std::ofstream fout(out);
  REQUIRE(fout.good());
  for (std::string line; std::getline(fin, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    const std::string text = j.at("text").get<std::string>();
    const auto ops = j.value("ops", std::vector<std::string>{"tokens", "encode"});
    nlohmann::json r;
    for (const std::string& op : ops) {
      if (op == "tokens") {
        r["tokens"] = t.tokenize(text);
      } else if (op == "basic") {
        r["basic"] = t.basic_tokenize(text);
      } else if (op == "encode") {
        const Encoding e = t.encode(text, j.value("max_length", 512), j.value("pad", true), j.value("truncate", true));
        r["ids"] = e.ids;
        r["mask"] = e.attention_mask;
      } else if (op == "decode") {
        const auto ids = j.at("ids").get<std::vector<int64_t>>();
        r["decode"] = t.decode(ids, false);
        r["decode_skip"] = t.decode(ids, true);
        r["decode_raw"] = t.decode(ids, true, false);
      } else if (op == "unicode") {
        const std::u32string u = hse::text::utf8_decode(text);
        r["nfc"] = hse::text::utf8_encode(hse::text::nfc(u));
        r["nfd"] = hse::text::utf8_encode(hse::text::nfd(u));
        r["lower"] = hse::text::utf8_encode(hse::text::py_lower_u32(u));
      } else if (op == "truncate") {
        r["truncated"] =
            hse::text::hsenet_truncate(text, t, j.at("max_tokens").get<int>(), j.at("seed").get<uint64_t>());
      } else if (op == "clean") {
        r["clean"] = hse::text::hsenet_clean(text);
      }
    }
    fout << r.dump() << '\n';
  }
  REQUIRE(fout.good());
}
