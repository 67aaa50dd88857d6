// What the volume recipe (preprocess::Recipe) and the slice recipe (slice::Recipe) share: the HU
// window, the target spacing and whether to resample to it, how the input became HU, and the
// --compat preset; with their flags, checks, HDF5 attributes and strict JSON reading.
#pragma once

#include <array>
#include <string>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/image/ct_batch.h"
#include "hse/image/ct_input.h"
#include "hse/io/record.h"

namespace CLI {
class App;
}
namespace hse::h5 {
class Writer;
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
  // The shared fields, and "recipe" and "layout" (the derived recipe's name and array layout).
  void write(h5::Writer& w, const char* name, const char* layout) const;
  void to_json(nlohmann::json& j, const char* name, const char* layout) const;
  // Reads the shared fields; "recipe" and "layout" must be `name` and `layout`.
  void read(io::RecordReader& r, const char* name, const char* layout);

  // For a derived recipe R (kName, kLayout): its JSON from its own fields `own` and the shared
  // ones; and R read strictly from `j`, `more` reading its own fields.
  template <typename R>
  static nlohmann::json record(const R& recipe, nlohmann::json own) {
    recipe.CtRecipe::to_json(own, R::kName, R::kLayout);
    return own;
  }
  template <typename R, typename F>
  static R read_record(const char* what, const nlohmann::json& j, const std::string& source,
                       const std::string& hint, F&& more) {
    io::RecordReader r(what, j, source, hint);
    R out;
    out.read(r, R::kName, R::kLayout);
    more(out, r);
    r.finish();
    return out;
  }
};

// The options of a tool that turns CT files into one HDF5 file made by recipe R (hse-preprocess,
// hse-slice): the output and common flags, the CT inputs, the recipe (its flags are bound to its
// fields; hu is the input's, set when the file is written), the stored type and the batch options.
template <typename R>
struct CtToolOptions {
  cli::Common common;
  CtInputOptions input;
  R recipe;
  std::string dtype = "float32";
  std::string compression = "none";
  BatchOptions batch;
};

}  // namespace hse::image
