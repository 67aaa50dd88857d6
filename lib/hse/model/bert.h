// BERT text encoder in the Hugging Face `BertModel` layout (HSENet's text tower, spec §1,
// and the encoder BERTScore reads hidden states from, spec §6).
//
// Parameter names are HF's, so published checkpoints load by name (under a prefix:
// "" for a plain BertModel file, "bert." for BertFor* heads, "language_encoder." in
// HSENet's CLIP checkpoints):
//   embeddings.{word_embeddings,position_embeddings,token_type_embeddings}.weight
//   embeddings.LayerNorm.{weight,bias}
//   encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias}
//   encoder.layer.{i}.attention.output.{dense,LayerNorm}.{weight,bias}
//   encoder.layer.{i}.intermediate.dense.{weight,bias}
//   encoder.layer.{i}.output.{dense,LayerNorm}.{weight,bias}
//   pooler.dense.{weight,bias}            (kept for key compatibility; HSENet does not use it)
// A checkpoint's `embeddings.position_ids` buffer (older transformers) is accepted and ignored:
// position ids are 0..L-1 ("absolute" position embeddings).
//
// RoBERTa (model_type "roberta" in config.json; HF's RobertaModel, e.g. roberta-large, the model
// bert-score uses for English): the same layers and names (prefix "" or "roberta."), with
// position ids counted from the padding index as transformers'
// create_position_ids_from_input_ids does: pad_token_id + cumsum(id != pad) for real tokens,
// pad_token_id for padding (max_position_embeddings 514 = 512 + 2); one token type.
//
// Numerics follow transformers' BertModel: embeddings = dropout(LN(word + token_type +
// position)); per layer, post-norm attention with the scores scaled by head_dim^-0.5 and
// masked keys given torch.finfo(dtype).min added (the extended attention mask), dropout on
// the attention probabilities, then LN(x + dropout(dense(act(intermediate(x))))). The
// dropouts (hidden_dropout_prob, attention_probs_dropout_prob; 0.1 in bert-base) act only
// in training mode (module.train()), as in PyTorch; eval mode is deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>

#include "hse/config/bert.h"
#include "hse/io/safetensors.h"

namespace hse::model {

struct BertOutput {
  torch::Tensor last_hidden_state;           // [B,L,H]
  std::vector<torch::Tensor> hidden_states;  // with output_hidden_states: num_layers+1 tensors, [0] = embeddings
};

struct BertEmbeddingsImpl : torch::nn::Module {
  explicit BertEmbeddingsImpl(const BertConfig& c);
  // input_ids [B,L] int64; token_type_ids [B,L] or undefined (zeros).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double dropout_p;
  int64_t padding_idx = -1;  // RoBERTa: pad_token_id (positions from input ids); BERT: -1 (0..L-1)
};
TORCH_MODULE(BertEmbeddings);

struct BertSelfAttentionImpl : torch::nn::Module {
  explicit BertSelfAttentionImpl(const BertConfig& c);
  // x [B,L,H]; additive_mask broadcastable to [B,heads,L,L] (or undefined).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
  int64_t heads, head_dim;
  double dropout_p;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(BertSelfAttention);

// "dense" + "LayerNorm" over a residual: LN(residual + dropout(dense(h))). Used as
// attention.output and output.
struct BertResidualOutputImpl : torch::nn::Module {
  BertResidualOutputImpl(int64_t in, int64_t out, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& residual);
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double dropout_p;
};
TORCH_MODULE(BertResidualOutput);

struct BertAttentionImpl : torch::nn::Module {
  explicit BertAttentionImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

struct BertIntermediateImpl : torch::nn::Module {
  explicit BertIntermediateImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  BertAct act;
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

struct BertLayerImpl : torch::nn::Module {
  explicit BertLayerImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertEncoderImpl : torch::nn::Module {
  explicit BertEncoderImpl(const BertConfig& c);
  torch::nn::ModuleList layer{nullptr};  // of BertLayer
};
TORCH_MODULE(BertEncoder);

struct BertPoolerImpl : torch::nn::Module {
  explicit BertPoolerImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& last_hidden_state);  // tanh(dense(h[:,0]))
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

struct BertImpl : torch::nn::Module {
  // `add_pooling_layer` as HF's: without it there are no pooler.* parameters.
  explicit BertImpl(const BertConfig& c, bool add_pooling_layer = true);

  // input_ids [B,L] (int64), attention_mask [B,L] (1 keep, 0 pad; undefined: all ones),
  // token_type_ids [B,L] (undefined: zeros). `num_layers` < 0 runs every layer; otherwise
  // only the first num_layers (0..num_hidden_layers), and last_hidden_state is then
  // hidden_states[num_layers] (what bert-score's layer truncation computes).
  BertOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                     const torch::Tensor& token_type_ids = {}, bool output_hidden_states = false,
                     int num_layers = -1);
  torch::Tensor pool(const torch::Tensor& last_hidden_state);  // needs the pooling layer

  // The additive mask [B,1,1,L] from a [B,L] 0/1 mask: 0 where kept, finfo(dtype).min where 0.
  static torch::Tensor extended_attention_mask(const torch::Tensor& attention_mask, torch::Dtype dtype);

  BertConfig config;
  bool gradient_checkpointing = false;  // training: recompute each layer in backward (recompute.h)
  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(Bert);

// Loads a BertModel from `path`:
//  - an HF model directory: config.json + model.safetensors (or a sharded index);
//  - a .safetensors file or index: config.json is read from the same directory.
// `prefix` is the key prefix of the BERT tensors ("" or "language_encoder." ...). With
// prefix "" and no "embeddings.word_embeddings.weight" in the checkpoint but a
// "bert.embeddings.word_embeddings.weight", the prefix "bert." is used (BertFor* heads).
// The pooler is built only when the checkpoint has <prefix>pooler.dense.weight.
// Key mismatches throw cli::Error (exit 3) unless allow_partial. The model is in eval mode.
Bert load_bert(const std::string& path, const std::string& prefix = "", bool allow_partial = false);
// The same with an explicit config (e.g. HSENet's CLIP, whose config.json is not a BertConfig).
Bert load_bert(const BertConfig& config, const std::string& weights, const std::string& prefix = "",
               bool allow_partial = false);

// Writes `model` as an HF BertModel directory (config.json + model.safetensors, no prefix).
void save_bert(const Bert& model, const std::string& dir);

}  // namespace hse::model
