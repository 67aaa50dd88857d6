// hse-info: describe hse HDF5 feature files (kind, version, items, datasets, attributes, provenance).
#pragma once

#include <string>
#include <vector>

#include "hse/cli/cli.h"

namespace CLI {
class App;
}

namespace hse::info {

struct Options {
  cli::Common common;
  std::vector<std::string> files;
  std::string kind;  // --kind: require this kind
  bool ids = false;  // --ids: list the item ids
  bool provenance = false;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::info
