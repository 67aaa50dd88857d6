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

#include "hse/config/vit2d.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"

namespace hse::model {

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
