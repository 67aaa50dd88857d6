#include "hse/model/vit3d.h"
#include "hse/model/recompute.h"
#include "hse/config/json.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"

namespace hse::model {

// ---- init ------------------------------------------------------------------

void trunc_normal_(torch::Tensor t, double mean, double std, double a, double b) {
  // The inverse-CDF method of torch.nn.init.trunc_normal_ (which MONAI and timm copy).
  torch::NoGradGuard ng;
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf((a - mean) / std), u = cdf((b - mean) / std);
  t.uniform_(2 * l - 1, 2 * u - 1);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.add_(mean);
  t.clamp_(a, b);
}

// ---- modules ---------------------------------------------------------------

namespace {
torch::nn::LayerNorm layer_norm(std::int64_t h, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(eps));
}
}  // namespace

PatchEmbeddingImpl::PatchEmbeddingImpl(const Vit3dConfig& c) : patch_(c.patch_size) {
  // Sequential(Rearrange, Linear) in MONAI: the Linear is element 1.
  auto seq = register_module("patch_embeddings", std::make_shared<torch::nn::Module>("patch_embeddings"));
  proj = seq->register_module("1", torch::nn::Linear(c.patch_dim(), c.hidden));
  position_embeddings = register_parameter("position_embeddings", torch::zeros({1, c.num_patches(), c.hidden}));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  // MONAI: trunc_normal(0.02, a=-2, b=2) on position embeddings and on the Linear, zero bias.
  trunc_normal_(position_embeddings, 0.0, 0.02, -2.0, 2.0);
  trunc_normal_(proj->weight, 0.0, 0.02, -2.0, 2.0);
  torch::NoGradGuard ng;
  proj->bias.zero_();
}

torch::Tensor PatchEmbeddingImpl::patchify(const torch::Tensor& x, const std::array<std::int64_t, 3>& p) {
  // b c (h p1) (w p2) (d p3) -> b (h w d) (p1 p2 p3 c), with h,w,d over x's last three axes.
  const auto B = x.size(0), C = x.size(1);
  const auto g0 = x.size(2) / p[0], g1 = x.size(3) / p[1], g2 = x.size(4) / p[2];
  return x.reshape({B, C, g0, p[0], g1, p[1], g2, p[2]})
      .permute({0, 2, 4, 6, 3, 5, 7, 1})
      .reshape({B, g0 * g1 * g2, p[0] * p[1] * p[2] * C});
}

torch::Tensor PatchEmbeddingImpl::forward(const torch::Tensor& x) {
  return dropout(proj(patchify(x, patch_)) + position_embeddings);
}

SelfAttentionImpl::SelfAttentionImpl(std::int64_t hidden, std::int64_t heads, double dropout, bool qkv_bias)
    : heads_(heads), dropout_(dropout) {
  out_proj = register_module("out_proj", torch::nn::Linear(hidden, hidden));
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(hidden, 3 * hidden).bias(qkv_bias)));
  drop_output = register_module("drop_output", torch::nn::Dropout(dropout));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0), T = x.size(1), H = x.size(2), d = H / heads_;
  // "b h (qkv l d) -> qkv b l h d"
  auto t = qkv(x).reshape({B, T, 3, heads_, d}).permute({2, 0, 3, 1, 4});
  auto q = t[0], k = t[1], v = t[2];
  // softmax(q kᵀ · d^-0.5) v, dropout on the weights (MONAI drop_weights) in training.
  auto o = torch::scaled_dot_product_attention(q, k, v, {}, is_training() ? dropout_ : 0.0, false,
                                               1.0 / std::sqrt(static_cast<double>(d)));
  // "b l h d -> b h (l d)"
  o = o.permute({0, 2, 1, 3}).reshape({B, T, H});
  return drop_output(out_proj(o));
}

MlpImpl::MlpImpl(std::int64_t hidden, std::int64_t mlp_dim, double dropout) {
  linear1 = register_module("linear1", torch::nn::Linear(hidden, mlp_dim));
  linear2 = register_module("linear2", torch::nn::Linear(mlp_dim, hidden));
  drop1 = register_module("drop1", torch::nn::Dropout(dropout));
  drop2 = register_module("drop2", torch::nn::Dropout(dropout));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return drop2(linear2(drop1(torch::gelu(linear1(x)))));  // exact (erf) GELU
}

TransformerBlockImpl::TransformerBlockImpl(const Vit3dConfig& c) {
  // Registration order as MONAI's: mlp, norm1, attn, norm2.
  mlp = register_module("mlp", Mlp(c.hidden, c.mlp_dim, c.dropout));
  norm1 = register_module("norm1", layer_norm(c.hidden, c.layer_norm_eps));
  attn = register_module("attn", SelfAttention(c.hidden, c.heads, c.dropout, c.qkv_bias));
  norm2 = register_module("norm2", layer_norm(c.hidden, c.layer_norm_eps));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attn(norm1(x));
  return h + mlp(norm2(h));
}

Vit3dImpl::Vit3dImpl(const Vit3dConfig& c) : cfg_(c) {
  cfg_.validate();
  patch_embedding = register_module("patch_embedding", PatchEmbedding(cfg_));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < cfg_.layers; ++i) blocks->push_back(TransformerBlock(cfg_));
  norm = register_module("norm", layer_norm(cfg_.hidden, cfg_.layer_norm_eps));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, cfg_.hidden}));
}

torch::Tensor Vit3dImpl::embed(const torch::Tensor& x_in) {
  const auto& c = cfg_;
  const std::vector<std::int64_t> want{c.in_channels, c.img_size[0], c.img_size[1], c.img_size[2]};
  if (x_in.dim() != 5 || std::vector<std::int64_t>(x_in.sizes().begin() + 1, x_in.sizes().end()) != want)
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("vit3d: input has shape [{}], expected [B,{}]", fmt::join(x_in.sizes(), ","),
                                 fmt::join(want, ",")));
  const auto& w = patch_embedding->proj->weight;
  return patch_embedding(x_in.to(w.dtype()));
}

VisionOutput Vit3dImpl::encode(const torch::Tensor& patches, bool keep_hidden_states) {
  VisionOutput out;
  // CLS is prepended after the position embeddings: it has no positional term.
  auto x = torch::cat({cls_token.expand({patches.size(0), -1, -1}), patches}, 1);
  if (keep_hidden_states) out.hidden_states.reserve(blocks->size());
  for (const auto& m : *blocks) {
    auto* blk = m->as<TransformerBlockImpl>();
    x = gradient_checkpointing && is_training()
            ? recompute([blk](const torch::Tensor& t, const torch::Tensor&) { return blk->forward(t); }, x)
            : blk->forward(x);
    if (keep_hidden_states) out.hidden_states.push_back(x);
  }
  out.last = norm(x);
  return out;
}

VisionOutput Vit3dImpl::forward(const torch::Tensor& x, bool keep_hidden_states) {
  return encode(embed(x), keep_hidden_states);
}

LoadReport load_vit3d(Vit3d& model, const io::SafeTensorsSet& ckpt, const std::string& prefix, bool allow_partial) {
  return load_state(*model, ckpt, prefix, allow_partial);
}

}  // namespace hse::model
