// AdamW, the cosine schedule and clipping: values checked against PyTorch-Python and
// transformers in tests/parity/test_optim.py through "driver: optim"; save/load here.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include <doctest/doctest.h>
#include <unistd.h>

#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/train/optim.h"

using namespace hse;

TEST_CASE("cosine schedule with warm-up") {
  DOCTEST_CHECK(train::warmup_steps_for(1000, 0.03) == 30);
  DOCTEST_CHECK(train::warmup_steps_for(10, 0.03) == 1);
  DOCTEST_CHECK(train::cosine_with_warmup(0, 100, 10) == 0.0);
  DOCTEST_CHECK(train::cosine_with_warmup(5, 100, 10) == doctest::Approx(0.5));
  DOCTEST_CHECK(train::cosine_with_warmup(10, 100, 10) == doctest::Approx(1.0));
  DOCTEST_CHECK(train::cosine_with_warmup(55, 100, 10) == doctest::Approx(0.5));
  DOCTEST_CHECK(train::cosine_with_warmup(100, 100, 10) == doctest::Approx(0.0).epsilon(1e-12));
}

TEST_CASE("optimizer state round trip gives identical continued updates") {
  torch::manual_seed(0);
  auto a = torch::randn({3, 4}).set_requires_grad(true), b = a.detach().clone().set_requires_grad(true);
  train::AdamW oa({{"w", a}}, {}), ob({{"w", b}}, {});
  for (int s = 0; s < 3; ++s) {
    oa.zero_grad();
    (a * a).sum().backward();
    oa.step(1e-2);
  }
  io::SafeTensorsWriter w;
  oa.save(w);
  const auto path = (std::filesystem::temp_directory_path() / ("opt" + std::to_string(::getpid()))).string();
  w.write(path);
  {
    torch::NoGradGuard ng;
    b.copy_(a);
  }
  ob.load(io::SafeTensorsSet(path));
  DOCTEST_CHECK(ob.steps() == 3);
  for (auto* p : {&oa, &ob}) {
    auto& t = p == &oa ? a : b;
    p->zero_grad();
    (t * t).sum().backward();
    p->step(1e-2);
  }
  DOCTEST_CHECK(torch::equal(a, b));
  std::filesystem::remove(path);
}

TEST_CASE("driver: optim") {
  const char* in = std::getenv("HSE_OPT_IN");
  const char* out = std::getenv("HSE_OPT_OUT");
  if (!in || !out) return;
  io::SafeTensorsSet set(in);
  auto w = model::tensor_from(set, "w").set_requires_grad(true);
  auto bias = model::tensor_from(set, "b").set_requires_grad(true);
  const auto x = model::tensor_from(set, "x");
  train::AdamW opt({{"w", w}, {"b", bias}}, train::AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 0.1}, {"b"});
  const long total = 20, warm = train::warmup_steps_for(total, 0.03 * 10);
  std::vector<float> norms;
  for (long s = 0; s < total; ++s) {
    opt.zero_grad();
    ((torch::matmul(x, w) + bias).pow(3).sum()).backward();
    norms.push_back(static_cast<float>(train::clip_grad_norm({w, bias}, 1.0)));
    opt.step(1e-2 * train::cosine_with_warmup(s, total, warm));
  }
  io::SafeTensorsWriter wr;
  auto put = [&](const std::string& n, const torch::Tensor& t) {
    const auto c = t.detach().contiguous();
    wr.add_float(n, io::Dtype::F32, std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
  };
  put("w", w);
  put("b", bias);
  wr.add_float("norms", io::Dtype::F32, {static_cast<std::int64_t>(norms.size())}, norms.data());
  wr.write(out);
}
