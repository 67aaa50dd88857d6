// hse-finetune: HSENet VLM training (report generation or location VQA).
#include "hse/app/finetune.h"

int main(int argc, char** argv) {
  hse::finetune::Options opt;
  return hse::cli::main(
      "hse-finetune", "HSENet VLM training: Spatial Packers + LoRA (or the whole LLM) for mrg or vqa.", argc, argv,
      [&](CLI::App& app) { hse::finetune::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::finetune::run(opt, io); });
}
