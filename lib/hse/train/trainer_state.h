// The trainer state of a checkpoint directory ("trainer_state.safetensors"): the optimiser's state
// (train::AdamW) and the CPU RNG state ("rng.cpu"), so that a resumed run continues the same
// random stream. Shared by hse-pretrain and hse-finetune.
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
  return opt.steps();
}

}  // namespace hse::train
