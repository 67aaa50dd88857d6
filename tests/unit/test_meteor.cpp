// METEOR (nltk semantics), the Porter stemmer and the WordNet reader.
//
// The "driver: ..." cases double as the C++ side of tests/parity/test_meteor.py:
// when HSE_METEOR_IN / HSE_PORTER_IN / HSE_WORDNET_IN name a JSONL file they
// score / stem / look up each line (HSE_TEXT_IN: py_lower and py_split) and write the results to the matching *_OUT
// file; otherwise they do nothing.
#include <doctest/doctest.h>

#include "require_all.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/eval/meteor.h"
#include "hse/eval/porter.h"
#include "hse/eval/wordnet.h"

using namespace hse::eval;

namespace {

const char* kWordNetDir = "/usr/share/wordnet";

bool have_wordnet() { return std::filesystem::exists(std::string(kWordNetDir) + "/index.noun"); }

std::vector<std::string> toks(const std::string& s) { return meteor_tokenize(s); }

template <typename F>
void run_driver(const char* in_var, const char* out_var, F&& per_line) {
  const char* in = std::getenv(in_var);
  if (!in) return;
  const char* out = std::getenv(out_var);
  REQUIRE_MESSAGE(out != nullptr, out_var << " must be set with " << in_var);
  std::ifstream fin(in);
  REQUIRE(fin.good());
  std::ofstream fout(out);
  REQUIRE(fout.good());
  for (std::string line; std::getline(fin, line);) {
    if (line.empty()) continue;
    fout << per_line(nlohmann::json::parse(line)).dump() << '\n';
  }
  REQUIRE(fout.good());
}

}  // namespace

TEST_CASE("py_lower follows Python's str.lower") {
  CHECK(py_lower("The HEART Is Enlarged") == "the heart is enlarged");
  CHECK(py_lower("\xC3\x89PANCHEMENT") == "\xC3\xA9panchement");    // ÉPANCHEMENT
  CHECK(py_lower("\xC4\xB0") == "i\xCC\x87");                        // U+0130 -> i + U+0307
  CHECK(py_lower("\xCE\x9F\xCE\xA3") == "\xCE\xBF\xCF\x82");         // ΟΣ -> ος (final sigma)
  CHECK(py_lower("\xCE\xA3\xCE\x9F") == "\xCF\x83\xCE\xBF");         // ΣΟ -> σο
  CHECK(py_lower("\xCE\xA3") == "\xCF\x83");                         // lone Σ -> σ
  CHECK(py_lower("A\xFF" "B") == "a\xFF" "b");                       // invalid byte kept
}

TEST_CASE("py_split follows Python's str.split") {
  CHECK(py_split("  a b\t\nc  ") == std::vector<std::string>{"a", "b", "c"});
  CHECK(py_split("a\xC2\xA0" "b\xE3\x80\x80" "c") == std::vector<std::string>{"a", "b", "c"});  // NBSP, ideographic space
  CHECK(py_split("a\xE2\x80\x8B" "b") == std::vector<std::string>{"a\xE2\x80\x8B" "b"});  // ZWSP is not whitespace
  CHECK(py_split("").empty());
  CHECK(meteor_tokenize("No Pleural  Effusion.") == std::vector<std::string>{"no", "pleural", "effusion."});
}

TEST_CASE("PorterStemmer matches nltk on known words") {
  const PorterStemmer ps;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"caresses", "caress"},   {"ponies", "poni"},         {"ties", "tie"},           {"cats", "cat"},
      {"feed", "feed"},         {"agreed", "agre"},         {"plastered", "plaster"},  {"motoring", "motor"},
      {"sing", "sing"},         {"conflated", "conflat"},   {"troubled", "troubl"},    {"sized", "size"},
      {"hopping", "hop"},       {"falling", "fall"},        {"filing", "file"},        {"happy", "happi"},
      {"sky", "sky"},           {"skies", "sky"},           {"dying", "die"},          {"enlarged", "enlarg"},
      {"nodules", "nodul"},     {"effusion", "effus"},      {"generalization", "gener"},
      {"relational", "relat"},  {"lying", "lie"},           {"is", "is"},              {"The", "the"},
      {"enjoy", "enjoy"},       {"spied", "spi"},           {"died", "die"},           {"controlling", "control"},
      {"analogously", "analog"}, {"mm", "mm"},              {"", ""},
  };
  for (const auto& [w, s] : cases) CHECK_MESSAGE(ps.stem(w) == s, w);
}

TEST_CASE("WordNet: synonyms and morphy") {
  if (!have_wordnet()) {
    HSE_SKIP_OR_FAIL("no WordNet database at /usr/share/wordnet (Debian wordnet-base)");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const WordNet& wn = WordNet::load(kWordNetDir);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("WordNet load: " << secs << " s, " << wn.lemma_count() << " lemmas");
  CHECK(&wn == &WordNet::load(kWordNetDir));  // loaded once

  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  const auto big = wn.synonyms("big");
  CHECK(has(big, "large"));
  CHECK(has(big, "big"));
  CHECK(has(wn.synonyms("Lesions"), "lesion"));  // lowercased, morphy strips the plural
  CHECK(wn.morphy("churches", 'n') == std::vector<std::string>{"church"});
  CHECK(wn.morphy("aardwolves", 'n') == std::vector<std::string>{"aardwolf"});
  CHECK(wn.morphy("abaci", 'n') == std::vector<std::string>{"abacus"});  // noun.exc
  CHECK(wn.morphy("book", 'a').empty());
  CHECK(wn.synonyms("qwertyuiop").empty());
  // Adjective markers such as "(a)" / "(p)" are stripped from lemma names.
  for (const auto& s : wn.synonyms("galore")) CHECK(s.find('(') == std::string::npos);
}

TEST_CASE("WordNet: a missing database file is an input error naming the file") {
  const std::string dir = (std::filesystem::temp_directory_path() / "hse-no-wordnet-here").string();
  try {
    WordNet::load(dir);
    FAIL("expected an error");
  } catch (const hse::cli::Error& e) {
    CHECK(e.code() == hse::cli::Exit::incompatible);
    CHECK(e.file() == dir + "/index.noun");
  }
}

TEST_CASE("meteor: nltk's documented examples and edge cases") {
  if (!have_wordnet()) {
    HSE_SKIP_OR_FAIL("no WordNet database at /usr/share/wordnet (Debian wordnet-base)");
  }
  const WordNet& wn = WordNet::load(kWordNetDir);
  const std::vector<std::string> hyp1 = {"It", "is", "a", "guide", "to", "action", "which", "ensures", "that",
                                         "the", "military", "always", "obeys", "the", "commands", "of", "the",
                                         "party"};
  const std::vector<std::string> ref1 = {"It", "is", "a", "guide", "to", "action", "that", "ensures", "that",
                                         "the", "military", "will", "forever", "heed", "Party", "commands"};
  const std::vector<std::string> ref2 = {"It", "is", "the", "guiding", "principle", "which", "guarantees",
                                         "the", "military", "forces", "always", "being", "under", "the",
                                         "command", "of", "the", "Party"};
  CHECK(std::round(meteor(ref1, hyp1, wn) * 1e4) / 1e4 == doctest::Approx(0.6944));
  CHECK(std::round(meteor({ref1, ref2}, hyp1, wn) * 1e4) / 1e4 == doctest::Approx(0.6944));
  CHECK(meteor(toks("this is a cat"), toks("non matching hypothesis"), wn) == 0.0);
  CHECK(meteor(toks("the heart is enlarged"), toks(""), wn) == 0.0);
  CHECK(meteor(toks(""), toks("the heart"), wn) == 0.0);
  // Values computed with nltk 3.10 (meteor_score([ref.split()], hyp.split(), wordnet=wn)).
  CHECK(meteor(toks("the heart is large"), toks("the heart is big"), wn) == doctest::Approx(0.7361111111111112));
  CHECK(meteor(toks("the heart is enlarged"), toks("the hearts are enlarged"), wn) ==
        doctest::Approx(0.6388888888888888));
  CHECK(meteor(toks("lesion is small"), toks("nodule is little"), wn) == doctest::Approx(0.16666666666666666));
  CHECK(meteor(toks("lesion is small"), toks("lesion is little"), wn) == doctest::Approx(0.625));
  const auto st = meteor_stats(toks("a b c d"), toks("a b c d"), wn);
  CHECK(st.matches == 4);
  CHECK(st.chunks == 1);
  CHECK(st.score == doctest::Approx(1.0 - 0.5 / 64));
  CHECK_THROWS_AS(meteor(std::vector<std::vector<std::string>>{}, toks("a"), wn), hse::cli::Error);
}

TEST_CASE("driver: meteor") {
  run_driver("HSE_METEOR_IN", "HSE_METEOR_OUT", [](const nlohmann::json& j) {
    const WordNet& wn = WordNet::load(std::getenv("HSE_WORDNET_DIR") ? std::getenv("HSE_WORDNET_DIR") : kWordNetDir);
    const auto st = meteor_stats(meteor_tokenize(j.at("ref").get<std::string>()),
                                 meteor_tokenize(j.at("pred").get<std::string>()), wn);
    return nlohmann::json{{"score", st.score},  {"matches", st.matches}, {"chunks", st.chunks},
                          {"exact", st.exact},  {"stem", st.stem},       {"synonym", st.synonym}};
  });
}

TEST_CASE("driver: porter") {
  const PorterStemmer ps;
  run_driver("HSE_PORTER_IN", "HSE_PORTER_OUT",
             [&](const nlohmann::json& j) { return nlohmann::json{{"stem", ps.stem(j.at("word").get<std::string>())}}; });
}

TEST_CASE("driver: text") {
  run_driver("HSE_TEXT_IN", "HSE_TEXT_OUT", [](const nlohmann::json& j) {
    const auto text = j.at("text").get<std::string>();
    return nlohmann::json{{"lower", py_lower(text)}, {"split", py_split(text)}};
  });
}

TEST_CASE("driver: wordnet") {
  run_driver("HSE_WORDNET_IN", "HSE_WORDNET_OUT", [](const nlohmann::json& j) {
    const WordNet& wn = WordNet::load(std::getenv("HSE_WORDNET_DIR") ? std::getenv("HSE_WORDNET_DIR") : kWordNetDir);
    return nlohmann::json{{"synonyms", wn.synonyms(j.at("word").get<std::string>())}};
  });
}
