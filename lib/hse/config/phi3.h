// The Phi-3 decoder's config (HF's Phi3Config fields), without LibTorch: parsed in libhse (fuzzed
// by tests/fuzz/fuzz_config.cpp); the model is in hse/model/phi3.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hse::model {

enum class RopeType { standard, longrope };  // "default" / null, and "longrope" ("su", "yarn")

// The fields of HF's Phi3Config that shape the model (defaults are HF's where the field may be
// absent; the five sizes are required).
struct Phi3Config {
  std::int64_t vocab_size = 0;           // required
  std::int64_t hidden_size = 0;          // required
  std::int64_t intermediate_size = 0;    // required
  std::int64_t num_hidden_layers = 0;    // required
  std::int64_t num_attention_heads = 0;  // required
  std::int64_t num_key_value_heads = 0;  // 0 (absent/null): num_attention_heads
  std::int64_t head_dim = 0;             // 0 (absent/null): hidden_size / num_attention_heads
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;           // rope_scaling/rope_parameters' value, else the top-level one
  double partial_rotary_factor = 1.0;    // likewise
  RopeType rope_type = RopeType::standard;
  std::vector<double> short_factor, long_factor;  // longrope: rotary_dim/2 each
  std::optional<double> rope_factor;              // rope_scaling.factor (optional)
  std::optional<double> attention_factor;         // rope_scaling.attention_factor (optional)
  std::int64_t max_position_embeddings = 4096;
  // Top-level original_max_position_embeddings (HF gives it priority), else rope_scaling's, else 4096.
  std::int64_t original_max_position_embeddings = 4096;
  bool tie_word_embeddings = false;
  std::int64_t bos_token_id = 1;                // -1: null
  std::vector<std::int64_t> eos_token_ids{32000};  // eos_token_id: an integer or a list (null: empty)
  std::int64_t pad_token_id = 32000;            // -1: null
  std::string hidden_act = "silu";              // only "silu"
  std::int64_t sliding_window = 0;              // 0: none (null)
  double attention_dropout = 0.0;  // on the attention probabilities, training only (Phi-4-mini: 0)
  double resid_pdrop = 0.0;        // on both residual branches, training only (Phi-4-mini: 0)

  std::int64_t kv_heads() const { return num_key_value_heads > 0 ? num_key_value_heads : num_attention_heads; }
  std::int64_t head_size() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  // int(head_size() * partial_rotary_factor), the dims RoPE rotates (even).
  std::int64_t rotary_dim() const;
  // The factor cos/sin are multiplied by (1 for the standard RoPE).
  double rope_attention_scaling() const;

  // Throws cli::Error (exit 3, naming `source`) for inconsistent or unsupported values.
  void validate(const std::string& source = {}) const;
  // Reads an HF config.json (transformers 4 "rope_scaling" or 5 "rope_parameters" form). Throws
  // cli::Error (exit 3, naming `source`): "phi3 config: missing required field 'hidden_size'",
  // wrong types, "unknown rope_scaling type 'X'", model_type other than phi3, hidden_act other
  // than silu, attention_bias true, factor lists of the wrong length, ...
  static Phi3Config from_json(const nlohmann::json& j, const std::string& source = {});
  // A config JSON file, or <dir>/config.json when `path` is a directory.
  static Phi3Config from_file(const std::string& path);
  // HF's field names (model_type "phi3", rope_scaling in the legacy form both transformers 4 and 5
  // read), so a saved directory loads with Phi3ForCausalLM.from_pretrained.
  nlohmann::json to_json() const;
};

}  // namespace hse::model
