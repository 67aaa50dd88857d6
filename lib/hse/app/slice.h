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
  // The recipe's fields, with its defaults (recipe.h).
  std::array<double, 2> window = Recipe{}.window;
  std::array<double, 2> spacing = Recipe{}.spacing;  // z, xy (mm)
  bool no_resample = false;
  std::int64_t slices = Recipe{}.n_slices;
  int jpeg_quality = 0;  // 0: no JPEG round trip (95 under --compat hsenet)
  std::string compat;    // "hsenet": HSENet's slicing axis rule and JPEG q95
  std::int64_t image_size = Recipe{}.image_size;
  std::string dtype = "float32";
  image::BatchOptions batch;
};

void declare(CLI::App& app, Options& o);
// The recipe of these options (jpeg_quality: the effective one; hu: the input's), and options
// that replay `r`.
Recipe recipe_of(const Options& o);
void apply(const Recipe& r, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::slice
