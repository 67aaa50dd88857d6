#include "hse/model/device.h"

#include <fmt/format.h>

#include "hse/cli/cli.h"

namespace hse::model {

torch::Device torch_device(const std::string& option, int local_rank) {
  int gpu = cli::parse_device(option);
  if (gpu < 0) return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    throw cli::Error(cli::Exit::resource, "", fmt::format("--device {}: no CUDA device available", option));
  if (option == "cuda" && local_rank >= 0) gpu = local_rank;
  const auto n = static_cast<int>(torch::cuda::device_count());
  if (gpu >= n)
    throw cli::Error(cli::Exit::resource, "",
                     fmt::format("--device {}: GPU {} does not exist ({} visible)", option, gpu, n));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpu));
}

}  // namespace hse::model
