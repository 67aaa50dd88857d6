// The trainer state of a checkpoint directory ("trainer_state.safetensors"): the optimiser's state
// (train::AdamW), the CPU RNG state ("rng.cpu") and, on a machine with GPUs, each GPU's RNG state
// ("rng.cuda.<i>"; dropout masks on a GPU come from it), so that a resumed run continues the same
// random streams. Shared by hse-pretrain and hse-finetune.
#pragma once

#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "hse/io/safetensors.h"
#include "hse/train/optim.h"

namespace hse::train {

inline constexpr const char* kTrainerStateFile = "trainer_state.safetensors";

// Writes <dir>/trainer_state.safetensors: opt's state and the CPU RNG state.
inline void save_trainer_state(const AdamW& opt, const std::string& dir) {
  io::SafeTensorsWriter w;
  opt.save(w);
  const auto state = at::detail::getDefaultCPUGenerator().get_state().contiguous();
  w.add("rng.cpu", io::Dtype::U8, {state.numel()}, state.data_ptr());
  const int ngpu = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  for (int i = 0; i < ngpu; ++i) {
    const auto g = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, i)).get_state().contiguous();
    w.add("rng.cuda." + std::to_string(i), io::Dtype::U8, {g.numel()}, g.data_ptr());  // add copies
  }
  w.write((std::filesystem::path(dir) / kTrainerStateFile).string());
}

// Reads <dir>/trainer_state.safetensors into opt and the CPU RNG; returns the step reached (opt.steps()).
inline long load_trainer_state(AdamW& opt, const std::string& dir) {
  io::SafeTensorsSet st((std::filesystem::path(dir) / kTrainerStateFile).string());
  opt.load(st);
  const auto& rng = st.info("rng.cpu");
  auto state = torch::empty({static_cast<std::int64_t>(rng.nbytes())}, torch::kUInt8);
  std::memcpy(state.data_ptr(), rng.bytes, rng.nbytes());
  auto gen = at::detail::getDefaultCPUGenerator();
  gen.set_state(state);
  const int ngpu = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  for (int i = 0; i < ngpu; ++i) {
    const std::string key = "rng.cuda." + std::to_string(i);
    if (!st.contains(key)) continue;
    const auto& r = st.info(key);
    auto s = torch::empty({static_cast<std::int64_t>(r.nbytes())}, torch::kUInt8);
    std::memcpy(s.data_ptr(), r.bytes, r.nbytes());
    auto g = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, i));
    g.set_state(s);
  }
  return opt.steps();
}

}  // namespace hse::train
