// The slice recipe: how hse-slice made a slices file (HSENet's 2-D branch). It owns its fields and
// their defaults (hse-slice's flags are bound to them), its HDF5 attributes and its JSON (an
// adapter's inputs record, replayed by hse-generate on CT files); the normalisation, rotation and
// interpolation are this hse's and are checked, not replayed. Reading is strict: exit 3.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "hse/image/ct_recipe.h"

namespace hse::slice {

struct Recipe : image::CtRecipe {
  static constexpr const char* kName = "hsenet-2d";
  static constexpr const char* kLayout = "N,S,C,H,W";
  // The prefix of these attributes where hse-embed --slices copies them into its slice_features.
  static constexpr const char* kFeaturesAttrPrefix = "slices.";

  Recipe() { window = {-1000, 1000}; }  // then divided by 1000
  // Whose 2-D script: "ct-rate" (CT-RATE_nii_to_2D_slices.py: clamp, resample, /1000, per-slice
  // min-max, clockwise) or "bimcv-r" (BIMCV_R_nii_to_2D_slices.py: no clamp, no resampling,
  // linspace on the raw Z axis, the volume's min-max in float32 (each slice's own for files over
  // 200 MiB), counter-clockwise). Recorded as "dataset" for bimcv-r only (files before it are ct-rate).
  std::string dataset = "ct-rate";
  static constexpr double kNoClamp = 1e30;  // bimcv-r's recorded window: [-1e30, 1e30], no clamp
  static constexpr double kLargeFileMiB = 200;  // bimcv-r: per-slice min-max above this file size
  std::int64_t n_slices = 32;
  std::int64_t jpeg_quality = 0;  // 0: no JPEG round trip (hse-slice: 95 under --compat hsenet)
  std::int64_t image_size = 224;

  void write(h5::Writer& w) const;
  nlohmann::json to_json() const;
  static Recipe from_json(const nlohmann::json& j, const std::string& source, const std::string& hint = {});
};

}  // namespace hse::slice
