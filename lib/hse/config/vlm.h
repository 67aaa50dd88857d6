// The HSENet VLM's config (hse_vlm.json: packers, LoRA, token ids, ...), without LibTorch: parsed in
// libhse (fuzzed by tests/fuzz/fuzz_config.cpp); the model is in hse/model/vlm.h.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "hse/config/lora.h"
#include "hse/config/packer.h"

namespace hse::model {

// Phi-4-mini's <|endoftext|> is bos = eos = pad = 199999.
struct VlmTokens {
  std::int64_t bos = 199999;
  std::int64_t eos = 199999;
  std::int64_t pad = 199999;
  std::int64_t im_patch = -1;  // -1: the first added token, vocab - num_new_tokens (UNCONFIRMED)
};

struct VlmConfig {
  PackerConfig packer;   // mm_projector
  PackerConfig packer2;  // mm_projector2 (unused when !dual_encoder)
  bool dual_encoder = true;
  std::string tower = "3d";  // !dual_encoder: the tower mm_projector reads, "3d" (t1) or "2e3" (t2)
  bool use_lora = true;
  LoraConfig lora;
  std::string llm;                  // the Phi-3 model directory (HF layout)
  std::int64_t vocab_size = 0;      // resize the LLM's vocabulary to this (0: keep)
  std::int64_t num_new_tokens = 0;  // rows set to the mean after resizing (HSENet: 4)
  VlmTokens tokens;
  // How the training inputs were made (JSON object text, "" when unknown): {"clip": towers dir,
  // "volumes": hse-preprocess's recipe, "slices": hse-slice's recipe, "slice_encoder": the 2-D
  // encoder}. hse-finetune records it; hse-generate replays it on CT files.
  std::string inputs;
  // How the prompt and answer texts were tokenized: "fast" (tokenizer.json as tokenizers reads
  // it) or "slow" (transformers' slow GPT-2 classes, HSENet's use_fast=False; text::BpeMode).
  // hse-generate tokenizes the same way. Absent in the file: "fast".
  std::string tokenizer_mode = "fast";
  // The --compat preset the adapter was trained under ("" or "hsenet"), for provenance.
  std::string compat;

  std::int64_t image_tokens() const;  // n_img: 256 for HSENet
  // Throws cli::Error (exit 3, naming `source`).
  void validate(const std::string& source = {}) const;
  static VlmConfig from_json(const nlohmann::json& j, const std::string& source = {});
  // hse_vlm.json, or <dir>/hse_vlm.json when `path` is a directory.
  static VlmConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

inline const char* kVlmConfigFile = "hse_vlm.json";

}  // namespace hse::model
