// CPU reference of the packer's windowed attention core (see packer_attention.h):
// plain loops, double accumulation, one rounding to the output dtype.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "packer_attention.h"

namespace hse::kernels {

std::uint16_t float_to_half_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00u | static_cast<std::uint16_t>((ax >> 13) & 0x3FFu);  // NaN
  if (ax >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 (and inf) -> inf
  if (ax >= 0x38800000u) {                       // normal half (>= 2^-14)
    std::uint32_t h = (ax - 0x38000000u) >> 13;
    const std::uint32_t rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  if (ax < 0x33000000u) return sign;  // below 2^-25: rounds to 0 (2^-25 itself ties to 0 below)
  // Subnormal half: value = h * 2^-24.
  const std::uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
  std::uint32_t h = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  std::uint32_t x;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31)
    x = sign | 0x7F800000u | (m << 13);
  else
    x = sign | ((e + 112u) << 23) | (m << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

std::uint16_t float_to_bf16_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(x >> 16);
}

float bf16_bits_to_float(std::uint16_t h) {
  const std::uint32_t x = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

namespace {

double load(DType t, const void* p, std::int64_t i) {
  switch (t) {
    case DType::f32:
      return static_cast<const float*>(p)[i];
    case DType::f16:
      return half_bits_to_float(static_cast<const std::uint16_t*>(p)[i]);
    default:
      return bf16_bits_to_float(static_cast<const std::uint16_t*>(p)[i]);
  }
}

void store(DType t, void* p, std::int64_t i, double v) {
  const float f = static_cast<float>(v);
  switch (t) {
    case DType::f32:
      static_cast<float*>(p)[i] = f;
      break;
    case DType::f16:
      static_cast<std::uint16_t*>(p)[i] = float_to_half_bits(f);
      break;
    default:
      static_cast<std::uint16_t*>(p)[i] = float_to_bf16_bits(f);
  }
}

// One (b,w): q row at element qo, key/value j at row rows[j], out row at qo.
void attend(DType t, const void* q, const void* k, const void* v, void* out, std::int64_t qo,
            const std::int64_t* rows, std::int64_t J, std::int64_t d, double scale, std::vector<double>& s) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = 0; j < J; ++j) {
    double acc = 0;
    for (std::int64_t c = 0; c < d; ++c) acc += load(t, q, qo + c) * load(t, k, rows[j] * d + c);
    s[j] = acc * scale;
    m = std::max(m, s[j]);
  }
  double sum = 0;
  for (std::int64_t j = 0; j < J; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  for (std::int64_t c = 0; c < d; ++c) {
    double acc = 0;
    for (std::int64_t j = 0; j < J; ++j) acc += s[j] * load(t, v, rows[j] * d + c);
    store(t, out, qo + c, acc / sum);
  }
}

double scale_for(float scale, std::int64_t d) {
  return scale > 0 ? static_cast<double>(scale) : 1.0 / std::sqrt(static_cast<double>(d));
}

}  // namespace

void packer_attention_ref(DType dtype, const void* q, const void* k, const void* v, void* out, std::int64_t B,
                          std::int64_t W, std::int64_t J, std::int64_t d, float scale) {
  check_packer_shape(B, W, J, d);
  const double sc = scale_for(scale, d);
  std::vector<double> s(static_cast<std::size_t>(J));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(J));
  for (std::int64_t bw = 0; bw < B * W; ++bw) {
    for (std::int64_t j = 0; j < J; ++j) rows[j] = bw * J + j;
    attend(dtype, q, k, v, out, bw * d, rows.data(), J, d, sc, s);
  }
}

void packer_window_attention_ref(DType dtype, const void* q, const void* k, const void* v, void* out,
                                 std::int64_t B, const TokenGrid& g, std::int64_t d, float scale) {
  check_packer_grid(g);
  const std::int64_t W = g.windows(), J = g.keys(), N = g.tokens();
  check_packer_shape(B, W, J, d);
  const double sc = scale_for(scale, d);
  const std::int64_t nh = g.h / g.wh, nw = g.w / g.ww;
  std::vector<double> s(static_cast<std::size_t>(J));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(J));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t w = 0; w < W; ++w) {
      const std::int64_t zb = w / (nh * nw), hb = (w / nw) % nh, wb = w % nw;
      for (std::int64_t iz = 0; iz < g.wd; ++iz)
        for (std::int64_t iy = 0; iy < g.wh; ++iy)
          for (std::int64_t ix = 0; ix < g.ww; ++ix)
            rows[(iz * g.wh + iy) * g.ww + ix] =
                b * N + ((zb * g.wd + iz) * g.h + hb * g.wh + iy) * g.w + wb * g.ww + ix;
      attend(dtype, q, k, v, out, (b * W + w) * d, rows.data(), J, d, sc, s);
    }
}

#ifndef HSE_HAVE_CUDA
namespace {
[[noreturn]] void no_cuda() { throw std::runtime_error("this hse was built without CUDA"); }
}  // namespace
void packer_attention_cuda(DType, const void*, const void*, const void*, void*, std::int64_t, std::int64_t,
                           std::int64_t, std::int64_t, float, cudaStream_t) {
  no_cuda();
}
void packer_window_attention_cuda(DType, const void*, const void*, const void*, void*, std::int64_t,
                                  const TokenGrid&, std::int64_t, float, cudaStream_t) {
  no_cuda();
}
void packer_attention_cuda_host(DType, const void*, const void*, const void*, void*, std::int64_t, std::int64_t,
                                std::int64_t, std::int64_t, float, int) {
  no_cuda();
}
void packer_window_attention_cuda_host(DType, const void*, const void*, const void*, void*, std::int64_t,
                                       const TokenGrid&, std::int64_t, float, int) {
  no_cuda();
}
#endif

}  // namespace hse::kernels
