// Host memory for batches bound for a device. On CUDA the data workers fill page-locked (pinned)
// buffers and the training thread copies them with non_blocking=true, so the host-to-device copy
// overlaps the step's compute (DataLoader's pin_memory=True, as HF Trainer sets it). On the CPU
// these are plain tensors and plain no-op moves.
#pragma once

#include <torch/torch.h>

namespace hse::train {

// An uninitialised [shape] tensor of `dtype` on the host, pinned when `dev` is a CUDA device.
torch::Tensor host_empty(at::IntArrayRef shape, torch::Dtype dtype, const torch::Device& dev);
// `t` on `dev`: asynchronous from pinned memory (the caching host allocator keeps the buffer
// until the copy has run), a plain copy otherwise; undefined stays undefined.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& dev);

}  // namespace hse::train
