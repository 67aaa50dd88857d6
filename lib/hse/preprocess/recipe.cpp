#include "hse/preprocess/recipe.h"

#include "hse/io/h5.h"
#include "hse/io/record.h"

namespace hse::preprocess {

void Recipe::write(h5::Writer& w) const {
  CtRecipe::write(w);
  w.set_attr("size", std::vector<std::int64_t>{size[0], size[1], size[2]});
  w.set_attr("crop", static_cast<std::int64_t>(crop));
  w.set_attr("layout", std::string(kLayout));
  w.set_attr("recipe", std::string(kName));
}

nlohmann::json Recipe::to_json() const {
  // The keys and value types of the HDF5 attributes, so a record made from a file's attributes
  // and one made from a Recipe are the same.
  nlohmann::json j = {{"size", size}, {"crop", static_cast<std::int64_t>(crop)}, {"layout", kLayout}, {"recipe", kName}};
  CtRecipe::to_json(j);
  return j;
}

Recipe Recipe::from_json(const nlohmann::json& j, const std::string& source, const std::string& hint) {
  io::RecordReader r("volume recipe", j, source, hint);
  Recipe out;
  r.expect("recipe", kName);
  r.expect("layout", kLayout);
  out.read(r);
  out.size = r.integers<3>("size");
  out.crop = r.flag("crop");
  r.finish();
  return out;
}

}  // namespace hse::preprocess
