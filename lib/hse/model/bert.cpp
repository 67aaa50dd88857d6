#include "hse/model/bert.h"
#include "hse/model/recompute.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/model/checkpoint.h"
#include "hse/model/config_check.h"

namespace fs = std::filesystem;

namespace hse::model {

namespace {

double finfo_min(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat64:
      return std::numeric_limits<double>::lowest();
    case torch::kFloat16:
      return -65504.0;
    case torch::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    default:
      return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

}  // namespace

// ------------------------------------------------------------------ modules
BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c)
    : dropout_p(c.hidden_dropout_prob), padding_idx(c.roberta() ? c.pad_token_id : -1) {
  word_embeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size
                               ? torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)
                               : torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size)));
  position_embeddings = register_module(
      "position_embeddings", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids) {
  const int64_t L = input_ids.size(1);
  TORCH_CHECK(L <= position_embeddings->weight.size(0), "sequence length ", L,
              " exceeds max_position_embeddings ", position_embeddings->weight.size(0));
  auto tt = token_type_ids.defined() ? token_type_ids : torch::zeros_like(input_ids);
  // HF order: (word + token_type) + position.
  auto x = word_embeddings->forward(input_ids) + token_type_embeddings->forward(tt);
  if (padding_idx >= 0) {  // RoBERTa: positions counted from the padding index, per sequence
    const auto real = input_ids.ne(padding_idx).to(torch::kLong);
    const auto pos = torch::cumsum(real, 1) * real + padding_idx;
    TORCH_CHECK(pos.max().item<int64_t>() < position_embeddings->weight.size(0), "sequence length ", L,
                " exceeds max_position_embeddings ", position_embeddings->weight.size(0), " - ", padding_idx + 1);
    x = x + position_embeddings->forward(pos);
  } else {
    auto pos = torch::arange(L, torch::TensorOptions().dtype(torch::kLong).device(input_ids.device()));
    x = x + position_embeddings->forward(pos).unsqueeze(0);
  }
  return torch::dropout(LayerNorm->forward(x), dropout_p, is_training());
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& c)
    : heads(c.num_attention_heads),
      head_dim(c.hidden_size / c.num_attention_heads),
      dropout_p(c.attention_probs_dropout_prob) {
  query = register_module("query", torch::nn::Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", torch::nn::Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  const int64_t B = x.size(0), L = x.size(1);
  auto split = [&](const torch::Tensor& t) { return t.view({B, L, heads, head_dim}).transpose(1, 2); };
  auto q = split(query->forward(x)), k = split(key->forward(x)), v = split(value->forward(x));
  // softmax(q kᵀ / sqrt(d) + mask) v, as transformers' sdpa/eager paths compute it.
  // Dropout on the attention probabilities in training mode (HF's attention_probs_dropout_prob).
  auto ctx = at::scaled_dot_product_attention(
      q, k, v, additive_mask.defined() ? std::optional<at::Tensor>(additive_mask) : std::nullopt,
      is_training() ? dropout_p : 0.0);
  return ctx.transpose(1, 2).reshape({B, L, heads * head_dim});
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in, int64_t out, double eps, double dropout)
    : dropout_p(dropout) {
  dense = register_module("dense", torch::nn::Linear(in, out));
  LayerNorm = register_module("LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({out}).eps(eps)));
}

torch::Tensor BertResidualOutputImpl::forward(const torch::Tensor& h, const torch::Tensor& residual) {
  return LayerNorm->forward(torch::dropout(dense->forward(h), dropout_p, is_training()) + residual);
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output",
                           BertResidualOutput(c.hidden_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  return output->forward(self->forward(x, additive_mask), x);
}

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& c) : act(c.act()) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) {
  auto h = dense->forward(x);
  switch (act) {
    case BertAct::gelu:
      return torch::gelu(h);
    case BertAct::gelu_tanh:
      return torch::gelu(h, "tanh");
    case BertAct::relu:
      return torch::relu(h);
  }
  return h;
}

BertLayerImpl::BertLayerImpl(const BertConfig& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module(
      "output", BertResidualOutput(c.intermediate_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  auto a = attention->forward(x, additive_mask);
  return output->forward(intermediate->forward(a), a);
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(BertLayer(c));
}

BertPoolerImpl::BertPoolerImpl(const BertConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& h) {
  return torch::tanh(dense->forward(h.select(1, 0)));
}

BertImpl::BertImpl(const BertConfig& c, bool add_pooling_layer) : config(c) {
  (void)c.act();  // validates hidden_act before any allocation
  embeddings = register_module("embeddings", BertEmbeddings(c));
  encoder = register_module("encoder", BertEncoder(c));
  if (add_pooling_layer) pooler = register_module("pooler", BertPooler(c));
}

torch::Tensor BertImpl::extended_attention_mask(const torch::Tensor& attention_mask, torch::Dtype dtype) {
  auto keep = attention_mask.to(dtype).unsqueeze(1).unsqueeze(2);  // [B,1,1,L]
  return (1.0 - keep) * finfo_min(dtype);
}

BertOutput BertImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& token_type_ids, bool output_hidden_states, int num_layers) {
  TORCH_CHECK(input_ids.dim() == 2, "input_ids must be [B,L]");
  const int64_t n_all = static_cast<int64_t>(encoder->layer->size());
  const int64_t n = num_layers < 0 ? n_all : num_layers;
  TORCH_CHECK(n <= n_all, "num_layers ", n, " exceeds the model's ", n_all, " layers");
  auto ids = input_ids.to(torch::kLong);
  BertOutput out;
  auto x = embeddings->forward(ids, token_type_ids.defined() ? token_type_ids.to(torch::kLong) : token_type_ids);
  torch::Tensor mask;
  if (attention_mask.defined()) mask = extended_attention_mask(attention_mask, x.scalar_type());
  if (output_hidden_states) out.hidden_states.push_back(x);
  for (int64_t i = 0; i < n; ++i) {
    auto* layer = encoder->layer->ptr<BertLayerImpl>(static_cast<size_t>(i)).get();
    x = gradient_checkpointing && is_training()
            ? recompute([layer](const torch::Tensor& t, const torch::Tensor& m) { return layer->forward(t, m); }, x,
                        mask)
            : layer->forward(x, mask);
    if (output_hidden_states) out.hidden_states.push_back(x);
  }
  out.last_hidden_state = x;
  return out;
}

torch::Tensor BertImpl::pool(const torch::Tensor& last_hidden_state) {
  TORCH_CHECK(!pooler.is_empty(), "this Bert has no pooling layer");
  return pooler->forward(last_hidden_state);
}

// ------------------------------------------------------------------ loading
namespace {

std::string weights_path(const std::string& path) {
  if (!fs::is_directory(path)) return path;
  for (const char* name : {"model.safetensors", "model.safetensors.index.json"})
    if (fs::exists(fs::path(path) / name)) return (fs::path(path) / name).string();
  cli::fail_input(path, "no model.safetensors or model.safetensors.index.json in the model directory");
}

}  // namespace

Bert load_bert(const BertConfig& config, const std::string& weights, const std::string& prefix, bool allow_partial) {
  io::SafeTensorsSet ckpt(weights_path(weights));
  std::string pre = prefix;
  if (pre.empty() && !ckpt.contains("embeddings.word_embeddings.weight"))
    for (const char* p : {"bert.", "roberta."})
      if (ckpt.contains(std::string(p) + "embeddings.word_embeddings.weight")) pre = p;
  const bool pooler = ckpt.contains(pre + "pooler.dense.weight");
  {
    const auto& c = config;
    const std::string config_source = (fs::path(weights_path(weights)).parent_path() / "config.json").string();
    const long double h = static_cast<long double>(c.hidden_size), i = static_cast<long double>(c.intermediate_size);
    const long double estimate = (static_cast<long double>(c.vocab_size) + c.max_position_embeddings + c.type_vocab_size) * h +
                                 static_cast<long double>(c.num_hidden_layers) * (4 * h * h + 2 * h * i);
    check_config_against(ckpt, pre,
                         {{"embeddings.word_embeddings.weight", {c.vocab_size, c.hidden_size}, "vocab_size x hidden_size"},
                          {"embeddings.position_embeddings.weight", {c.max_position_embeddings, c.hidden_size},
                           "max_position_embeddings x hidden_size"},
                          {"embeddings.token_type_embeddings.weight", {c.type_vocab_size, c.hidden_size},
                           "type_vocab_size x hidden_size"},
                          {"encoder.layer.0.intermediate.dense.weight", {c.intermediate_size, c.hidden_size},
                           "intermediate_size x hidden_size"}},
                         config_source, estimate);
  }
  Bert model(config, pooler);
  load_state(*model, ckpt, pre, allow_partial, {"embeddings.position_ids", "embeddings.token_type_ids"});
  model->eval();
  return model;
}

Bert load_bert(const std::string& path, const std::string& prefix, bool allow_partial) {
  fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const fs::path cfg = dir / "config.json";
  if (!fs::exists(cfg)) cli::fail_input(path, "no config.json beside the BERT weights");
  return load_bert(BertConfig::from_file(cfg.string()), path, prefix, allow_partial);
}

void save_bert(const Bert& model, const std::string& dir) {
  fs::create_directories(dir);
  {
    std::ofstream f(fs::path(dir) / "config.json");
    f << model->config.to_json().dump(2) << "\n";
    if (!f) cli::fail(cli::Exit::runtime, dir, "cannot write config.json");
  }
  io::SafeTensorsWriter w;
  add_state(w, *model, "");
  w.set_metadata("format", "pt");
  w.write((fs::path(dir) / "model.safetensors").string());
}

}  // namespace hse::model
