// hse::image operations: HU handling, resampling, cropping, resizing and slice
// extraction, with PyTorch/MONAI semantics (see man/hse-preprocess.1).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hse/image/volume.h"
#include "resize_minmax.h"

namespace hse::image {

// A contiguous float array [d][h][w].
struct Array3 {
  std::int64_t d = 0, h = 0, w = 0;
  std::vector<float> v;
  std::size_t size() const { return v.size(); }
};

enum class HuMode { automatic, rescale, as_is };
HuMode parse_hu_mode(const std::string& s);

struct HuDecision {
  bool rescale = false;
  double slope = 1, intercept = 0;
  double air_as_is = 0, air_rescaled = 0;  // share of sampled voxels in [-1100, -850] HU
  float min_value = 0;                      // smallest sampled stored value
  // HuMode::automatic without a slope/intercept on values that cannot be HU
  // (no air near -1000, or no negative value): the caller must refuse.
  bool unknown = false;
  std::string reason;
};

// Decides whether stored values need slope/intercept to become HU. With
// HuMode::automatic, the candidate (as stored, or rescaled) under which more
// voxels look like air/lung ([-1100, -850] HU) wins; a tie rescales only
// non-negative data. Never rescales data a DICOM reader already rescaled.
// Without a slope/intercept, automatic mode marks values that cannot be HU
// (`unknown`: under 0.1% of voxels near air, or a minimum >= 0).
HuDecision decide_hu(const Volume& v, HuMode mode, std::optional<std::pair<double, double>> slope_intercept);

// Trilinear resize of `box` of a contiguous [d][h][w] array (PyTorch
// interpolate, align_corners=False), separable and multithreaded. The source coordinates are
// computed as PyTorch computes them for float32 input (float arithmetic), or with f64_taps as
// for float64 input (the CT-RATE scripts resample float64 arrays: at 512 voxels the two differ
// by ~3e-5 voxel, ~1e-5 of the [0,1] output at an air/body edge).
void resize_trilinear(const float* src, std::int64_t d, std::int64_t h, std::int64_t w, kernels::Box box, float* dst,
                      std::int64_t od, std::int64_t oh, std::int64_t ow, int threads, bool f64_taps = false);

// New size along one axis when resampling from `cur` to `target` mm:
// int(n * (cur / target)), as the CT-RATE scripts compute it.
std::int64_t resampled_size(std::int64_t n, double cur, double target);

// HSENet's volume steps after reading: HU (per `hu`), clamp [lo, hi], view
// as (Z, X, Y), resample to `target_spacing` (z, xy) unless disabled, min-max
// to [0, 1], crop foreground (> 0) unless disabled, resize to `size` (any 0 keeps that axis).
struct VolumeRecipe {
  double window_lo = -1000, window_hi = 200;
  bool resample = true;
  double target_z = 1.5, target_xy = 0.75;
  bool crop = true;
  std::array<std::int64_t, 3> size{32, 256, 256};
  int device = -1;  // -1 CPU, else the CUDA device index
};
// `spacing_zxy`: the (z, x, y) spacing to resample from. Consumes v.data.
Array3 preprocess_volume(Volume& v, const HuDecision& hu, std::array<double, 3> spacing_zxy,
                         const VolumeRecipe& r, int threads);

// HU, clamp and (Z, X, Y) view without resampling, then resampled: the common
// start of the 3-D and 2-D branches. Returns [Z'][X'][Y'] (not normalised).
// Consumes v.data (clamped in place, then released).
Array3 to_zxy_resampled(Volume& v, const HuDecision& hu, double lo, double hi, bool resample,
                        std::array<double, 3> spacing_zxy, double target_z, double target_xy, int threads);

// HSENet's 2-D script (CT-RATE_nii_to_2D_slices.py) literally: it moves Z first only when the
// volume has fewer slices than columns (Z < X in nibabel's (X,Y,Z) order). Otherwise it keeps
// (X,Y,Z), resamples axis 0 with the z spacing and axes 1, 2 with the xy spacings, and slices
// along axis 0, i.e. sagittally. Returns the array whose axis 0 HSENet slices: [Z'][X'][Y'] when
// Z < X (as to_zxy_resampled), else [X'][Y'][Z']. `*sagittal` says which.
Array3 hsenet_slicing_array(Volume& v, const HuDecision& hu, double lo, double hi, bool resample,
                            std::array<double, 3> spacing_zxy, double target_z, double target_xy, int threads,
                            bool* sagittal);

}  // namespace hse::image
