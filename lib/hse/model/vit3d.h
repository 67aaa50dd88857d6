// The 3D vision transformer of HSENet's CLIPs (hsenet-spec §1): MONAI 1.3's
// ViT with proj_type "perceptron", classification=True (a CLS token, no
// classifier head), pre-norm blocks, exact GELU, qkv without bias. Parameter
// names are MONAI's, i.e. the published checkpoints' under "vision_encoder."
// (stage 1) or "stage1_pretrained_CLIP.vision_encoder." (stage 2):
//   cls_token [1,1,H]
//   patch_embedding.position_embeddings [1,N,H]
//   patch_embedding.patch_embeddings.1.{weight [H,P],bias}   P = prod(patch)*C
//   blocks.{i}.{norm1,norm2}.{weight,bias}
//   blocks.{i}.attn.qkv.weight [3H,H] (+ .bias when qkv_bias)
//   blocks.{i}.attn.out_proj.{weight,bias}
//   blocks.{i}.mlp.{linear1,linear2}.{weight,bias}
//   norm.{weight,bias}
// The 2E3 encoder (e2e3.h) extends this module with the slice-guided scoring.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include "hse/config/vit3d.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"

namespace hse::model {

// What the vision encoders return.
struct VisionOutput {
  torch::Tensor last;                        // after the final norm, [B, N+1, H] (CLS first)
  std::vector<torch::Tensor> hidden_states;  // each block's output, not normed, [B, N+1, H]
  torch::Tensor scores;                      // E2E3 only: sigmoid patch scores [B, N]; undefined for Vit3d
};

// truncated normal init in place (as timm/MONAI trunc_normal_: values drawn
// from N(mean, std) restricted to [a, b]), using torch's generator.
void trunc_normal_(torch::Tensor t, double mean, double std, double a, double b);

// MONAI PatchEmbeddingBlock (perceptron): rearrange into patches, Linear, + position embeddings.
class PatchEmbeddingImpl : public torch::nn::Module {
 public:
  explicit PatchEmbeddingImpl(const Vit3dConfig& c);
  // x [B, C, D, H, W] -> [B, N, hidden] (position embeddings added, dropout applied)
  torch::Tensor forward(const torch::Tensor& x);
  // The einops rearrange "b c (h p1) (w p2) (d p3) -> b (h w d) (p1 p2 p3 c)".
  static torch::Tensor patchify(const torch::Tensor& x, const std::array<std::int64_t, 3>& patch);

  torch::nn::Linear proj{nullptr};  // registered as patch_embeddings.1
  torch::Tensor position_embeddings;
  torch::nn::Dropout dropout{nullptr};

 private:
  std::array<std::int64_t, 3> patch_;
};
TORCH_MODULE(PatchEmbedding);

// MONAI SABlock (combined qkv Linear, "b h (qkv l d) -> qkv b l h d").
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(std::int64_t hidden, std::int64_t heads, double dropout, bool qkv_bias);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear qkv{nullptr}, out_proj{nullptr};
  torch::nn::Dropout drop_output{nullptr};

 private:
  std::int64_t heads_;
  double dropout_;
};
TORCH_MODULE(SelfAttention);

// MONAI MLPBlock: linear1, exact GELU, dropout, linear2, dropout.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(std::int64_t hidden, std::int64_t mlp_dim, double dropout);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::Dropout drop1{nullptr}, drop2{nullptr};
};
TORCH_MODULE(Mlp);

// MONAI TransformerBlock (pre-norm): x += attn(norm1(x)); x += mlp(norm2(x)).
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const Vit3dConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  Mlp mlp{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SelfAttention attn{nullptr};
};
TORCH_MODULE(TransformerBlock);

// The ViT. Parameters are initialised as MONAI does (seed with torch::manual_seed).
class Vit3dImpl : public torch::nn::Module {
 public:
  explicit Vit3dImpl(const Vit3dConfig& c);
  // x [B, in_channels, D, H, W] (converted to the parameters' dtype). Throws
  // cli::Error (exit 3) when the shape does not match the config.
  VisionOutput forward(const torch::Tensor& x, bool keep_hidden_states = true);

  // The steps of forward, for encoders built on this one (E2E3).
  torch::Tensor embed(const torch::Tensor& x);  // checked input -> patch embeddings P [B, N, H]
  // P -> CLS prepended, blocks, norm.
  VisionOutput encode(const torch::Tensor& patches, bool keep_hidden_states = true);

  const Vit3dConfig& config() const { return cfg_; }

  torch::Tensor cls_token;
  PatchEmbedding patch_embedding{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  bool gradient_checkpointing = false;  // training: recompute each block in backward (recompute.h)
  torch::nn::LayerNorm norm{nullptr};

 protected:
  Vit3dConfig cfg_;
};
TORCH_MODULE(Vit3d);

// Checkpoint prefixes (hsenet-spec §8).
inline constexpr const char* kStage1VisionPrefix = "vision_encoder.";                         // stage-1 CLIP
inline constexpr const char* kStage2FrozenVisionPrefix = "stage1_pretrained_CLIP.vision_encoder.";  // in stage 2
inline constexpr const char* kE2E3Prefix = "vision_encoder.";                                 // stage-2 CLIP

// Loads the ViT's tensors named `prefix + name` (model::load_state: every
// missing/unexpected/mis-shaped key is reported; throws cli::Error, exit 3,
// unless allow_partial).
LoadReport load_vit3d(Vit3d& model, const io::SafeTensorsSet& ckpt, const std::string& prefix = kStage1VisionPrefix,
                      bool allow_partial = false);

}  // namespace hse::model
