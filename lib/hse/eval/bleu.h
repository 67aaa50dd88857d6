// hse::eval — BLEU as computed by sacrebleu (corpus and sentence level) and by
// HF `evaluate`'s "bleu" metric (tensorflow/nmt compute_bleu), both over
// sacrebleu's 13a tokenisation.
//
// Inputs are UTF-8 strings; they are processed as Unicode code points, as the
// Python libraries do. Bytes that are not valid UTF-8 are kept as opaque
// characters (they never match any punctuation or whitespace rule).
//
// Reference implementations (checked by tests/parity/test_bleu_rouge.py):
//   sacrebleu 2.x  metrics/bleu.py, tokenizers/tokenizer_13a.py, tokenizer_re.py
//   evaluate       metrics/bleu (tokenizer_13a.py + tensorflow/nmt nmt_bleu.py)
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace hse::eval {

// sacrebleu's 13a tokenizer (tokenizer_13a.Tokenizer13a()(line)), exactly:
// drops "<skipped>", joins "-\n", turns "\n" into " ", unescapes &quot; &amp;
// &lt; &gt;, splits ASCII punctuation, splits '.'/',' unless between digits,
// splits '-' after a digit, then collapses Unicode whitespace (str.split()).
// Tokens are separated by single spaces. No rstrip (see tokens_13a_bleu).
std::string tokenize_13a(const std::string& line);
// The same, as a token list (what HF evaluate's copy of Tokenizer13a returns).
std::vector<std::string> tokens_13a(const std::string& line);

// sacrebleu's smooth_method: none, floor (Chen & Cherry method 1), add-k
// (method 2), exp (method 3, NIST/mteval). The hse default is none (sacrebleu's
// BLEU class defaults to exp; sacrebleu.sentence_bleu too).
enum class Smooth { none, floor, add_k, exp };
// "none", "floor", "add-k" (or "add_k"), "exp"; throws std::invalid_argument otherwise.
Smooth parse_smooth(const std::string& name);
const char* smooth_name(Smooth s);
// sacrebleu's SMOOTH_DEFAULTS: floor 0.1, add-k 1, otherwise 0.
double smooth_default(Smooth s);

// Sufficient statistics of one segment (or a sum of segments), orders 1..4.
struct BleuStats {
  std::size_t sys_len = 0, ref_len = 0;
  std::array<std::size_t, 4> correct{}, total{};
  BleuStats& operator+=(const BleuStats& o);
};
// sacrebleu's segment statistics for one hypothesis against one reference:
// both are rstripped (Python str.rstrip) and 13a-tokenised, n-gram counts are
// clipped by the reference counts.
BleuStats bleu_stats(const std::string& hyp, const std::string& ref);

struct BleuResult {
  // bleu[n-1] = cumulative BLEU-n (geometric mean of p1..pn times brevity
  // penalty) in [0,1], i.e. sacrebleu.BLEU(max_ngram_order=n, ...).score / 100.
  double bleu[4];
  // sacrebleu's precisions (with smoothing applied) as fractions, orders 1..4.
  double precisions[4];
  double bp;  // brevity penalty: exp(1 - ref/sys) when sys < ref (0 when sys = 0), else 1
  std::size_t sys_len, ref_len;
};

// sacrebleu's BLEU.compute_bleu on summed statistics, for every max order 1..4.
// smooth_value <= 0 means sacrebleu's default for the method (its None).
// effective_order: sacrebleu's flag (on for sentence BLEU): orders whose total
// n-gram count is 0 are left out of the geometric mean.
BleuResult bleu_from_stats(const BleuStats& stats, Smooth s = Smooth::none, double smooth_value = 0,
                           bool effective_order = false);

// sacrebleu.BLEU(max_ngram_order=n, smooth_method=s, smooth_value=v,
// tokenize='13a').corpus_score(hyps, [refs]) for n = 1..4 (one reference per
// hypothesis). Throws std::invalid_argument when the sizes differ.
BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                       Smooth s = Smooth::none, double smooth_value = 0);
// sacrebleu.sentence_bleu(hyp, [ref], smooth_method=s, smooth_value=v,
// use_effective_order=True) with max_ngram_order = n, for n = 1..4.
BleuResult sentence_bleu(const std::string& hyp, const std::string& ref, Smooth s = Smooth::none,
                         double smooth_value = 0);

// HF evaluate's "bleu" (tensorflow/nmt compute_bleu over Tokenizer13a tokens,
// no rstrip, smooth=False) for one prediction/reference pair.
struct HfBleu {
  double bleu = 0;                      // geometric mean x BP (0 when some p_n = 0)
  std::vector<double> precisions;       // p_1..p_max_order as fractions (0 when no n-gram possible)
  double brevity_penalty = 0;           // NaN where Python raises ZeroDivisionError (empty pred or ref)
  double length_ratio = 0;              // pred/ref token counts; NaN when the reference is empty
  std::size_t translation_length = 0, reference_length = 0;
};
HfBleu hf_bleu(const std::string& pred, const std::string& ref, int max_order = 4);
// Its "precisions" (p1..p4): HSENet's "BLEU-n" columns (n-gram precision only,
// no brevity penalty, no geometric mean).
std::array<double, 4> hf_bleu_precisions(const std::string& pred, const std::string& ref);

}  // namespace hse::eval
