// hse-embed: volume, report and 2-D slice embeddings.
#include "hse/app/embed.h"

int main(int argc, char** argv) {
  hse::embed::Options opt;
  return hse::cli::main(
      "hse-embed", "Embed volumes or reports with a CLIP checkpoint, or 2-D slices with the slice encoder (HDF5 out).",
      argc, argv, [&](CLI::App& app) { hse::embed::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::embed::run(opt, io); });
}
