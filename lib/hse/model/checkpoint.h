// Loading and saving torch::nn::Module state by name from/to safetensors, in the
// published layouts (HF key names). Every missing, unexpected or mis-shaped key
// is reported; loading fails (exit 3) unless allow_partial.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "hse/io/safetensors.h"

namespace hse::model {

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the checkpoint
  std::vector<std::string> unexpected;  // under the prefix in the checkpoint, not in the module
  std::vector<std::string> mis_shaped;  // "name: checkpoint [a,b] vs model [c,d]"
  std::size_t loaded = 0;
  bool clean() const { return missing.empty() && unexpected.empty() && mis_shaped.empty(); }
  std::string summary(std::size_t max_names = 5) const;
};

// Copies tensors named `prefix + name` into the module's parameters and buffers
// (converted to their dtype/device). `ignore_unexpected` lists prefixes (after
// `prefix`) whose checkpoint keys are expected to be unused (e.g. "pooler.").
// Throws cli::Error (exit 3, naming the checkpoint) when !allow_partial and the
// report is not clean.
LoadReport load_state(torch::nn::Module& module, const io::SafeTensorsSet& ckpt, const std::string& prefix,
                      bool allow_partial = false, const std::vector<std::string>& ignore_unexpected = {});

// Adds the module's parameters and buffers (as float32 unless `dtype` says
// otherwise) to `w` under `prefix`.
void add_state(io::SafeTensorsWriter& w, const torch::nn::Module& module, const std::string& prefix,
               io::Dtype dtype = io::Dtype::F32);

// A tensor of the checkpoint as a float32 torch tensor (CPU).
torch::Tensor tensor_from(const io::SafeTensorsSet& ckpt, const std::string& name);

}  // namespace hse::model
