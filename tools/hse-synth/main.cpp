// hse-synth: a deterministic synthetic chest-CT data set in CT-RATE's layout.
#include "hse/app/synth.h"

int main(int argc, char** argv) {
  hse::synth::Options opt;
  return hse::cli::main(
      "hse-synth",
      "Write a deterministic synthetic chest-CT data set (volumes, reports, metadata, labels, location VQA) in "
      "CT-RATE's layout.",
      argc, argv, [&](CLI::App& app) { hse::synth::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::synth::run(opt, io); });
}
