// hse-dataset: a data set's own layout -> the files hse's tools take: per split, the volume paths
// (one per line, for hse-preprocess/hse-slice "-") and a reports CSV keyed by VolumeName (for
// --reports). Today: BIMCV-R (image/bimcv.h).
#pragma once

#include <string>

#include "hse/cli/cli.h"

namespace CLI {
class App;
}

namespace hse::dataset {

struct Options {
  cli::Common common;
  std::string layout;  // bimcv-r
  std::string root;
  std::string csv;
  std::string path_column;
  double train_fraction = 0.9;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::dataset
