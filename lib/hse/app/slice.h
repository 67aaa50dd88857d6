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

// recipe: --window --spacing --no-resample --slices --jpeg-quality --image-size --compat (recipe.h).
// --compat hsenet: HSENet's slicing axis rule and JPEG q95 (when --jpeg-quality is 0).
struct Options : image::CtToolOptions<Recipe> {};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::slice
