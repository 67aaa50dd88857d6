// The volume recipe: how hse-preprocess made a volumes file. It owns its fields and their
// defaults (hse-preprocess's flags start from them), its HDF5 attributes (written beside the
// volumes) and its JSON (an adapter's inputs record, which hse-generate replays on CT files).
// Reading is strict (io::RecordReader): a missing or unknown field is exit 3.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace hse::h5 {
class Writer;
}

namespace hse::preprocess {

struct Recipe {
  static constexpr const char* kName = "hsenet-3d";
  static constexpr const char* kLayout = "N,1,Z,X,Y";

  std::array<double, 2> window{-1000, 200};      // HU window LO, HI
  std::array<double, 2> spacing{1.5, 0.75};      // target spacing Z, XY (mm)
  std::array<std::int64_t, 3> size{32, 256, 256};  // output D, H, W (0 keeps that axis)
  bool resample = true, crop = true;
  std::string hu = "auto";  // how the files' values became HU (--hu; recorded, not replayed)
  std::string compat;       // "" | hsenet

  void write(h5::Writer& w) const;
  nlohmann::json to_json() const;
  // `j`: the record (the file's attributes, or an adapter's "volumes"); `source` names it in errors.
  static Recipe from_json(const nlohmann::json& j, const std::string& source, const std::string& hint = {});
};

}  // namespace hse::preprocess
