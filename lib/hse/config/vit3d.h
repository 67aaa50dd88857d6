// The 3-D ViT's config (hse's and MONAI's field names), without LibTorch: parsed in libhse (fuzzed
// by tests/fuzz/fuzz_config.cpp); the model is in hse/model/vit3d.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace hse::model {

// Sizes of the 3D ViT (and of the 2E3 scoring, which only the E2E3 uses).
// Volumes are [B, in_channels, D, H, W] with img_size = {D, H, W}.
struct Vit3dConfig {
  std::int64_t in_channels = 1;
  std::array<std::int64_t, 3> img_size{32, 256, 256};
  std::array<std::int64_t, 3> patch_size{4, 16, 16};
  std::int64_t hidden = 768;
  std::int64_t mlp_dim = 3072;
  std::int64_t layers = 12;
  std::int64_t heads = 12;
  double dropout = 0.0;  // MONAI dropout_rate (embedding, attention, MLP)
  bool qkv_bias = false;
  double layer_norm_eps = 1e-5;
  // 2E3 scoring (e2e3.h): slice feature width (BiomedCLIP CLS, 768) and the
  // dropout of regular_attention (on the attention weights and on its output).
  std::int64_t slice_dim = 768;
  double score_dropout = 0.1;
  // What the scoring attends to (Table 1b of the paper): "slices" (the 2-D slice features,
  // HSENet), "text-cls" (the report's CLS feature) or "full-text" (the report's token features).
  // The guide features come in the slice-features file either way (hse-embed --guide writes the
  // text ones); slice_dim is their width. Written to config.json only when not "slices".
  std::string patch_guide = "slices";

  std::array<std::int64_t, 3> grid() const {
    return {img_size[0] / patch_size[0], img_size[1] / patch_size[1], img_size[2] / patch_size[2]};
  }
  std::int64_t num_patches() const;  // N = prod(grid)
  std::int64_t patch_dim() const;    // prod(patch_size) * in_channels
  std::int64_t head_dim() const { return hidden / heads; }

  // Throws cli::Error (exit 3, naming `source`) when sizes are inconsistent.
  void validate(const std::string& source = {}) const;

  // Parses a JSON object. Accepts hse's names and the published CLIP
  // config.json names (hidden_size, num_layers, num_heads, dropout_rate,
  // pos_embed "perceptron", spatial_dims 3, ...); absent fields keep their
  // defaults (HSENet's sizes) and unknown fields are ignored. Throws cli::Error
  // (exit 3) for wrong types or values. The result is validated.
  static Vit3dConfig from_json(const nlohmann::json& j, const std::string& source = {});
  // Reads a JSON file, or `<dir>/config.json` when `path` is a directory.
  static Vit3dConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace hse::model
