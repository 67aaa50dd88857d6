#include "hse/config/vit3d.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/json.h"

namespace hse::model {

// ---- config ----------------------------------------------------------------

std::int64_t Vit3dConfig::num_patches() const {
  const auto g = grid();
  return g[0] * g[1] * g[2];
}

std::int64_t Vit3dConfig::patch_dim() const { return patch_size[0] * patch_size[1] * patch_size[2] * in_channels; }

void Vit3dConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& m) { throw cli::Error(cli::Exit::incompatible, source, "vit3d config: " + m); };
  if (in_channels < 1) bad(fmt::format("in_channels must be positive, got {}", in_channels));
  for (int i = 0; i < 3; ++i) {
    if (img_size[i] < 1 || patch_size[i] < 1)
      bad(fmt::format("img_size [{}] and patch_size [{}] must be positive", fmt::join(img_size, ","),
                      fmt::join(patch_size, ",")));
    if (img_size[i] % patch_size[i] != 0)
      bad(fmt::format("img_size [{}] is not a multiple of patch_size [{}]", fmt::join(img_size, ","),
                      fmt::join(patch_size, ",")));
  }
  // num_patches() and patch_dim() multiply the sizes: int64 must hold the products.
  const auto prod = [](const std::array<std::int64_t, 3>& a) {
    return static_cast<double>(a[0]) * static_cast<double>(a[1]) * static_cast<double>(a[2]);
  };
  if (prod(img_size) > 4e18 || prod(patch_size) * static_cast<double>(in_channels) > 4e18)
    bad(fmt::format("img_size [{}], patch_size [{}] and in_channels {} are too large", fmt::join(img_size, ","),
                    fmt::join(patch_size, ","), in_channels));
  if (hidden < 1 || mlp_dim < 1 || layers < 0 || heads < 1)
    bad(fmt::format("hidden_size {}, mlp_dim {}, num_layers {}, num_heads {} must be positive", hidden, mlp_dim,
                    layers, heads));
  if (hidden % heads != 0) bad(fmt::format("hidden_size {} is not divisible by num_heads {}", hidden, heads));
  if (!(dropout >= 0 && dropout <= 1)) bad(fmt::format("dropout_rate {} is not in [0,1]", dropout));
  if (!(score_dropout >= 0 && score_dropout <= 1)) bad(fmt::format("score_dropout {} is not in [0,1]", score_dropout));
  if (!(layer_norm_eps > 0)) bad(fmt::format("layer_norm_eps {} must be positive", layer_norm_eps));
  if (slice_dim < 1) bad(fmt::format("slice_dim must be positive, got {}", slice_dim));
  if (patch_guide != "slices" && patch_guide != "text-cls" && patch_guide != "full-text")
    bad(fmt::format("patch_guide must be slices, text-cls or full-text, got '{}'", patch_guide));
}

namespace {

using nlohmann::json;
constexpr const char* kWhat = "vit3d";

}  // namespace

Vit3dConfig Vit3dConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw cli::Error(cli::Exit::incompatible, source, "vit3d config: not a JSON object");
  cfg::check_depth(kWhat, j, source);
  // A config that holds the vision sizes in a sub-object ("vision": {...}) is read from there.
  const json& o = (j.contains("vision") && j["vision"].is_object()) ? j["vision"] : j;
  Vit3dConfig c;
  const cfg::Reader r(kWhat, o, source);
  r.get({"in_channels", "image_channel"}, c.in_channels);
  r.get({"img_size", "image_size"}, c.img_size);  // MONAI's ensure_tuple_rep: one int or a list of 3
  r.get({"patch_size"}, c.patch_size);
  r.get({"hidden_size", "hidden"}, c.hidden);
  r.get({"mlp_dim", "intermediate_size"}, c.mlp_dim);
  r.get({"num_layers", "layers"}, c.layers);
  r.get({"num_heads", "heads"}, c.heads);
  r.get({"dropout_rate", "dropout"}, c.dropout);
  r.get({"layer_norm_eps"}, c.layer_norm_eps);
  r.get({"slice_dim"}, c.slice_dim);
  r.get({"score_dropout"}, c.score_dropout);
  r.get({"patch_guide"}, c.patch_guide);
  r.get("qkv_bias", c.qkv_bias);
  if (const json* v = r.find({"pos_embed", "proj_type"}))
    if (!v->is_string() || v->get<std::string>() != "perceptron")
      r.fail(fmt::format("only the 'perceptron' patch embedding is supported, got {}", v->dump()));
  if (const json* v = r.find({"pos_embed_type"}))
    if (!v->is_string() || v->get<std::string>() != "learnable")
      r.fail(fmt::format("only learnable position embeddings are supported, got {}", v->dump()));
  if (const json* v = r.find({"spatial_dims"}))
    if (!v->is_number_integer() || v->get<std::int64_t>() != 3)
      r.fail(fmt::format("spatial_dims must be 3, got {}", v->dump()));
  c.validate(source);
  return c;
}

Vit3dConfig Vit3dConfig::from_file(const std::string& path) {
  std::string file;
  const json j = cfg::read_file(path, file);
  return from_json(j, file);
}

nlohmann::json Vit3dConfig::to_json() const {
  json j{{"in_channels", in_channels},
              {"img_size", img_size},
              {"patch_size", patch_size},
              {"hidden_size", hidden},
              {"mlp_dim", mlp_dim},
              {"num_layers", layers},
              {"num_heads", heads},
              {"dropout_rate", dropout},
              {"qkv_bias", qkv_bias},
              {"layer_norm_eps", layer_norm_eps},
              {"pos_embed", "perceptron"},
              {"spatial_dims", 3},
              {"slice_dim", slice_dim},
              {"score_dropout", score_dropout}};
  if (patch_guide != "slices") j["patch_guide"] = patch_guide;
  return j;
}

}  // namespace hse::model
