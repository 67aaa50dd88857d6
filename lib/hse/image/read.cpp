#include <cmath>
#include <filesystem>

#include "hse/cli/cli.h"
#include "hse/image/volume.h"

namespace hse::image {

Volume read_volume(const std::string& path) {
  std::error_code ec;
  const bool dir = std::filesystem::is_directory(path, ec);
  if (!dir && !std::filesystem::exists(path, ec)) cli::fail_input(path, "no such file");
  Volume v;
  if (!dir && is_nifti_path(path)) {
    v = read_nifti(path);
  } else {
#ifdef HSE_WITH_ITK
    if (!dir && std::filesystem::file_size(path, ec) == 0) cli::fail_input(path, "empty file");
    v = read_itk(path);
#else
    cli::fail_input(path, "this hse was built without ITK: only .nii/.nii.gz can be read");
#endif
  }
  std::size_t bad = 0;
  for (float x : v.data)
    if (!std::isfinite(x)) ++bad;
  if (bad) cli::fail_input(path, "{} voxel{} NaN or infinite", bad, bad == 1 ? " is" : "s are");
  return v;
}

}  // namespace hse::image
