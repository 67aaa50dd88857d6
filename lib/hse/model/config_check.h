// A model's config checked against its checkpoint before the model is built: a config.json that
// disagrees with the weights (a huge hidden_size, another vocabulary size) is refused with one
// line (cli::Error exit 3, naming the config) instead of allocating what the config says (2 TB
// for a mutated dimension) or failing later inside LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hse/io/safetensors.h"

namespace hse::model {

struct ExpectedShape {
  std::string name;               // tensor name after the prefix
  std::vector<std::int64_t> shape;  // what the config implies
  std::string because;            // the config fields that imply it, e.g. "vocab_size x hidden_size"
};

// Refuses a config whose model would hold more than max_params parameters (`estimate`, from the
// config's sizes; a guard when the checkpoint lacks the tensors that would show the mismatch),
// then, for each expected tensor present in `ckpt` under `prefix`, a shape other than the expected
// one. Absent tensors are left to load_state's report.
void check_config_against(const io::SafeTensorsSet& ckpt, const std::string& prefix,
                          const std::vector<ExpectedShape>& expected, const std::string& config_source,
                          long double estimate, long double max_params = 1e11L);

// A tokenizer vocabulary against an embedding table: refused (exit 3, naming `vocab_source`) when
// it has more entries than the table has rows (its ids would index past the table).
void check_vocab_fits(std::int64_t vocab_entries, std::int64_t embedding_rows, const std::string& vocab_source,
                      const std::string& model_source);

// A 2E3 model's patch-scoring guide (Vit3dConfig::patch_guide) against the guide features of a
// slice-features file (its "guide" attribute, kGuideAttr; absent: "slices", as hse-embed --slices
// writes them): refused (exit 3, naming the file) when they differ, since the scores would then
// weigh the patches by features the model never saw.
inline constexpr const char* kGuideAttr = "guide";
void check_patch_guide(const std::string& file_guide, const std::string& model_guide, const std::string& file,
                       const std::string& model_source);

}  // namespace hse::model
