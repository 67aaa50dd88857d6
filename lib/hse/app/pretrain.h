// hse-pretrain: HSENet's dual-stage CLIP pretraining (hsenet-spec §1, §2, §7).
#pragma once

#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/train/loop_options.h"

namespace CLI {
class App;
}

namespace hse::pretrain {

struct Options {
  cli::Common common;
  int stage = 1;
  std::vector<std::string> volumes, slice_features, val_volumes, val_slice_features;
  std::string reports, val_reports;
  std::vector<std::string> text_columns{"Findings_EN"};
  std::string vision_config;  // vit3d config JSON
  std::string text_model;     // BERT: HF directory (weights used) or config.json (random init)
  std::string vocab;          // vocab.txt (default: <text_model dir>/vocab.txt)
  std::string init;           // CLIP checkpoint to start from (stage 2: M3D-CLIP in the published recipe)
  std::string stage1;         // stage 2: the frozen stage-1 CLIP checkpoint
  std::string patch_guide = "slices";  // stage 2: slices | text-cls | full-text (Table 1b)
  int max_length = 512;
  std::string sa_schedule = "linear";
  double sa_weight = 0.1;
  long sa_steps = 5000;
  std::string logit_scale = "raw";
  bool gradient_checkpointing = false;
  // The training loop's options (train/loop.h) with hse-pretrain's defaults (HSENet's recipe).
  train::LoopOptions loop = train::LoopOptions::with_defaults(50, 3, 1e-4, 0.1, 1000);
  std::string truncation = "sentences";  // sentences (HSENet's truncate_text) | cut
  long eval_steps = 0;
  int eval_items = 512;
  bool allow_partial = false;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::pretrain
