// HSENet's Spatial Packer (hsenet-spec §3: VisualPacker_3d_phi_v3 with resolution_attention_v3, in
// multimodal_projector/spatial_pooling_projector.py), generalised to any token grid and window,
// plus the paper's pooling baselines.
//
// Input X [B, N, C] (C = in_dim): the patch tokens of a 3-D ViT without CLS (final-LayerNorm output),
// N = D'·H'·W' in the patch-embedding order (token index = d·H'·W' + h·W' + w). HSENet: grid 8x16x16,
// C 768, 2048 tokens.
//
// kind "v2p" (the published packer, default):
//  1. HR = X.view(B, D', H', W', C).
//  2. LR = avg_pool3d(HR with channels first, kernel = window (wd,wh,ww), stride = stride (default
//     = window), no padding), flattened row-major over (d, h, w) of the query grid to Q queries
//     [B, Q, C]. HSENet: window (1,4,4) -> 8x4x4 = 128 queries.
//  3. Each query's key/value set: the wd·wh·ww HR tokens of its own window, (d·sd + i, h·sh + j,
//     w·sw + k), [B, Q, K, C] (key order is irrelevant; no positional term).
//  4. Single-head attention (resolution_attention; Wq, Wk, Wv, output_linear Linear(C->C)):
//       q = Wq(LR), k = Wk(HR_win), v = Wv(HR_win)
//       A = Dropout_p(softmax(q·kᵀ / sqrt(C)))      over the K window tokens
//       y = LayerNorm(q + Dropout_p(output_linear(A·v)))   residual on the projected q; no FFN
//     p = dropout (0.1; training mode only), LayerNorm eps 1e-5.
//  5. proj_mpls: Linear(C -> mlp_hidden), exact (erf) GELU, Linear(mlp_hidden -> out_dim).
//     HSENet: 768 -> 3072 -> 3072 (Phi-4-mini's width). Output [B, Q, out_dim].
// kind "spatial_pool": LR of step 2 straight into proj_mpls (no attention).
// kind "sequence_pool": 1-D average pooling over the token sequence (avg_pool1d, kernel
//     wd·wh·ww, stride sd·sh·sw: the same token count as spatial_pool for non-overlapping
//     windows), then proj_mpls.
// kind "qformer" (the paper's Table 2b baseline, BLIP-2's Querying Transformer): num_queries
//     learned query tokens (default: as many as the windows give, 128 for HSENet's grid) pass
//     qformer_layers post-norm BERT layers of self-attention, cross-attention to all N patch
//     tokens (every qformer_cross_every-th layer, from layer 0) and a GELU feed-forward
//     (transformers' Blip2QFormerModel with query_length = num_queries: layernorm(query_tokens),
//     then per layer attention / crossattention / intermediate_query + output_query), then
//     proj_mpls. Width in_dim, qformer_heads heads (0: in_dim / 64), feed-forward
//     qformer_intermediate (0: 4·in_dim), dropouts `dropout`. Keys: query_tokens [1,Q,C],
//     qformer.layernorm.*, qformer.encoder.layer.{i}.{attention,crossattention}.attention.
//     {query,key,value}.*, ...{attention,crossattention}.output.{dense,LayerNorm}.*,
//     ...intermediate_query.dense.*, ...output_query.{dense,LayerNorm}.* (HF's names, so a
//     Blip2QFormerModel state dict loads under "qformer."). query_tokens init N(0, 0.02) as BLIP-2.
// kind "hsenet_qformer" (the Q-Former of HSENet's Table 2b as its code has it:
//     ablation_qformerProjector in multimodal_projector/spatial_pooling_projector.py; not BLIP-2's):
//     num_queries (default 32) learned queries query_embeds [Q, C] (xavier-uniform init);
//     self_attn and cross_attn nn.MultiheadAttention(C, heads (default 8), dropout 0); two
//     (qformer_layers) nn.TransformerEncoderLayer(C, heads, dim_feedforward qformer_intermediate
//     (default 2048), dropout `dropout`, ReLU, post-norm, eps 1e-5); then proj_mpls.
//       q = self_attn(Q, Q, Q); a = cross_attn(q, X, X); a = layer_i(a) ...; y = proj_mpls(a)
//     HSENet calls self_attn on batch-first [B, Q, C] queries although the module is
//     sequence-first, so it attends across the batch axis: every batch element holds the same
//     queries, the softmax is uniform, and q = out_proj(v_proj(query_embeds)) (no attention among
//     the queries). query_self_attention "batch" reproduces that (--compat hsenet); "queries"
//     (default) attends among the queries as intended. Keys: query_embeds,
//     {self_attn,cross_attn}.{in_proj_weight [3C,C],in_proj_bias,out_proj.{weight,bias}},
//     layers.{i}.{self_attn.*,linear1,linear2,norm1,norm2}.{weight,bias}, proj_mpls.{0,2}.*.
//     (HSENet's other ablation, ablation_mlps_Projector, cannot be built: its __init__ reads
//     self.out_dim before setting it, forward calls an undefined self.projector, and its
//     pool_mpls Linear(2048*768 -> 128*768) would hold 1.5e11 weights; it is not modelled.)
// kind "anatomy" (hse's anatomy-adaptive partition, the paper's open question for irregular
//     structures such as bone; not in the paper): v2p's pooled queries and parameter names, but
//     each query's candidate tokens are its window grown by `halo` tokens per side (default
//     0,1,1: 1x6x6 = 36 candidates for 1x4x4 windows), and the queries compete for tokens: a
//     token's weights are a softmax over the queries whose grown windows hold it (slot-attention
//     normalisation), and each query takes the weighted mean of its tokens' values:
//       l(q,n) = Wq(LR_q)·Wk(x_n)/√C,  a(q,n) = exp l(q,n) / Σ_{q' ∋ n} exp l(q',n),
//       o_q = Σ_n a(q,n) Wv(x_n) / (Σ_n a(q,n) + 1e-8),  y = LayerNorm(q + output_linear(o_q)).
//     A token at a window border goes to the neighbouring query it resembles, so the partition
//     follows the content (an organ or bone edge) instead of the fixed 4x4 grid; with halo 0
//     every token has one query and o_q is the plain mean of its window's values. The token
//     count and the keys equal v2p's, so a published v2p packer initialises it.
//
// Windows must tile the grid exactly ((dim - window) % stride == 0 per axis), else cli::Error
// exit 3 (avg_pool3d would silently drop tokens). Token counts (Table 5 style): window (1,4,4)
// -> 128, (2,4,4) -> 64, (1,2,2) -> 512, (1,8,8) -> 32, window (1,4,4) stride (1,2,2) -> 8·7·7 = 392.
//
// Keys (HSENet prefixes "model.mm_projector." / "model.mm_projector2.", and
// "base_model.model.model.mm_projector{,2}." in its PEFT-wrapped pickle):
//   resolution_attention.{Wq,Wk,Wv,output_linear,norm}.{weight,bias}    (v2p only)
//   proj_mpls.0.{weight [mlp_hidden,C], bias}, proj_mpls.2.{weight [out,mlp_hidden], bias}
// About 14.17 M parameters per packer at HSENet's size. The unused proj_layer_* / pooling_* of the
// published class are not modelled (ignore them when loading other checkpoints).
// Initialisation: PyTorch's defaults (Linear kaiming-uniform, LayerNorm 1/0), as the published code.
// Deviation: none known for v2p (Wk/Wv are applied to the tokens before the windows are gathered:
// the same values, fewer FLOPs with overlapping windows); the baselines are hse's reading of the
// paper's comparisons.
// Parity (tests/parity/test_packer.py, a PyTorch re-implementation from the spec, fp32 CPU):
// HSENet's full-size packer max|diff|/max|ref| 4.3e-7; the narrow-width, 2x4x4, 1x2x2,
// overlapping-window, spatial_pool and sequence_pool cases bit-identical.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include "hse/config/packer.h"
#include "hse/model/checkpoint.h"

namespace hse::model {

// The attention core of step 4 after the projections: q [B,Q,C], k and v [B,Q,K,C] ->
// A·v [B,Q,C] with A = Dropout_p(softmax(q·kᵀ / sqrt(C))) (dropout only when training and p > 0).
// In v2p inference on a GPU (no autograd, stride = window, <= 64 keys) the forward uses the fused
// kernel of kernels/packer_attention.h instead, which gathers the windows itself.
torch::Tensor packer_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               double dropout = 0.0, bool training = false);

// The same core (no dropout) through the CUDA kernel's CPU reference (kernels/packer_attention.h:
// plain loops, float64 accumulation; inputs cast to float32, K <= 64). Returns float32 [B,Q,C].
torch::Tensor packer_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// resolution_attention_v3: Wq, Wk, Wv, output_linear (Linear(C->C)), dropout, norm (LayerNorm C).
class ResolutionAttentionImpl : public torch::nn::Module {
 public:
  ResolutionAttentionImpl(std::int64_t dim, double dropout, double eps);
  // queries [B,Q,C], windows [B,Q,K,C] -> [B,Q,C]
  torch::Tensor forward(const torch::Tensor& queries, const torch::Tensor& windows);
  torch::nn::Linear Wq{nullptr}, Wk{nullptr}, Wv{nullptr}, output_linear{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  double dropout_p;
};
TORCH_MODULE(ResolutionAttention);

// The Q-Former of kind "qformer" (transformers' Blip2QFormer* modules, query path only).
class QfMultiHeadImpl : public torch::nn::Module {  // Blip2QFormerMultiHeadAttention
 public:
  QfMultiHeadImpl(std::int64_t dim, std::int64_t heads, double dropout);
  // self-attention when ctx is undefined, else cross-attention to ctx [B,N,C]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ctx = {});
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  std::int64_t heads;
  double dropout_p;
};
TORCH_MODULE(QfMultiHead);

class QfOutputImpl : public torch::nn::Module {  // Blip2QFormerSelfOutput / Blip2QFormerOutput
 public:
  QfOutputImpl(std::int64_t in, std::int64_t out, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& residual);  // LN(residual + drop(dense(h)))
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double dropout_p;
};
TORCH_MODULE(QfOutput);

class QfAttentionImpl : public torch::nn::Module {  // Blip2QFormerAttention
 public:
  QfAttentionImpl(std::int64_t dim, std::int64_t heads, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ctx = {});
  QfMultiHead attention{nullptr};
  QfOutput output{nullptr};
};
TORCH_MODULE(QfAttention);

class QfLayerImpl : public torch::nn::Module {  // Blip2QFormerLayer (queries only)
 public:
  QfLayerImpl(const PackerConfig& c, bool cross);
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& ctx);
  QfAttention attention{nullptr}, crossattention{nullptr};
  torch::nn::Sequential intermediate_query{nullptr};  // "dense" Linear(C -> I), then GELU
  QfOutput output_query{nullptr};
};
TORCH_MODULE(QfLayer);

class QfEncoderImpl : public torch::nn::Module {  // Blip2QFormerEncoder
 public:
  explicit QfEncoderImpl(const PackerConfig& c);
  torch::nn::ModuleList layer{nullptr};  // of QfLayer
};
TORCH_MODULE(QfEncoder);

class QFormerImpl : public torch::nn::Module {  // Blip2QFormerModel
 public:
  explicit QFormerImpl(const PackerConfig& c);
  torch::Tensor forward(const torch::Tensor& queries, const torch::Tensor& ctx);  // [B,Q,C], [B,N,C]
  torch::nn::LayerNorm layernorm{nullptr};
  QfEncoder encoder{nullptr};
  double dropout_p;
};
TORCH_MODULE(QFormer);

// anatomy: the competitive grown-window core. q [B,Q,C], k and v [B,N,C] (projected tokens),
// cand [Q,K'] long: token index of each query's candidates (N: padding outside the grid).
// Returns o [B,Q,C] (see kind "anatomy").
torch::Tensor competitive_window_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& cand);

class SpatialPackerImpl : public torch::nn::Module {
 public:
  // Throws cli::Error (exit 3) for an invalid config.
  explicit SpatialPackerImpl(const PackerConfig& config);
  // x [B, N, in_dim] -> [B, num_tokens, out_dim] (float dtype of the parameters; x is cast).
  // Throws cli::Error (exit 3) when x's shape does not match the config.
  torch::Tensor forward(const torch::Tensor& x);
  // Step 2: the pooled queries [B, Q, C] of x [B, N, C].
  torch::Tensor pooled(const torch::Tensor& x) const;
  // Step 3: each query's window tokens [B, Q, K, C].
  torch::Tensor windows(const torch::Tensor& x) const;

  // anatomy: token indices [Q, K'] of each query's grown window (N marks padding).
  torch::Tensor candidates() const;

  PackerConfig config;
  ResolutionAttention resolution_attention{nullptr};  // v2p and anatomy
  torch::Tensor query_tokens;                         // qformer: [1, num_queries, in_dim]
  QFormer qformer{nullptr};                           // qformer
  torch::Tensor query_embeds;                         // hsenet_qformer: [num_queries, in_dim]
  torch::nn::MultiheadAttention self_attn{nullptr}, cross_attn{nullptr};  // hsenet_qformer
  torch::nn::ModuleList layers{nullptr};              // hsenet_qformer: of TransformerEncoderLayer
  torch::nn::Sequential proj_mpls{nullptr};           // 0: Linear, 1: GELU, 2: Linear

 private:
  torch::Tensor cand_;  // anatomy: candidates() on the input's device, made on first use
};
TORCH_MODULE(SpatialPacker);

// Loads the packer's tensors named `prefix + name` (load_state: strict unless allow_partial;
// cli::Error exit 3 naming the file).
LoadReport load_packer(SpatialPackerImpl& packer, const io::SafeTensorsSet& ckpt, const std::string& prefix,
                       bool allow_partial = false);

}  // namespace hse::model
