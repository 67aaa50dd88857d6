#include "hse/preprocess/recipe.h"

#include "hse/io/h5.h"
#include "hse/io/record.h"

namespace hse::preprocess {

void Recipe::write(h5::Writer& w) const {
  w.set_attr("window", std::vector<double>{window[0], window[1]});
  w.set_attr("spacing", std::vector<double>{spacing[0], spacing[1]});
  w.set_attr("size", std::vector<std::int64_t>{size[0], size[1], size[2]});
  w.set_attr("resample", static_cast<std::int64_t>(resample));
  w.set_attr("crop", static_cast<std::int64_t>(crop));
  w.set_attr("hu", hu);
  w.set_attr("layout", std::string(kLayout));
  w.set_attr("recipe", std::string(kName));
  w.set_attr("compat", compat);
}

nlohmann::json Recipe::to_json() const {
  // The keys and value types of the HDF5 attributes, so a record made from a file's attributes
  // and one made from a Recipe are the same.
  return {{"window", window},   {"spacing", spacing},       {"size", size},
          {"resample", static_cast<std::int64_t>(resample)}, {"crop", static_cast<std::int64_t>(crop)},
          {"hu", hu},           {"layout", kLayout},        {"recipe", kName},
          {"compat", compat}};
}

Recipe Recipe::from_json(const nlohmann::json& j, const std::string& source, const std::string& hint) {
  io::RecordReader r("volume recipe", j, source, hint);
  Recipe out;
  r.expect("recipe", kName);
  r.expect("layout", kLayout);
  out.window = r.numbers<2>("window");
  out.spacing = r.numbers<2>("spacing");
  out.size = r.integers<3>("size");
  out.resample = r.flag("resample");
  out.crop = r.flag("crop");
  out.hu = r.str("hu");
  out.compat = r.str("compat");
  r.finish();
  return out;
}

}  // namespace hse::preprocess
