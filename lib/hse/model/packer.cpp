#include "hse/model/packer.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/json.h"
#include "packer_attention.h"

namespace hse::model {

// ------------------------------------------------------------------ attention core
torch::Tensor packer_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout,
                               bool training) {
  const double c = static_cast<double>(q.size(-1));
  auto s = torch::matmul(q.unsqueeze(-2), k.transpose(-2, -1)) / std::sqrt(c);  // [B,Q,1,K]
  auto a = torch::softmax(s, -1);
  if (training && dropout > 0) a = torch::dropout(a, dropout, true);
  return torch::matmul(a, v).squeeze(-2);  // [B,Q,C]
}

torch::Tensor packer_attention_reference(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                         const torch::Tensor& v_in) {
  TORCH_CHECK(q_in.dim() == 3 && k_in.dim() == 4 && v_in.sizes() == k_in.sizes() && k_in.size(0) == q_in.size(0) &&
                  k_in.size(1) == q_in.size(1) && k_in.size(3) == q_in.size(2),
              "packer_attention_reference: q [B,Q,C], k and v [B,Q,K,C]");
  // kernels/packer_attention_ref.cpp: plain loops with double accumulation (the CUDA kernel's
  // reference). float32 inputs lose nothing for fp16/bf16 callers.
  const auto q = q_in.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto k = k_in.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto v = v_in.to(torch::kCPU, torch::kFloat32).contiguous();
  auto out = torch::empty_like(q);
  kernels::packer_attention_ref(kernels::DType::f32, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
                                q.size(0), q.size(1), k.size(2), q.size(2));
  return out;
}

// ------------------------------------------------------------------ modules
ResolutionAttentionImpl::ResolutionAttentionImpl(std::int64_t dim, double p, double eps) : dropout_p(p) {
  Wq = register_module("Wq", torch::nn::Linear(dim, dim));
  Wk = register_module("Wk", torch::nn::Linear(dim, dim));
  Wv = register_module("Wv", torch::nn::Linear(dim, dim));
  output_linear = register_module("output_linear", torch::nn::Linear(dim, dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps)));
}

torch::Tensor ResolutionAttentionImpl::forward(const torch::Tensor& queries, const torch::Tensor& windows) {
  auto q = Wq(queries), k = Wk(windows), v = Wv(windows);
  auto x = output_linear(packer_attention(q, k, v, dropout_p, is_training()));
  if (is_training() && dropout_p > 0) x = torch::dropout(x, dropout_p, true);
  return norm(q + x);
}

// ------------------------------------------------------------------ Q-Former (kind qformer)
QfMultiHeadImpl::QfMultiHeadImpl(std::int64_t dim, std::int64_t h, double p) : heads(h), dropout_p(p) {
  query = register_module("query", torch::nn::Linear(dim, dim));
  key = register_module("key", torch::nn::Linear(dim, dim));
  value = register_module("value", torch::nn::Linear(dim, dim));
}

torch::Tensor QfMultiHeadImpl::forward(const torch::Tensor& x, const torch::Tensor& ctx_in) {
  const auto& ctx = ctx_in.defined() ? ctx_in : x;
  const std::int64_t B = x.size(0), C = x.size(2), d = C / heads;
  auto split = [&](const torch::Tensor& t) { return t.view({B, t.size(1), heads, d}).transpose(1, 2); };
  auto o = at::scaled_dot_product_attention(split(query(x)), split(key(ctx)), split(value(ctx)), std::nullopt,
                                            is_training() ? dropout_p : 0.0);
  return o.transpose(1, 2).reshape({B, x.size(1), C});
}

QfOutputImpl::QfOutputImpl(std::int64_t in, std::int64_t out, double eps, double p) : dropout_p(p) {
  dense = register_module("dense", torch::nn::Linear(in, out));
  LayerNorm = register_module("LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({out}).eps(eps)));
}

torch::Tensor QfOutputImpl::forward(const torch::Tensor& h, const torch::Tensor& residual) {
  return LayerNorm(torch::dropout(dense(h), dropout_p, is_training()) + residual);
}

QfAttentionImpl::QfAttentionImpl(std::int64_t dim, std::int64_t heads, double eps, double p) {
  attention = register_module("attention", QfMultiHead(dim, heads, p));
  output = register_module("output", QfOutput(dim, dim, eps, p));
}

torch::Tensor QfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& ctx) {
  return output(attention(x, ctx), x);
}

QfLayerImpl::QfLayerImpl(const PackerConfig& c, bool cross) {
  attention = register_module("attention", QfAttention(c.in_dim, c.heads(), c.layer_norm_eps, c.dropout));
  if (cross)
    crossattention = register_module("crossattention", QfAttention(c.in_dim, c.heads(), c.layer_norm_eps, c.dropout));
  intermediate_query = register_module("intermediate_query", torch::nn::Sequential());
  intermediate_query->push_back("dense", torch::nn::Linear(c.in_dim, c.intermediate()));
  intermediate_query->push_back(torch::nn::GELU(torch::nn::GELUOptions().approximate("none")));
  output_query = register_module("output_query", QfOutput(c.intermediate(), c.in_dim, c.layer_norm_eps, c.dropout));
}

torch::Tensor QfLayerImpl::forward(const torch::Tensor& q, const torch::Tensor& ctx) {
  auto h = attention(q);
  if (crossattention) h = crossattention(h, ctx);
  return output_query(intermediate_query->forward(h), h);
}

QfEncoderImpl::QfEncoderImpl(const PackerConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.qformer_layers; ++i) layer->push_back(QfLayer(c, i % c.qformer_cross_every == 0));
}

QFormerImpl::QFormerImpl(const PackerConfig& c) : dropout_p(c.dropout) {
  layernorm =
      register_module("layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.in_dim}).eps(c.layer_norm_eps)));
  encoder = register_module("encoder", QfEncoder(c));
}

torch::Tensor QFormerImpl::forward(const torch::Tensor& queries, const torch::Tensor& ctx) {
  auto h = torch::dropout(layernorm(queries), dropout_p, is_training());
  for (auto& m : *encoder->layer) h = m->as<QfLayerImpl>()->forward(h, ctx);
  return h;
}

// ------------------------------------------------------------------ anatomy (competitive windows)
torch::Tensor competitive_window_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& cand) {
  const std::int64_t B = q.size(0), Q = q.size(1), C = q.size(2), N = k.size(1), K = cand.size(1);
  const auto idx = cand.to(q.device()).reshape({-1});  // [Q*K'], N = padding
  const auto valid = (idx < N).to(q.scalar_type());     // [Q*K']
  const auto safe = idx.clamp_max(N - 1);
  // candidate keys/values [B, Q, K', C]
  auto kc = k.index_select(1, safe).view({B, Q, K, C});
  auto vc = v.index_select(1, safe).view({B, Q, K, C});
  auto l = torch::matmul(q.unsqueeze(2), kc.transpose(-2, -1)).squeeze(2) / std::sqrt(static_cast<double>(C));
  l = (l.reshape({B, Q * K}) * valid);  // padding: logit 0, weight masked below
  // softmax over the queries holding each token: subtract the per-token max, exp, normalise
  const auto bins = idx.unsqueeze(0).expand({B, Q * K});
  auto mx = torch::full({B, N + 1}, -std::numeric_limits<float>::infinity(), l.options())
                .scatter_reduce(1, bins, l.detach(), "amax", true);
  auto e = torch::exp(l - mx.gather(1, bins)) * valid;
  auto den = torch::zeros({B, N + 1}, l.options()).scatter_add(1, bins, e);
  auto a = (e / den.gather(1, bins).clamp_min(1e-30)).view({B, Q, K});
  auto o = torch::matmul(a.unsqueeze(2), vc).squeeze(2);  // [B, Q, C]
  return o / (a.sum(-1, true) + 1e-8);
}

torch::Tensor SpatialPackerImpl::candidates() const {
  const auto& g = config.grid;
  const auto& w = config.window;
  const auto& h = config.halo;
  const auto s = config.strides();
  const auto qg = config.query_grid();
  const std::int64_t N = config.num_patches();
  const std::int64_t kd = w[0] + 2 * h[0], kh = w[1] + 2 * h[1], kw = w[2] + 2 * h[2];
  auto out = torch::empty({config.num_tokens(), kd * kh * kw}, torch::kLong);
  auto a = out.accessor<std::int64_t, 2>();
  std::int64_t qi = 0;
  for (std::int64_t d = 0; d < qg[0]; ++d)
    for (std::int64_t y = 0; y < qg[1]; ++y)
      for (std::int64_t x = 0; x < qg[2]; ++x, ++qi) {
        std::int64_t j = 0;
        for (std::int64_t i0 = 0; i0 < kd; ++i0)
          for (std::int64_t i1 = 0; i1 < kh; ++i1)
            for (std::int64_t i2 = 0; i2 < kw; ++i2, ++j) {
              const std::int64_t pd = d * s[0] - h[0] + i0, ph = y * s[1] - h[1] + i1, pw = x * s[2] - h[2] + i2;
              const bool in = pd >= 0 && pd < g[0] && ph >= 0 && ph < g[1] && pw >= 0 && pw < g[2];
              a[qi][j] = in ? (pd * g[1] + ph) * g[2] + pw : N;
            }
      }
  return out;
}

// ------------------------------------------------------------------ the packer
// The fused CUDA kernel (kernels/packer_attention.cu) in place of the unfused core: inference
// (no autograd) on a GPU, windows that tile the grid (stride = window), at most 64 keys,
// fp32/fp16/bf16. Returns an undefined tensor when it does not apply (the caller falls back).
torch::Tensor fused_window_attention(const PackerConfig& c, const torch::Tensor& q, const torch::Tensor& k_tok,
                                     const torch::Tensor& v_tok) {
  if (!q.is_cuda() || !kernels::cuda_compiled()) return {};
  if (torch::GradMode::is_enabled() && (q.requires_grad() || k_tok.requires_grad() || v_tok.requires_grad())) return {};
  if (c.strides() != c.window || c.window_size() > kernels::kPackerMaxKeys) return {};
  kernels::DType dt;
  switch (q.scalar_type()) {
    case torch::kFloat32: dt = kernels::DType::f32; break;
    case torch::kFloat16: dt = kernels::DType::f16; break;
    case torch::kBFloat16: dt = kernels::DType::bf16; break;
    default: return {};
  }
  const auto qc = q.contiguous(), kc = k_tok.contiguous(), vc = v_tok.contiguous();
  auto out = torch::empty_like(qc);
  const kernels::TokenGrid g{c.grid[0], c.grid[1], c.grid[2], c.window[0], c.window[1], c.window[2]};
  // LibTorch's current stream is the default stream unless a caller changed it.
  kernels::packer_window_attention_cuda(dt, qc.data_ptr(), kc.data_ptr(), vc.data_ptr(), out.data_ptr(), qc.size(0), g,
                                        qc.size(2));
  return out;
}

SpatialPackerImpl::SpatialPackerImpl(const PackerConfig& c) : config(c) {
  c.validate();
  if (c.kind == PackerKind::v2p || c.kind == PackerKind::anatomy)
    resolution_attention =
        register_module("resolution_attention", ResolutionAttention(c.in_dim, c.dropout, c.layer_norm_eps));
  if (c.kind == PackerKind::hsenet_qformer) {
    const std::int64_t C = c.in_dim, H = c.heads();
    query_embeds = register_parameter("query_embeds", torch::empty({c.num_tokens(), C}));
    torch::nn::init::xavier_uniform_(query_embeds);
    self_attn = register_module("self_attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(C, H)));
    cross_attn = register_module("cross_attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(C, H)));
    layers = register_module("layers", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.qformer_layers; ++i)
      layers->push_back(torch::nn::TransformerEncoderLayer(
          torch::nn::TransformerEncoderLayerOptions(C, H).dim_feedforward(c.intermediate()).dropout(c.dropout)));
  }
  if (c.kind == PackerKind::qformer) {
    query_tokens = register_parameter("query_tokens", torch::randn({1, c.num_tokens(), c.in_dim}) * 0.02);
    qformer = register_module("qformer", QFormer(c));
  }
  proj_mpls = register_module(
      "proj_mpls", torch::nn::Sequential(torch::nn::Linear(c.in_dim, c.hidden()),
                                         torch::nn::GELU(torch::nn::GELUOptions().approximate("none")),
                                         torch::nn::Linear(c.hidden(), c.out_dim)));
}

torch::Tensor SpatialPackerImpl::pooled(const torch::Tensor& x) const {
  const auto& g = config.grid;
  const auto s = config.strides();
  const std::int64_t B = x.size(0), C = x.size(2);
  auto hr = x.reshape({B, g[0], g[1], g[2], C}).permute({0, 4, 1, 2, 3});
  auto lr = torch::avg_pool3d(hr, {config.window[0], config.window[1], config.window[2]}, {s[0], s[1], s[2]});
  return lr.flatten(2).transpose(1, 2);  // [B, Q, C], row-major over (d, h, w)
}

torch::Tensor SpatialPackerImpl::windows(const torch::Tensor& x) const {
  const auto& g = config.grid;
  const auto& w = config.window;
  const auto s = config.strides();
  const std::int64_t B = x.size(0), C = x.size(x.dim() - 1);
  auto hr = x.reshape({B, g[0], g[1], g[2], C});
  // unfold: [B,d,h,w,C,wd,wh,ww] -> [B,d,h,w,wd,wh,ww,C]
  auto u = hr.unfold(1, w[0], s[0]).unfold(2, w[1], s[1]).unfold(3, w[2], s[2]);
  u = u.permute({0, 1, 2, 3, 5, 6, 7, 4});
  return u.reshape({B, config.num_tokens(), config.window_size(), C});
}

torch::Tensor SpatialPackerImpl::forward(const torch::Tensor& x_in) {
  const auto& c = config;
  if (x_in.dim() != 3 || x_in.size(1) != c.num_patches() || x_in.size(2) != c.in_dim)
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("packer: input has shape [{}], expected [B,{},{}] (grid {}x{}x{})",
                                 fmt::join(x_in.sizes(), ","), c.num_patches(), c.in_dim, c.grid[0], c.grid[1],
                                 c.grid[2]));
  const auto& w0 = proj_mpls[0]->as<torch::nn::LinearImpl>()->weight;
  const auto x = x_in.to(w0.device(), w0.scalar_type());
  torch::Tensor y;
  switch (c.kind) {
    case PackerKind::v2p: {
      auto& ra = *resolution_attention;
      auto q = ra.Wq(pooled(x));
      // Wk/Wv are per-token maps: project the tokens once, then gather the windows (the same
      // values as projecting the gathered windows, and cheaper for overlapping windows).
      const auto kt = ra.Wk(x), vt = ra.Wv(x);
      torch::Tensor a = ra.is_training() ? torch::Tensor() : fused_window_attention(c, q, kt, vt);
      if (!a.defined()) a = packer_attention(q, windows(kt), windows(vt), ra.dropout_p, ra.is_training());
      auto o = ra.output_linear(a);
      if (ra.is_training() && ra.dropout_p > 0) o = torch::dropout(o, ra.dropout_p, true);
      y = ra.norm(q + o);
      break;
    }
    case PackerKind::anatomy: {
      auto& ra = *resolution_attention;
      auto q = ra.Wq(pooled(x));
      if (!cand_.defined() || cand_.device() != x.device()) cand_ = candidates().to(x.device());  // once per device
      auto o = ra.output_linear(competitive_window_attention(q, ra.Wk(x), ra.Wv(x), cand_));
      if (ra.is_training() && ra.dropout_p > 0) o = torch::dropout(o, ra.dropout_p, true);
      y = ra.norm(q + o);
      break;
    }
    case PackerKind::qformer:
      y = qformer(query_tokens.expand({x.size(0), -1, -1}), x);
      break;
    case PackerKind::hsenet_qformer: {
      // nn.MultiheadAttention is sequence-first: [L, B, C].
      const auto qb = query_embeds.unsqueeze(0).expand({x.size(0), -1, -1});  // [B, Q, C]
      torch::Tensor q;
      if (c.query_self_attention == "batch")
        q = std::get<0>(self_attn->forward(qb, qb, qb)).transpose(0, 1);  // HSENet: attends across B -> [Q,B,C]
      else {
        const auto qs = qb.transpose(0, 1);
        q = std::get<0>(self_attn->forward(qs, qs, qs));
      }
      const auto xs = x.transpose(0, 1);  // [N, B, C]
      auto a = std::get<0>(cross_attn->forward(q, xs, xs));
      for (const auto& l : *layers) a = l->as<torch::nn::TransformerEncoderLayerImpl>()->forward(a);
      y = a.transpose(0, 1);  // [B, Q, C]
      break;
    }
    case PackerKind::spatial_pool:
      y = pooled(x);
      break;
    case PackerKind::sequence_pool: {
      const auto s = c.strides();
      y = torch::avg_pool1d(x.transpose(1, 2), {c.window_size()}, {s[0] * s[1] * s[2]}).transpose(1, 2);
      break;
    }
    default:
      throw cli::Error(cli::Exit::incompatible, {}, "packer: kind not implemented");
  }
  return proj_mpls->forward(y);
}

LoadReport load_packer(SpatialPackerImpl& packer, const io::SafeTensorsSet& ckpt, const std::string& prefix,
                       bool allow_partial) {
  return load_state(packer, ckpt, prefix, allow_partial);
}

}  // namespace hse::model
