// HSENet's stage-2 "2E3" 3D encoder (hsenet-spec §2, ViT_stage2): the ViT of
// vit3d.h whose patch embeddings P are weighted by a slice-guided score before
// the CLS token and the blocks.
//   Q = Wq·P, K = Wk·S, V = Wv·S            S = slice features [B, S, slice_dim]
//   A = dropout(softmax(Q·Kᵀ / √hidden))     over the slices
//   Z = LayerNorm(Q + dropout(output_linear(A·V)))   (the residual is the projected Q)
//   score = sigmoid(patch_score_proj(Z)) [B, N];  P' = P·score (all tokens kept)
// Keys (under "vision_encoder." in the stage-2 CLIP): the Vit3d keys plus
//   patch_score_proj.{weight [1,H],bias [1]}
//   slice_guided_attention.{Wq,Wk,Wv,output_linear,norm}.{weight,bias}
// The scoring modules keep PyTorch's default init (as in HSENet).
#pragma once

#include "hse/model/vit3d.h"

namespace hse::model {

// HSENet's regular_attention: single-head cross-attention, no FFN.
class SliceGuidedAttentionImpl : public torch::nn::Module {
 public:
  SliceGuidedAttentionImpl(std::int64_t hidden, std::int64_t slice_dim, double dropout, double eps = 1e-5);
  // patches [B, N, hidden], slices [B, S, slice_dim] -> Z [B, N, hidden]
  torch::Tensor forward(const torch::Tensor& patches, const torch::Tensor& slices);
  torch::nn::Linear Wq{nullptr}, Wk{nullptr}, Wv{nullptr}, output_linear{nullptr};
  torch::nn::Dropout dropout{nullptr}, dropout_2{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SliceGuidedAttention);

class E2E3Impl : public Vit3dImpl {
 public:
  explicit E2E3Impl(const Vit3dConfig& c);
  // x [B, C, D, H, W]; slices [B, S, slice_dim] (any S >= 1; HSENet: 32 BiomedCLIP
  // CLS features). Returns last, hidden_states and scores [B, N]. Throws
  // cli::Error (exit 3) on shape mismatches.
  VisionOutput forward(const torch::Tensor& x, const torch::Tensor& slices, bool keep_hidden_states = true);
  // The scores alone: P [B, N, H], slices -> [B, N].
  torch::Tensor score(const torch::Tensor& patches, const torch::Tensor& slices);

  torch::nn::Linear patch_score_proj{nullptr};
  SliceGuidedAttention slice_guided_attention{nullptr};
};
TORCH_MODULE(E2E3);

// Loads the 2E3 encoder's tensors named `prefix + name` (see load_vit3d).
LoadReport load_e2e3(E2E3& model, const io::SafeTensorsSet& ckpt, const std::string& prefix = kE2E3Prefix,
                     bool allow_partial = false);

// True when the checkpoint holds a 2E3 encoder under `prefix` (a stage-2 CLIP).
bool has_e2e3(const io::SafeTensorsSet& ckpt, const std::string& prefix = kE2E3Prefix);

}  // namespace hse::model
