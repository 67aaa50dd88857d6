// hse-generate: report generation (MRG) and location VQA with an HSENet VLM.
#include "hse/app/generate.h"

int main(int argc, char** argv) {
  hse::generate::Options opt;
  return hse::cli::main(
      "hse-generate", "HSENet VLM inference: radiology report generation (mrg) and location VQA (vqa), JSONL out.",
      argc, argv, [&](CLI::App& app) { hse::generate::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::generate::run(opt, io); });
}
