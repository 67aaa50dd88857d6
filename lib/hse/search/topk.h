// Exact nearest-neighbour search by cosine similarity (hse-retrieve): each query's k best items,
// computed over blocks of the similarity matrix with a running top-k, so memory grows with
// queries x k and one block, never with queries x items (50,000 x 50,000 would be 10 GB at once).
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace hse::search {

struct TopK {
  torch::Tensor scores;  // [Nq, k] float32, best first
  torch::Tensor index;   // [Nq, k] int64 rows of `items`
};

// The k (at most the number of items) most similar items of each query, by the cosine of the
// L2-normalised rows, best first; equal scores rank by item row (lower first). Computed over
// blocks of queries x items (about `block_elems` scores at most, 1024 x 8192 by default) whose
// scores a running top-k scans. NaN scores never rank (index -1 where a row has fewer than k
// finite scores; hse-retrieve refuses non-finite inputs).
TopK cosine_topk(const torch::Tensor& queries, const torch::Tensor& items, std::int64_t k,
                 std::int64_t block_elems = std::int64_t{1} << 25);

}  // namespace hse::search
