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

// recipe: --window --spacing --size --no-resample --no-crop --compat (recipe.h). --compat hsenet:
// --hu rescale (unless given) and XYSpacing's first value for both axes.
struct Options : image::CtToolOptions<Recipe> {};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::preprocess
