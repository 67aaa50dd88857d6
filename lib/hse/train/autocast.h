// bf16 autocast for training steps (hse-pretrain --bf16), as PyTorch's torch.autocast: inside
// the guard, matrix products and convolutions on `device` run in bfloat16 and precision-
// sensitive operations (softmax, layer norm, losses) in float32; parameters and their
// gradients stay float32 (the optimiser and gradient all-reduce are unchanged). Backward runs
// outside the guard, as PyTorch recommends. HSENet's published training uses bf16 on GPUs.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

namespace hse::train {

class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, bool enabled, at::ScalarType dtype = at::kBFloat16)
      : type_(device.type()), enabled_(enabled) {
    if (!enabled_) return;
    prev_enabled_ = at::autocast::is_autocast_enabled(type_);
    prev_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::set_autocast_dtype(type_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, prev_enabled_);
    at::autocast::set_autocast_dtype(type_, prev_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  at::DeviceType type_;
  bool enabled_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

}  // namespace hse::train
