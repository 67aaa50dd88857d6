// BLEU (sacrebleu, HF evaluate) and ROUGE (rouge_score) on hand-computed cases,
// plus the data-driven "driver" case used by tests/parity/test_bleu_rouge.py.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hse/eval/bleu.h"
#include "hse/eval/rouge.h"
#include "hse/eval/porter.h"

using namespace hse::eval;
using doctest::Approx;

TEST_CASE("tokenize_13a: sacrebleu's 13a tokenizer") {
  CHECK(tokenize_13a("Hello, world!") == "Hello , world !");
  CHECK(tokenize_13a("3.5 mm, 12x8 mm.") == "3.5 mm , 12x8 mm .");
  CHECK(tokenize_13a("1,000 and a,b") == "1,000 and a , b");
  CHECK(tokenize_13a("5-6 cm well-defined") == "5 - 6 cm well-defined");
  CHECK(tokenize_13a("&quot;x&quot; &amp;lt;") == "\" x \" <");
  CHECK(tokenize_13a("co-\nexist<skipped> end") == "coexist end");
  CHECK(tokenize_13a("Hi... there.") == "Hi . . . there .");
  CHECK(tokenize_13a("x.5 3.x") == "x . 5 3 . x");
  CHECK(tokenize_13a("1.-2.") == "1 . -2 .");
  CHECK(tokenize_13a("(left) [right] {x}") == "( left ) [ right ] { x }");
  CHECK(tokenize_13a("it's 10-fold e.g. U.S.A.") == "it's 10 - fold e . g . U . S . A .");
  CHECK(tokenize_13a("Lesion: 2.5cm; no change?") == "Lesion : 2.5cm ; no change ?");
  CHECK(tokenize_13a("a\tb\rc") == "a b c");
  CHECK(tokenize_13a("") == "");
  CHECK(tokenize_13a("   ") == "");
  // Unicode: non-ASCII punctuation is not split; Unicode whitespace separates.
  CHECK(tokenize_13a("Gr\u00f6\u00dfe \u2265 3 mm \u201cquoted\u201d.") == "Gr\u00f6\u00dfe \u2265 3 mm \u201cquoted\u201d .");
  CHECK(tokenize_13a("a\u00a0b\u3000c\u2009d") == "a b c d");
  CHECK(tokenize_13a("\u80ba\u7ed3\u8282.") == "\u80ba\u7ed3\u8282 .");
  CHECK(tokens_13a("a, b").size() == 3);
  // Invalid UTF-8 bytes survive as opaque characters.
  CHECK(tokenize_13a("a\xff.b") == "a\xff . b");
}

TEST_CASE("sacrebleu BLEU: hand-computed") {
  // p = 5/6, 3/5, 2/4, 1/3; BP = 1.
  const auto r = corpus_bleu({"the cat sat on the mat"}, {"the cat sat on a mat"});
  CHECK(r.precisions[0] == Approx(5.0 / 6));
  CHECK(r.precisions[1] == Approx(3.0 / 5));
  CHECK(r.precisions[2] == Approx(2.0 / 4));
  CHECK(r.precisions[3] == Approx(1.0 / 3));
  CHECK(r.bleu[0] == Approx(5.0 / 6));
  CHECK(r.bleu[1] == Approx(std::sqrt(0.5)));
  CHECK(r.bleu[2] == Approx(std::cbrt(0.25)));
  CHECK(r.bleu[3] == Approx(std::pow(1.0 / 12, 0.25)));
  CHECK(r.bp == 1.0);
  CHECK(r.sys_len == 6);
  CHECK(r.ref_len == 6);
  // add-k (k = 1) touches orders > 1 only: p2 = 4/6.
  const auto k = corpus_bleu({"the cat sat on the mat"}, {"the cat sat on a mat"}, Smooth::add_k);
  CHECK(k.bleu[1] == Approx(std::sqrt(5.0 / 6 * 4.0 / 6)));

  // Brevity: BP = exp(1 - 6/2). Corpus BLEU-3/4 are 0 (no trigram in the
  // hypothesis); sentence BLEU uses the effective order.
  const auto c = corpus_bleu({"the cat"}, {"the cat sat on the mat"});
  CHECK(c.bp == Approx(std::exp(-2.0)));
  CHECK(c.bleu[0] == Approx(std::exp(-2.0)));
  CHECK(c.bleu[1] == Approx(std::exp(-2.0)));
  CHECK(c.bleu[2] == 0.0);
  CHECK(c.bleu[3] == 0.0);
  const auto s = sentence_bleu("the cat", "the cat sat on the mat");
  CHECK(s.bleu[2] == Approx(std::exp(-2.0)));
  CHECK(s.bleu[3] == Approx(std::exp(-2.0)));

  // p = 3/4, 1/3, 0/2, 0/1.
  const auto n = sentence_bleu("a b c d", "a b x d");
  CHECK(n.bleu[0] == Approx(0.75));
  CHECK(n.bleu[1] == Approx(0.5));
  CHECK(n.bleu[2] == 0.0);
  CHECK(n.bleu[3] == 0.0);
  // exp: p3 = 1/(2*2), p4 = 1/(4*1) -> (0.75 * 1/3 * 1/4 * 1/4)^(1/4) = 2^-1.5
  CHECK(sentence_bleu("a b c d", "a b x d", Smooth::exp).bleu[3] == Approx(std::pow(2.0, -1.5)));
  // floor 0.1: p3 = 0.1/2, p4 = 0.1/1
  CHECK(sentence_bleu("a b c d", "a b x d", Smooth::floor).bleu[3] == Approx(std::pow(0.75 / 3 * 0.05 * 0.1, 0.25)));
  CHECK(sentence_bleu("a b c d", "a b x d", Smooth::floor, 0.2).bleu[3] == Approx(std::pow(0.75 / 3 * 0.1 * 0.2, 0.25)));
  // add-k 1: p2 = 2/4, p3 = 1/3, p4 = 1/2 -> (1/16)^(1/4)
  CHECK(sentence_bleu("a b c d", "a b x d", Smooth::add_k).bleu[3] == Approx(0.5));

  // Degenerate inputs.
  const auto e = corpus_bleu({""}, {"the cat"});
  CHECK(e.bleu[0] == 0.0);
  CHECK(e.bp == 0.0);
  CHECK(corpus_bleu({"the cat"}, {""}).bleu[0] == 0.0);
  CHECK(corpus_bleu({""}, {""}).bleu[3] == 0.0);
  CHECK(corpus_bleu({"x y"}, {"a b"}, Smooth::exp).bleu[3] == 0.0);  // no match at all: 0 whatever the smoothing
  CHECK_THROWS_AS(corpus_bleu({"a"}, {}), std::invalid_argument);

  // Corpus statistics are summed before the geometric mean.
  const auto two = corpus_bleu({"the cat sat on the mat", "a b c d"}, {"the cat sat on a mat", "a b x d"});
  CHECK(two.precisions[0] == Approx(8.0 / 10));
  CHECK(two.precisions[1] == Approx(4.0 / 8));
  CHECK(two.precisions[2] == Approx(2.0 / 6));
  CHECK(two.precisions[3] == Approx(1.0 / 4));
  CHECK(two.bleu[3] == Approx(std::pow(0.8 * 0.5 * (1.0 / 3) * 0.25, 0.25)));

  CHECK(parse_smooth("add-k") == Smooth::add_k);
  CHECK(parse_smooth("exp") == Smooth::exp);
  CHECK_THROWS_AS(parse_smooth("bogus"), std::invalid_argument);
}

TEST_CASE("HF evaluate bleu precisions (HSENet's BLEU-n)") {
  const auto p = hf_bleu_precisions("the cat sat on the mat", "the cat sat on a mat");
  CHECK(p[0] == Approx(5.0 / 6));
  CHECK(p[1] == Approx(3.0 / 5));
  CHECK(p[2] == Approx(2.0 / 4));
  CHECK(p[3] == Approx(1.0 / 3));
  // No 3-gram or 4-gram possible: precision 0 (smooth=False).
  const auto q = hf_bleu_precisions("the cat", "the cat sat");
  CHECK(q[0] == 1.0);
  CHECK(q[1] == 1.0);
  CHECK(q[2] == 0.0);
  CHECK(q[3] == 0.0);
  const auto z = hf_bleu_precisions("", "the cat");
  CHECK(z[0] == 0.0);
  // Full compute_bleu: geo mean 0 when a precision is 0; BP = exp(1 - 3/2).
  const auto b = hf_bleu("the cat", "the cat sat", 2);
  CHECK(b.bleu == Approx(std::exp(1 - 1.5)));
  CHECK(b.brevity_penalty == Approx(std::exp(1 - 1.5)));
  CHECK(hf_bleu("the cat", "the cat sat", 4).bleu == 0.0);
  // Python raises ZeroDivisionError for an empty prediction or reference.
  CHECK(std::isnan(hf_bleu("", "the cat").brevity_penalty));
  CHECK(std::isnan(hf_bleu("the cat", "").length_ratio));
  // HF does not rstrip: "-\n" at the end is joined (sacrebleu strips first).
  CHECK(tokens_13a("end-\n") == std::vector<std::string>{"end"});
  CHECK(hf_bleu_precisions("end-\n", "end-")[0] == 0.0);
  CHECK(corpus_bleu({"end-\n"}, {"end-"}).bleu[0] == Approx(1.0));
}

TEST_CASE("rouge_score: tokenizer, stemmer, scores") {
  CHECK(rouge_tokenize("The cat, sat!") == std::vector<std::string>{"the", "cat", "sat"});
  CHECK(rouge_tokenize("3.5 mm 12x8") == std::vector<std::string>{"3", "5", "mm", "12x8"});
  CHECK(rouge_tokenize("caf\u00e9 \u00b5m") == std::vector<std::string>{"caf", "m"});
  CHECK(rouge_tokenize("\u0130z 5\u212a") == std::vector<std::string>{"i", "z", "5k"});
  CHECK(rouge_tokenize("").empty());
  CHECK(rouge_tokenize("Kidneys are enlarged", true) == std::vector<std::string>{"kidney", "are", "enlarg"});

  const char* cases[][2] = {{"generalization", "gener"}, {"opacities", "opac"},     {"nodules", "nodul"},
                            {"dying", "die"},             {"running", "run"},        {"hopping", "hop"},
                            {"falling", "fall"},          {"hoping", "hope"},        {"skies", "sky"},
                            {"effusion", "effus"},        {"enlargement", "enlarg"}, {"calcified", "calcifi"},
                            {"lymphadenopathy", "lymphadenopathi"}, {"consolidation", "consolid"},
                            {"hypoattenuating", "hypoattenu"}};
  for (const auto& c : cases) CHECK(PorterStemmer().stem(c[0]) == c[1]);

  const auto r = rouge("the cat is on the mat", "The cat sat on the mat.");
  CHECK(r.rouge1.precision == Approx(5.0 / 6));
  CHECK(r.rouge1.recall == Approx(5.0 / 6));
  CHECK(r.rouge1.fmeasure == Approx(5.0 / 6));
  CHECK(r.rouge2.precision == Approx(3.0 / 5));
  CHECK(r.rouge2.fmeasure == Approx(3.0 / 5));
  CHECK(r.rougeL.fmeasure == Approx(5.0 / 6));

  const auto s = rouge("kidney enlargement", "Kidneys are enlarged", true);
  CHECK(s.rouge1.precision == 1.0);
  CHECK(s.rouge1.recall == Approx(2.0 / 3));
  CHECK(s.rouge1.fmeasure == Approx(0.8));
  CHECK(s.rouge2.fmeasure == 0.0);
  CHECK(s.rougeL.fmeasure == Approx(0.8));
  CHECK(rouge("kidney enlargement", "Kidneys are enlarged", false).rouge1.fmeasure == 0.0);

  const auto e = rouge("", "the cat");
  CHECK(e.rouge1.precision == 0.0);
  CHECK(e.rouge1.recall == 0.0);
  CHECK(e.rougeL.fmeasure == 0.0);
  CHECK(rouge_fmeasure(0, 0) == 0.0);
}

// ---------------------------------------------------------------------------
// Driver for tests/parity/test_bleu_rouge.py: does nothing unless
// HSE_BLEU_ROUGE_IN names a JSONL file. Each input line is either
// {"pred": ..., "ref": ...} (one output line of all metrics; the pairs also
// make up the corpus whose BLEU is written as a last {"corpus": ...} line) or
// {"words": [...]} (one output line {"stems": [...]}).
namespace {
nlohmann::json bleu_json(const BleuResult& b) {
  return {{"bleu", {b.bleu[0], b.bleu[1], b.bleu[2], b.bleu[3]}},
          {"precisions", {b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3]}},
          {"bp", b.bp},
          {"sys_len", b.sys_len},
          {"ref_len", b.ref_len}};
}
nlohmann::json hf_json(const HfBleu& h) {
  return {{"bleu", h.bleu},
          {"precisions", h.precisions},
          {"brevity_penalty", h.brevity_penalty},
          {"length_ratio", h.length_ratio},
          {"translation_length", h.translation_length},
          {"reference_length", h.reference_length}};
}
nlohmann::json rouge_json(const RougeResult& r) {
  auto one = [](const RougeScore& s) { return nlohmann::json{s.precision, s.recall, s.fmeasure}; };
  return {{"rouge1", one(r.rouge1)}, {"rouge2", one(r.rouge2)}, {"rougeL", one(r.rougeL)}};
}
struct Variant {
  const char* name;
  Smooth s;
  double v;
};
const Variant kVariants[] = {{"none", Smooth::none, 0},  {"exp", Smooth::exp, 0},     {"floor", Smooth::floor, 0},
                             {"add-k", Smooth::add_k, 0}, {"floor0.2", Smooth::floor, 0.2}, {"add-k2", Smooth::add_k, 2}};
}  // namespace

TEST_CASE("driver: JSONL in, metrics out (parity test only)") {
  const char* in_path = std::getenv("HSE_BLEU_ROUGE_IN");
  const char* out_path = std::getenv("HSE_BLEU_ROUGE_OUT");
  if (!in_path || !out_path) return;
  std::ifstream in(in_path);
  REQUIRE(in.good());
  std::ofstream out(out_path);
  REQUIRE(out.good());
  std::vector<std::string> hyps, refs;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    if (j.contains("words")) {
      nlohmann::json stems = nlohmann::json::array();
      for (const auto& w : j["words"]) stems.push_back(PorterStemmer().stem(w.get<std::string>()));
      out << nlohmann::json{{"stems", stems}}.dump() << "\n";
      continue;
    }
    const std::string pred = j.at("pred").get<std::string>(), ref = j.at("ref").get<std::string>();
    hyps.push_back(pred);
    refs.push_back(ref);
    nlohmann::json o;
    o["tok_pred"] = tokenize_13a(pred);
    o["tok_ref"] = tokenize_13a(ref);
    for (const auto& v : kVariants) o["sentence"][v.name] = bleu_json(sentence_bleu(pred, ref, v.s, v.v));
    const auto p = hf_bleu_precisions(pred, ref);
    o["hf_precisions"] = {p[0], p[1], p[2], p[3]};
    o["hf4"] = hf_json(hf_bleu(pred, ref, 4));
    o["hf1"] = hf_json(hf_bleu(pred, ref, 1));
    o["rouge"] = rouge_json(rouge(pred, ref, false));
    o["rouge_stem"] = rouge_json(rouge(pred, ref, true));
    o["rtok_pred"] = rouge_tokenize(pred, false);
    o["rtok_ref_stem"] = rouge_tokenize(ref, true);
    out << o.dump() << "\n";
  }
  nlohmann::json c;
  for (const auto& v : kVariants) c[v.name] = bleu_json(corpus_bleu(hyps, refs, v.s, v.v));
  out << nlohmann::json{{"corpus", c}}.dump() << "\n";
  REQUIRE(out.good());
}
