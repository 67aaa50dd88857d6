// The fast CPU resize (separable, multithreaded) against the kernels' direct
// 8-tap reference, and the whole CPU pipeline against pipeline_ref.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "hse/image/ops.h"

using namespace hse;

TEST_CASE("separable resize equals the direct reference") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1000.f, 200.f);
  for (auto [d, h, w, od, oh, ow] : {std::array<std::int64_t, 6>{7, 9, 11, 3, 20, 5}, {16, 16, 16, 32, 8, 8},
                                     {5, 40, 33, 5, 40, 33}, {1, 3, 4, 2, 6, 8}}) {
    std::vector<float> src(static_cast<std::size_t>(d * h * w));
    for (auto& x : src) x = u(rng);
    kernels::Box box{0, d, 0, h, 0, w};
    if (d > 4) box = kernels::Box{1, d - 1, 2, h, 0, w - 1};
    std::vector<float> a(static_cast<std::size_t>(od * oh * ow)), b(a.size());
    image::resize_trilinear(src.data(), d, h, w, box, a.data(), od, oh, ow, 2);
    kernels::resize_trilinear_ref(src.data(), kernels::Strides{h * w, w, 1}, box, b.data(), od, oh, ow);
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
    CHECK(m < 1e-3);  // |values| <= 1000: float32 rounding of two summation orders
  }
}

TEST_CASE("same-size resize is an exact copy") {
  std::vector<float> src(4 * 5 * 6);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.37f;
  std::vector<float> out(src.size());
  image::resize_trilinear(src.data(), 4, 5, 6, kernels::Box{0, 4, 0, 5, 0, 6}, out.data(), 4, 5, 6, 1);
  CHECK(out == src);
}

TEST_CASE("taps follow PyTorch align_corners=False") {
  // in 4 -> out 8: src = 0.5*(o+0.5)-0.5 -> o=0: -0.25 clamps to 0; o=3: 1.25; o=7: 3.25 -> i0=3 (last)
  auto t0 = kernels::linear_tap(0, 4, 8);
  CHECK(t0.i0 == 0);
  CHECK(t0.w1 == doctest::Approx(0.0));
  auto t3 = kernels::linear_tap(3, 4, 8);
  CHECK(t3.i0 == 1);
  CHECK(t3.i1 == 2);
  CHECK(t3.w1 == doctest::Approx(0.25));
  auto t7 = kernels::linear_tap(7, 4, 8);
  CHECK(t7.i0 == 3);
  CHECK(t7.i1 == 3);
}

TEST_CASE("CPU preprocess pipeline equals pipeline_ref") {
  image::Volume v;
  v.dim = {40, 36, 20};
  v.spacing = {0.9, 0.8, 2.0};
  v.data.resize(v.voxels());
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.f, 20.f);
  for (std::int64_t k = 0; k < 20; ++k)
    for (std::int64_t j = 0; j < 36; ++j)
      for (std::int64_t i = 0; i < 40; ++i) {
        const float dx = (i - 20) / 20.f, dy = (j - 18) / 18.f;
        v.data[(k * 36 + j) * 40 + i] = (dx * dx + dy * dy < 0.5f ? 40.f : -1000.f) + noise(rng);
      }
  image::HuDecision hu;
  image::VolumeRecipe r;
  r.size = {8, 16, 16};
  const std::array<double, 3> sp{2.0, 0.9, 0.8};
  image::Volume consumed = v;
  auto got = image::preprocess_volume(consumed, hu, sp, r, 2);
  // Reference: clamp, then pipeline_ref over the (Z, X, Y) view.
  std::vector<float> c(v.data.size());
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = std::min(std::max(v.data[i], -1000.f), 200.f);
  kernels::PipelineSpec ps;
  ps.d = 20;
  ps.h = 40;
  ps.w = 36;
  ps.strides = kernels::Strides{40 * 36, 1, 40};
  ps.mid[0] = image::resampled_size(20, 2.0, 1.5);
  ps.mid[1] = image::resampled_size(40, 0.9, 0.75);
  ps.mid[2] = image::resampled_size(36, 0.8, 0.75);
  ps.out[0] = 8;
  ps.out[1] = 16;
  ps.out[2] = 16;
  std::int64_t od[3];
  auto ref = kernels::pipeline_ref(c.data(), ps, od);
  REQUIRE(got.v.size() == ref.size());
  double m = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(got.v[i] - ref[i])));
  CHECK(m < 1e-5);
}

TEST_CASE("HU decision: raw v1 values are rescaled, HU values are not, never twice") {
  image::Volume hu_vol;
  hu_vol.dim = {10, 10, 10};
  hu_vol.data.assign(1000, 40.f);
  for (int i = 0; i < 500; ++i) hu_vol.data[static_cast<std::size_t>(i)] = -1000.f;
  image::Volume raw = hu_vol;
  for (auto& x : raw.data) x += 1024.f;  // intercept -1024
  const auto p = std::make_pair(1.0, -1024.0);
  CHECK(image::decide_hu(raw, image::HuMode::automatic, p).rescale);
  CHECK_FALSE(image::decide_hu(hu_vol, image::HuMode::automatic, p).rescale);
  image::Volume raw8192 = hu_vol;
  for (auto& x : raw8192.data) x += 8192.f;
  CHECK(image::decide_hu(raw8192, image::HuMode::automatic, std::make_pair(1.0, -8192.0)).rescale);
  hu_vol.hu_by_reader = true;
  CHECK_FALSE(image::decide_hu(hu_vol, image::HuMode::rescale, p).rescale);
  CHECK(image::decide_hu(raw, image::HuMode::as_is, p).rescale == false);
}
