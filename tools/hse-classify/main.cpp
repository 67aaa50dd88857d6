// hse-classify: zero-shot abnormality probabilities from a CLIP, as TSV.
#include "hse/app/classify.h"

int main(int argc, char** argv) {
  hse::classify::Options opt;
  return hse::cli::main(
      "hse-classify",
      "Zero-shot detection of abnormalities with a CLIP (CT-CLIP's prompt pairs); TSV id label probability on "
      "stdout.",
      argc, argv, [&](CLI::App& app) { hse::classify::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::classify::run(opt, io); });
}
