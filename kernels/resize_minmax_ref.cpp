#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "resize_minmax.h"

namespace hse::kernels {

namespace {
// The coordinate in the arithmetic PyTorch uses for the input's type (float for float32, double
// for float64 input).
template <class T>
Tap tap_in(std::int64_t o, std::int64_t in, std::int64_t out) {
  const T scale = static_cast<T>(in) / static_cast<T>(out);
  T src = scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
  if (src < 0) src = 0;
  Tap t;
  t.i0 = static_cast<std::int64_t>(src);
  if (t.i0 > in - 1) t.i0 = in - 1;
  t.i1 = t.i0 < in - 1 ? t.i0 + 1 : t.i0;
  t.w1 = static_cast<float>(src - static_cast<T>(t.i0));
  if (t.i1 == t.i0) t.w1 = 0;
  return t;
}
}  // namespace

Tap linear_tap(std::int64_t o, std::int64_t in, std::int64_t out) { return tap_in<float>(o, in, out); }
Tap linear_tap_f64(std::int64_t o, std::int64_t in, std::int64_t out) { return tap_in<double>(o, in, out); }

void resize_trilinear_ref(const float* src, Strides s, Box b, float* dst, std::int64_t od, std::int64_t oh,
                          std::int64_t ow) {
  const std::int64_t bd = b.z1 - b.z0, bh = b.y1 - b.y0, bw = b.x1 - b.x0;
  for (std::int64_t z = 0; z < od; ++z) {
    const Tap tz = linear_tap(z, bd, od);
    for (std::int64_t y = 0; y < oh; ++y) {
      const Tap ty = linear_tap(y, bh, oh);
      for (std::int64_t x = 0; x < ow; ++x) {
        const Tap tx = linear_tap(x, bw, ow);
        auto at = [&](std::int64_t zz, std::int64_t yy, std::int64_t xx) {
          return src[(b.z0 + zz) * s.d + (b.y0 + yy) * s.h + (b.x0 + xx) * s.w];
        };
        const float wz1 = tz.w1, wz0 = 1 - wz1, wy1 = ty.w1, wy0 = 1 - wy1, wx1 = tx.w1, wx0 = 1 - wx1;
        const float v = wz0 * (wy0 * (wx0 * at(tz.i0, ty.i0, tx.i0) + wx1 * at(tz.i0, ty.i0, tx.i1)) +
                               wy1 * (wx0 * at(tz.i0, ty.i1, tx.i0) + wx1 * at(tz.i0, ty.i1, tx.i1))) +
                        wz1 * (wy0 * (wx0 * at(tz.i1, ty.i0, tx.i0) + wx1 * at(tz.i1, ty.i0, tx.i1)) +
                               wy1 * (wx0 * at(tz.i1, ty.i1, tx.i0) + wx1 * at(tz.i1, ty.i1, tx.i1)));
        dst[(z * oh + y) * ow + x] = v;
      }
    }
  }
}

std::pair<float, float> minmax_ref(const float* p, std::size_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (std::size_t i = 0; i < n; ++i) {
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
  }
  return {lo, hi};
}

void normalize_ref(float* p, std::size_t n, float lo, float hi) {
  const float den = std::max(hi - lo, 1e-8f);
  for (std::size_t i = 0; i < n; ++i) p[i] = (p[i] - lo) / den;
}

Box foreground_box_ref(const float* p, std::int64_t d, std::int64_t h, std::int64_t w, float threshold) {
  Box b{d, 0, h, 0, w, 0};
  for (std::int64_t z = 0; z < d; ++z)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        if (p[(z * h + y) * w + x] > threshold) {
          b.z0 = std::min(b.z0, z);
          b.z1 = std::max(b.z1, z + 1);
          b.y0 = std::min(b.y0, y);
          b.y1 = std::max(b.y1, y + 1);
          b.x0 = std::min(b.x0, x);
          b.x1 = std::max(b.x1, x + 1);
        }
  if (b.z1 == 0) return Box{};
  return b;
}

std::vector<float> pipeline_ref(const float* src, const PipelineSpec& sp, std::int64_t out_dims[3]) {
  const std::int64_t md = sp.mid[0], mh = sp.mid[1], mw = sp.mid[2];
  std::vector<float> mid(static_cast<std::size_t>(md * mh * mw));
  resize_trilinear_ref(src, sp.strides, Box{0, sp.d, 0, sp.h, 0, sp.w}, mid.data(), md, mh, mw);
  const auto [lo, hi] = minmax_ref(mid.data(), mid.size());
  normalize_ref(mid.data(), mid.size(), lo, hi);
  Box b{0, md, 0, mh, 0, mw};
  if (sp.crop) {
    b = foreground_box_ref(mid.data(), md, mh, mw, 0.0f);
    if (b.empty()) throw std::runtime_error("no foreground voxels (> 0) after normalisation");
  }
  const std::int64_t od = sp.out[0] ? sp.out[0] : b.z1 - b.z0, oh = sp.out[1] ? sp.out[1] : b.y1 - b.y0,
                     ow = sp.out[2] ? sp.out[2] : b.x1 - b.x0;
  std::vector<float> out(static_cast<std::size_t>(od * oh * ow));
  resize_trilinear_ref(mid.data(), Strides{mh * mw, mw, 1}, b, out.data(), od, oh, ow);
  out_dims[0] = od;
  out_dims[1] = oh;
  out_dims[2] = ow;
  return out;
}

#ifndef HSE_HAVE_CUDA
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::vector<float> pipeline_cuda(const float*, const PipelineSpec&, std::int64_t*, int) {
  throw std::runtime_error("this hse was built without CUDA");
}
#endif

}  // namespace hse::kernels
