#include "hse/model/vit3d.h"
#include "hse/model/recompute.h"
#include "hse/model/config_json.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"

namespace hse::model {

// ---- config ----------------------------------------------------------------

std::int64_t Vit3dConfig::num_patches() const {
  const auto g = grid();
  return g[0] * g[1] * g[2];
}

std::int64_t Vit3dConfig::patch_dim() const { return patch_size[0] * patch_size[1] * patch_size[2] * in_channels; }

void Vit3dConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& m) { throw cli::Error(cli::Exit::incompatible, source, "vit3d config: " + m); };
  if (in_channels < 1) bad(fmt::format("in_channels must be positive, got {}", in_channels));
  for (int i = 0; i < 3; ++i) {
    if (img_size[i] < 1 || patch_size[i] < 1)
      bad(fmt::format("img_size [{}] and patch_size [{}] must be positive", fmt::join(img_size, ","),
                      fmt::join(patch_size, ",")));
    if (img_size[i] % patch_size[i] != 0)
      bad(fmt::format("img_size [{}] is not a multiple of patch_size [{}]", fmt::join(img_size, ","),
                      fmt::join(patch_size, ",")));
  }
  if (hidden < 1 || mlp_dim < 1 || layers < 0 || heads < 1)
    bad(fmt::format("hidden_size {}, mlp_dim {}, num_layers {}, num_heads {} must be positive", hidden, mlp_dim,
                    layers, heads));
  if (hidden % heads != 0) bad(fmt::format("hidden_size {} is not divisible by num_heads {}", hidden, heads));
  if (!(dropout >= 0 && dropout <= 1)) bad(fmt::format("dropout_rate {} is not in [0,1]", dropout));
  if (!(score_dropout >= 0 && score_dropout <= 1)) bad(fmt::format("score_dropout {} is not in [0,1]", score_dropout));
  if (!(layer_norm_eps > 0)) bad(fmt::format("layer_norm_eps {} must be positive", layer_norm_eps));
  if (slice_dim < 1) bad(fmt::format("slice_dim must be positive, got {}", slice_dim));
}

namespace {

using nlohmann::json;
using cfg::field;
constexpr const char* kWhat = "vit3d";

[[noreturn]] void bad_field(const std::string& src, const char* name, const json& v, const char* want) {
  cfg::bad_field(kWhat, src, name, v, want);
}
void get_int(const json& j, std::initializer_list<const char*> names, std::int64_t& out, const std::string& src) {
  cfg::get_int(kWhat, j, names, out, src);
}
void get_num(const json& j, std::initializer_list<const char*> names, double& out, const std::string& src) {
  cfg::get_num(kWhat, j, names, out, src);
}
// MONAI's ensure_tuple_rep: one int for every dimension, or a list of 3.
void get_triple(const json& j, const char* name, std::array<std::int64_t, 3>& out, const std::string& src) {
  cfg::get_tuple<3>(kWhat, j, {name}, out, src);
}

}  // namespace

Vit3dConfig Vit3dConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw cli::Error(cli::Exit::incompatible, source, "vit3d config: not a JSON object");
  // A config that holds the vision sizes in a sub-object ("vision": {...}) is read from there.
  const json& o = (j.contains("vision") && j["vision"].is_object()) ? j["vision"] : j;
  Vit3dConfig c;
  get_int(o, {"in_channels", "image_channel"}, c.in_channels, source);
  get_triple(o, "img_size", c.img_size, source);
  if (!field(o, {"img_size"})) get_triple(o, "image_size", c.img_size, source);
  get_triple(o, "patch_size", c.patch_size, source);
  get_int(o, {"hidden_size", "hidden"}, c.hidden, source);
  get_int(o, {"mlp_dim", "intermediate_size"}, c.mlp_dim, source);
  get_int(o, {"num_layers", "layers"}, c.layers, source);
  get_int(o, {"num_heads", "heads"}, c.heads, source);
  get_num(o, {"dropout_rate", "dropout"}, c.dropout, source);
  get_num(o, {"layer_norm_eps"}, c.layer_norm_eps, source);
  get_int(o, {"slice_dim"}, c.slice_dim, source);
  get_num(o, {"score_dropout"}, c.score_dropout, source);
  if (const json* v = field(o, {"qkv_bias"})) {
    if (!v->is_boolean()) bad_field(source, "qkv_bias", *v, "true or false");
    c.qkv_bias = v->get<bool>();
  }
  if (const json* v = field(o, {"pos_embed", "proj_type"})) {
    if (!v->is_string() || v->get<std::string>() != "perceptron")
      throw cli::Error(cli::Exit::incompatible, source,
                       fmt::format("vit3d config: only the 'perceptron' patch embedding is supported, got {}",
                                   v->dump()));
  }
  if (const json* v = field(o, {"pos_embed_type"})) {
    if (!v->is_string() || v->get<std::string>() != "learnable")
      throw cli::Error(cli::Exit::incompatible, source,
                       fmt::format("vit3d config: only learnable position embeddings are supported, got {}",
                                   v->dump()));
  }
  if (const json* v = field(o, {"spatial_dims"})) {
    if (!v->is_number_integer() || v->get<int>() != 3)
      throw cli::Error(cli::Exit::incompatible, source,
                       fmt::format("vit3d config: spatial_dims must be 3, got {}", v->dump()));
  }
  c.validate(source);
  return c;
}

Vit3dConfig Vit3dConfig::from_file(const std::string& path) {
  std::string file;
  const json j = cfg::read_file(path, file);
  return from_json(j, file);
}

nlohmann::json Vit3dConfig::to_json() const {
  return json{{"in_channels", in_channels},
              {"img_size", img_size},
              {"patch_size", patch_size},
              {"hidden_size", hidden},
              {"mlp_dim", mlp_dim},
              {"num_layers", layers},
              {"num_heads", heads},
              {"dropout_rate", dropout},
              {"qkv_bias", qkv_bias},
              {"layer_norm_eps", layer_norm_eps},
              {"pos_embed", "perceptron"},
              {"spatial_dims", 3},
              {"slice_dim", slice_dim},
              {"score_dropout", score_dropout}};
}

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
