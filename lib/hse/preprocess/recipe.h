// The volume recipe: how hse-preprocess made a volumes file. It owns its fields and their
// defaults (hse-preprocess's flags are bound to them), its HDF5 attributes (written beside the
// volumes) and its JSON (an adapter's inputs record, which hse-generate replays on CT files).
// Reading is strict (io::RecordReader): a missing or unknown field is exit 3.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "hse/image/ct_recipe.h"

namespace hse::preprocess {

struct Recipe : image::CtRecipe {
  static constexpr const char* kName = "hsenet-3d";
  static constexpr const char* kLayout = "N,1,Z,X,Y";

  Recipe() { window = {-1000, 200}; }
  std::array<std::int64_t, 3> size{32, 256, 256};  // output D, H, W (0 keeps that axis)
  bool crop = true;

  void write(h5::Writer& w) const;
  nlohmann::json to_json() const;
  // `j`: the record (the file's attributes, or an adapter's "volumes"); `source` names it in errors.
  static Recipe from_json(const nlohmann::json& j, const std::string& source, const std::string& hint = {});
};

}  // namespace hse::preprocess
