// hse::image — CT volumes as read from disk.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace hse::image {

// A 3-D scalar volume in the file's voxel index order: data[(k*ny + j)*nx + i],
// i (the first NIfTI/ITK axis) fastest. dim = {nx, ny, nz}.
struct Volume {
  std::array<std::int64_t, 3> dim{0, 0, 0};
  std::array<double, 3> spacing{1.0, 1.0, 1.0};  // mm, per index axis
  bool spacing_in_header = false;  // false when the header gives none (or the 1 mm default)
  bool hu_by_reader = false;       // true when the reader already applied DICOM RescaleSlope/Intercept
  std::string format;              // nifti, dicom, nrrd, meta, ...
  std::string stored_type;         // int16, uint16, float32, ...
  std::vector<float> data;

  std::size_t voxels() const { return static_cast<std::size_t>(dim[0] * dim[1] * dim[2]); }
};

// Reads a CT volume: .nii/.nii.gz natively (fast path), other formats and DICOM
// series directories through ITK. Throws hse::cli::Error (exit 3) naming `path`
// on unreadable, truncated, non-3-D or non-finite input.
Volume read_volume(const std::string& path);

// NIfTI-1/2 (.nii, .nii.gz) reader; the header's scl_slope/scl_inter are applied
// as nibabel's get_fdata() does.
Volume read_nifti(const std::string& path);

// Writes an int16 NIfTI-1 volume (gzip when the name ends in .gz), atomically.
// When `with_spacing` is false the header carries unit pixdims and no sform, as
// CT-RATE's v1 files do.
void write_nifti_i16(const std::string& path, const std::int16_t* data, std::array<std::int64_t, 3> dim,
                     std::array<double, 3> spacing, bool with_spacing, int gzip_level = 4);

#ifdef HSE_WITH_ITK
// ITK-based reader for DICOM series directories, single DICOM files, NRRD, MHA/MHD, NIfTI.
Volume read_itk(const std::string& path);
#endif

// True when this build can read `path`'s format without ITK.
bool is_nifti_path(const std::string& path);

}  // namespace hse::image
