// Retrieval metrics (see retrieval.h).
#include "hse/eval/retrieval.h"

#include <algorithm>
#include <numeric>

#include "hse/cli/cli.h"

namespace hse::eval {

double recall_at_k(const std::vector<std::vector<std::string>>& ranked_items_per_query,
                   const std::vector<std::string>& positive_per_query, int k) {
  if (ranked_items_per_query.size() != positive_per_query.size())
    cli::fail_input({}, "recall@K: {} rankings but {} paired items", ranked_items_per_query.size(),
                    positive_per_query.size());
  if (k < 1) cli::fail_input({}, "recall@K: K must be at least 1, got {}", k);
  if (ranked_items_per_query.empty()) return 0.0;
  long hits = 0;
  for (std::size_t q = 0; q < ranked_items_per_query.size(); ++q) {
    const auto& r = ranked_items_per_query[q];
    const auto end = r.begin() + std::min<std::ptrdiff_t>(k, static_cast<std::ptrdiff_t>(r.size()));
    hits += std::find(r.begin(), end, positive_per_query[q]) != end;
  }
  return static_cast<double>(hits) / static_cast<double>(ranked_items_per_query.size());
}

double jaccard(const LabelVec& a, const LabelVec& b) {
  int inter = 0, uni = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool x = a[i] == 1, y = b[i] == 1;
    inter += x && y;
    uni += x || y;
  }
  return uni > 0 ? static_cast<double>(inter) / uni : 0.0;
}

std::vector<int> rank_descending(const std::vector<double>& scores, int k) {
  std::vector<int> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
  });
  if (k >= 0 && static_cast<std::size_t>(k) < idx.size()) idx.resize(static_cast<std::size_t>(k));
  return idx;
}

namespace {

const LabelVec& labels_of(const LabelMap& labels, const std::string& id) {
  const auto it = labels.find(id);
  if (it == labels.end()) cli::fail_input({}, "V2V: no labels for volume '{}'", id);
  return it->second;
}

bool has_positive(const LabelVec& v) {
  return std::any_of(v.begin(), v.end(), [](int x) { return x == 1; });
}

// per_k[j][q] = mean Jaccard of query q over its top-ks[j] hits.
std::vector<std::vector<double>> per_query_means(const std::vector<std::string>& query_ids,
                                                 const std::vector<std::vector<std::string>>& rankings,
                                                 const LabelMap& labels, const std::vector<int>& ks) {
  if (query_ids.size() != rankings.size())
    cli::fail_input({}, "V2V: {} queries but {} rankings", query_ids.size(), rankings.size());
  for (int k : ks)
    if (k < 1) cli::fail_input({}, "V2V: K must be at least 1, got {}", k);
  std::vector<std::vector<double>> out(ks.size(), std::vector<double>(query_ids.size(), 0.0));
  for (std::size_t q = 0; q < query_ids.size(); ++q) {
    const LabelVec& a = labels_of(labels, query_ids[q]);
    const auto& r = rankings[q];
    if (r.empty()) cli::fail_input({}, "V2V: query '{}' has an empty ranking", query_ids[q]);
    for (std::size_t j = 0; j < ks.size(); ++j) {
      const std::size_t n = std::min(static_cast<std::size_t>(ks[j]), r.size());
      double sum = 0;
      for (std::size_t h = 0; h < n; ++h) sum += jaccard(a, labels_of(labels, r[h]));
      out[j][q] = sum / static_cast<double>(n);
    }
  }
  return out;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

}  // namespace

std::vector<std::string> v2v_pool(const std::vector<std::string>& ids, const LabelMap& labels) {
  std::vector<std::string> out;
  for (const auto& id : ids)
    if (has_positive(labels_of(labels, id))) out.push_back(id);
  return out;
}

std::vector<std::string> v2v_filter_ranking(const std::vector<std::string>& ranking, const LabelMap& labels) {
  return v2v_pool(ranking, labels);
}

std::vector<double> v2v_precision_at_k(const std::vector<std::string>& query_ids,
                                       const std::vector<std::vector<std::string>>& rankings,
                                       const LabelMap& labels, const std::vector<int>& ks) {
  const auto m = per_query_means(query_ids, rankings, labels, ks);
  std::vector<double> out;
  for (const auto& v : m) out.push_back(mean(v));
  return out;
}

std::vector<double> v2v_map_cumulative(const std::vector<std::string>& query_ids,
                                       const std::vector<std::vector<std::string>>& rankings,
                                       const LabelMap& labels, const std::vector<int>& ks) {
  const auto m = per_query_means(query_ids, rankings, labels, ks);
  std::vector<double> ratios_external, out;  // never reset, as in CT-CLIP
  for (const auto& v : m) {
    ratios_external.insert(ratios_external.end(), v.begin(), v.end());
    out.push_back(mean(ratios_external));
  }
  return out;
}

}  // namespace hse::eval
