// Multi-process data parallelism on LibTorch's c10d (Gloo; hsenet-spec §1 "Loss"):
// a TCPStore rendezvous from DistEnv (torchrun or Slurm variables), features
// all-gathered with gradient (as torch.distributed.nn.all_gather: the backward
// sums every rank's gradient for this rank's rows), gradients averaged across
// ranks (as DDP), parameters broadcast from rank 0 at the start.
// A world of one process needs no process group and no network.
#pragma once

#include <memory>
#include <vector>

#include <torch/torch.h>

#include "hse/train/dist_env.h"

namespace CLI {
class App;
}

namespace hse::train {

// --dist-backend (hse-pretrain, hse-finetune): auto | gloo | nccl.
void add_dist_backend_option(CLI::App& app, std::string& backend);
// The backend to use: auto -> nccl on a GPU, gloo on CPU; nccl without a GPU is a usage error.
std::string resolve_backend(const std::string& option, bool gpu);

class Distributed {
 public:
  // backend: "gloo" (CPU and CUDA tensors) or "nccl" (CUDA tensors; LibTorch built with NCCL,
  // exit 4 otherwise). Throws cli::Error (exit 4) when the rendezvous fails (timeout_s seconds).
  static std::shared_ptr<Distributed> init(const DistEnv& env, const std::string& backend = "gloo",
                                           int timeout_s = 300);
  ~Distributed();

  int rank() const { return rank_; }
  int world() const { return world_; }
  bool is_main() const { return rank_ == 0; }

  // Concatenates every rank's x along dim 0 (equal sizes on every rank), differentiably.
  torch::Tensor all_gather(const torch::Tensor& x);
  // In-place sum across ranks.
  void all_reduce_sum(torch::Tensor& t);
  // Averages the gradients of `params` across ranks (one flattened buffer).
  void average_gradients(const std::vector<torch::Tensor>& params);
  // Copies rank 0's values into every rank's tensors.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  void barrier();

 private:
  Distributed() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, world_ = 1;
};

}  // namespace hse::train
