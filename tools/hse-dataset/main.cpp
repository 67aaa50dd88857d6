// hse-dataset: a data set's layout (BIMCV-R) -> per-split volume lists and reports CSVs.
#include "hse/app/dataset.h"

int main(int argc, char** argv) {
  hse::dataset::Options opt;
  return hse::cli::main(
      "hse-dataset",
      "Read a data set in its own layout (BIMCV-R) and write, per split, the volume paths and a reports CSV keyed "
      "by VolumeName for the other hse tools.",
      argc, argv, [&](CLI::App& app) { hse::dataset::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::dataset::run(opt, io); });
}
