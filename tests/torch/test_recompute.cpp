// Activation checkpointing (hse/model/recompute.h): the same outputs and gradients as without
// it, for the 3-D ViT (no dropout) and BERT in training mode with dropout 0.1 (the RNG state is
// restored for the recomputation, so the masks agree); tolerances 1e-6 relative.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "hse/model/bert.h"
#include "hse/model/recompute.h"
#include "hse/model/vit3d.h"
#include "fixtures.h"

using namespace hse;
using fixtures::rel;

namespace {
// Loss and every parameter's gradient of one backward pass.
template <typename Run>
std::pair<double, std::vector<torch::Tensor>> loss_and_grads(torch::nn::Module& m, Run run) {
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
  torch::Tensor loss = run();
  loss.backward();
  std::vector<torch::Tensor> g;
  for (auto& p : m.parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return {loss.item<double>(), g};
}

void check_same(const std::pair<double, std::vector<torch::Tensor>>& a,
                const std::pair<double, std::vector<torch::Tensor>>& b) {
  DOCTEST_CHECK(std::abs(a.first - b.first) <= 1e-6 * std::abs(a.first));
  REQUIRE(a.second.size() == b.second.size());
  double worst = 0;
  int nonzero = 0;
  for (std::size_t i = 0; i < a.second.size(); ++i) {
    worst = std::max(worst, rel(b.second[i], a.second[i]));
    nonzero += a.second[i].abs().sum().item<double>() > 0;
  }
  DOCTEST_CHECK_MESSAGE(worst <= 1e-6, "max rel grad diff " << worst);
  DOCTEST_CHECK(nonzero == static_cast<int>(a.second.size()));
}
}  // namespace

TEST_CASE("recompute: vit3d blocks give the same loss and gradients") {
  model::Vit3dConfig c;
  c.img_size = {8, 32, 32};
  c.hidden = 32;
  c.mlp_dim = 64;
  c.layers = 3;
  c.heads = 4;
  torch::manual_seed(1);
  model::Vit3d m(c);
  m->train();
  const auto x = torch::randn({2, 1, 8, 32, 32});
  auto run = [&] { return m->forward(x, false).last.pow(2).mean(); };
  const auto plain = loss_and_grads(*m, run);
  m->gradient_checkpointing = true;
  const auto ckpt = loss_and_grads(*m, run);
  check_same(plain, ckpt);
  // No grad: checkpointing changes nothing (the plain path runs), against a run without it.
  torch::NoGradGuard ng;
  const auto with_flag = m->forward(x, false).last;
  m->gradient_checkpointing = false;
  DOCTEST_CHECK(torch::equal(with_flag, m->forward(x, false).last));
}

TEST_CASE("recompute: BERT layers with dropout 0.1 give the same loss and gradients (RNG restored)") {
  model::BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 32;
  torch::manual_seed(2);
  model::Bert m(c, false);
  m->train();
  const auto ids = torch::randint(1, 50, {3, 12}, torch::kLong);
  auto mask = torch::ones({3, 12}, torch::kLong);
  mask.index_put_({2, torch::indexing::Slice(8, torch::indexing::None)}, 0);
  auto run = [&] { return m->forward(ids, mask).last_hidden_state.pow(2).mean(); };
  torch::manual_seed(7);
  const auto plain = loss_and_grads(*m, run);
  m->gradient_checkpointing = true;
  torch::manual_seed(7);
  const auto ckpt = loss_and_grads(*m, run);
  check_same(plain, ckpt);
  // The RNG stream after a checkpointed step continues as after a plain one.
  torch::manual_seed(7);
  (void)loss_and_grads(*m, run);
  const auto after_ckpt = torch::rand({4});
  m->gradient_checkpointing = false;
  torch::manual_seed(7);
  (void)loss_and_grads(*m, run);
  DOCTEST_CHECK(torch::equal(after_ckpt, torch::rand({4})));
}

TEST_CASE("recompute: a plain function, extra tensor, no-grad input") {
  auto w = torch::randn({5, 5}, torch::requires_grad());
  auto x = torch::randn({3, 5}, torch::requires_grad());
  const auto bias = torch::randn({5});
  auto f = [&](const torch::Tensor& t, const torch::Tensor& b) { return torch::tanh(t.matmul(w) + b); };
  auto y = model::recompute(f, x, bias).sum();
  y.backward();
  const auto gx = x.grad().clone(), gw = w.grad().clone();
  x.mutable_grad() = torch::Tensor();
  w.mutable_grad() = torch::Tensor();
  f(x, bias).sum().backward();
  DOCTEST_CHECK(torch::allclose(gx, x.grad()));
  DOCTEST_CHECK(torch::allclose(gw, w.grad()));
  // an input without grad: called directly (still differentiable in w)
  auto y2 = model::recompute(f, x.detach(), bias);
  DOCTEST_CHECK(y2.requires_grad());
}
