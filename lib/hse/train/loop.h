// The one training loop of hse-pretrain and hse-finetune (HF Trainer's loop, as HSENet trains):
// the options both declare, the epoch layout and the optimiser step (gradient accumulation over
// micro-batches, all-reduce of the gradients across processes, clipping by global norm, AdamW
// under the cosine schedule with warm-up), the step log and --metrics TSV, evaluation hooks,
// checkpoints every --save-steps with --resume and SIGTERM handling, and the final save.
// A task (CLIP pretraining, VLM fine-tuning) supplies its data size, trainable parameters, the
// loading of a micro-batch (run ahead on --data-workers threads, prefetch.h), its forward pass,
// and the writing and reading of its model.
#pragma once

#include <any>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "hse/cli/cli.h"
#include "hse/train/distributed.h"
#include "hse/train/loop_options.h"

namespace hse::train {

// The process set-up of a training run: --threads, the device of this process (with several
// processes, cuda means cuda:LOCAL_RANK), the process group, the SIGTERM/SIGINT handler, the
// output directory check and the seed of torch's generators.
struct Session {
  torch::Device device{torch::kCPU};
  std::shared_ptr<Distributed> dist;
};
Session start_session(const cli::Common& common, const LoopOptions& o);

// Before the model is built: with --resume, removes what a killed run left in `out` (on the main
// process) and returns the newest checkpoint-N ("" when none, with a warning); without it, refuses
// (exit 2) an `out` that holds checkpoints of an earlier run.
std::string prepare_output(const std::string& out, bool resume, Distributed& dist);

struct LoopTask {
  std::string name;                     // progress label ("pretrain", "finetune")
  std::string banner;                   // start of the set-up log line ("stage 1", "mrg")
  std::string banner_details;           // its end (", 128 image tokens")
  std::string items_noun = "items";     // "pairs": in the too-few-items error
  std::string data_file;                // named by that error
  std::size_t items = 0;                // training items
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  std::vector<std::string> no_decay;    // trainable names without weight decay
  // Before the micro-batches of `step`.
  std::function<void(long step)> begin_step;
  // The data side of one micro-batch (the items, as indices into the training set, of this
  // process): reading, augmenting, tokenizing. It runs ahead on --data-workers threads, so it must
  // be a pure function of its arguments (then the batches do not depend on the worker count) and
  // must not touch the model.
  std::function<std::any(const std::vector<std::size_t>& items, long step, long epoch)> load;
  // The forward pass of one loaded micro-batch, under the loop's autocast: the loss (float32
  // scalar) and one value per loss_parts column.
  std::function<torch::Tensor(std::any& batch, long step, long epoch, std::vector<double>& parts)> forward;
  // --metrics columns: loss parts (averaged like the loss, after "loss"), schedule values (before
  // "lr") and state values (after "grad_norm"), each read after the optimiser step.
  std::vector<std::string> loss_parts, schedule_columns, state_columns;
  std::function<std::vector<double>()> schedule_values, state_values;
  // Writes the model into `dir`, which will live at `final_dir` (a checkpoint is written into a
  // temporary directory and renamed); `checkpoint`: a checkpoint-N rather than the final output.
  std::function<void(const std::string& dir, const std::string& final_dir, bool checkpoint)> write;
  // --resume: loads the model weights of checkpoint directory `dir`.
  std::function<void(const std::string& dir)> restore;
  // When the training set-up is complete and the first step is about to run.
  std::function<void()> started;
  // After each optimiser step (evaluation hooks), and after the final save.
  std::function<void(long step)> after_step;
  std::function<void()> finished;
};

struct LoopResult {
  long steps = 0;        // the step reached
  bool stopped = false;  // a SIGTERM/SIGINT stop: checkpointed, the caller exits 0
};

// Runs the loop on `dev` from checkpoint `resume_from` ("" none) to the end, writing to `out`.
LoopResult run_loop(const LoopOptions& o, LoopTask& task, Distributed& dist, const torch::Device& dev,
                    const std::string& out, const std::string& resume_from, std::uint64_t seed,
                    cli::ProgressMode progress);

}  // namespace hse::train
