#include "hse/train/recipe.h"

#include <algorithm>

#include <CLI/CLI.hpp>

#include "hse/cli/cli.h"

namespace hse::train {

void add_recipe_options(CLI::App& app, RecipeOptions& o) {
  app.add_option("--last-batch", o.last_batch,
                 "keep (HF Trainer, as HSENet: a smaller last batch in each epoch) or drop (full batches only)")
      ->default_val("keep")
      ->check(CLI::IsMember({"keep", "drop"}));
  app.add_option("--frozen-dropout", o.frozen_dropout,
                 "on (as HSENet's Trainer: dropout active in the frozen towers while training) or off (frozen "
                 "parts in eval mode)")
      ->default_val("on")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_flag("--bf16", o.bf16,
               "bf16 autocast for the forward passes (matmuls in bfloat16, parameters and optimiser in float32), as "
               "HSENet's GPU training; the default on CUDA devices, accepted on the CPU too");
  app.add_flag("--fp32", o.fp32, "no bf16 autocast on CUDA devices (float32 throughout)");
}

void check_recipe_options(const RecipeOptions& o) {
  if (o.bf16 && o.fp32) cli::fail_usage("--bf16 and --fp32 exclude each other");
}

long EpochLayout::micro_batches() const {
  const std::size_t g = batch * static_cast<std::size_t>(world);
  if (g == 0) return 0;
  return static_cast<long>(keep_last ? (n + g - 1) / g : n / g);
}

long EpochLayout::steps() const {
  const long m = micro_batches();
  if (m == 0) return 0;
  return keep_last ? (m + grad_accum - 1) / grad_accum : std::max(1L, m / grad_accum);
}

std::pair<long, long> EpochLayout::step_micro_batches(long in_epoch) const {
  const long first = in_epoch * grad_accum;
  return {first, std::max(0L, std::min<long>(grad_accum, micro_batches() - first))};
}

std::vector<std::size_t> EpochLayout::positions(long gb, int rank) const {
  const std::size_t g = batch * static_cast<std::size_t>(world);
  const std::size_t base = static_cast<std::size_t>(gb) * g;
  std::vector<std::size_t> out;
  if (base + g <= n) {
    for (std::size_t k = 0; k < batch; ++k) out.push_back(base + static_cast<std::size_t>(rank) * batch + k);
    return out;
  }
  const std::size_t r = n - std::min(n, base);
  const std::size_t w = static_cast<std::size_t>(world), per = (r + w - 1) / w;
  for (std::size_t k = 0; k < per; ++k) {
    std::size_t p = base + static_cast<std::size_t>(rank) * per + k;
    if (p >= n) p = (p - n) % n;  // DistributedSampler's padding: from the start of the order
    out.push_back(p);
  }
  return out;
}

}  // namespace hse::train
