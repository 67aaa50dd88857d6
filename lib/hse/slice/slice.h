// hse-slice: CT files -> BiomedCLIP-ready 2-D slices (HDF5 kind "slices"),
// HSENet's 2-D branch (CT-RATE_nii_to_2D_slices.py + open_clip's val transform).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "hse/cli/cli.h"
#include "hse/image/ct_batch.h"

namespace CLI {
class App;
}

namespace hse::slice {

struct Options {
  cli::Common common;
  image::CtInputOptions input;
  std::array<double, 2> window{-1000, 1000};
  std::array<double, 2> spacing{1.5, 0.75};  // z, xy (mm)
  bool no_resample = false;
  std::int64_t slices = 32;
  int jpeg_quality = 0;  // 0: no JPEG round trip
  std::string compat;    // "hsenet": HSENet's slicing axis rule and JPEG q95
  std::int64_t image_size = 224;
  std::string dtype = "float32";
  image::BatchOptions batch;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::slice
