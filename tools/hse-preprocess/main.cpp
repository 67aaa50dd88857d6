// hse-preprocess: CT files (NIfTI, DICOM, NRRD, MHA) -> normalised volumes (HDF5).
#include "hse/app/preprocess.h"

int main(int argc, char** argv) {
  hse::preprocess::Options opt;
  return hse::cli::main(
      "hse-preprocess", "Convert CT volumes to HSENet's normalised 1x32x256x256 input (HDF5 kind 'volumes').", argc,
      argv, [&](CLI::App& app) { hse::preprocess::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::preprocess::run(opt, io); });
}
