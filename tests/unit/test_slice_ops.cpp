// Unit tests for hse/image/slice_ops (hse-slice's array steps).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "hse/image/slice_ops.h"

using namespace hse::image;

TEST_CASE("linspace_indices follows torch.linspace(0, n-1, steps, dtype=long)") {
  // n = 32: every index.
  auto a = linspace_indices(32, 32);
  for (int i = 0; i < 32; ++i) CHECK(a[static_cast<std::size_t>(i)] == i);
  // n = 63: step 62/31 = 2.
  auto b = linspace_indices(63, 32);
  for (int i = 0; i < 32; ++i) CHECK(b[static_cast<std::size_t>(i)] == 2 * i);
  // n = 40: step 39/31; first half i*39/31 truncated, second half 39 - (31-i)*39/31 truncated.
  auto c = linspace_indices(40, 32);
  CHECK(c.front() == 0);
  CHECK(c.back() == 39);
  CHECK(c[1] == 1);    // 1.258
  CHECK(c[15] == 18);  // 18.87
  CHECK(c[16] == 20);  // 39 - 15*39/31 = 20.13
  CHECK(c[30] == 37);  // 39 - 1.258 = 37.74
  // Steps of 5 over 10: step 2.25 -> 0, 2.25, then 9 - 2*2.25 = 4.5, 6.75, 9.
  auto d = linspace_indices(10, 5);
  CHECK(d == std::vector<std::int64_t>{0, 2, 4, 6, 9});
  CHECK(linspace_indices(7, 1) == std::vector<std::int64_t>{0});
}

TEST_CASE("rotate_cw90 is PIL rotate(-90, expand=True)") {
  // 2 rows x 3 columns:  [1 2 3; 4 5 6]  ->  3 rows x 2 columns: [4 1; 5 2; 6 3]
  Image8 in{2, 3, {1, 2, 3, 4, 5, 6}};
  Image8 out = rotate_cw90(in);
  CHECK(out.h == 3);
  CHECK(out.w == 2);
  CHECK(out.v == std::vector<std::uint8_t>{4, 1, 5, 2, 6, 3});
}

TEST_CASE("rotate_ccw90 is PIL rotate(90, expand=True)") {
  // [1 2 3; 4 5 6] -> np.rot90: [3 6; 2 5; 1 4]
  Image8 in{2, 3, {1, 2, 3, 4, 5, 6}};
  Image8 out = rotate_ccw90(in);
  CHECK(out.h == 3);
  CHECK(out.w == 2);
  CHECK(out.v == std::vector<std::uint8_t>{3, 6, 2, 5, 1, 4});
}

TEST_CASE("BIMCV-R: the volume's min-max, or each slice's for large files, in float32") {
  // Two 1x4 slices: [0 10 20 30] and [100 110 120 130]; the volume's range is 0..130.
  Array3 a{2, 1, 4, {0, 10, 20, 30, 100, 110, 120, 130}};
  SliceRecipe r;
  r.n_slices = 2;
  r.image_size = 1;  // 4x1 after the turn: the short side 1, the crop keeps the centre row
  r.resize_short = false;
  r.rotate_ccw = true;
  // The uint8 values themselves, from the float32 scaling.
  const auto [mn, mx] = minmax_f32(a.v.data(), a.v.size());
  CHECK(mn == 0.f);
  CHECK(mx == 130.f);
  // 10/130*255 = 19.6 -> 19; 30/130*255 = 58.8 -> 58; 100/130*255 = 196.15 -> 196
  CHECK(minmax_to_u8_f32(a.v.data(), 1, 4, mn, mx).v == std::vector<std::uint8_t>{0, 19, 39, 58});
  CHECK(minmax_to_u8_f32(a.v.data() + 4, 1, 4, mn, mx).v == std::vector<std::uint8_t>{196, 215, 235, 255});
  CHECK(minmax_to_u8_f32(a.v.data() + 4, 1, 4, 100.f, 130.f).v == std::vector<std::uint8_t>{0, 85, 170, 255});
  CHECK(minmax_to_u8_f32(a.v.data(), 1, 4, 5.f, 5.f).v == std::vector<std::uint8_t>{0, 0, 0, 0});
  // Through make_slices: the first slice is darker than the second under the global scaling, and
  // both span the full range with per-slice scaling.
  auto grey = [](float v) { return (v * kClipStd[0] + kClipMean[0]) * 255.f; };
  r.norm = SliceNorm::global_f32;
  auto g = make_slices(a, r, 1);
  r.norm = SliceNorm::per_slice_f32;
  auto p = make_slices(a, r, 1);
  CHECK(g.size() == 2 * 3 * 1 * 1);
  // After the counter-clockwise turn the 1x4 slice is 4 rows x 1 column; the centre crop of 1 row
  // takes row round((4 - 1) / 2) = 2 (half to even: 1.5 -> 2), which holds column 4 - 1 - 2 = 1.
  CHECK(grey(g[0]) == doctest::Approx(19).epsilon(1e-4));
  CHECK(grey(g[3]) == doctest::Approx(215).epsilon(1e-4));
  CHECK(grey(p[0]) == doctest::Approx(85).epsilon(1e-4));
  CHECK(grey(p[3]) == doctest::Approx(85).epsilon(1e-4));
  // Fewer slices than asked: indices repeat (linspace), no resize.
  r.n_slices = 4;
  auto rep = make_slices(a, r, 1);
  CHECK(rep.size() == 4 * 3);
  CHECK(rep[0] == rep[3]);  // linspace(0, 1, 4) = 0, 0, 1, 1
  CHECK(rep[6] == rep[9]);
}

TEST_CASE("minmax_to_u8 truncates and guards a constant slice") {
  const float p[4] = {-1.f, 0.f, 0.5f, 1.f};
  Image8 u = minmax_to_u8(p, 2, 2);
  CHECK(u.v == std::vector<std::uint8_t>{0, 127, 191, 255});  // 127.5 -> 127, 191.25 -> 191
  const float q[3] = {0.3f, 0.3f, 0.3f};
  Image8 z = minmax_to_u8(q, 1, 3);
  CHECK(z.v == std::vector<std::uint8_t>{0, 0, 0});
}

TEST_CASE("bicubic resize keeps a constant image constant") {
  for (int value : {0, 1, 77, 200, 255}) {
    Image8 in{50, 70, std::vector<std::uint8_t>(50 * 70, static_cast<std::uint8_t>(value))};
    for (auto [ow, oh] : {std::pair<std::int64_t, std::int64_t>{33, 24}, {140, 100}, {70, 24}, {13, 50}}) {
      Image8 out = resize_bicubic_pil(in, ow, oh);
      CHECK(out.w == ow);
      CHECK(out.h == oh);
      bool all = std::all_of(out.v.begin(), out.v.end(), [&](std::uint8_t x) { return x == value; });
      CHECK(all);
    }
  }
  // Same size: a copy.
  Image8 g{3, 4, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110}};
  CHECK(resize_bicubic_pil(g, 4, 3).v == g.v);
}

TEST_CASE("short side resize and centre crop follow torchvision") {
  CHECK(short_side_size(477, 477, 224) == std::pair<std::int64_t, std::int64_t>{224, 224});
  CHECK(short_side_size(300, 200, 224) == std::pair<std::int64_t, std::int64_t>{336, 224});
  CHECK(short_side_size(200, 301, 224) == std::pair<std::int64_t, std::int64_t>{224, 337});  // int(337.12)
  CHECK(center_crop_offset(224, 224) == 0);
  CHECK(center_crop_offset(225, 224) == 0);  // round(0.5) = 0
  CHECK(center_crop_offset(227, 224) == 2);  // round(1.5) = 2
  CHECK(center_crop_offset(229, 224) == 2);  // round(2.5) = 2
  CHECK(center_crop_offset(230, 224) == 3);
}

TEST_CASE("normalisation and the whole slice recipe") {
  Image8 w{1, 1, {255}};
  float out[3];
  to_normalized_rgb(w, kClipMean, kClipStd, out);
  for (int c = 0; c < 3; ++c) CHECK(out[c] == doctest::Approx((1.0 - kClipMean[c]) / kClipStd[c]).epsilon(1e-6));

  // A 40-slice volume (Z >= 32) and a 10-slice one (Z < 32): shapes and value range.
  for (std::int64_t z : {40, 10}) {
    Array3 a{z, 30, 20, std::vector<float>(static_cast<std::size_t>(z * 30 * 20))};
    for (std::size_t i = 0; i < a.v.size(); ++i) a.v[i] = std::sin(0.01f * static_cast<float>(i));
    SliceRecipe r;
    r.image_size = 16;
    auto s = make_slices(a, r, 2);
    CHECK(s.size() == static_cast<std::size_t>(32 * 3 * 16 * 16));
    const float lo = (0.f - kClipMean[0]) / kClipStd[0], hi = (1.f - kClipMean[2]) / kClipStd[2];
    for (float v : s) {
      REQUIRE(v >= lo - 1e-5f);
      REQUIRE(v <= hi + 1e-5f);
    }
    r.jpeg_quality = 95;
    auto j = make_slices(a, r, 1);
    double md = 0;
    for (std::size_t i = 0; i < s.size(); ++i) md = std::max(md, static_cast<double>(std::fabs(s[i] - j[i])));
    CHECK(md < 0.3);  // a few grey levels
  }
}

TEST_CASE("JPEG round trip is close to the input") {
  Image8 in{40, 48, std::vector<std::uint8_t>(40 * 48)};
  for (std::size_t i = 0; i < in.v.size(); ++i) in.v[i] = static_cast<std::uint8_t>((i * 7) % 256 / 4 + 60);
  Image8 out = jpeg_roundtrip(in, 95);
  CHECK(out.h == 40);
  CHECK(out.w == 48);
  int md = 0;
  for (std::size_t i = 0; i < in.v.size(); ++i) md = std::max(md, std::abs(int(in.v[i]) - int(out.v[i])));
  CHECK(md < 40);
  CHECK_THROWS(jpeg_roundtrip(in, 0));
}
