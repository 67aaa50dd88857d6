// Data parallelism: the "driver: ddp" case trains a tiny two-tower contrastive model
// for a few SGD steps on this rank's share of a fixed batch, with features
// all-gathered (gradient through the gather) and gradients averaged; the result of
// 2 Gloo processes must equal 1 process on the combined batch
// (tests/cli/test_distributed.sh launches both and compares).
#include <torch/torch.h>

#include <cstdlib>

#include <doctest/doctest.h>

#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/model/losses.h"
#include "hse/train/distributed.h"

using namespace hse;

namespace {
struct Towers : torch::nn::Module {
  torch::nn::Linear img{nullptr}, txt{nullptr};
  torch::Tensor scale;
  Towers() {
    img = register_module("img", torch::nn::Linear(6, 5));
    txt = register_module("txt", torch::nn::Linear(7, 5));
    scale = register_parameter("logit_scale", torch::tensor(2.6593));
  }
};
}  // namespace

TEST_CASE("a world of one process needs no rendezvous") {
  train::DistEnv e;
  auto d = train::Distributed::init(e);
  auto x = torch::ones({2, 3}, torch::requires_grad());
  DOCTEST_CHECK(d->all_gather(x).size(0) == 2);
  DOCTEST_CHECK(d->world() == 1);
}

TEST_CASE("driver: ddp") {
  const char* out = std::getenv("HSE_DDP_OUT");
  if (!out) return;
  const auto env = train::dist_env();
  auto dist = train::Distributed::init(env, "gloo", 60);
  torch::manual_seed(1);
  Towers m;
  const int total = 8, n = total / dist->world();
  torch::manual_seed(2);
  const auto X = torch::randn({total, 6}), Y = torch::randn({total, 7});
  auto params = m.parameters();
  dist->broadcast(params);
  torch::manual_seed(1);
  Towers m0;  // the initial weights (rank 0's, broadcast), written beside the result: training must move them
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    const auto x = X.narrow(0, dist->rank() * n, n), y = Y.narrow(0, dist->rank() * n, n);
    auto fi = torch::nn::functional::normalize(m.img(x), torch::nn::functional::NormalizeFuncOptions().dim(-1));
    auto ft = torch::nn::functional::normalize(m.txt(y), torch::nn::functional::NormalizeFuncOptions().dim(-1));
    const auto loss = model::clip_loss(model::clip_logits(dist->all_gather(fi), dist->all_gather(ft), m.scale));
    loss.backward();
    dist->average_gradients(params);
    opt.step();
  }
  if (dist->is_main()) {
    io::SafeTensorsWriter w;
    model::add_state(w, m, "");
    model::add_state(w, m0, "init.");
    w.write(out);
  }
  dist->barrier();
}
