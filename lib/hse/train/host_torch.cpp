#include "hse/train/host.h"

namespace hse::train {

torch::Tensor host_empty(at::IntArrayRef shape, torch::Dtype dtype, const torch::Device& dev) {
  return torch::empty(shape, torch::TensorOptions().dtype(dtype).pinned_memory(dev.is_cuda()));
}

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& dev) {
  if (!t.defined()) return t;
  return t.to(dev, /*non_blocking=*/t.is_pinned());
}

}  // namespace hse::train
