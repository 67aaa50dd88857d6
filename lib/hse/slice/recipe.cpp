#include "hse/slice/recipe.h"

#include "hse/image/slice_ops.h"
#include "hse/io/h5.h"
#include "hse/io/record.h"

namespace hse::slice {

namespace {
constexpr double kScale = 1000.0;
constexpr const char* kRotation = "clockwise 90 (PIL rotate(-90, expand=True))";
constexpr const char* kRotationCcw = "counter-clockwise 90 (PIL rotate(90, expand=True))";
bool bimcv(const Recipe& r) { return r.dataset == "bimcv-r"; }
double scale(const Recipe& r) { return bimcv(r) ? 1.0 : kScale; }
const char* rotation(const Recipe& r) { return bimcv(r) ? kRotationCcw : kRotation; }
constexpr const char* kInterpolation = "bicubic (Pillow)";
std::vector<double> mean() {
  const image::SliceRecipe d;
  return {d.mean.begin(), d.mean.end()};
}
std::vector<double> stdev() {
  const image::SliceRecipe d;
  return {d.stdev.begin(), d.stdev.end()};
}
}  // namespace

void Recipe::write(h5::Writer& w) const {
  CtRecipe::write(w, kName, kLayout);
  if (bimcv(*this)) w.set_attr("dataset", dataset);
  w.set_attr("scale", scale(*this));
  w.set_attr("n_slices", n_slices);
  w.set_attr("jpeg_quality", jpeg_quality);
  w.set_attr("image_size", image_size);
  w.set_attr("mean", mean());
  w.set_attr("std", stdev());
  w.set_attr("rotation", std::string(rotation(*this)));
  w.set_attr("interpolation", std::string(kInterpolation));
}

nlohmann::json Recipe::to_json() const {
  nlohmann::json j = record(*this, {{"scale", scale(*this)}, {"n_slices", n_slices},   {"jpeg_quality", jpeg_quality},
                                    {"image_size", image_size}, {"mean", mean()},      {"std", stdev()},
                                    {"rotation", rotation(*this)}, {"interpolation", kInterpolation}});
  if (bimcv(*this)) j["dataset"] = dataset;
  return j;
}

Recipe Recipe::from_json(const nlohmann::json& j, const std::string& source, const std::string& hint) {
  return read_record<Recipe>("slice recipe", j, source, hint, [](Recipe& out, io::RecordReader& r) {
    if (r.has("dataset")) out.dataset = r.str("dataset");
    if (out.dataset != "ct-rate" && out.dataset != "bimcv-r") r.fail("has an unknown dataset '" + out.dataset + "'");
    r.expect("scale", scale(out));
    r.expect("mean", mean());
    r.expect("std", stdev());
    r.expect("rotation", rotation(out));
    r.expect("interpolation", kInterpolation);
    out.n_slices = r.int64("n_slices");
    out.jpeg_quality = r.int64("jpeg_quality");
    out.image_size = r.int64("image_size");
    if (out.n_slices < 1 || out.image_size < 1 || out.jpeg_quality < 0 || out.jpeg_quality > 100)
      r.fail("has n_slices, image_size or jpeg_quality out of range");
  });
}

}  // namespace hse::slice
