// The training settings both trainers (hse-pretrain, hse-finetune) take from HSENet's code, which
// trains with Hugging Face's Trainer. Declared once here:
//   --last-batch keep|drop   keep (HF Trainer: dataloader_drop_last=False): an epoch ends with a
//                            smaller batch when the items do not fill the last one; drop: only
//                            full batches (hse before 0.2).
//   --frozen-dropout on|off  on (HSENet: Trainer.train() puts the whole model in train mode, the
//                            frozen modules included): dropout stays active in the frozen towers,
//                            the stage-1 BERT and ViT that give stage 2's L_SA targets, and the 2E3
//                            tower's slice-guided scoring (dropout 0.1) while the VLM trains;
//                            off: the frozen parts run in eval mode (deterministic).
//   --bf16 / --fp32          bf16 autocast for the forward passes. Default: on for CUDA devices
//                            (HSENet trains with bf16), off on the CPU; --bf16 forces it on (also on
//                            the CPU), --fp32 off.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace hse::train {

struct RecipeOptions {
  std::string last_batch = "keep";    // keep | drop
  std::string frozen_dropout = "on";  // on | off
  bool bf16 = false, fp32 = false;

  bool keep_last() const { return last_batch == "keep"; }
  bool frozen_train_mode() const { return frozen_dropout == "on"; }
  // Whether the forward passes run under bf16 autocast on a device of this kind.
  bool use_bf16(bool cuda_device) const { return bf16 || (cuda_device && !fp32); }
};

void add_recipe_options(CLI::App& app, RecipeOptions& o);
// cli::fail_usage for --bf16 with --fp32.
void check_recipe_options(const RecipeOptions& o);

// How an epoch of n items is cut into optimiser steps: global micro-batches of batch x world
// items (each process takes `batch` consecutive positions of the epoch order), grad_accum of
// them per step. With keep_last the last global micro-batch holds the r < batch x world items
// left, padded to a multiple of world with positions from the start of the order (as
// DistributedSampler pads), so every process takes ceil(r / world); the last step of the epoch
// may accumulate fewer micro-batches. Without keep_last the incomplete micro-batch is dropped and
// so are the micro-batches that do not fill a step, except that an epoch always has a step.
struct EpochLayout {
  std::size_t n = 0, batch = 1;
  int world = 1, grad_accum = 1;
  bool keep_last = true;

  long micro_batches() const;  // global micro-batches per epoch (0 when n is 0, or < batch x world without keep_last)
  long steps() const;          // optimiser steps per epoch (>= 1 when micro_batches() >= 1)
  // The global micro-batches of step `in_epoch`: [first, first + count).
  std::pair<long, long> step_micro_batches(long in_epoch) const;
  // Positions in the epoch order of `rank`'s items in global micro-batch gb.
  std::vector<std::size_t> positions(long gb, int rank) const;
};

}  // namespace hse::train
