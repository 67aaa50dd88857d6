// hse-eval: report, VQA and retrieval metrics.
#include "hse/app/eval.h"

int main(int argc, char** argv) {
  hse::eval::Options opt;
  return hse::cli::main(
      "hse-eval", "Report, VQA and retrieval metrics, each under its own precise name (see man hse-eval).", argc, argv,
      [&](CLI::App& app) { hse::eval::declare(app, opt); }, [&](hse::cli::Io& io) { return hse::eval::run(opt, io); });
}
