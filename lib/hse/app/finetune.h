// hse-finetune: HSENet VLM training for report generation (mrg) and location VQA (vqa)
// (hsenet-spec §4, §5, §7): frozen towers, trainable Spatial Packers + LoRA (or the whole LLM).
#pragma once

#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/train/loop_options.h"

namespace CLI {
class App;
}

namespace hse::finetune {

struct Options {
  cli::Common common;
  std::string task = "mrg";
  std::vector<std::string> volumes, slice_features;
  std::string clip, llm, init_llm, tokenizer;
  int train_tokenizer = 0;
  std::string reports, questions, prompts;
  std::string report_column = "Findings_EN";
  std::string train_llm = "lora";  // lora | full
  std::string packer = "v2p";  // v2p | spatial_pool | sequence_pool | qformer | hsenet_qformer | anatomy
  std::vector<int> packer_window, packer_stride, packer_halo;  // D,H,W (empty: defaults)
  int packer_queries = 0;                      // qformer: learned queries (0: the window count)
  int qformer_layers = 2;
  std::string encoders = "both";               // both | 3d | 2e3 (Table 3)
  int lora_r = 16;
  double lora_alpha = 32.0, lora_dropout = 0.05;
  int max_length = -1;      // -1: 800 (mrg) / 330 (vqa)
  bool raw_reports = false;  // mrg: train on the report text as it is (HSENet removes " ' ( ) first)
  double packer_dropout = 0.1;
  // The training loop's options (train/loop.h); epochs, batch size and lr below 0 take the
  // task's default: 6, 2, 1e-4 (mrg) / 4, 5, 5e-5 (vqa).
  train::LoopOptions loop = train::LoopOptions::with_defaults(-1, -1, -1, 0.0, 2000);
  std::string tokenizer_mode;  // fast | slow ("": fast, or slow under --compat hsenet)
  std::string compat;          // "" | hsenet
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::finetune
