// search::cosine_topk: the blocked search with a running top-k gives the k best items of a full
// similarity matrix (torch.matmul + torch.topk here, the reference), whatever the block size.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "hse/search/topk.h"

using namespace hse;

namespace {
// The reference: the whole matrix of cosines, then torch.topk.
search::TopK full(const torch::Tensor& q, const torch::Tensor& x, std::int64_t k) {
  namespace F = torch::nn::functional;
  const auto s = torch::matmul(F::normalize(q, F::NormalizeFuncOptions().dim(1)),
                               F::normalize(x, F::NormalizeFuncOptions().dim(1)).t());
  auto [v, i] = s.topk(std::min(k, x.size(0)), 1, true, true);
  return {v, i};
}
}  // namespace

TEST_CASE("blocked top-k equals the full matrix's, for every block size") {
  // The products may come from another sgemm than torch.matmul's (oneDNN's), which rounds
  // differently in the last bit, so two items whose cosines differ by ~1e-7 may swap ranks. The
  // check: the scores match rank by rank, and every returned item's exact cosine (float64) is the
  // reference's at that rank within 1e-6; all but a few rows give exactly the reference's items.
  torch::manual_seed(3);
  const auto q = torch::randn({301, 24}), x = torch::randn({2011, 24});
  const auto ref = full(q, x, 17);
  namespace F = torch::nn::functional;
  const auto exact = torch::matmul(F::normalize(q.to(torch::kFloat64), F::NormalizeFuncOptions().dim(1)),
                                   F::normalize(x.to(torch::kFloat64), F::NormalizeFuncOptions().dim(1)).t());
  for (std::int64_t block : {std::int64_t{1} << 30, std::int64_t{50000}, std::int64_t{7000}, std::int64_t{17}}) {
    const auto got = search::cosine_topk(q, x, 17, block);
    DOCTEST_CHECK_MESSAGE(torch::allclose(got.scores, ref.scores, 0, 1e-6), "block " << block);
    const auto got_exact = exact.gather(1, got.index).to(torch::kFloat32);
    DOCTEST_CHECK_MESSAGE(torch::allclose(got_exact, ref.scores, 0, 1e-6), "block " << block);
    const auto rows_differing = (got.index != ref.index).any(1).sum().item<std::int64_t>();
    DOCTEST_CHECK_MESSAGE(rows_differing <= 3, "block " << block << ": " << rows_differing << " rows differ");
  }
}

TEST_CASE("the running top-k is exact on scores without near-ties, across block boundaries") {
  // Cosines on a grid far apart (items at distinct angles in a plane): every sgemm gives the same
  // order, so the blocked result must equal the reference exactly.
  const std::int64_t n = 3000;
  auto x = torch::zeros({n, 4});
  const auto ang = torch::arange(n, torch::kFloat32) * (3.0 / static_cast<double>(n));
  x.select(1, 0).copy_(torch::cos(ang));
  x.select(1, 1).copy_(torch::sin(ang));
  const auto perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong));
  x = x.index_select(0, perm);
  auto q = torch::zeros({5, 4});
  q.select(1, 0).fill_(1.0);
  const auto ref = full(q, x, 25);
  for (std::int64_t block : {std::int64_t{1} << 30, std::int64_t{4000}, std::int64_t{97}})
    DOCTEST_CHECK_MESSAGE(torch::equal(search::cosine_topk(q, x, 25, block).index, ref.index), "block " << block);
}

TEST_CASE("k above the item count, no queries, unnormalised inputs") {
  torch::manual_seed(4);
  const auto q = torch::randn({5, 8}) * 7, x = torch::randn({3, 8}) * 0.01;
  const auto got = search::cosine_topk(q, x, 10, 4);  // blocked: 5 x 3 > 4
  DOCTEST_CHECK(got.index.sizes() == torch::IntArrayRef({5, 3}));
  DOCTEST_CHECK(torch::equal(got.index, full(q, x, 10).index));
  DOCTEST_CHECK(got.scores.max().item<float>() <= 1.0f + 1e-6f);
  DOCTEST_CHECK(search::cosine_topk(torch::empty({0, 8}), x, 2).index.size(0) == 0);
}

TEST_CASE("ties go to the lower item row across blocks") {
  // Items 0, 5 and 9 are the same vector: every query ranks them in row order.
  torch::manual_seed(5);
  auto x = torch::randn({12, 6});
  x[5].copy_(x[0]);
  x[9].copy_(x[0]);
  const auto q = x.narrow(0, 0, 1).repeat({4, 1}) + torch::randn({4, 6}) * 1e-3;
  const auto got = search::cosine_topk(q, x, 3, 4);
  for (std::int64_t r = 0; r < 4; ++r) {
    DOCTEST_CHECK(got.index[r][0].item<std::int64_t>() == 0);
    DOCTEST_CHECK(got.index[r][1].item<std::int64_t>() == 5);
    DOCTEST_CHECK(got.index[r][2].item<std::int64_t>() == 9);
  }
}
