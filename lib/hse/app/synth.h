// hse-synth: the tool (Options, declare, run) over the synthetic data set of synth/synth.h.
#pragma once

#include <string>

#include "hse/cli/cli.h"

namespace CLI {
class App;
}

namespace hse::synth {

struct Options {
  cli::Common common;
  int n_train = 24;
  int n_valid = 8;
  std::string size = "small";
  double lesion_scale = 1.0;
  int gzip_level = 1;
  std::string layout = "ct-rate";  // ct-rate | bimcv-r
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::synth
