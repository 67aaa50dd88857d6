// PEFT's LoraConfig (adapter_config.json), without LibTorch: parsed in libhse (fuzzed by
// tests/fuzz/fuzz_config.cpp); LoRA itself (semantics, files) is in hse/model/lora.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hse::model {

// PEFT's LoraConfig, the fields hse uses (defaults: HSENet's values).
struct LoraConfig {
  std::int64_t r = 16;
  double lora_alpha = 32.0;
  double lora_dropout = 0.05;
  // PEFT's list form of target_modules (suffix match on module-name components).
  std::vector<std::string> target_modules{"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
  // PEFT's string form of target_modules (a regex, full match); used instead of the list when set.
  std::string target_regex;
  std::vector<std::string> exclude_modules;  // list form
  std::string exclude_regex;                 // string form
  std::vector<std::int64_t> layers_to_transform;  // empty: all layers
  std::vector<std::string> layers_pattern;
  std::map<std::string, std::int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  std::string bias = "none";  // only "none"
  std::string task_type = "CAUSAL_LM";
  std::string base_model_name_or_path;
  bool use_rslora = false;
  std::string init_lora_weights = "true";  // "true", "false" or "gaussian"
  nlohmann::json extra = nlohmann::json::object();  // unknown fields of a read file, written back

  // Whether a Linear module named `name` (e.g. "model.layers.3.mlp.down_proj") is adapted.
  bool targets(const std::string& name) const;
  std::int64_t rank_for(const std::string& name) const;
  double alpha_for(const std::string& name) const;
  // lora_alpha/r, or lora_alpha/sqrt(r) with use_rslora, for the module's own r and alpha.
  double scaling_for(const std::string& name) const;

  // Throws cli::Error (exit 3, naming `source`) for unusable values.
  void validate(const std::string& source = {}) const;
  static LoraConfig from_json(const nlohmann::json& j, const std::string& source = {});
  // adapter_config.json, or <dir>/adapter_config.json when `path` is a directory.
  static LoraConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace hse::model
