// hse-preprocess: CT files -> normalised volumes (HDF5 kind "volumes").
#pragma once

#include <array>
#include <string>

#include "hse/cli/cli.h"
#include "hse/image/ct_batch.h"
#include "hse/preprocess/recipe.h"

namespace CLI {
class App;
}

namespace hse::preprocess {

struct Options {
  cli::Common common;
  image::CtInputOptions input;
  // The recipe's fields, with its defaults (recipe.h).
  std::array<double, 2> window = Recipe{}.window;
  std::array<double, 2> spacing = Recipe{}.spacing;  // z, xy (mm)
  std::array<std::int64_t, 3> size = Recipe{}.size;
  bool no_crop = false;
  bool no_resample = false;
  std::string dtype = "float32";
  std::string compat;  // "hsenet": --hu rescale (unless given) and XYSpacing's first value for both axes
  image::BatchOptions batch;
};

void declare(CLI::App& app, Options& o);
// The recipe of these options (hu: the input's, after --compat), and options that replay `r`.
Recipe recipe_of(const Options& o);
void apply(const Recipe& r, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::preprocess
