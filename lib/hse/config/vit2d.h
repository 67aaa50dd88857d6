// The 2-D ViT's config (timm's and open_clip's field names), without LibTorch: parsed in libhse
// (fuzzed by tests/fuzz/fuzz_config.cpp); the model is in hse/model/vit2d.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace hse::model {

// Sizes of the 2-D ViT; defaults are vit_base_patch16_224 (BiomedCLIP).
// Images are [B, in_chans, img_size[0], img_size[1]].
struct Vit2dConfig {
  std::array<std::int64_t, 2> img_size{224, 224};
  std::array<std::int64_t, 2> patch_size{16, 16};
  std::int64_t in_chans = 3;
  std::int64_t embed_dim = 768;
  std::int64_t depth = 12;
  std::int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double layer_norm_eps = 1e-6;
  // Fixed by the supported layout (validate() rejects other values):
  bool class_token = true;            // a CLS token
  std::string global_pool = "token";  // the feature is the CLS token after `norm`
  bool pre_norm = false;              // timm norm_pre = Identity

  std::array<std::int64_t, 2> grid() const { return {img_size[0] / patch_size[0], img_size[1] / patch_size[1]}; }
  std::int64_t num_patches() const { return grid()[0] * grid()[1]; }  // N (196 for the base)
  std::int64_t num_tokens() const { return num_patches() + 1; }       // N + CLS (197)
  std::int64_t mlp_hidden() const;                                    // int(embed_dim * mlp_ratio), as timm
  std::int64_t head_dim() const { return embed_dim / num_heads; }

  // Throws cli::Error (exit 3, naming `source`) when sizes are inconsistent or
  // the layout is not the supported one.
  void validate(const std::string& source = {}) const;

  // Parses a JSON object with timm's argument names (img_size, patch_size,
  // in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, class_token,
  // global_pool, pre_norm) plus layer_norm_eps (alias norm_eps); img_size and
  // patch_size are an integer or [H, W]. An open_clip model config
  // (open_clip_config.json: {"model_cfg": {"vision_cfg": {...}}}, or a bare
  // vision_cfg) is accepted too: timm_model_name must then be
  // "vit_base_patch16_224", timm_pool "" or "token", and image_size sets
  // img_size. Absent fields keep their defaults, unknown fields are ignored.
  // Throws cli::Error (exit 3) for wrong types or values. The result is validated.
  static Vit2dConfig from_json(const nlohmann::json& j, const std::string& source = {});
  // Reads a JSON file, or `<dir>/config.json` when `path` is a directory.
  static Vit2dConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace hse::model
