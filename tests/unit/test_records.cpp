// The recipes and records tools write beside their outputs and replay (preprocess::Recipe,
// slice::Recipe, embed::SliceEncoderRecord): HDF5 attributes and JSON agree, a round trip keeps
// every field, and a missing, mistyped, unknown or foreign field is exit 3 naming it.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>

#include "hse/cli/cli.h"
#include "hse/embed/slice_encoder.h"
#include "hse/io/h5.h"
#include "hse/io/record.h"
#include "hse/preprocess/recipe.h"
#include "hse/slice/recipe.h"

using namespace hse;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
// The attributes a writer gets from `write`, as the JSON record hse-finetune makes of them.
json written(const std::function<void(h5::Writer&)>& write, const std::string& prefix = {}) {
  const auto d = fs::temp_directory_path() / ("hse_records_" + std::to_string(::getpid()));
  fs::create_directories(d);
  const std::string path = (d / "r.h5").string();
  {
    h5::Writer w(path, "volumes");
    w.add_dataset("volumes", h5::DType::f32, {1});
    const float x = 0;
    w.append("volumes", &x);
    w.add_id("a");
    write(w);
    w.commit();
  }
  const json j = io::attrs_json(h5::Reader({path}, "volumes").attrs(), prefix);
  fs::remove_all(d);
  return j;
}
// The message of the exit-3 error `f` throws ("" when it throws none or another).
std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const cli::Error& e) {
    return e.code() == cli::Exit::incompatible ? std::string(e.what()) : "exit " + std::to_string(int(e.code()));
  }
  return {};
}
}  // namespace

TEST_CASE("volume recipe: attributes and JSON agree, and round-trip") {
  preprocess::Recipe r;
  r.window = {-500, 300};
  r.spacing = {2.0, 1.25};
  r.size = {16, 0, 64};
  r.resample = false;
  r.hu = "rescale";
  r.compat = "hsenet";
  const json attrs = written([&](h5::Writer& w) { r.write(w); });
  CHECK(attrs == r.to_json());  // a record made from the file equals one made from the recipe
  const auto back = preprocess::Recipe::from_json(attrs, "r.h5");
  CHECK(back.window == r.window);
  CHECK(back.spacing == r.spacing);
  CHECK(back.size == r.size);
  CHECK(back.resample == false);
  CHECK(back.crop == true);
  CHECK(back.hu == "rescale");
  CHECK(back.compat == "hsenet");
}

TEST_CASE("volume recipe: missing, mistyped, unknown and foreign fields are refused (exit 3)") {
  const json good = preprocess::Recipe{}.to_json();
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return refusal([&] { preprocess::Recipe::from_json(j, "rec.json"); });
  };
  CHECK(with([](json&) {}).empty());
  CHECK(with([](json& j) { j.erase("window"); }).find("has no 'window'") != std::string::npos);
  CHECK(with([](json& j) { j["hu_window"] = j["window"]; j.erase("window"); }).find("'window'") != std::string::npos);
  CHECK(with([](json& j) { j["sharpen"] = 1; }).find("does not know: 'sharpen'") != std::string::npos);
  CHECK(with([](json& j) { j["size"] = {32, 256}; }).find("'size' must be a list of 3 integers") != std::string::npos);
  CHECK(with([](json& j) { j["crop"] = 2; }).find("'crop' must be 0 or 1") != std::string::npos);
  CHECK(with([](json& j) { j["layout"] = "N,Z,X,Y"; }).find("'layout'") != std::string::npos);
  CHECK(with([](json& j) { j["window"] = nullptr; }).find("has no 'window'") != std::string::npos);
  CHECK(refusal([] { preprocess::Recipe::from_json(json::array(), "rec.json"); }).find("not an object") !=
        std::string::npos);
}

TEST_CASE("slice recipe: attributes and JSON agree; this hse's constants are checked") {
  slice::Recipe r;
  r.n_slices = 16;
  r.jpeg_quality = 95;
  r.image_size = 32;
  r.window = {-1000, 1000};
  const json attrs = written([&](h5::Writer& w) { r.write(w); });
  CHECK(attrs == r.to_json());
  const auto back = slice::Recipe::from_json(attrs, "s.h5");
  CHECK(back.n_slices == 16);
  CHECK(back.jpeg_quality == 95);
  CHECK(back.image_size == 32);
  json j = attrs;
  j["mean"] = {0.5, 0.5, 0.5};
  CHECK(refusal([&] { slice::Recipe::from_json(j, "s.h5"); }).find("'mean'") != std::string::npos);
  j = attrs;
  j["n_slices"] = 0;
  CHECK(refusal([&] { slice::Recipe::from_json(j, "s.h5"); }).find("out of range") != std::string::npos);
  j = attrs;
  j.erase("interpolation");
  CHECK(refusal([&] { slice::Recipe::from_json(j, "s.h5"); }).find("has no 'interpolation'") != std::string::npos);
}

TEST_CASE("slice encoder record: the encoder.* attributes, read strictly") {
  embed::SliceEncoderRecord e;
  e.model = "/models/biomedclip";
  e.vit2d_config = "/models/biomedclip/config.json";
  const json attrs = written([&](h5::Writer& w) { e.write(w); }, embed::SliceEncoderRecord::kAttrPrefix);
  CHECK(attrs == e.to_json());
  CHECK(embed::SliceEncoderRecord::from_json(attrs, "f.h5").model == e.model);
  json j = attrs;
  j["model"] = "";  // neither a model nor a random trunk
  CHECK(refusal([&] { embed::SliceEncoderRecord::from_json(j, "f.h5"); }).find("names no slice encoder") !=
        std::string::npos);
  j = attrs;
  j["random_init"] = "7";
  CHECK(refusal([&] { embed::SliceEncoderRecord::from_json(j, "f.h5"); }).find("'random_init' must be an integer") !=
        std::string::npos);
}
