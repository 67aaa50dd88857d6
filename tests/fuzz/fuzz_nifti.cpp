// NIfTI-1/2 header and data (image/nifti.cpp), gzip-compressed when the input starts with gzip's
// magic bytes.
#include "fuzz_common.h"
#include "hse/image/volume.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string path = hse_fuzz::scratch_file(hse_fuzz::bytes(data, size), gz ? ".nii.gz" : ".nii");
  hse_fuzz::refused_or_parsed([&] { (void)hse::image::read_nifti(path); });
  return 0;
}
