#include "hse/search/topk.h"

#include <algorithm>

namespace hse::search {

namespace {
namespace F = torch::nn::functional;

// The first k columns of (scores, index) ordered by score (descending), then by item row.
TopK best(const torch::Tensor& scores, const torch::Tensor& index, std::int64_t k) {
  const auto by_row = std::get<1>(index.sort(/*stable=*/true, 1, false));
  const auto s1 = scores.gather(1, by_row), i1 = index.gather(1, by_row);
  const auto by_score = std::get<1>(s1.sort(/*stable=*/true, 1, true)).narrow(1, 0, k);
  return {s1.gather(1, by_score), i1.gather(1, by_score)};
}
}  // namespace

TopK cosine_topk(const torch::Tensor& queries, const torch::Tensor& items, std::int64_t k,
                 std::int64_t block_elems) {
  torch::NoGradGuard ng;
  const auto qn = F::normalize(queries.to(torch::kFloat32), F::NormalizeFuncOptions().dim(1));
  const auto in = F::normalize(items.to(torch::kFloat32), F::NormalizeFuncOptions().dim(1));
  const std::int64_t nq = qn.size(0), ni = in.size(0);
  k = std::min(k, ni);
  if (nq == 0 || k <= 0)
    return {torch::empty({nq, 0}, torch::kFloat32), torch::empty({nq, 0}, torch::kLong)};
  if (nq * ni <= block_elems) {
    auto [v, i] = torch::matmul(qn, in.t()).topk(k, 1, true, true);
    return {v, i};
  }
  // Query blocks of up to 1024 rows; item blocks that keep a block near block_elems scores.
  const std::int64_t bq = std::min<std::int64_t>(nq, 1024);
  const std::int64_t bi = std::max(k, block_elems / bq);
  TopK out{torch::empty({nq, k}, torch::kFloat32), torch::empty({nq, k}, torch::kLong)};
  for (std::int64_t q0 = 0; q0 < nq; q0 += bq) {
    const std::int64_t nb = std::min(bq, nq - q0);
    const auto qb = qn.narrow(0, q0, nb);
    torch::Tensor run_s, run_i;
    for (std::int64_t i0 = 0; i0 < ni; i0 += bi) {
      const std::int64_t mb = std::min(bi, ni - i0);
      auto [v, i] = torch::matmul(qb, in.narrow(0, i0, mb).t()).topk(std::min(k, mb), 1, true, true);
      i.add_(i0);
      if (!run_s.defined()) {
        run_s = v, run_i = i;
        continue;
      }
      auto merged = best(torch::cat({run_s, v}, 1), torch::cat({run_i, i}, 1), std::min(k, run_s.size(1) + v.size(1)));
      run_s = merged.scores, run_i = merged.index;
    }
    auto final_k = best(run_s, run_i, k);  // also orders a single item block's ties by row
    out.scores.narrow(0, q0, nb).copy_(final_k.scores);
    out.index.narrow(0, q0, nb).copy_(final_k.index);
  }
  return out;
}

}  // namespace hse::search
