#include "hse/config/bert.h"

#include <fstream>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/json.h"

namespace hse::model {

namespace {

std::optional<BertAct> parse_act(const std::string& s) {
  if (s == "gelu") return BertAct::gelu;
  // HF: gelu_new (tanh formula), gelu_pytorch_tanh (F.gelu approximate="tanh"), gelu_fast
  // (the same tanh approximation written differently): one function up to rounding.
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast") return BertAct::gelu_tanh;
  if (s == "relu") return BertAct::relu;
  return std::nullopt;
}

}  // namespace

// ------------------------------------------------------------------ config
BertAct BertConfig::act() const {
  auto a = parse_act(hidden_act);
  if (!a)
    throw cli::Error(cli::Exit::incompatible, {}, fmt::format("unsupported hidden_act '{}'", hidden_act),
                     "supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu");
  return *a;
}

BertConfig BertConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) cli::fail_input(source, "config is not a JSON object");
  cfg::check_depth("bert", j, source);
  BertConfig c;
  auto get_int = [&](const char* key, int64_t& v) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_number_integer()) cli::fail_input(source, "'{}' is not an integer", key);
    v = j[key].get<int64_t>();
  };
  get_int("vocab_size", c.vocab_size);
  get_int("hidden_size", c.hidden_size);
  get_int("num_hidden_layers", c.num_hidden_layers);
  get_int("num_attention_heads", c.num_attention_heads);
  get_int("intermediate_size", c.intermediate_size);
  get_int("max_position_embeddings", c.max_position_embeddings);
  get_int("type_vocab_size", c.type_vocab_size);
  get_int("pad_token_id", c.pad_token_id);
  if (j.contains("model_type") && !j["model_type"].is_null()) {
    if (!j["model_type"].is_string()) cli::fail_input(source, "'model_type' is not a string");
    const std::string t = j["model_type"].get<std::string>();
    if (t == "roberta") c.model_type = "roberta";
    else if (t != "bert")
      throw cli::Error(cli::Exit::incompatible, source,
                       fmt::format("model_type '{}': hse reads BERT and RoBERTa encoders", t));
  }
  for (auto [key, v] : {std::pair<const char*, double*>{"hidden_dropout_prob", &c.hidden_dropout_prob},
                        {"attention_probs_dropout_prob", &c.attention_probs_dropout_prob}}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_number()) cli::fail_input(source, "'{}' is not a number", key);
    *v = j[key].get<double>();
    if (!(*v >= 0 && *v < 1)) cli::fail_input(source, "'{}' must be in [0, 1)", key);
  }
  if (j.contains("layer_norm_eps") && !j["layer_norm_eps"].is_null()) {
    if (!j["layer_norm_eps"].is_number()) cli::fail_input(source, "'layer_norm_eps' is not a number");
    c.layer_norm_eps = j["layer_norm_eps"].get<double>();
  }
  if (j.contains("hidden_act")) {
    if (!j["hidden_act"].is_string()) cli::fail_input(source, "'hidden_act' is not a string");
    c.hidden_act = j["hidden_act"].get<std::string>();
  }
  if (!parse_act(c.hidden_act))
    throw cli::Error(cli::Exit::incompatible, source, fmt::format("unsupported hidden_act '{}'", c.hidden_act),
                     "supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu");
  if (j.contains("position_embedding_type") && j["position_embedding_type"].is_string() &&
      j["position_embedding_type"].get<std::string>() != "absolute")
    cli::fail_input(source, "unsupported position_embedding_type '{}' (only 'absolute')",
                    j["position_embedding_type"].get<std::string>());
  for (auto [name, v] : {std::pair<const char*, int64_t>{"vocab_size", c.vocab_size},
                         {"hidden_size", c.hidden_size},
                         {"num_attention_heads", c.num_attention_heads},
                         {"intermediate_size", c.intermediate_size},
                         {"max_position_embeddings", c.max_position_embeddings},
                         {"type_vocab_size", c.type_vocab_size}})
    if (v <= 0) cli::fail_input(source, "'{}' must be positive, got {}", name, v);
  if (c.num_hidden_layers < 0) cli::fail_input(source, "'num_hidden_layers' must be >= 0");
  if (c.hidden_size % c.num_attention_heads != 0)
    cli::fail_input(source, "hidden_size {} is not a multiple of num_attention_heads {}", c.hidden_size,
                    c.num_attention_heads);
  if (!(c.layer_norm_eps > 0)) cli::fail_input(source, "'layer_norm_eps' must be positive");
  return c;
}

BertConfig BertConfig::from_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) cli::fail_input(path, "cannot open the model config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(path, "malformed JSON: {}", e.what());
  }
  return from_json(j, path);
}

nlohmann::json BertConfig::to_json() const {
  return nlohmann::json{{"architectures", {roberta() ? "RobertaModel" : "BertModel"}},
                        {"model_type", model_type},
                        {"vocab_size", vocab_size},
                        {"hidden_size", hidden_size},
                        {"num_hidden_layers", num_hidden_layers},
                        {"num_attention_heads", num_attention_heads},
                        {"intermediate_size", intermediate_size},
                        {"hidden_act", hidden_act},
                        {"hidden_dropout_prob", hidden_dropout_prob},
                        {"attention_probs_dropout_prob", attention_probs_dropout_prob},
                        {"max_position_embeddings", max_position_embeddings},
                        {"type_vocab_size", type_vocab_size},
                        {"initializer_range", 0.02},
                        {"layer_norm_eps", layer_norm_eps},
                        {"pad_token_id", pad_token_id},
                        {"position_embedding_type", "absolute"}};
}

}  // namespace hse::model
