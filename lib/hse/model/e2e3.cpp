#include "hse/model/e2e3.h"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hse/cli/cli.h"

namespace hse::model {

SliceGuidedAttentionImpl::SliceGuidedAttentionImpl(std::int64_t hidden, std::int64_t slice_dim, double p,
                                                   double eps) {
  // Registration order as regular_attention's.
  Wq = register_module("Wq", torch::nn::Linear(hidden, hidden));
  Wk = register_module("Wk", torch::nn::Linear(slice_dim, hidden));
  Wv = register_module("Wv", torch::nn::Linear(slice_dim, hidden));
  output_linear = register_module("output_linear", torch::nn::Linear(hidden, hidden));
  dropout = register_module("dropout", torch::nn::Dropout(p));
  dropout_2 = register_module("dropout_2", torch::nn::Dropout(p));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).eps(eps)));
}

torch::Tensor SliceGuidedAttentionImpl::forward(const torch::Tensor& patches, const torch::Tensor& slices) {
  auto q = Wq(patches), k = Wk(slices), v = Wv(slices);
  const double d = static_cast<double>(q.size(-1));
  auto a = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(d), -1);
  auto x = output_linear(torch::matmul(dropout(a), v));
  return norm(q + dropout_2(x));
}

E2E3Impl::E2E3Impl(const Vit3dConfig& c) : Vit3dImpl(c) {
  patch_score_proj = register_module("patch_score_proj", torch::nn::Linear(cfg_.hidden, 1));
  slice_guided_attention = register_module(
      "slice_guided_attention",
      SliceGuidedAttention(cfg_.hidden, cfg_.slice_dim, cfg_.score_dropout, cfg_.layer_norm_eps));
}

torch::Tensor E2E3Impl::score(const torch::Tensor& patches, const torch::Tensor& slices) {
  auto z = slice_guided_attention(patches, slices);
  return torch::sigmoid(patch_score_proj(z).squeeze(-1));
}

VisionOutput E2E3Impl::forward(const torch::Tensor& x, const torch::Tensor& slices_in, bool keep_hidden_states) {
  if (slices_in.dim() != 3 || slices_in.size(0) != x.size(0) || slices_in.size(1) < 1 ||
      slices_in.size(2) != cfg_.slice_dim)
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("e2e3: slice features have shape [{}], expected [{},S,{}]",
                                 fmt::join(slices_in.sizes(), ","), x.dim() > 0 ? x.size(0) : 0, cfg_.slice_dim));
  auto p = embed(x);
  auto s = score(p, slices_in.to(p.dtype()));
  VisionOutput out = encode(p * s.unsqueeze(-1), keep_hidden_states);
  out.scores = s;
  return out;
}

LoadReport load_e2e3(E2E3& model, const io::SafeTensorsSet& ckpt, const std::string& prefix, bool allow_partial) {
  return load_state(*model, ckpt, prefix, allow_partial);
}

bool has_e2e3(const io::SafeTensorsSet& ckpt, const std::string& prefix) {
  return ckpt.contains(prefix + "patch_score_proj.weight");
}

}  // namespace hse::model
