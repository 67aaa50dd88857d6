#include "hse/image/ct_recipe.h"

#include "hse/cli/cli.h"
#include "hse/cli/flags.h"
#include "hse/io/h5.h"
#include "hse/io/record.h"

namespace hse::image {

void CtRecipe::declare(CLI::App& app, const std::string& window_help) {
  cli::flags::hu_window(app, window, window_help);
  cli::flags::spacing(app, spacing);
  cli::flags::no_resample(app, resample);
}

void CtRecipe::check() const {
  if (window[0] >= window[1]) cli::fail_usage("--window: LO must be below HI");
  if (spacing[0] <= 0 || spacing[1] <= 0) cli::fail_usage("--spacing: values must be positive");
}

void CtRecipe::write(h5::Writer& w, const char* name, const char* layout) const {
  w.set_attr("recipe", std::string(name));
  w.set_attr("layout", std::string(layout));
  w.set_attr("window", std::vector<double>{window[0], window[1]});
  w.set_attr("spacing", std::vector<double>{spacing[0], spacing[1]});
  w.set_attr("resample", static_cast<std::int64_t>(resample));
  w.set_attr("hu", hu);
  w.set_attr("compat", compat);
}

void CtRecipe::to_json(nlohmann::json& j, const char* name, const char* layout) const {
  j["recipe"] = name;
  j["layout"] = layout;
  j["window"] = window;
  j["spacing"] = spacing;
  j["resample"] = static_cast<std::int64_t>(resample);
  j["hu"] = hu;
  j["compat"] = compat;
}

void CtRecipe::read(io::RecordReader& r, const char* name, const char* layout) {
  r.expect("recipe", name);
  r.expect("layout", layout);
  window = r.numbers<2>("window");
  spacing = r.numbers<2>("spacing");
  resample = r.flag("resample");
  hu = r.str("hu");
  compat = r.str("compat");
}

}  // namespace hse::image
