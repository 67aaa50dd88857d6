// BERT's config (HF's BertConfig fields), without LibTorch: parsed in libhse (fuzzed by
// tests/fuzz/fuzz_config.cpp); the model is in hse/model/bert.h.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace hse::model {

enum class BertAct { gelu, gelu_tanh, relu };

// The fields of HF's BertConfig that shape the model; defaults are HF's (bert-base-uncased).
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";  // "gelu" (erf), "gelu_new"/"gelu_pytorch_tanh"/"gelu_fast" (tanh), "relu"
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  double hidden_dropout_prob = 0.1;           // training mode only
  double attention_probs_dropout_prob = 0.1;  // training mode only
  std::string model_type = "bert";            // "bert" or "roberta" (RoBERTa's position ids)

  bool roberta() const { return model_type == "roberta"; }
  BertAct act() const;  // throws cli::Error (exit 3) for an unknown hidden_act

  // Reads an HF config.json (missing fields keep the defaults above). Throws cli::Error
  // (exit 3, naming `source`) for a malformed file, a non-positive size, hidden_size not
  // divisible by num_attention_heads, an unknown hidden_act, a position_embedding_type
  // other than "absolute", or a model_type other than bert/roberta (absent: bert).
  static BertConfig from_json(const nlohmann::json& j, const std::string& source);
  static BertConfig from_file(const std::string& path);
  // The same fields as HF writes them (model_type "bert"), so a saved directory loads with
  // transformers' BertModel.from_pretrained.
  nlohmann::json to_json() const;
};

}  // namespace hse::model
