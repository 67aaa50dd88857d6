// Losses: hand-checked properties here; values and gradients against PyTorch-Python in
// tests/parity/test_losses.py through the "driver: losses" case.
#include <torch/torch.h>

#include <cstdlib>

#include <doctest/doctest.h>

#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/model/losses.h"

using namespace hse;

TEST_CASE("w(t) as published, and the constant variant") {
  DOCTEST_CHECK(model::sa_weight(0, model::SaSchedule::linear) == doctest::Approx(0.1));
  DOCTEST_CHECK(model::sa_weight(2500, model::SaSchedule::linear) == doctest::Approx(0.05));
  DOCTEST_CHECK(model::sa_weight(5000, model::SaSchedule::linear) == 0.0);
  DOCTEST_CHECK(model::sa_weight(9000, model::SaSchedule::linear) == 0.0);
  DOCTEST_CHECK(model::sa_weight(9000, model::SaSchedule::constant, 0.3) == doctest::Approx(0.3));
}

TEST_CASE("perfectly aligned features with a large scale give a small loss") {
  auto f = torch::eye(4);
  auto scale = torch::tensor(50.0);
  const auto l = model::clip_logits(f, f, scale);
  DOCTEST_CHECK(model::clip_loss(l).item<double>() < 1e-6);
  DOCTEST_CHECK(model::sa_loss(l, l).item<double>() == 0.0);
}

TEST_CASE("driver: losses") {
  const char* in = std::getenv("HSE_LOSS_IN");
  const char* out = std::getenv("HSE_LOSS_OUT");
  if (!in || !out) return;
  io::SafeTensorsSet set(in);
  auto img = model::tensor_from(set, "image").set_requires_grad(true);
  auto txt = model::tensor_from(set, "text").set_requires_grad(true);
  auto img1 = model::tensor_from(set, "image1");
  auto txt1 = model::tensor_from(set, "text1");
  auto scale = model::tensor_from(set, "logit_scale").set_requires_grad(true);
  const auto form = std::getenv("HSE_LOSS_EXP") ? model::LogitScaleForm::exp : model::LogitScaleForm::raw;
  const auto l2 = model::clip_logits(img, txt, scale, form);
  const auto l1 = model::clip_logits(img1, txt1, scale, form);
  const double w = model::sa_weight(std::atol(std::getenv("HSE_LOSS_STEP") ? std::getenv("HSE_LOSS_STEP") : "0"),
                                    model::SaSchedule::linear);
  const auto cl = model::clip_loss(l2);
  const auto sa = model::sa_loss(l1, l2);
  const auto total = cl + w * sa;
  total.backward();
  io::SafeTensorsWriter wr;
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kFloat32).contiguous();
    wr.add_float(name, io::Dtype::F32, std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()),
                 c.data_ptr<float>());
  };
  put("clip_loss", cl);
  put("sa_loss", sa);
  put("total", total);
  put("grad_image", img.grad());
  put("grad_text", txt.grad());
  put("grad_scale", scale.grad());
  wr.write(out);
}
