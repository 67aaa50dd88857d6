// Shared fixtures of the LibTorch tests (tests/torch/test_*.cpp): temporary directories, the tiny
// Phi-3 decoder and its random weights, tensor comparisons, cli::Error capture, and the F32 output
// of the "driver: ..." cases. Header-only; each test includes it once.
#pragma once

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "hse/cli/cli.h"
#include "hse/io/safetensors.h"
#include "hse/model/phi3.h"

namespace hse::fixtures {

// <tmp>/<prefix><n><pid>, created; emptied first unless keep is true.
inline std::filesystem::path tmpdir(const std::string& prefix, const std::string& n, bool keep = false) {
  auto p = std::filesystem::temp_directory_path() / (prefix + n + std::to_string(::getpid()));
  if (!keep) std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// Phi-4-mini's shape in miniature: vocabulary 97, 2 layers, GQA 4/2 heads, partial RoPE 0.75, 128
// positions, bos 1, eos 2, pad 0.
inline model::Phi3Config tiny_phi3(std::int64_t hidden = 64, bool tied = true) {
  model::Phi3Config c;
  c.vocab_size = 97;
  c.hidden_size = hidden;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.partial_rotary_factor = 0.75;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.pad_token_id = 0;
  return c;
}

// torch::manual_seed(seed), then norm weights 1 + 0.1 N(0, 1) and all other parameters N(0, std).
inline void randomize_phi3(model::Phi3ForCausalLM& m, int seed, double std = 0.15) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& p : m->named_parameters(true)) {
    if (p.key().find("norm") != std::string::npos)
      p.value().copy_(1.0 + 0.1 * torch::randn_like(p.value()));
    else
      p.value().normal_(0.0, std);
  }
}

// A Phi3ForCausalLM of config c, randomized with seed (randomize_phi3), in eval mode; its parameters
// frozen (requires_grad false) when frozen is true.
inline model::Phi3ForCausalLM make_phi3(const model::Phi3Config& c, int seed = 1, bool frozen = true) {
  model::Phi3ForCausalLM m(c);
  randomize_phi3(m, seed);
  if (frozen)
    for (auto& p : m->parameters(true)) p.set_requires_grad(false);
  m->eval();
  return m;
}

// max |a - b| in float32.
inline double maxdiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<double>();
}

// max |a - b| / max |b|.
inline double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-30, b.abs().max().item<double>());
}

// The cli::Error f() throws; a test failure when it throws none.
template <typename F>
cli::Error expect_error(F&& f) {
  try {
    f();
  } catch (const cli::Error& e) {
    return e;
  }
  DOCTEST_FAIL("no cli::Error thrown");
  return cli::Error(cli::Exit::ok, "", "");
}

// Adds t to w as F32 (on the CPU, contiguous) under name.
inline void add_f32(io::SafeTensorsWriter& w, const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  w.add(name, io::Dtype::F32, std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
}

}  // namespace hse::fixtures
