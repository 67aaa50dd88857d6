// hse-info: describe hse HDF5 feature files.
#include "hse/app/info.h"

int main(int argc, char** argv) {
  hse::info::Options opt;
  return hse::cli::main(
      "hse-info", "Describe hse HDF5 feature files: kind, format version, items, datasets, attributes.", argc, argv,
      [&](CLI::App& app) { hse::info::declare(app, opt); }, [&](hse::cli::Io& io) { return hse::info::run(opt, io); });
}
