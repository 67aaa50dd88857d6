// The one meaning of --device for LibTorch code: "cpu"; "cuda", GPU 0, or in a multi-process run
// the process's own GPU (LOCAL_RANK, one GPU per process as torchrun starts them); "cuda:N".
// A malformed value exits 2 (cli::parse_device, which also serves hse's own CUDA kernels); a GPU
// this machine lacks exits 4.
#pragma once

#include <string>

#include <torch/torch.h>

namespace hse::model {

// `local_rank` >= 0 in a multi-process run (the process's LOCAL_RANK), -1 otherwise.
torch::Device torch_device(const std::string& option, int local_rank = -1);

}  // namespace hse::model
