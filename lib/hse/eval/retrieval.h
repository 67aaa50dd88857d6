// hse::eval retrieval metrics from rankings: HSENet's recall@K
// (image_text_retrieval_stage{1,2}.py) and CT-CLIP's volume-to-volume label Jaccard
// (scripts/volume_to_volume_new.py, copied by HSENet), as pure functions.
//
// V2V, as CT-CLIP runs it:
//   * pool (database) = volumes with >= 1 positive label; queries = all volumes; the query itself
//     is not excluded from its own ranking (v2v_pool / v2v_filter_ranking build this).
//   * ranking = pool sorted by cosine similarity, descending; CT-CLIP uses Python's stable
//     sorted(reverse=True), so ties keep pool order (rank_descending reproduces it).
//   * score of a hit = |A∩B| / |A∪B| of the query's and the hit's 18 labels (calc_similarity).
//     CT-CLIP divides without a guard; since every pool volume has a positive label the union is
//     never empty there. jaccard() defines 0/0 = 0 for rankings that ignore the pool rule.
//   * per query and K: the mean score of its top-K hits (fewer if the ranking is shorter).
//
// Two summaries over K in `ks` (processed in the given order, CT-CLIP: 1, 5, 10, 50):
//   v2v_precision_at_k: the true value, per K the mean over queries of the per-query mean.
//   v2v_map_cumulative: CT-CLIP's published numbers. Its list `ratios_external` is never reset:
//     for every K each query appends ITS PER-QUERY MEAN (not the individual hit scores) to one
//     shared list, and value(K) is the mean of everything appended so far. So value(K_j) =
//     mean over K_1..K_j of v2v_precision_at_k(K_i) (equal weight per K, as every K adds one
//     entry per query). value(K_1) equals the true value.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

namespace hse::eval {

using LabelVec = std::array<int, 18>;
using LabelMap = std::map<std::string, LabelVec>;

// Fraction of queries whose positive item is among the first k of its ranking (0 for no queries).
// Throws cli::Error (incompatible input) when the lists differ in length or k < 1.
double recall_at_k(const std::vector<std::vector<std::string>>& ranked_items_per_query,
                   const std::vector<std::string>& positive_per_query, int k);

// |A∩B| / |A∪B| over the labels (1 = positive, anything else negative); 0/0 = 0.
double jaccard(const LabelVec& a, const LabelVec& b);

// Indices of `scores` sorted by score descending, ties in index order (Python's stable
// sorted(..., reverse=True)); at most k (k < 0: all).
std::vector<int> rank_descending(const std::vector<double>& scores, int k = -1);

// The V2V pool: the ids (in the given order) with at least one positive label.
// Throws when an id has no labels.
std::vector<std::string> v2v_pool(const std::vector<std::string>& ids, const LabelMap& labels);
// A ranking restricted to the pool (order kept). Throws when an id has no labels.
std::vector<std::string> v2v_filter_ranking(const std::vector<std::string>& ranking, const LabelMap& labels);

// Per K in ks. query_ids[i] is the query of rankings[i]. Throws cli::Error when a query or hit has
// no labels, the lists differ in length, a K is < 1, or a query has an empty ranking (numpy's
// mean of nothing is NaN; there is nothing to average).
std::vector<double> v2v_precision_at_k(const std::vector<std::string>& query_ids,
                                       const std::vector<std::vector<std::string>>& rankings,
                                       const LabelMap& labels, const std::vector<int>& ks);
std::vector<double> v2v_map_cumulative(const std::vector<std::string>& query_ids,
                                       const std::vector<std::vector<std::string>>& rankings,
                                       const LabelMap& labels, const std::vector<int>& ks);

}  // namespace hse::eval
