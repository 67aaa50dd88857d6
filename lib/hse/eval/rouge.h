// hse::eval — ROUGE-1/2/L as computed by Google's rouge_score
// (rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=stem)),
// which HF evaluate's "rouge" metric wraps.
//
// Reference: rouge_score 0.1.x tokenize.py, rouge_scorer.py, scoring.py;
// checked by tests/parity/test_bleu_rouge.py.
#pragma once

#include <string>
#include <vector>

namespace hse::eval {

struct RougeScore {
  double precision, recall, fmeasure;
};
struct RougeResult {
  RougeScore rouge1, rouge2, rougeL;
};

// rouge_score's default tokenizer: Python-lowercase the text, replace every run
// of characters outside [a-z0-9] by a space, split, Porter-stem tokens longer
// than 3 characters when `stem` (nltk PorterStemmer, see porter.h), keep
// the non-empty [a-z0-9]+ tokens. Input is UTF-8: non-ASCII characters are
// separators, except U+0130 (lowercases to "i" + U+0307) and U+212A KELVIN
// SIGN (lowercases to "k").
std::vector<std::string> rouge_tokenize(const std::string& text, bool stem = false);

// _score_ngrams on n-gram Counters: overlap = sum over target n-grams of
// min(count_target, count_pred); P = overlap/max(#pred n-grams,1),
// R = overlap/max(#target n-grams,1).
RougeScore rouge_n(const std::vector<std::string>& target, const std::vector<std::string>& pred, int n);
// _score_lcs: LCS length over len(pred) and len(target); all 0 when either is empty.
RougeScore rouge_lcs(const std::vector<std::string>& target, const std::vector<std::string>& pred);
// scoring.fmeasure: 2PR/(P+R), 0 when P+R = 0.
double rouge_fmeasure(double precision, double recall);

// RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=stem).score(target=ref, prediction=pred)
RougeResult rouge(const std::string& pred, const std::string& ref, bool stem = false);

}  // namespace hse::eval
