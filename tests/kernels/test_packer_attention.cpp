// Packer windowed attention core (kernels/packer_attention.*).
// CPU part (always): the reference against a naive, independent long-double
// computation (its own gather from grid coordinates, log-sum-exp softmax), the
// window-gather variant against the explicitly gathered one (bit-identical),
// the fp16/bf16 conversions and the argument checks.
// GPU part: exits 77 (skipped) when this build has no CUDA or the machine has no
// GPU; otherwise both CUDA variants against the reference. Tolerances, as
// max|x - ref| / max|ref| over the output: fp32 1e-5; fp16 2e-3 and bf16 1.6e-2
// (two roundings of the output may differ by one ulp: 2^-10 and 2^-7 relative).
// The "peaky" stability case (q*200: scores up to ~800, where exp overflows
// without the max subtraction) uses 1e-3 / 4e-3 / 2e-2: the softmax multiplies
// the fp32 rounding error of the scores by their magnitude (its condition
// number), so 1e-5 would test the conditioning rather than the kernel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "packer_attention.h"

using namespace hse::kernels;

namespace {

int g_failures = 0, g_checks = 0;

void report(bool ok, const std::string& msg) {
  ++g_checks;
  g_failures += !ok;
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", msg.c_str());
}

template <typename... A>
std::string fmt(const char* f, A... a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

struct Case {
  const char* name;
  std::int64_t B;
  TokenGrid g;
  std::int64_t d;
  float q_sigma;  // spread of q: large values make the softmax peaky
  bool stability;  // scores far from O(1): looser GPU tolerance (see top)
};

// Values of dtype t as raw bytes, and their float values (after rounding).
struct Buf {
  std::vector<unsigned char> bytes;
  std::vector<float> f;
};

float round_to(DType t, float x) {
  if (t == DType::f16) return half_bits_to_float(float_to_half_bits(x));
  if (t == DType::bf16) return bf16_bits_to_float(float_to_bf16_bits(x));
  return x;
}

Buf make(DType t, const std::vector<float>& x) {
  Buf b;
  b.f.resize(x.size());
  b.bytes.resize(x.size() * dtype_size(t));
  for (std::size_t i = 0; i < x.size(); ++i) {
    b.f[i] = round_to(t, x[i]);
    if (t == DType::f32) {
      std::memcpy(b.bytes.data() + 4 * i, &b.f[i], 4);
    } else {
      const std::uint16_t h = t == DType::f16 ? float_to_half_bits(x[i]) : float_to_bf16_bits(x[i]);
      std::memcpy(b.bytes.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

std::vector<float> decode(DType t, const std::vector<unsigned char>& bytes) {
  const std::size_t n = bytes.size() / dtype_size(t);
  std::vector<float> f(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (t == DType::f32) {
      std::memcpy(&f[i], bytes.data() + 4 * i, 4);
    } else {
      std::uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      f[i] = t == DType::f16 ? half_bits_to_float(h) : bf16_bits_to_float(h);
    }
  }
  return f;
}

// The HR_blk copy, built from grid coordinates: token (z,y,x) belongs to window
// ((z/wd)*nh + y/wh)*nw + x/ww as key ((z%wd)*wh + y%wh)*ww + x%ww.
std::vector<float> gather(const std::vector<float>& tok, std::int64_t B, const TokenGrid& g, std::int64_t d) {
  const std::int64_t nh = g.h / g.wh, nw = g.w / g.ww, W = g.windows(), J = g.keys();
  std::vector<float> out(static_cast<std::size_t>(B * W * J * d));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t z = 0; z < g.d; ++z)
      for (std::int64_t y = 0; y < g.h; ++y)
        for (std::int64_t x = 0; x < g.w; ++x) {
          const std::int64_t w = ((z / g.wd) * nh + y / g.wh) * nw + x / g.ww;
          const std::int64_t j = ((z % g.wd) * g.wh + y % g.wh) * g.ww + x % g.ww;
          const std::int64_t src = ((b * g.d + z) * g.h + y) * g.w + x;
          std::copy_n(tok.begin() + src * d, d, out.begin() + ((b * W + w) * J + j) * d);
        }
  return out;
}

// Long-double attention over the gathered layout, softmax as exp(s - logsumexp).
std::vector<long double> naive(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                               std::int64_t BW, std::int64_t J, std::int64_t d) {
  std::vector<long double> out(static_cast<std::size_t>(BW * d)), s(static_cast<std::size_t>(J));
  const long double scale = 1.0L / std::sqrt(static_cast<long double>(d));
  for (std::int64_t i = 0; i < BW; ++i) {
    for (std::int64_t j = 0; j < J; ++j) {
      long double acc = 0;
      for (std::int64_t c = 0; c < d; ++c) acc += static_cast<long double>(q[i * d + c]) * k[(i * J + j) * d + c];
      s[j] = acc * scale;
    }
    const long double m = *std::max_element(s.begin(), s.end());
    long double z = 0;
    for (long double x : s) z += std::exp(x - m);
    const long double lse = m + std::log(z);
    for (std::int64_t c = 0; c < d; ++c) {
      long double acc = 0;
      for (std::int64_t j = 0; j < J; ++j) acc += std::exp(s[j] - lse) * v[(i * J + j) * d + c];
      out[i * d + c] = acc;
    }
  }
  return out;
}

template <typename A, typename R>
double rel_err(const std::vector<A>& x, const std::vector<R>& ref) {
  long double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const long double r = static_cast<long double>(ref[i]), a = static_cast<long double>(x[i]);
    if (!std::isfinite(static_cast<double>(a))) return INFINITY;
    num = std::max(num, std::fabs(a - r));
    den = std::max(den, std::fabs(r));
  }
  return static_cast<double>(num / std::max(den, 1e-30L));
}

void check_conversions() {
  struct H {
    float f;
    std::uint16_t h;
  };
  const H halves[] = {{1.f, 0x3C00},
                      {-2.f, 0xC000},
                      {65504.f, 0x7BFF},
                      {65519.f, 0x7BFF},
                      {65520.f, 0x7C00},
                      {std::ldexp(1.f, -14), 0x0400},
                      {std::ldexp(1.f, -24), 0x0001},
                      {std::ldexp(1.f, -25), 0x0000},
                      {std::ldexp(1.5f, -25), 0x0001},
                      {std::ldexp(3.f, -25), 0x0002},
                      {1.f + std::ldexp(1.f, -11), 0x3C00},
                      {1.f + std::ldexp(3.f, -11), 0x3C02},
                      {INFINITY, 0x7C00},
                      {-0.f, 0x8000}};
  bool ok = true;
  for (const H& x : halves) ok &= float_to_half_bits(x.f) == x.h;
  ok &= std::isnan(half_bits_to_float(float_to_half_bits(NAN)));
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_bits_to_float(static_cast<std::uint16_t>(h));
    ok &= std::isnan(f) ? ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) : float_to_half_bits(f) == h;
  }
  report(ok, "fp16 conversions (14 known values, NaN, all 65536 bit patterns round trip)");
  ok = float_to_bf16_bits(1.f) == 0x3F80 && float_to_bf16_bits(1.f + std::ldexp(1.f, -8)) == 0x3F80 &&
       float_to_bf16_bits(1.f + std::ldexp(3.f, -8)) == 0x3F82 && float_to_bf16_bits(-3.f) == 0xC040 &&
       std::isnan(bf16_bits_to_float(float_to_bf16_bits(NAN)));
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_bits_to_float(static_cast<std::uint16_t>(h));
    ok &= std::isnan(f) || float_to_bf16_bits(f) == h;
  }
  report(ok, "bf16 conversions (4 known values, NaN, all 65536 bit patterns round trip)");
}

void check_arguments() {
  std::vector<float> x(64 * 64, 0.f);
  auto throws = [&](auto f) {
    try {
      f();
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  bool ok = throws([&] { packer_attention_ref(DType::f32, x.data(), x.data(), x.data(), x.data(), 1, 1, 65, 1); });
  ok &= throws([&] { packer_attention_ref(DType::f32, x.data(), x.data(), x.data(), x.data(), 1, 1, 0, 1); });
  ok &= throws([&] { packer_attention_ref(DType::f32, x.data(), x.data(), x.data(), x.data(), 1, 1, 4, 0); });
  ok &= throws([&] {
    packer_window_attention_ref(DType::f32, x.data(), x.data(), x.data(), x.data(), 1, TokenGrid{2, 5, 4, 1, 2, 2}, 1);
  });
  ok &= throws([&] {
    packer_window_attention_ref(DType::f32, x.data(), x.data(), x.data(), x.data(), 1, TokenGrid{4, 4, 8, 4, 4, 8}, 1);
  });
  report(ok, "argument checks (3 bad shapes, 2 bad windows rejected)");
}

}  // namespace

int main() {
  // Kernel paths covered: d=768 16-byte vectors, one chunk per thread, J<=16 (the
  // packer's fast path); d=4096 block-stride loop; J=20 and J=64 several key tiles;
  // d=770 4-byte (fp16/bf16) or 8-byte (fp32) vectors; d=36 8-byte fp16/bf16 vectors;
  // d=37, 33, 5, 1 scalar loads.
  const Case cases[] = {
      {"hsenet 8x16x16/1x4x4 d=768", 2, {8, 16, 16, 1, 4, 4}, 768, 1.f, false},
      {"hsenet peaky q*200", 1, {8, 16, 16, 1, 4, 4}, 768, 200.f, true},
      {"3x5x6/1x5x3 d=37", 1, {3, 5, 6, 1, 5, 3}, 37, 3.f, false},
      {"2x6x4/2x3x2 d=64", 3, {2, 6, 4, 2, 3, 2}, 64, 1.f, false},
      {"4x8x8/4x4x4 J=64 d=33", 1, {4, 8, 8, 4, 4, 4}, 33, 4.f, false},
      {"2x3x3/1x1x1 J=1 d=5", 2, {2, 3, 3, 1, 1, 1}, 5, 1.f, false},
      {"2x4x4/1x4x4 d=1", 1, {2, 4, 4, 1, 4, 4}, 1, 2.f, false},
      {"1x4x10/1x4x5 J=20 d=96", 2, {1, 4, 10, 1, 4, 5}, 96, 1.f, false},
      {"1x4x8/1x4x4 d=4096", 1, {1, 4, 8, 1, 4, 4}, 4096, 1.f, false},
      {"2x8x8/1x4x4 d=770", 1, {2, 8, 8, 1, 4, 4}, 770, 1.f, false},
      {"1x4x4/1x2x2 d=36", 3, {1, 4, 4, 1, 2, 2}, 36, 1.f, false},
  };
  const DType dtypes[] = {DType::f32, DType::f16, DType::bf16};
  // Reference vs naive: one rounding of the output, at most half an ulp
  // (relative to the element: fp32 2^-24, fp16 2^-11, bf16 2^-8).
  auto cpu_tol = [](DType t) { return t == DType::f32 ? 1e-6 : t == DType::f16 ? 1e-3 : 5e-3; };
  auto gpu_tol = [](DType t, bool stability) {
    if (stability) return t == DType::f32 ? 1e-3 : t == DType::f16 ? 4e-3 : 2e-2;
    return t == DType::f32 ? 1e-5 : t == DType::f16 ? 2e-3 : 1.6e-2;
  };

  struct Data {
    Buf q, k, v;
    std::vector<float> kg, vg;
    std::vector<unsigned char> kgb, vgb, ref;
  };
  std::vector<Data> data;  // per (case, dtype), kept for the GPU part

  std::puts("-- CPU reference");
  check_conversions();
  check_arguments();
  std::mt19937 rng(7);
  for (const Case& c : cases) {
    const std::int64_t W = c.g.windows(), J = c.g.keys(), N = c.g.tokens(), d = c.d;
    std::normal_distribution<float> nq(0.f, c.q_sigma), n1(0.f, 1.f);
    std::vector<float> q(static_cast<std::size_t>(c.B * W * d)), k(static_cast<std::size_t>(c.B * N * d)),
        v(k.size());
    for (float& x : q) x = nq(rng);
    for (float& x : k) x = n1(rng);
    for (float& x : v) x = n1(rng);
    for (DType t : dtypes) {
      Data D;
      D.q = make(t, q);
      D.k = make(t, k);
      D.v = make(t, v);
      D.kg = gather(D.k.f, c.B, c.g, d);
      D.vg = gather(D.v.f, c.B, c.g, d);
      D.kgb = make(t, D.kg).bytes;
      D.vgb = make(t, D.vg).bytes;
      std::vector<unsigned char> out_g(D.q.bytes.size()), out_w(D.q.bytes.size());
      packer_attention_ref(t, D.q.bytes.data(), D.kgb.data(), D.vgb.data(), out_g.data(), c.B, W, J, d);
      packer_window_attention_ref(t, D.q.bytes.data(), D.k.bytes.data(), D.v.bytes.data(), out_w.data(), c.B, c.g, d);
      const auto nv = naive(D.q.f, D.kg, D.vg, c.B * W, J, d);
      const double e = rel_err(decode(t, out_g), nv);
      const std::string what = fmt("%s %s (B=%lld W=%lld J=%lld)", dtype_name(t), c.name,
                                   static_cast<long long>(c.B), static_cast<long long>(W), static_cast<long long>(J));
      report(e <= cpu_tol(t), fmt("ref vs naive: rel err %.2e (tol %.0e) ", e, cpu_tol(t)) + what);
      report(out_g == out_w, std::string("window-gather ref vs gathered ref: ") +
                                 (out_g == out_w ? "bit-identical" : "DIFFER"));
      D.ref = std::move(out_g);
      data.push_back(std::move(D));
    }
  }
  std::printf("CPU: %d checks, %d failed\n", g_checks, g_failures);
  if (g_failures) return 1;

  if (!cuda_compiled() || cuda_device_count() == 0) {
    std::puts("skip: no CUDA device (GPU part not run)");
    return 77;
  }
  std::puts("-- CUDA vs CPU reference");
  std::size_t idx = 0;
  for (const Case& c : cases) {
    const std::int64_t W = c.g.windows(), J = c.g.keys(), d = c.d;
    for (DType t : dtypes) {
      const Data& D = data[idx++];
      const auto ref = decode(t, D.ref);
      std::vector<unsigned char> out_g(D.ref.size()), out_w(D.ref.size());
      packer_attention_cuda_host(t, D.q.bytes.data(), D.kgb.data(), D.vgb.data(), out_g.data(), c.B, W, J, d, 0.f, 0);
      packer_window_attention_cuda_host(t, D.q.bytes.data(), D.k.bytes.data(), D.v.bytes.data(), out_w.data(), c.B,
                                        c.g, d, 0.f, 0);
      const std::string what = fmt("%s %s", dtype_name(t), c.name);
      const double eg = rel_err(decode(t, out_g), ref), ew = rel_err(decode(t, out_w), ref);
      const double tol = gpu_tol(t, c.stability);
      report(eg <= tol, fmt("gathered kernel vs ref: rel err %.2e (tol %.1e) ", eg, tol) + what);
      report(ew <= tol, fmt("window-gather kernel vs ref: rel err %.2e (tol %.1e) ", ew, tol) + what);
      report(out_g == out_w, std::string("window-gather kernel vs gathered kernel: ") +
                                 (out_g == out_w ? "bit-identical " : "differ ") + what);
    }
  }
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
