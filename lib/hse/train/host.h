// Host memory for batches bound for a device. On CUDA the data workers fill page-locked (pinned)
// buffers and the training thread copies them with non_blocking=true, so the host-to-device copy
// overlaps the step's compute (DataLoader's pin_memory=True, as HF Trainer sets it). On the CPU
// these are plain tensors and plain no-op moves.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <torch/torch.h>

#include "hse/io/h5.h"
#include "hse/text/wordpiece.h"

namespace hse::train {

// An uninitialised [shape] tensor of `dtype` on the host, pinned when `dev` is a CUDA device.
torch::Tensor host_empty(at::IntArrayRef shape, torch::Dtype dtype, const torch::Device& dev);
// `t` on `dev`: asynchronous from pinned memory (the caching host allocator keeps the buffer
// until the copy has run), a plain copy otherwise; undefined stays undefined.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& dev);

// Items first .. first + n - 1 of dataset `name` of `r` as one float32 [n, item shape...] tensor
// in host memory for `dev` (host_empty); `row` maps an item to its row in `r` (identity when
// empty). Safe on data-worker threads (h5::Reader::read takes its lock).
torch::Tensor read_items(const h5::Reader& r, const std::string& name, std::size_t first, std::size_t n,
                         const torch::Device& dev, const std::function<std::size_t(std::size_t)>& row = {});

// Copies a tokenizer's encoding (padded to the tensors' width) into row `row` of the [B,L] int64
// `ids` and `mask` tensors (host, contiguous); an encoding of another length is a logic error.
void set_encoding_row(torch::Tensor& ids, torch::Tensor& mask, std::int64_t row, const text::Encoding& e);

}  // namespace hse::train
