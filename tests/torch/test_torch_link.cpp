// LibTorch links through the hse_torch target without shadowing libstdc++:
// libtorch.so 2.11 exports its own std::filesystem symbols, which crashed
// std::filesystem::remove_all when libtorch came first among the NEEDED libraries.
// Note: c10 defines glog-style CHECK/CHECK_EQ macros that replace doctest's short
// names; torch tests use the DOCTEST_ prefixed macros.
#include <torch/torch.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

namespace hse::model {
const char* torch_version();
}

TEST_CASE("std::filesystem and LibTorch in one binary") {
  namespace fs = std::filesystem;
  const fs::path d = fs::temp_directory_path() / ("hse_torch_link_" + std::to_string(::getpid()));
  fs::create_directories(d / "a" / "b");
  DOCTEST_CHECK(fs::remove_all(d) == 3);
  const auto x = torch::arange(6, torch::kFloat32).reshape({2, 3});
  DOCTEST_CHECK(x.sum().item<float>() == doctest::Approx(15.0f));
  DOCTEST_CHECK(torch::mm(x, x.t()).size(0) == 2);
  DOCTEST_CHECK(std::string(hse::model::torch_version()).rfind("2.11", 0) == 0);
}
