#include "hse/preprocess/recipe.h"

#include "hse/io/h5.h"
#include "hse/io/record.h"

namespace hse::preprocess {

void Recipe::write(h5::Writer& w) const {
  CtRecipe::write(w, kName, kLayout);
  w.set_attr("size", std::vector<std::int64_t>{size[0], size[1], size[2]});
  w.set_attr("crop", static_cast<std::int64_t>(crop));
}

nlohmann::json Recipe::to_json() const {
  // The keys and value types of the HDF5 attributes, so a record made from a file's attributes
  // and one made from a Recipe are the same.
  return record(*this, {{"size", size}, {"crop", static_cast<std::int64_t>(crop)}});
}

Recipe Recipe::from_json(const nlohmann::json& j, const std::string& source, const std::string& hint) {
  return read_record<Recipe>("volume recipe", j, source, hint, [](Recipe& out, io::RecordReader& r) {
    out.size = r.integers<3>("size");
    out.crop = r.flag("crop");
  });
}

}  // namespace hse::preprocess
