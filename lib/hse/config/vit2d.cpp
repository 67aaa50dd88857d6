#include "hse/config/vit2d.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/json.h"

namespace hse::model {

// ---- config ----------------------------------------------------------------

std::int64_t Vit2dConfig::mlp_hidden() const {
  return static_cast<std::int64_t>(static_cast<double>(embed_dim) * mlp_ratio);  // Python int() truncates
}

void Vit2dConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& m) { throw cli::Error(cli::Exit::incompatible, source, "vit2d config: " + m); };
  if (in_chans < 1) bad(fmt::format("in_chans must be positive, got {}", in_chans));
  for (int i = 0; i < 2; ++i) {
    if (img_size[i] < 1 || patch_size[i] < 1)
      bad(fmt::format("img_size [{}] and patch_size [{}] must be positive", fmt::join(img_size, ","),
                      fmt::join(patch_size, ",")));
    if (img_size[i] % patch_size[i] != 0)
      bad(fmt::format("img_size [{}] is not a multiple of patch_size [{}]", fmt::join(img_size, ","),
                      fmt::join(patch_size, ",")));
  }
  if (embed_dim < 1 || depth < 0 || num_heads < 1)
    bad(fmt::format("embed_dim {}, depth {}, num_heads {} must be positive", embed_dim, depth, num_heads));
  if (embed_dim % num_heads != 0) bad(fmt::format("embed_dim {} is not divisible by num_heads {}", embed_dim, num_heads));
  // num_patches() and mlp_hidden() multiply the sizes: int64 must hold the results.
  if (static_cast<double>(img_size[0]) * static_cast<double>(img_size[1]) > 4e18)
    bad(fmt::format("img_size [{}] is too large", fmt::join(img_size, ",")));
  if (static_cast<double>(embed_dim) * mlp_ratio > 4e18)
    bad(fmt::format("embed_dim {} * mlp_ratio {} is too large", embed_dim, mlp_ratio));
  if (!(mlp_ratio > 0) || mlp_hidden() < 1) bad(fmt::format("mlp_ratio {} must be positive", mlp_ratio));
  if (!(layer_norm_eps > 0)) bad(fmt::format("layer_norm_eps {} must be positive", layer_norm_eps));
  if (!class_token) bad("only models with a class token are supported (class_token true)");
  if (global_pool != "token")
    bad(fmt::format("only global_pool 'token' (the CLS feature after the final norm) is supported, got '{}'",
                    global_pool));
  if (pre_norm) bad("only models without a pre-norm are supported (pre_norm false)");
}

namespace {

using nlohmann::json;
constexpr const char* kWhat = "vit2d";

}  // namespace

Vit2dConfig Vit2dConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw cli::Error(cli::Exit::incompatible, source, "vit2d config: not a JSON object");
  cfg::check_depth(kWhat, j, source);
  // open_clip_config.json: {"model_cfg": {"vision_cfg": {...}}}; a model config: {"vision_cfg": {...}}.
  const json* o = &j;
  if (o->contains("model_cfg") && (*o)["model_cfg"].is_object()) o = &(*o)["model_cfg"];
  if (o->contains("vision_cfg") && (*o)["vision_cfg"].is_object()) o = &(*o)["vision_cfg"];
  Vit2dConfig c;
  const cfg::Reader r(kWhat, *o, source);
  if (const json* v = r.find({"timm_model_name"}))
    if (!v->is_string() || v->get<std::string>() != "vit_base_patch16_224")
      r.fail(fmt::format("only timm_model_name 'vit_base_patch16_224' is known, got {}", v->dump()));
  // open_clip: an empty timm_pool keeps timm's default ('token').
  if (const json* v = r.find({"timm_pool"}))
    if (!v->is_string() || !(v->get<std::string>().empty() || v->get<std::string>() == "token"))
      r.fail(fmt::format("only timm_pool '' or 'token' is supported, got {}", v->dump()));
  r.get({"img_size", "image_size"}, c.img_size);  // timm's to_2tuple: one int or a list of 2
  r.get({"patch_size"}, c.patch_size);
  r.get({"in_chans", "in_channels"}, c.in_chans);
  r.get({"embed_dim"}, c.embed_dim);
  r.get({"depth"}, c.depth);
  r.get({"num_heads"}, c.num_heads);
  r.get({"mlp_ratio"}, c.mlp_ratio);
  r.get({"layer_norm_eps", "norm_eps"}, c.layer_norm_eps);
  r.get("qkv_bias", c.qkv_bias);
  r.get("class_token", c.class_token);
  r.get("pre_norm", c.pre_norm);
  r.get({"global_pool"}, c.global_pool);
  c.validate(source);
  return c;
}

Vit2dConfig Vit2dConfig::from_file(const std::string& path) {
  std::string file;
  const json j = cfg::read_file(path, file);
  return from_json(j, file);
}

nlohmann::json Vit2dConfig::to_json() const {
  return json{{"img_size", img_size},       {"patch_size", patch_size},   {"in_chans", in_chans},
              {"embed_dim", embed_dim},     {"depth", depth},             {"num_heads", num_heads},
              {"mlp_ratio", mlp_ratio},     {"qkv_bias", qkv_bias},       {"layer_norm_eps", layer_norm_eps},
              {"class_token", class_token}, {"global_pool", global_pool}, {"pre_norm", pre_norm}};
}

}  // namespace hse::model
