// nltk.translate.meteor_score, step for step (see meteor.h).
#include "hse/eval/meteor.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "hse/cli/cli.h"
#include "hse/eval/porter.h"

namespace hse::eval {

namespace {

// (original position, word) as nltk's enumerated lists.
using Enum = std::vector<std::pair<std::size_t, std::string>>;
using Matches = std::vector<std::pair<std::size_t, std::size_t>>;  // (hyp position, ref position)

// nltk _match_enums(): hypothesis words right to left, each taking the rightmost
// still-unused reference word with the same text. Removes the matched pairs from
// both lists.
void match_enums(Enum& hyp, Enum& ref, Matches& out, std::size_t& count) {
  std::unordered_map<std::string_view, std::vector<std::size_t>> positions;
  for (std::size_t j = 0; j < ref.size(); ++j) positions[ref[j].second].push_back(j);
  std::vector<bool> hyp_used(hyp.size()), ref_used(ref.size());
  for (std::size_t i = hyp.size(); i-- > 0;) {
    auto it = positions.find(hyp[i].second);
    if (it == positions.end() || it->second.empty()) continue;
    const std::size_t j = it->second.back();
    it->second.pop_back();
    hyp_used[i] = true;
    ref_used[j] = true;
    out.emplace_back(hyp[i].first, ref[j].first);
    ++count;
  }
  Enum h, r;
  for (std::size_t i = 0; i < hyp.size(); ++i)
    if (!hyp_used[i]) h.push_back(std::move(hyp[i]));
  for (std::size_t j = 0; j < ref.size(); ++j)
    if (!ref_used[j]) r.push_back(std::move(ref[j]));
  hyp = std::move(h);
  ref = std::move(r);
}

// nltk _enum_wordnetsyn_match(): for each hypothesis word right to left, its
// synonyms (lemma names without '_', plus the word) pick the rightmost unused
// reference word among them.
void wordnet_match(Enum& hyp, Enum& ref, const WordNet& wn, Matches& out, std::size_t& count) {
  std::unordered_map<std::string, std::vector<std::size_t>> positions;
  for (std::size_t j = 0; j < ref.size(); ++j) positions[ref[j].second].push_back(j);
  std::vector<bool> hyp_used(hyp.size()), ref_used(ref.size());
  std::unordered_map<std::string, std::vector<std::string>> syn_cache;  // repeated words in one pair
  for (std::size_t i = hyp.size(); i-- > 0;) {
    const std::string& word = hyp[i].second;
    auto cached = syn_cache.find(word);
    if (cached == syn_cache.end()) {
      std::vector<std::string> syns;
      for (auto& s : wn.synonyms(word))
        if (s.find('_') == std::string::npos) syns.push_back(std::move(s));
      syns.push_back(word);
      cached = syn_cache.emplace(word, std::move(syns)).first;
    }
    long best_j = -1;
    std::vector<std::size_t>* best = nullptr;
    for (const std::string& syn : cached->second) {
      auto it = positions.find(syn);
      if (it == positions.end() || it->second.empty()) continue;
      if (static_cast<long>(it->second.back()) > best_j) {
        best_j = static_cast<long>(it->second.back());
        best = &it->second;
      }
    }
    if (!best) continue;
    best->pop_back();
    hyp_used[i] = true;
    ref_used[static_cast<std::size_t>(best_j)] = true;
    out.emplace_back(hyp[i].first, ref[static_cast<std::size_t>(best_j)].first);
    ++count;
  }
  Enum h, r;
  for (std::size_t i = 0; i < hyp.size(); ++i)
    if (!hyp_used[i]) h.push_back(std::move(hyp[i]));
  for (std::size_t j = 0; j < ref.size(); ++j)
    if (!ref_used[j]) r.push_back(std::move(ref[j]));
  hyp = std::move(h);
  ref = std::move(r);
}

Enum enumerate_lower(const std::vector<std::string>& tokens) {
  Enum e;
  e.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) e.emplace_back(i, py_lower(tokens[i]));
  return e;
}

// nltk _count_chunks() on matches sorted by hypothesis position.
std::size_t count_chunks(const Matches& m) {
  std::size_t chunks = 1;
  for (std::size_t i = 0; i + 1 < m.size(); ++i)
    if (!(m[i + 1].first == m[i].first + 1 && m[i + 1].second == m[i].second + 1)) ++chunks;
  return chunks;
}

}  // namespace

MeteorStats meteor_stats(const std::vector<std::string>& ref_tokens, const std::vector<std::string>& hyp_tokens,
                         const WordNet& wn, const MeteorParams& p) {
  static const PorterStemmer stemmer;
  MeteorStats st;
  Enum hyp = enumerate_lower(hyp_tokens);
  Enum ref = enumerate_lower(ref_tokens);
  st.hyp_len = hyp.size();
  st.ref_len = ref.size();

  Matches matches;
  match_enums(hyp, ref, matches, st.exact);
  for (auto& w : hyp) w.second = stemmer.stem(w.second);
  for (auto& w : ref) w.second = stemmer.stem(w.second);
  match_enums(hyp, ref, matches, st.stem);
  wordnet_match(hyp, ref, wn, matches, st.synonym);
  std::sort(matches.begin(), matches.end());  // hypothesis positions are unique

  st.matches = matches.size();
  if (st.hyp_len == 0 || st.ref_len == 0 || st.matches == 0) return st;  // nltk's ZeroDivisionError -> 0.0
  const double m = static_cast<double>(st.matches);
  st.precision = m / static_cast<double>(st.hyp_len);
  st.recall = m / static_cast<double>(st.ref_len);
  const double denom = p.alpha * st.precision + (1 - p.alpha) * st.recall;
  if (denom == 0.0) {
    st.precision = st.recall = 0;
    return st;
  }
  st.fmean = (st.precision * st.recall) / denom;
  st.chunks = count_chunks(matches);
  const double frag = static_cast<double>(st.chunks) / m;
  st.penalty = p.gamma * std::pow(frag, p.beta);
  st.score = (1 - st.penalty) * st.fmean;
  return st;
}

double meteor(const std::vector<std::string>& ref_tokens, const std::vector<std::string>& hyp_tokens,
              const WordNet& wn, const MeteorParams& p) {
  return meteor_stats(ref_tokens, hyp_tokens, wn, p).score;
}

double meteor(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyp_tokens,
              const WordNet& wn, const MeteorParams& p) {
  if (refs.empty()) cli::fail_usage("meteor: no reference given");
  double best = meteor(refs.front(), hyp_tokens, wn, p);
  for (std::size_t k = 1; k < refs.size(); ++k) best = std::max(best, meteor(refs[k], hyp_tokens, wn, p));
  return best;
}

std::vector<std::string> meteor_tokenize(const std::string& text) { return py_split(py_lower(text)); }

}  // namespace hse::eval
