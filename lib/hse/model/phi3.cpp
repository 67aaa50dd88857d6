#include "hse/model/phi3.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/safetensors.h"
#include "hse/model/config_check.h"
#include "hse/config/json.h"

namespace fs = std::filesystem;

namespace hse::model {

namespace {

using nlohmann::json;

torch::Tensor rotate_half(const torch::Tensor& x) {
  const std::int64_t h = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, h), x.slice(-1, 0, h)}, -1);
}

// transformers' repeat_kv: [B, kvh, S, D] -> [B, kvh*n, S, D].
torch::Tensor repeat_kv(const torch::Tensor& x, std::int64_t n) {
  if (n == 1) return x;
  const auto B = x.size(0), kvh = x.size(1), S = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, kvh, n, S, D}).reshape({B, kvh * n, S, D});
}

io::Dtype io_dtype(torch::Dtype t) {
  switch (t) {
    case torch::kBFloat16:
      return io::Dtype::BF16;
    case torch::kFloat16:
      return io::Dtype::F16;
    default:
      return io::Dtype::F32;
  }
}

}  // namespace

// ------------------------------------------------------------------ cache
void KVCache::clear() {
  k_.clear();
  v_.clear();
  len_.clear();
}

void KVCache::reorder(const torch::Tensor& index) {
  for (std::size_t i = 0; i < k_.size(); ++i) {
    if (!k_[i].defined()) continue;
    const auto idx = index.to(k_[i].device(), torch::kLong);
    k_[i] = k_[i].index_select(0, idx);
    v_[i] = v_[i].index_select(0, idx);
  }
}

std::pair<torch::Tensor, torch::Tensor> KVCache::update(std::size_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  if (layer >= k_.size()) {
    k_.resize(layer + 1);
    v_.resize(layer + 1);
    len_.resize(layer + 1, 0);
  }
  const std::int64_t L = len_[layer], T = k.size(2);
  auto& K = k_[layer];
  auto& V = v_[layer];
  if (K.defined() && (K.size(0) != k.size(0) || K.size(1) != k.size(1) || K.size(3) != k.size(3)))
    TORCH_CHECK(false, "KVCache: layer ", layer, " holds [", K.size(0), ",", K.size(1), ",*,", K.size(3),
                "], got [", k.size(0), ",", k.size(1), ",*,", k.size(3), "]");
  if (!K.defined() || L + T > K.size(2)) {
    // The first fill is exactly T long (a contiguous prefill, as transformers' DynamicCache), then doubling.
    const std::int64_t cap = K.defined() ? std::max(L + T, 2 * K.size(2)) : L + T;
    auto nk = torch::empty({k.size(0), k.size(1), cap, k.size(3)}, k.options());
    auto nv = torch::empty({v.size(0), v.size(1), cap, v.size(3)}, v.options());
    if (L > 0) {
      nk.narrow(2, 0, L).copy_(K.narrow(2, 0, L));
      nv.narrow(2, 0, L).copy_(V.narrow(2, 0, L));
    }
    K = nk;
    V = nv;
  }
  K.narrow(2, L, T).copy_(k);
  V.narrow(2, L, T).copy_(v);
  len_[layer] = L + T;
  return {K.narrow(2, 0, L + T), V.narrow(2, 0, L + T)};
}

// ------------------------------------------------------------------ modules
Phi3LinearImpl::Phi3LinearImpl(std::int64_t in, std::int64_t out, const torch::TensorOptions& options)
    : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}, options));
}

torch::Tensor Phi3LinearImpl::dense_weight(torch::Dtype dtype) const {
  if (!quantized()) return weight.to(dtype);
  return (qweight.to(torch::kFloat32) * scale.unsqueeze(1)).to(dtype);
}

torch::Tensor Phi3LinearImpl::forward(const torch::Tensor& x) {
  auto result = torch::linear(x, quantized() ? dense_weight(x.scalar_type()) : weight);
  if (!has_lora() || lora_merged) return result;
  // PEFT lora.Linear.forward (vanilla LoRA, one active adapter).
  const auto result_dtype = result.scalar_type();
  auto xl = x.to(lora_A->weight.scalar_type());
  if (lora_dropout > 0 && is_training()) xl = torch::dropout(xl, lora_dropout, true);
  result = result + lora_B->forward(lora_A->forward(xl)) * lora_scaling;
  return result.to(result_dtype);
}

void Phi3LinearImpl::quantize_int8() {
  if (quantized()) return;
  torch::NoGradGuard ng;
  const auto w = weight.detach().to(torch::kFloat32);
  const auto amax = w.abs().amax(1);
  auto s = torch::where(amax > 0, amax / 127.0, torch::ones_like(amax));
  auto q = torch::round(w / s.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8);
  parameters_.erase("weight");
  weight = torch::Tensor();
  qweight = register_buffer("weight_int8", q);
  scale = register_buffer("weight_scale", s);
}

void Phi3LinearImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  // int8 codes, float32 scales and LoRA weights keep their dtypes; only the dense weight is cast.
  torch::nn::Module::to(device, non_blocking);
  if (!quantized()) {
    torch::NoGradGuard ng;
    weight.set_data(weight.to(dtype, non_blocking));
  }
}
void Phi3LinearImpl::to(torch::Dtype dtype, bool non_blocking) {
  if (!quantized()) {
    torch::NoGradGuard ng;
    weight.set_data(weight.to(dtype, non_blocking));
  }
}
void Phi3LinearImpl::to(torch::Device device, bool non_blocking) { torch::nn::Module::to(device, non_blocking); }

Phi3RMSNormImpl::Phi3RMSNormImpl(std::int64_t hidden, double eps_, const torch::TensorOptions& options)
    : eps(eps_) {
  weight = register_parameter("weight", torch::ones({hidden}, options));
}

torch::Tensor Phi3RMSNormImpl::forward(const torch::Tensor& x) {
  const auto dtype = x.scalar_type();
  auto h = x.to(torch::kFloat32);
  const auto variance = h.pow(2).mean(-1, true);
  h = h * torch::rsqrt(variance + eps);
  return weight * h.to(dtype);
}

Phi3EmbeddingImpl::Phi3EmbeddingImpl(std::int64_t vocab, std::int64_t hidden, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({vocab, hidden}, options));
}

torch::Tensor Phi3EmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

Phi3AttentionImpl::Phi3AttentionImpl(const Phi3Config& c, std::size_t idx, const torch::TensorOptions& options)
    : heads(c.num_attention_heads), kv_heads(c.kv_heads()), head_dim(c.head_size()), layer_idx(idx),
      attention_dropout(c.attention_dropout) {
  const std::int64_t op = heads * head_dim + 2 * kv_heads * head_dim;
  // HF registers o_proj first; the order only affects named_parameters().
  o_proj = register_module("o_proj", Phi3Linear(heads * head_dim, c.hidden_size, options));
  qkv_proj = register_module("qkv_proj", Phi3Linear(c.hidden_size, op, options));
}

torch::Tensor Phi3AttentionImpl::forward(const torch::Tensor& x, const Phi3AttentionContext& ctx) {
  const std::int64_t B = x.size(0), T = x.size(1);
  const auto qkv = qkv_proj->forward(x);
  const std::int64_t qn = heads * head_dim, kn = kv_heads * head_dim;
  auto q = qkv.narrow(-1, 0, qn).view({B, T, -1, head_dim}).transpose(1, 2);
  auto k = qkv.narrow(-1, qn, kn).view({B, T, -1, head_dim}).transpose(1, 2);
  auto v = qkv.narrow(-1, qn + kn, kn).view({B, T, -1, head_dim}).transpose(1, 2);

  // apply_rotary_pos_emb (partial): rotate the first rotary_dim dims, pass the rest.
  const auto cos = ctx.cos.unsqueeze(1), sin = ctx.sin.unsqueeze(1);
  const std::int64_t rd = cos.size(-1);
  auto rope = [&](const torch::Tensor& t) {
    const auto r = t.slice(-1, 0, rd), pass = t.slice(-1, rd);
    return torch::cat({(r * cos) + (rotate_half(r) * sin), pass}, -1);
  };
  q = rope(q);
  k = rope(k);
  if (ctx.cache) std::tie(k, v) = ctx.cache->update(layer_idx, k, v);

  // transformers' sdpa_attention_forward.
  const std::int64_t groups = heads / kv_heads;
  torch::Tensor mask = ctx.mask;
  bool enable_gqa = false;
  if (groups > 1) {
    if (!mask.defined() && head_dim <= 256) {
      enable_gqa = true;
    } else if (T == 1) {  // pack_gqa: [B,H,1,D] -> [B,kvh,groups,D]; a [B,1,1,KV] mask broadcasts as it is
      q = q.reshape({B, heads / groups, groups, head_dim});
    } else {
      k = repeat_kv(k, groups);
      v = repeat_kv(v, groups);
    }
  }
  const bool is_causal = T > 1 && !mask.defined() && ctx.is_causal;
  auto out = at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt,
                                              is_training() ? attention_dropout : 0.0, is_causal,
                                              std::pow(static_cast<double>(head_dim), -0.5),
                                              enable_gqa);
  out = out.reshape({out.size(0), -1, T, head_dim}).transpose(1, 2).contiguous();
  return o_proj->forward(out.reshape({B, T, -1}));
}

Phi3MLPImpl::Phi3MLPImpl(const Phi3Config& c, const torch::TensorOptions& options) {
  gate_up_proj = register_module("gate_up_proj", Phi3Linear(c.hidden_size, 2 * c.intermediate_size, options));
  down_proj = register_module("down_proj", Phi3Linear(c.intermediate_size, c.hidden_size, options));
}

torch::Tensor Phi3MLPImpl::forward(const torch::Tensor& x) {
  const auto gu = gate_up_proj->forward(x).chunk(2, -1);
  return down_proj->forward(gu[1] * torch::silu(gu[0]));
}

Phi3DecoderLayerImpl::Phi3DecoderLayerImpl(const Phi3Config& c, std::size_t idx, const torch::TensorOptions& options)
    : resid_pdrop(c.resid_pdrop) {
  self_attn = register_module("self_attn", Phi3Attention(c, idx, options));
  mlp = register_module("mlp", Phi3MLP(c, options));
  input_layernorm = register_module("input_layernorm", Phi3RMSNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", Phi3RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

torch::Tensor Phi3DecoderLayerImpl::forward(const torch::Tensor& x, const Phi3AttentionContext& ctx) {
  const double p = is_training() ? resid_pdrop : 0.0;
  auto h = x + torch::dropout(self_attn->forward(input_layernorm->forward(x), ctx), p, p > 0);
  return h + torch::dropout(mlp->forward(post_attention_layernorm->forward(h)), p, p > 0);
}

torch::Tensor phi3_position_ids(const torch::Tensor& attention_mask) {
  const auto m = attention_mask.to(torch::kLong);
  return (m.cumsum(-1) - 1).masked_fill(m == 0, 0);
}

Phi3ModelImpl::Phi3ModelImpl(const Phi3Config& c, const torch::TensorOptions& options) : config(c) {
  c.validate();
  embed_tokens = register_module("embed_tokens", Phi3Embedding(c.vocab_size, c.hidden_size, options));
  layers = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers->push_back(Phi3DecoderLayer(c, static_cast<std::size_t>(i), options));
  norm = register_module("norm", Phi3RMSNorm(c.hidden_size, c.rms_norm_eps, options));

  // Inverse frequencies exactly as transformers computes them (float32).
  const std::int64_t dim = c.rotary_dim();
  if (c.rope_type == RopeType::longrope) {
    const auto shape = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / dim;
    const auto base = torch::pow(c.rope_theta, shape);
    auto factors = [&](const std::vector<double>& f) {
      return torch::tensor(f, torch::kFloat64).to(torch::kFloat32);
    };
    short_inv_freq_ = (factors(c.short_factor) * base).reciprocal();
    long_inv_freq_ = (factors(c.long_factor) * base).reciprocal();
  } else {
    short_inv_freq_ = torch::pow(c.rope_theta, torch::arange(0, dim, 2, torch::kFloat32) / dim).reciprocal();
  }
  attention_scaling_ = c.rope_attention_scaling();
}

torch::Tensor Phi3ModelImpl::inv_freq(std::int64_t seq_len) const {
  if (long_inv_freq_.defined() && seq_len > config.original_max_position_embeddings) return long_inv_freq_;
  return short_inv_freq_;
}

std::pair<torch::Tensor, torch::Tensor> Phi3ModelImpl::rotary(const torch::Tensor& position_ids,
                                                              torch::Dtype dtype) const {
  const std::int64_t seq_len = position_ids.max().item<std::int64_t>() + 1;
  const auto inv = inv_freq(seq_len).to(position_ids.device());
  const auto freqs = position_ids.unsqueeze(-1).to(torch::kFloat32) * inv;
  const auto emb = torch::cat({freqs, freqs}, -1);
  return {(emb.cos() * attention_scaling_).to(dtype), (emb.sin() * attention_scaling_).to(dtype)};
}

torch::Tensor Phi3ModelImpl::forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask,
                                     const torch::Tensor& position_ids, KVCache* cache) {
  TORCH_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config.hidden_size,
              "Phi3: inputs_embeds must be [B,T,", config.hidden_size, "]");
  const std::int64_t B = inputs_embeds.size(0), T = inputs_embeds.size(1);
  TORCH_CHECK(T > 0, "Phi3: empty input");
  const std::int64_t past = cache ? cache->length() : 0, KV = past + T;
  if (cache && past > 0)
    TORCH_CHECK(cache->batch() == B, "Phi3: the cache holds ", cache->batch(), " sequences, the input ", B);
  const auto dev = inputs_embeds.device();
  torch::Tensor keep;  // bool [B,KV]
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == KV,
                "Phi3: attention_mask must be [B, past+T] = [", B, ",", KV, "]");
    keep = attention_mask.to(dev).to(torch::kBool);
  }
  torch::Tensor pos;
  if (position_ids.defined()) {
    TORCH_CHECK(position_ids.dim() == 2 && position_ids.size(1) == T &&
                    (position_ids.size(0) == B || position_ids.size(0) == 1),
                "Phi3: position_ids must be [B,T] or [1,T]");
    pos = position_ids.to(dev, torch::kLong);
  } else if (keep.defined()) {
    pos = phi3_position_ids(keep).narrow(1, past, T);
  } else {
    pos = torch::arange(past, KV, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0);
  }

  Phi3AttentionContext ctx;
  ctx.cache = cache;
  std::tie(ctx.cos, ctx.sin) = rotary(pos, inputs_embeds.scalar_type());
  // masking_utils.sdpa_mask: no mask when nothing is padded and the causal pattern is sdpa's own.
  const bool padded = keep.defined() && !keep.all().item<bool>();
  const bool window = config.sliding_window > 0 && KV >= config.sliding_window;
  if (!padded && !window && (T == 1 || KV == T)) {
    ctx.is_causal = T > 1;
  } else {
    const auto opt = torch::TensorOptions().dtype(torch::kLong).device(dev);
    const auto q_idx = torch::arange(past, KV, opt).view({T, 1});
    const auto kv_idx = torch::arange(KV, opt).view({1, KV});
    auto m = kv_idx <= q_idx;
    if (window) m = m & (kv_idx > q_idx - config.sliding_window);
    m = m.view({1, 1, T, KV});
    ctx.mask = keep.defined() ? (m & keep.view({B, 1, 1, KV})) : m.expand({B, 1, T, KV});
  }

  auto h = inputs_embeds;
  for (const auto& layer : *layers) h = layer->as<Phi3DecoderLayerImpl>()->forward(h, ctx);
  return norm->forward(h);
}

Phi3ForCausalLMImpl::Phi3ForCausalLMImpl(const Phi3Config& c, const torch::TensorOptions& options) : config(c) {
  model = register_module("model", Phi3Model(c, options));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Phi3Linear(c.hidden_size, c.vocab_size, options));
}

torch::Tensor Phi3ForCausalLMImpl::embed(const torch::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2, "Phi3: input_ids must be [B,T]");
  return model->embed_tokens->forward(input_ids.to(device(), torch::kLong));
}

torch::Tensor Phi3ForCausalLMImpl::logits(const torch::Tensor& hidden) {
  return lm_head.is_empty() ? torch::linear(hidden, model->embed_tokens->weight) : lm_head->forward(hidden);
}

torch::Tensor Phi3ForCausalLMImpl::forward_embeds(const torch::Tensor& inputs_embeds,
                                                  const torch::Tensor& attention_mask,
                                                  const torch::Tensor& position_ids, KVCache* cache,
                                                  std::int64_t logits_to_keep) {
  auto h = model->forward(inputs_embeds.to(device(), dtype()), attention_mask, position_ids, cache);
  if (logits_to_keep > 0 && logits_to_keep < h.size(1)) h = h.narrow(1, h.size(1) - logits_to_keep, logits_to_keep);
  return logits(h);
}

torch::Tensor Phi3ForCausalLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                           const torch::Tensor& position_ids, KVCache* cache,
                                           std::int64_t logits_to_keep) {
  return forward_embeds(embed(input_ids), attention_mask, position_ids, cache, logits_to_keep);
}

void Phi3ForCausalLMImpl::quantize_int8() {
  for (const auto& layer : *model->layers) {
    auto* l = layer->as<Phi3DecoderLayerImpl>();
    l->self_attn->qkv_proj->quantize_int8();
    l->self_attn->o_proj->quantize_int8();
    l->mlp->gate_up_proj->quantize_int8();
    l->mlp->down_proj->quantize_int8();
  }
}

bool Phi3ForCausalLMImpl::quantized() const {
  for (const auto& layer : *model->layers)
    if (layer->as<Phi3DecoderLayerImpl>()->self_attn->qkv_proj->quantized()) return true;
  return false;
}

torch::Device Phi3ForCausalLMImpl::device() const { return model->embed_tokens->weight.device(); }
torch::Dtype Phi3ForCausalLMImpl::dtype() const { return model->embed_tokens->weight.scalar_type(); }

// ------------------------------------------------------------------ loading
Phi3ForCausalLM load_phi3(const Phi3Config& config, const std::string& weights, const Phi3LoadOptions& o) {
  if (o.dtype != torch::kFloat32 && o.dtype != torch::kBFloat16 && o.dtype != torch::kFloat16)
    cli::fail_usage("Phi-3 dtype must be fp32, bf16 or fp16");
  io::SafeTensorsSet ckpt(weights);
  {
    const auto& c = config;
    const long double h = static_cast<long double>(c.hidden_size), i = static_cast<long double>(c.intermediate_size);
    const long double estimate =
        static_cast<long double>(c.vocab_size) * h * (c.tie_word_embeddings ? 1 : 2) +
        static_cast<long double>(c.num_hidden_layers) * (4 * h * h + 3 * h * i);
    std::vector<ExpectedShape> ex{{"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, "vocab_size x hidden_size"},
                                  {"model.norm.weight", {c.hidden_size}, "hidden_size"},
                                  {"model.layers.0.mlp.down_proj.weight", {c.hidden_size, c.intermediate_size},
                                   "hidden_size x intermediate_size"}};
    if (!c.tie_word_embeddings) ex.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}, "vocab_size x hidden_size"});
    const std::string src = fs::is_directory(weights) ? (fs::path(weights) / "config.json").string()
                                                     : (fs::path(weights).parent_path() / "config.json").string();
    check_config_against(ckpt, o.prefix, ex, src, estimate);
  }
  Phi3ForCausalLM m(config, torch::TensorOptions().dtype(o.dtype).device(o.device));
  std::vector<std::string> ignore = o.ignore_unexpected;
  if (config.tie_word_embeddings) ignore.push_back("lm_head.");  // some tied checkpoints carry a copy
  const LoadReport r = load_state(*m, ckpt, o.prefix, o.allow_partial, ignore);
  if (!r.missing.empty()) {
    // allow_partial: what the checkpoint lacks is initialised as transformers does (normal(0, 0.02), norms 1).
    torch::NoGradGuard ng;
    auto params = m->named_parameters(true);
    for (const auto& key : r.missing) {
      const std::string name = key.substr(o.prefix.size());
      if (auto* p = params.find(name)) {
        if (name.find("layernorm") != std::string::npos || name == "model.norm.weight")
          p->fill_(1.0);
        else
          p->normal_(0.0, 0.02);
      }
    }
  }
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  if (o.int8) m->quantize_int8();
  m->eval();
  return m;
}

Phi3ForCausalLM load_phi3(const std::string& path, const Phi3LoadOptions& options) {
  fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const fs::path cfg = dir / "config.json";
  if (!fs::exists(cfg)) cli::fail_input(path, "no config.json beside the Phi-3 weights");
  auto m = load_phi3(Phi3Config::from_file(cfg.string()), path, options);
  m->name_or_path = path;
  return m;
}

void save_phi3(const Phi3ForCausalLM& model, const std::string& dir) {
  if (model->quantized())
    cli::fail(cli::Exit::runtime, dir, "cannot save an int8-quantised Phi-3 model in the HF layout");
  fs::create_directories(dir);
  {
    json j = model->config.to_json();
    j["torch_dtype"] = model->dtype() == torch::kBFloat16  ? "bfloat16"
                       : model->dtype() == torch::kFloat16 ? "float16"
                                                           : "float32";
    std::ofstream f(fs::path(dir) / "config.json");
    f << j.dump(2) << "\n";
    if (!f) cli::fail(cli::Exit::runtime, dir, "cannot write config.json");
  }
  io::SafeTensorsWriter w;
  const io::Dtype dt = io_dtype(model->dtype());
  for (const auto& p : model->named_parameters(true)) {
    if (p.key().find(".lora_") != std::string::npos) continue;  // LoRA weights are the adapter's (lora.h)
    const auto c = p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    w.add_float(p.key(), dt, std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
  }
  w.set_metadata("format", "pt");
  w.write((fs::path(dir) / "model.safetensors").string());
}

}  // namespace hse::model
