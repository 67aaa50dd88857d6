#include "hse/search/topk.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

// libtorch_cpu exports it (TORCH_API); its header (ATen/native/mkldnn/Matmul.h) is not installed.
// result = beta * result + alpha * (mat1 @ mat2).
namespace at::native {
void mkldnn_matmul(const at::Tensor& mat1, const at::Tensor& mat2, const at::Tensor& result, float beta, float alpha);
}

namespace hse::search {

namespace {
namespace F = torch::nn::functional;

// Each query row's k best items so far, as arrays sorted by score (descending) and, for equal
// scores, by item row (ascending). Blocks of scores arrive in item order, so a later item with a
// score equal to a kept one ranks after it: the comparison against the row's k-th score is strict.
// Most candidates fail that one comparison, which is what makes this cheaper than a top-k per
// block (torch.topk on a [1024 x 32768] block cost about as much as its matrix product).
class RunningTopK {
 public:
  RunningTopK(std::int64_t rows, std::int64_t k)
      : k_(k),
        scores_(static_cast<std::size_t>(rows * k), -std::numeric_limits<float>::infinity()),
        index_(static_cast<std::size_t>(rows * k), -1),
        filled_(static_cast<std::size_t>(rows), 0) {}

  // `block`: [rows, m] contiguous scores of items first .. first + m - 1, rows from `row0`.
  void add(const float* block, std::int64_t row0, std::int64_t rows, std::int64_t m, std::int64_t first) {
    at::parallel_for(0, rows, 8, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const std::size_t base = static_cast<std::size_t>((row0 + r) * k_);
        float* s = scores_.data() + base;
        std::int64_t* ix = index_.data() + base;
        std::int64_t& n = filled_[static_cast<std::size_t>(row0 + r)];
        const float* row = block + r * m;
        for (std::int64_t j = 0; j < m; ++j) {
          const float v = row[j];
          if (n == k_ ? !(v > s[k_ - 1]) : v != v) continue;  // not better than the k-th; NaN never ranks
          std::int64_t p = n < k_ ? n++ : k_ - 1;
          for (; p > 0 && s[p - 1] < v; --p) {
            s[p] = s[p - 1];
            ix[p] = ix[p - 1];
          }
          s[p] = v;
          ix[p] = first + j;
        }
      }
    });
  }

  TopK result(std::int64_t rows) const {
    TopK out{torch::empty({rows, k_}, torch::kFloat32), torch::empty({rows, k_}, torch::kLong)};
    std::copy(scores_.begin(), scores_.end(), out.scores.data_ptr<float>());
    std::copy(index_.begin(), index_.end(), out.index.data_ptr<std::int64_t>());
    return out;
  }

 private:
  std::int64_t k_;
  std::vector<float> scores_;
  std::vector<std::int64_t> index_;
  std::vector<std::int64_t> filled_;
};

// scores = queries x items^T for one block, float32 [nq, ni], into `out`. oneDNN's sgemm where
// LibTorch has it (at::native::mkldnn_matmul, exported by libtorch_cpu but not in its installed
// headers): on this AMD machine it ran 1.3-1.8x MKL's, which takes its AVX2 path on non-Intel
// CPUs (bench/README.md, bench_retrieve.py). Falls back to torch::matmul if it refuses.
std::atomic<bool> dnn_usable{true};  // cleared for the process once oneDNN refuses
void block_scores(const torch::Tensor& q, const torch::Tensor& items, torch::Tensor& out) {
  if (dnn_usable && at::hasMKLDNN()) {
    try {
      at::native::mkldnn_matmul(q, items.t(), out, /*beta=*/0.0f, /*alpha=*/1.0f);
      return;
    } catch (const c10::Error&) {
      dnn_usable = false;
    }
  }
  torch::matmul_out(out, q, items.t());
}
}  // namespace

TopK cosine_topk(const torch::Tensor& queries, const torch::Tensor& items, std::int64_t k,
                 std::int64_t block_elems) {
  torch::NoGradGuard ng;
  const auto qn = F::normalize(queries.to(torch::kFloat32), F::NormalizeFuncOptions().dim(1)).contiguous();
  const auto in = F::normalize(items.to(torch::kFloat32), F::NormalizeFuncOptions().dim(1)).contiguous();
  const std::int64_t nq = qn.size(0), ni = in.size(0);
  k = std::min(k, ni);
  if (nq == 0 || k <= 0)
    return {torch::empty({nq, 0}, torch::kFloat32), torch::empty({nq, 0}, torch::kLong)};
  // Query blocks of up to 1024 rows times item blocks of up to 8192 (and about block_elems scores
  // at most): a block's scores (32 MiB) stay near the cache while the top-k scans them.
  const std::int64_t bq = std::min<std::int64_t>(nq, 1024);
  const std::int64_t bi = std::max<std::int64_t>(1, std::min<std::int64_t>(8192, block_elems / bq));
  RunningTopK best(nq, k);
  torch::Tensor scores = torch::empty({bq, bi}, torch::kFloat32);
  for (std::int64_t q0 = 0; q0 < nq; q0 += bq) {
    const std::int64_t nb = std::min(bq, nq - q0);
    const auto qb = qn.narrow(0, q0, nb);
    for (std::int64_t i0 = 0; i0 < ni; i0 += bi) {
      const std::int64_t mb = std::min(bi, ni - i0);
      auto s = scores.narrow(0, 0, nb).narrow(1, 0, mb);
      if (!s.is_contiguous()) s = torch::empty({nb, mb}, torch::kFloat32);
      block_scores(qb, in.narrow(0, i0, mb), s);
      best.add(s.data_ptr<float>(), q0, nb, mb, i0);
    }
  }
  return best.result(nq);
}

}  // namespace hse::search
