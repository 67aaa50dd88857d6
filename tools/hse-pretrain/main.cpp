// hse-pretrain: HSENet CLIP pretraining, stage 1 (3-D ViT + BERT) and stage 2 (2E3 + L_SA).
#include "hse/app/pretrain.h"

int main(int argc, char** argv) {
  hse::pretrain::Options opt;
  return hse::cli::main(
      "hse-pretrain", "HSENet CLIP pretraining: stage 1 (3-D ViT + BERT, InfoNCE), stage 2 (2E3 encoder, L_SA).",
      argc, argv, [&](CLI::App& app) { hse::pretrain::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::pretrain::run(opt, io); });
}
