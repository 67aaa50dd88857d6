// train::EpochLayout (--last-batch) and train::RecipeOptions (--bf16/--fp32 defaults).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "hse/train/recipe.h"

using hse::train::EpochLayout;

namespace {
// Every position each process takes over an epoch, step by step.
std::vector<std::size_t> all_positions(const EpochLayout& l) {
  std::vector<std::size_t> out;
  for (long s = 0; s < l.steps(); ++s) {
    const auto [first, count] = l.step_micro_batches(s);
    for (long g = first; g < first + count; ++g)
      for (int r = 0; r < l.world; ++r)
        for (auto p : l.positions(g, r)) out.push_back(p);
  }
  return out;
}
}  // namespace

TEST_CASE("recipe: keep the last batch (HF Trainer) or drop it") {
  EpochLayout keep{10, 3, 1, 1, true}, drop{10, 3, 1, 1, false};
  CHECK(keep.micro_batches() == 4);  // 3 + 3 + 3 + 1
  CHECK(keep.steps() == 4);
  CHECK(drop.micro_batches() == 3);
  CHECK(drop.steps() == 3);
  CHECK(keep.positions(3, 0) == std::vector<std::size_t>{9});
  auto seen = all_positions(keep);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // every item once
  CHECK(all_positions(drop).size() == 9);
  // Gradient accumulation: ceil(4 / 3) = 2 steps, the second with one micro-batch.
  EpochLayout acc{10, 3, 1, 3, true};
  CHECK(acc.steps() == 2);
  CHECK(acc.step_micro_batches(0) == std::pair<long, long>{0, 3});
  CHECK(acc.step_micro_batches(1) == std::pair<long, long>{3, 1});
  EpochLayout acc_drop{10, 3, 1, 3, false};
  CHECK(acc_drop.steps() == 1);
  CHECK(acc_drop.step_micro_batches(0) == std::pair<long, long>{0, 3});
  // Fewer items than one batch: keep trains on them, drop has nothing.
  EpochLayout few{2, 4, 1, 1, true};
  CHECK(few.micro_batches() == 1);
  CHECK(few.positions(0, 0) == std::vector<std::size_t>{0, 1});
  CHECK(EpochLayout{2, 4, 1, 1, false}.micro_batches() == 0);
}

TEST_CASE("recipe: the last batch over processes is padded from the start, as DistributedSampler") {
  // 11 items, batch 2, 3 processes: one full global batch of 6, then 5 left -> 2 each, the sixth
  // position wraps to the start of the order.
  EpochLayout l{11, 2, 3, 1, true};
  CHECK(l.micro_batches() == 2);
  CHECK(l.positions(0, 0) == std::vector<std::size_t>{0, 1});
  CHECK(l.positions(0, 2) == std::vector<std::size_t>{4, 5});
  CHECK(l.positions(1, 0) == std::vector<std::size_t>{6, 7});
  CHECK(l.positions(1, 1) == std::vector<std::size_t>{8, 9});
  CHECK(l.positions(1, 2) == std::vector<std::size_t>{10, 0});
  const auto all = all_positions(l);
  CHECK(std::set<std::size_t>(all.begin(), all.end()).size() == 11);
  // Every process gets the same count in each micro-batch (the all-gather needs it).
  for (long g = 0; g < l.micro_batches(); ++g)
    for (int r = 1; r < 3; ++r) CHECK(l.positions(g, r).size() == l.positions(g, 0).size());
  // Fewer items than processes: every process still gets one.
  EpochLayout tiny{1, 4, 2, 1, true};
  CHECK(tiny.positions(0, 0) == std::vector<std::size_t>{0});
  CHECK(tiny.positions(0, 1) == std::vector<std::size_t>{0});
}

TEST_CASE("recipe: bf16 by default on CUDA only") {
  hse::train::RecipeOptions o;
  CHECK(o.use_bf16(true));
  CHECK_FALSE(o.use_bf16(false));
  o.bf16 = true;
  CHECK(o.use_bf16(false));
  o.bf16 = false;
  o.fp32 = true;
  CHECK_FALSE(o.use_bf16(true));
  CHECK(o.keep_last());
  CHECK(o.frozen_train_mode());
}
