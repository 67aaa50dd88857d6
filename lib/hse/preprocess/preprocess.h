// hse-preprocess: CT files -> normalised volumes (HDF5 kind "volumes").
#pragma once

#include <array>
#include <string>

#include "hse/cli/cli.h"
#include "hse/image/ct_batch.h"

namespace CLI {
class App;
}

namespace hse::preprocess {

struct Options {
  cli::Common common;
  image::CtInputOptions input;
  std::array<double, 2> window{-1000, 200};
  std::array<double, 2> spacing{1.5, 0.75};  // z, xy (mm)
  std::array<std::int64_t, 3> size{32, 256, 256};
  bool no_crop = false;
  bool no_resample = false;
  std::string dtype = "float32";
  std::string compat;  // "hsenet": --hu rescale (unless given) and XYSpacing's first value for both axes
  image::BatchOptions batch;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::preprocess
