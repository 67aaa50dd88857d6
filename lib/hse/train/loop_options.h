// The options of the training loop (train/loop.h), declared once for hse-pretrain and
// hse-finetune with per-tool defaults and help texts.
#pragma once

#include <string>

#include "hse/train/recipe.h"

namespace CLI {
class App;
}

namespace hse::train {

struct LoopOptions {
  int epochs = 1;
  long max_steps = -1;  // > 0: overrides epochs
  int batch_size = 1;   // per process and micro-batch
  int grad_accum = 1;
  double lr = 1e-4, weight_decay = 0.0, warmup_ratio = 0.03, max_grad_norm = 1.0;
  bool no_augment = false;
  long save_steps = 1000;
  int save_total_limit = 1;
  long log_steps = 10;
  std::string metrics;  // --metrics TSV ("" none)
  bool resume = false;
  std::string dist_backend = "auto";  // auto | gloo | nccl
  int data_workers = -1;              // threads preparing micro-batches ahead (0: on the training thread; -1: auto)
  RecipeOptions recipe;               // --last-batch, --frozen-dropout, --bf16/--fp32

  // The options with a tool's defaults; a value below 0 is the tool's to resolve (per task).
  static LoopOptions with_defaults(int epochs, int batch_size, double lr, double weight_decay, long save_steps) {
    LoopOptions o;
    o.epochs = epochs;
    o.batch_size = batch_size;
    o.lr = lr;
    o.weight_decay = weight_decay;
    o.save_steps = save_steps;
    return o;
  }
};

// A tool's help texts for the loop options whose meaning or default is the tool's.
struct LoopHelp {
  std::string epochs, batch_size, lr, weight_decay, no_augment, metrics_columns;
};

// Declares --epochs --max-steps --batch-size --grad-accum --lr --weight-decay --warmup-ratio
// --max-grad-norm --no-augment --save-steps --save-total-limit --log-steps --metrics --resume
// --dist-backend --data-workers --last-batch --frozen-dropout --bf16 --fp32. The defaults shown
// are o's values (LoopOptions::with_defaults); one below 0 is shown as none (the help names it).
void add_loop_options(CLI::App& app, LoopOptions& o, const LoopHelp& help);
// cli::fail_usage for a non-positive --batch-size or --grad-accum, or --bf16 with --fp32.
void check_loop_options(const LoopOptions& o);

}  // namespace hse::train
