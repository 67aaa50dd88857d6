// hse-slice: CT files (NIfTI, DICOM, NRRD, MHA) -> BiomedCLIP-ready 2-D slices (HDF5).
#include "hse/app/slice.h"

int main(int argc, char** argv) {
  hse::slice::Options opt;
  return hse::cli::main(
      "hse-slice",
      "Extract HSENet's 32 axial slices per CT volume as normalised 3x224x224 BiomedCLIP inputs (HDF5 kind 'slices').",
      argc, argv, [&](CLI::App& app) { hse::slice::declare(app, opt); },
      [&](hse::cli::Io& io) { return hse::slice::run(opt, io); });
}
