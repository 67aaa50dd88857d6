// The 2-D slice encoder (hsenet-spec §2, "2D slices and features"): BiomedCLIP's
// image trunk, i.e. timm's VisionTransformer as built by
// timm.create_model('vit_base_patch16_224', num_classes=0) (timm 1.0.x):
// Conv2d patch embedding (kernel = stride = patch), a CLS token, learnable
// position embeddings that include the CLS position, no pre-norm, pre-norm
// blocks with qkv bias and exact GELU, a final LayerNorm (eps 1e-6), and
// global_pool 'token': the feature is the CLS token after the final norm.
//
// Parameter names are timm's (under "visual.trunk." in BiomedCLIP's open_clip
// checkpoint, where open_clip's TimmModel holds the timm model as `trunk`;
// the 768->512 projection "visual.head.proj" is not part of the trunk):
//   cls_token [1,1,D]
//   pos_embed [1,N+1,D]                         (N = (H/p)·(W/p); CLS position first)
//   patch_embed.proj.{weight [D,C,p,p],bias [D]}
//   blocks.{i}.norm1.{weight,bias}
//   blocks.{i}.attn.qkv.{weight [3D,D],bias [3D]}
//   blocks.{i}.attn.proj.{weight,bias}
//   blocks.{i}.norm2.{weight,bias}
//   blocks.{i}.mlp.fc1.{weight [M,D],bias}      M = int(D · mlp_ratio)
//   blocks.{i}.mlp.fc2.{weight [D,M],bias}
//   norm.{weight,bias}
// 4 + 12·depth + 2 tensors (150 for vit_base_patch16_224). timm's Identity
// modules (norm_pre, attn.q_norm/k_norm, ls1/ls2, drop_path, fc_norm, head with
// num_classes=0) have no parameters.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"

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

// timm PatchEmbed: Conv2d(in_chans, D, kernel = stride = patch), flatten, [B, N, D].
class Vit2dPatchEmbedImpl : public torch::nn::Module {
 public:
  explicit Vit2dPatchEmbedImpl(const Vit2dConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, N, D] (row-major patch order)
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(Vit2dPatchEmbed);

// timm Attention: qkv Linear, softmax(q kᵀ · head_dim^-0.5) v, proj Linear.
class Vit2dAttentionImpl : public torch::nn::Module {
 public:
  Vit2dAttentionImpl(std::int64_t dim, std::int64_t heads, bool qkv_bias);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  std::int64_t heads_;
};
TORCH_MODULE(Vit2dAttention);

// timm Mlp: fc1, exact GELU, fc2.
class Vit2dMlpImpl : public torch::nn::Module {
 public:
  Vit2dMlpImpl(std::int64_t dim, std::int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Vit2dMlp);

// timm Block (pre-norm): x += attn(norm1(x)); x += mlp(norm2(x)).
class Vit2dBlockImpl : public torch::nn::Module {
 public:
  explicit Vit2dBlockImpl(const Vit2dConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::LayerNorm norm1{nullptr};
  Vit2dAttention attn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  Vit2dMlp mlp{nullptr};
};
TORCH_MODULE(Vit2dBlock);

// The trunk. Parameters are initialised as timm's default init_weights ('')
// does (seed with torch::manual_seed; values differ from timm's draws): pos_embed
// trunc_normal(0.02), cls_token normal(1e-6), Linear trunc_normal(0.02) with zero
// bias, Conv2d and LayerNorm PyTorch defaults.
class Vit2dImpl : public torch::nn::Module {
 public:
  explicit Vit2dImpl(const Vit2dConfig& c);
  // x [B, in_chans, H, W] (converted to the parameters' dtype and device) ->
  // the feature, CLS after the final norm, [B, D] (timm: forward_head(
  // forward_features(x), pre_logits=True) with global_pool 'token'). Throws
  // cli::Error (exit 3) when the shape does not match the config.
  torch::Tensor forward(const torch::Tensor& x);
  // All tokens after the final norm, [B, N+1, D] with CLS first (timm forward_features).
  torch::Tensor forward_features(const torch::Tensor& x);

  const Vit2dConfig& config() const { return cfg_; }

  torch::Tensor cls_token;
  torch::Tensor pos_embed;
  Vit2dPatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  Vit2dConfig cfg_;
};
TORCH_MODULE(Vit2d);

// BiomedCLIP's open_clip checkpoint keeps the trunk under this prefix.
inline constexpr const char* kBiomedClipTrunkPrefix = "visual.trunk.";

// Loads the trunk's tensors named `prefix + name` (model::load_state: every
// missing/unexpected/mis-shaped key is reported; throws cli::Error, exit 3,
// unless allow_partial). A classifier "head.*" under the prefix (a plain timm
// checkpoint with num_classes > 0) is ignored.
LoadReport load_vit2d(Vit2d& model, const io::SafeTensorsSet& ckpt, const std::string& prefix = kBiomedClipTrunkPrefix,
                      bool allow_partial = false);

// Encodes stacks of slices: slices [N, S, in_chans, H, W] -> features [N, S, D]
// (float32, on the slices' device), running the model in eval mode without
// gradients, `batch` images per forward (chunks move to the model's device and
// dtype). The model's training mode is restored afterwards. Throws cli::Error:
// exit 2 when batch < 1, exit 3 when the shape does not match the config.
torch::Tensor encode_slices(Vit2d& model, const torch::Tensor& slices, int batch);

}  // namespace hse::model
