// hse::eval — sentence-level METEOR exactly as nltk.translate.meteor_score
// (nltk 3.9/3.10) computes it, which is what Hugging Face `evaluate`'s "meteor"
// metric calls for each (prediction, reference) pair before averaging.
//
// nltk's algorithm (no Java METEOR 1.5 paraphrase tables, no chunk search):
//   1. preprocess: str.lower() on every token;
//   2. exact stage: for each hypothesis word, right to left, match the rightmost
//      unmatched reference word equal to it;
//   3. stem stage: the same on the PorterStemmer() stems of the words left over —
//      and the left-over lists *stay stemmed* for the next stage (an nltk quirk);
//   4. synonym stage: for each left-over (stemmed) hypothesis word, right to left,
//      the lemma names without '_' of wordnet.synsets(word), plus the word itself,
//      match the rightmost unmatched (stemmed) reference word among them;
//   5. P = m/|hyp|, R = m/|ref|, Fmean = P·R / (α·P + (1-α)·R);
//      chunks = runs of matches adjacent in both sentences (matches sorted by
//      hypothesis position); penalty = γ·(chunks/m)^β; score = (1-penalty)·Fmean;
//      0 when m, |hyp| or |ref| is 0.
//
// Tokenization: nltk's meteor_score takes pre-tokenized input. Recent HF
// `evaluate` (nltk >= 3.6.5) tokenizes with nltk.word_tokenize (Punkt sentence
// splitting + Treebank word rules), which needs the punkt_tab model; hse instead
// tokenizes with Python's str.split() (meteor_tokenize), the way older `evaluate`
// versions and most hand-rolled scripts called meteor_score. Scores therefore
// match nltk.meteor_score on text.split() tokens exactly, and differ from
// word_tokenize-based numbers where punctuation is attached to words.
#pragma once

#include <string>
#include <vector>

#include "hse/eval/wordnet.h"

namespace hse::eval {

struct MeteorParams {
  double alpha = 0.9, beta = 3.0, gamma = 0.5;
};

// The pieces of one score, for reports and debugging.
struct MeteorStats {
  std::size_t hyp_len = 0, ref_len = 0;
  std::size_t exact = 0, stem = 0, synonym = 0;  // matches per stage
  std::size_t matches = 0, chunks = 0;
  double precision = 0, recall = 0, fmean = 0, penalty = 0, score = 0;
};

// nltk.translate.meteor_score.single_meteor_score(ref_tokens, hyp_tokens, wordnet=wn, ...)
// (= meteor_score([ref_tokens], hyp_tokens, ...)).
double meteor(const std::vector<std::string>& ref_tokens, const std::vector<std::string>& hyp_tokens,
              const WordNet& wn, const MeteorParams& p = {});
MeteorStats meteor_stats(const std::vector<std::string>& ref_tokens, const std::vector<std::string>& hyp_tokens,
                         const WordNet& wn, const MeteorParams& p = {});

// nltk's meteor_score(references, hypothesis): the best score over several
// references. Throws cli::Error (usage) when `refs` is empty, where nltk raises.
double meteor(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyp_tokens,
              const WordNet& wn, const MeteorParams& p = {});

// Python's text.lower().split(): lowercase (full Unicode, as str.lower) and split on
// Unicode whitespace. meteor() lowercases each token again, which changes nothing,
// so meteor(meteor_tokenize(ref), meteor_tokenize(pred), wn) equals nltk's
// meteor_score([ref.split()], pred.split(), wordnet=wn).
std::vector<std::string> meteor_tokenize(const std::string& text);

}  // namespace hse::eval
