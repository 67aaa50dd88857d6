// hse-retrieve: top-K rankings between embedding files (report-to-volume,
// volume-to-report, volume-to-volume) or free text from stdin, as TSV on stdout
// (query_id<TAB>rank<TAB>item_id<TAB>score) for hse-eval retrieval.
#pragma once

#include <string>
#include <vector>

#include "hse/cli/cli.h"

namespace CLI {
class App;
}

namespace hse::retrieve {

struct Options {
  cli::Common common;
  std::vector<std::string> queries;  // embeddings HDF5 (kind embeddings)
  std::vector<std::string> items;
  std::string text;                  // "-": free-text queries from stdin (one per line), needs --model
  std::string model;                 // CLIP checkpoint for --text
  int k = 100;
  bool header = false;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::retrieve
