// The slice recipe: how hse-slice made a slices file (HSENet's 2-D branch). It owns its fields and
// their defaults (hse-slice's flags start from them), its HDF5 attributes and its JSON (an
// adapter's inputs record, replayed by hse-generate on CT files); the normalisation, rotation and
// interpolation are this hse's and are checked, not replayed. Reading is strict: exit 3.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace hse::h5 {
class Writer;
}

namespace hse::slice {

struct Recipe {
  static constexpr const char* kName = "hsenet-2d";
  static constexpr const char* kLayout = "N,S,C,H,W";

  std::array<double, 2> window{-1000, 1000};  // HU window LO, HI (then divided by 1000)
  std::array<double, 2> spacing{1.5, 0.75};   // target spacing Z, XY (mm)
  bool resample = true;
  std::int64_t n_slices = 32;
  std::int64_t jpeg_quality = 0;  // the effective quality (0: no JPEG round trip)
  std::int64_t image_size = 224;
  std::string hu = "auto";  // recorded, not replayed
  std::string compat;       // "" | hsenet

  void write(h5::Writer& w) const;
  nlohmann::json to_json() const;
  static Recipe from_json(const nlohmann::json& j, const std::string& source, const std::string& hint = {});
};

}  // namespace hse::slice
