#include "hse/model/vit2d.h"
#include "hse/config/json.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/model/vit3d.h"  // trunc_normal_

namespace hse::model {

// ---- modules ---------------------------------------------------------------

namespace {

torch::nn::LayerNorm layer_norm(std::int64_t d, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps));
}

// timm init_weights_vit_timm on a Linear: trunc_normal(std .02) weight, zero bias.
void init_linear(torch::nn::Linear& l) {
  trunc_normal_(l->weight, 0.0, 0.02, -2.0, 2.0);
  if (l->bias.defined()) {
    torch::NoGradGuard ng;
    l->bias.zero_();
  }
}

std::string shape_str(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ",")); }

}  // namespace

Vit2dPatchEmbedImpl::Vit2dPatchEmbedImpl(const Vit2dConfig& c) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in_chans, c.embed_dim, {c.patch_size[0], c.patch_size[1]})
                                    .stride({c.patch_size[0], c.patch_size[1]})
                                    .bias(true)));
}

torch::Tensor Vit2dPatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj(x).flatten(2).transpose(1, 2);  // NCHW -> NLC
}

Vit2dAttentionImpl::Vit2dAttentionImpl(std::int64_t dim, std::int64_t heads, bool qkv_bias) : heads_(heads) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor Vit2dAttentionImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0), N = x.size(1), C = x.size(2), d = C / heads_;
  auto t = qkv(x).reshape({B, N, 3, heads_, d}).permute({2, 0, 3, 1, 4});
  auto q = t[0], k = t[1], v = t[2];
  auto o = torch::scaled_dot_product_attention(q, k, v, {}, 0.0, false, 1.0 / std::sqrt(static_cast<double>(d)));
  return proj(o.transpose(1, 2).reshape({B, N, C}));
}

Vit2dMlpImpl::Vit2dMlpImpl(std::int64_t dim, std::int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor Vit2dMlpImpl::forward(const torch::Tensor& x) {
  return fc2(torch::gelu(fc1(x)));  // exact (erf) GELU, nn.GELU's default
}

Vit2dBlockImpl::Vit2dBlockImpl(const Vit2dConfig& c) {
  norm1 = register_module("norm1", layer_norm(c.embed_dim, c.layer_norm_eps));
  attn = register_module("attn", Vit2dAttention(c.embed_dim, c.num_heads, c.qkv_bias));
  norm2 = register_module("norm2", layer_norm(c.embed_dim, c.layer_norm_eps));
  mlp = register_module("mlp", Vit2dMlp(c.embed_dim, c.mlp_hidden()));
  init_linear(attn->qkv);
  init_linear(attn->proj);
  init_linear(mlp->fc1);
  init_linear(mlp->fc2);
}

torch::Tensor Vit2dBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attn(norm1(x));
  return h + mlp(norm2(h));
}

Vit2dImpl::Vit2dImpl(const Vit2dConfig& c) : cfg_(c) {
  cfg_.validate();
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, cfg_.embed_dim}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, cfg_.num_tokens(), cfg_.embed_dim}));
  patch_embed = register_module("patch_embed", Vit2dPatchEmbed(cfg_));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < cfg_.depth; ++i) blocks->push_back(Vit2dBlock(cfg_));
  norm = register_module("norm", layer_norm(cfg_.embed_dim, cfg_.layer_norm_eps));
  trunc_normal_(pos_embed, 0.0, 0.02, -2.0, 2.0);
  torch::NoGradGuard ng;
  cls_token.normal_(0.0, 1e-6);
}

torch::Tensor Vit2dImpl::forward_features(const torch::Tensor& x_in) {
  const auto& c = cfg_;
  if (x_in.dim() != 4 || x_in.size(1) != c.in_chans || x_in.size(2) != c.img_size[0] || x_in.size(3) != c.img_size[1])
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("vit2d: input has shape {}, expected [B,{},{},{}]", shape_str(x_in), c.in_chans,
                                 c.img_size[0], c.img_size[1]));
  const auto& w = patch_embed->proj->weight;
  auto p = patch_embed(x_in.to(w.device(), w.scalar_type()));
  // timm _pos_embed (no_embed_class False): prepend CLS, then add pos_embed (which has the CLS position).
  auto x = torch::cat({cls_token.expand({p.size(0), -1, -1}), p}, 1) + pos_embed;
  for (const auto& m : *blocks) x = m->as<Vit2dBlockImpl>()->forward(x);
  return norm(x);
}

torch::Tensor Vit2dImpl::forward(const torch::Tensor& x) {
  return forward_features(x).select(1, 0);  // global_pool 'token'; fc_norm and head are Identity
}

LoadReport load_vit2d(Vit2d& model, const io::SafeTensorsSet& ckpt, const std::string& prefix, bool allow_partial) {
  return load_state(*model, ckpt, prefix, allow_partial, {"head."});
}

torch::Tensor encode_slices(Vit2d& model, const torch::Tensor& slices, int batch) {
  if (batch < 1) cli::fail_usage("vit2d: the slice batch must be positive, got {}", batch);
  const auto& c = model->config();
  if (slices.dim() != 5 || slices.size(2) != c.in_chans || slices.size(3) != c.img_size[0] ||
      slices.size(4) != c.img_size[1])
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("vit2d: slices have shape {}, expected [N,S,{},{},{}]", shape_str(slices),
                                 c.in_chans, c.img_size[0], c.img_size[1]));
  const auto N = slices.size(0), S = slices.size(1), total = N * S;
  auto flat = slices.reshape({total, c.in_chans, c.img_size[0], c.img_size[1]});
  auto out = torch::empty({total, c.embed_dim}, slices.options().dtype(torch::kFloat32));
  // Eval mode for the call; the previous mode comes back even on an exception.
  struct Restore {
    Vit2d& m;
    bool was;
    ~Restore() { m->train(was); }
  } restore{model, model->is_training()};
  model->eval();
  torch::NoGradGuard ng;
  for (std::int64_t i = 0; i < total; i += batch) {
    const auto e = std::min<std::int64_t>(total, i + batch);
    out.slice(0, i, e).copy_(model->forward(flat.slice(0, i, e)).to(torch::kFloat32));
  }
  return out.reshape({N, S, c.embed_dim});
}

}  // namespace hse::model
