// load_state/add_state: round trip, and every kind of mismatch reported by name.
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include <doctest/doctest.h>

#include "hse/cli/cli.h"
#include "hse/model/checkpoint.h"

using namespace hse;

namespace {
struct Tiny : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  Tiny(int a, int b) {
    fc1 = register_module("fc1", torch::nn::Linear(a, b));
    fc2 = register_module("fc2", torch::nn::Linear(b, 2));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})));
  }
};
std::string tmp(const std::string& n) {
  return (std::filesystem::temp_directory_path() / (n + std::to_string(::getpid()) + ".safetensors")).string();
}
}  // namespace

TEST_CASE("save and load by name, with a prefix") {
  torch::manual_seed(0);
  Tiny a(4, 3), b(4, 3);
  {
    torch::NoGradGuard ng;  // every tensor of `a` differs from `b`'s before loading (LayerNorm starts at 1/0)
    for (auto& p : a.parameters()) p.uniform_(-1, 1);
  }
  for (const auto& p : a.named_parameters())
    DOCTEST_CHECK_FALSE(torch::equal(p.value(), b.named_parameters()[p.key()]));
  io::SafeTensorsWriter w;
  model::add_state(w, a, "model.");
  w.add_float("model.pooler.dense.weight", io::Dtype::F32, {1}, std::vector<float>{1.f}.data());
  const auto path = tmp("ckpt");
  w.write(path);
  io::SafeTensorsSet set(path);
  // pooler.* is in the checkpoint but not in the module: unexpected unless ignored.
  DOCTEST_CHECK_THROWS_AS(model::load_state(b, set, "model."), cli::Error);
  const auto r = model::load_state(b, set, "model.", false, {"pooler."});
  DOCTEST_CHECK(r.clean());
  DOCTEST_CHECK(r.loaded == 6);
  for (const auto& p : a.named_parameters()) DOCTEST_CHECK(torch::equal(p.value(), b.named_parameters()[p.key()]));
  std::filesystem::remove(path);
}

TEST_CASE("missing, unexpected and mis-shaped keys are reported") {
  Tiny a(4, 3), wide(5, 3);
  io::SafeTensorsWriter w;
  model::add_state(w, a, "");
  const auto path = tmp("ckpt2");
  w.write(path);
  io::SafeTensorsSet set(path);
  try {
    model::load_state(wide, set, "");
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& e) {
    DOCTEST_CHECK(e.code() == cli::Exit::incompatible);
    DOCTEST_CHECK(std::string(e.what()).find("1 mis-shaped (fc1.weight: checkpoint [3,4] vs model [3,5])") !=
                  std::string::npos);
  }
  const auto r = model::load_state(wide, set, "", true);
  DOCTEST_CHECK(r.mis_shaped.size() == 1);
  DOCTEST_CHECK(r.loaded == 5);
  const auto r2 = model::load_state(a, set, "nothing.", true);
  DOCTEST_CHECK(r2.missing.size() == 6);
  std::filesystem::remove(path);
}
