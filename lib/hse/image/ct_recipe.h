// What the volume recipe (preprocess::Recipe) and the slice recipe (slice::Recipe) share: the HU
// window, the target spacing and whether to resample to it, how the input became HU, and the
// --compat preset; with their flags, checks, HDF5 attributes and strict JSON reading.
#pragma once

#include <array>
#include <string>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}
namespace hse::h5 {
class Writer;
}
namespace hse::io {
class RecordReader;
}

namespace hse::image {

struct CtRecipe {
  std::array<double, 2> window{-1000, 200};  // HU window LO, HI (each recipe sets its default)
  std::array<double, 2> spacing{1.5, 0.75};  // target spacing Z, XY (mm)
  bool resample = true;
  std::string hu = "auto";  // how the files' values became HU (--hu; recorded, not replayed)
  std::string compat;       // "" | hsenet

  // --window, --spacing, --no-resample (the flag table's).
  void declare(CLI::App& app, const std::string& window_help);
  // cli::fail_usage for a window whose LO is not below HI or a spacing that is not positive.
  void check() const;
  void write(h5::Writer& w) const;
  void to_json(nlohmann::json& j) const;
  void read(io::RecordReader& r);
};

}  // namespace hse::image
