// The data pipeline's CUDA path (train/host.h): batches that data workers build in pinned host
// memory and the training thread copies to the GPU with non_blocking=true arrive intact, in
// order, while the host buffers are released as the next batches are made. Exits 77 (CTest's
// skip code) without a CUDA device; labelled gpu.
#include <cstdio>
#include <vector>

#include <torch/torch.h>

#include "hse/train/host.h"
#include "hse/train/prefetch.h"

using namespace hse;

int main() {
  if (!torch::cuda::is_available()) {
    std::printf("skip: no CUDA device\n");
    return 77;
  }
  const torch::Device dev(torch::kCUDA, 0);
  int failures = 0;
  const auto t = train::host_empty({4, 1, 32, 256, 256}, torch::kFloat32, dev);
  if (!t.is_pinned()) {
    std::printf("FAIL host_empty for cuda is not pinned\n");
    ++failures;
  }
  if (train::host_empty({2}, torch::kFloat32, torch::Device(torch::kCPU)).is_pinned()) {
    std::printf("FAIL host_empty for cpu is pinned\n");
    ++failures;
  }
  // 64 batches of 2 volumes filled with their job number on 3 workers, copied asynchronously.
  struct Jobs {
    int next = 0;
    bool operator()(int& j) {
      if (next >= 64) return false;
      j = next++;
      return true;
    }
  };
  train::Prefetcher<int, torch::Tensor> data(
      Jobs{},
      [&](const int& j) {
        auto b = train::host_empty({2, 1, 32, 256, 256}, torch::kFloat32, dev);
        b.fill_(static_cast<float>(j));
        return b;
      },
      3, 6);
  std::vector<torch::Tensor> on_gpu;
  int j = 0;
  while (auto b = data.next()) {
    on_gpu.push_back(train::to_device(*b, dev).sum());
    ++j;
  }
  torch::cuda::synchronize();
  const double voxels = 2.0 * 32 * 256 * 256;
  for (int k = 0; k < j; ++k) {
    const double got = on_gpu[static_cast<std::size_t>(k)].item<double>();
    if (got != voxels * k) {
      std::printf("FAIL batch %d: sum %.1f, expected %.1f\n", k, got, voxels * k);
      ++failures;
    }
  }
  std::printf("%s: %d batches through pinned memory and non-blocking copies\n", failures ? "FAIL" : "ok", j);
  return failures ? 1 : 0;
}
