// hse-retrieve: top-K rankings between embeddings, or for free text, as TSV.
#include "hse/app/retrieve.h"

int main(int argc, char** argv) {
  hse::retrieve::Options opt;
  return hse::cli::main(
      "hse-retrieve", "Rank items for each query by cosine similarity; TSV query_id rank item_id score on stdout.",
      argc, argv, [&](CLI::App& app) { hse::retrieve::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::retrieve::run(opt, io); });
}
