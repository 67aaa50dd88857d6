// hse-slice: CT files -> BiomedCLIP-ready 2-D slices (HDF5 kind "slices"),
// HSENet's 2-D branch (CT-RATE_nii_to_2D_slices.py + open_clip's val transform).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "hse/cli/cli.h"
#include "hse/image/ct_batch.h"
#include "hse/slice/recipe.h"

namespace CLI {
class App;
}

namespace hse::slice {

struct Options {
  cli::Common common;
  image::CtInputOptions input;
  // --window --spacing --no-resample --slices --jpeg-quality --image-size --compat (recipe.h; hu: the
  // input's). --compat hsenet: HSENet's slicing axis rule and JPEG q95 (when --jpeg-quality is 0).
  Recipe recipe;
  std::string dtype = "float32";
  image::BatchOptions batch;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::slice
