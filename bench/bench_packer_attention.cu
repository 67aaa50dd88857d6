// Benchmark of the packer's windowed attention core (kernels/packer_attention.h)
// on the HSENet shape (grid 8x16x16, window 1x4x4: W=128, J=16, d=768).
//
// For fp32/fp16/bf16 and several batch sizes it times, with CUDA events:
//   fused-window : packer_window_attention_cuda on token-ordered K, V [B,2048,d]
//   fused-gather : packer_attention_cuda on already gathered K, V [B,128,16,d]
//   unfused      : the eager sequence as simple kernels (no cuBLAS): gather
//                  copies of K and V, scores (one warp per dot product),
//                  softmax (one thread per window), weighted sum (one thread
//                  per output element); what LibTorch's ops would do in turn
// and prints microseconds, the fused kernel's effective bandwidth (bytes it
// must move / time) against the device's peak, and the ratio unfused/fused;
// the unfused result is checked against the fused one. The CPU reference is
// timed once (B=1, fp32) for the CPU/GPU ratio.
// Usage: bench_packer_attention [iterations=200]. Exits 77 without a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "packer_attention.h"

using namespace hse::kernels;

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// --- the unfused reference pipeline ---------------------------------------------
struct Geo {
  long long B, W, J, N, d;
  int gh, gw, wd, wh, ww, nh, nw;
};

template <typename T>
__global__ void gather_kernel(const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ kg,
                              T* __restrict__ vg, Geo g) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= g.B * g.W * g.J * g.d) return;
  const long long c = i % g.d, j = (i / g.d) % g.J, w = (i / (g.d * g.J)) % g.W, b = i / (g.d * g.J * g.W);
  const long long zb = w / (g.nh * g.nw), hb = (w / g.nw) % g.nh, wb = w % g.nw;
  const long long iz = j / (g.wh * g.ww), iy = (j / g.ww) % g.wh, ix = j % g.ww;
  const long long n = ((zb * g.wd + iz) * g.gh + hb * g.wh + iy) * g.gw + wb * g.ww + ix;
  kg[i] = k[(b * g.N + n) * g.d + c];
  vg[i] = v[(b * g.N + n) * g.d + c];
}

// One warp per (bw, j).
template <typename T>
__global__ void scores_kernel(const T* __restrict__ q, const T* __restrict__ kg, float* __restrict__ s, Geo g,
                              float scale) {
  const long long wid = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (wid >= g.B * g.W * g.J) return;
  const long long bw = wid / g.J;
  float acc = 0.f;
  for (long long c = lane; c < g.d; c += 32) acc += to_f(q[bw * g.d + c]) * to_f(kg[wid * g.d + c]);
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) s[wid] = acc * scale;
}

__global__ void softmax_kernel(float* __restrict__ s, long long rows, int J) {
  const long long r = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  float* p = s + r * J;
  float m = -INFINITY, sum = 0.f;
  for (int j = 0; j < J; ++j) m = fmaxf(m, p[j]);
  for (int j = 0; j < J; ++j) sum += (p[j] = expf(p[j] - m));
  for (int j = 0; j < J; ++j) p[j] /= sum;
}

template <typename T>
__global__ void weighted_sum_kernel(const float* __restrict__ p, const T* __restrict__ vg, T* __restrict__ out,
                                    Geo g) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= g.B * g.W * g.d) return;
  const long long c = i % g.d, bw = i / g.d;
  float acc = 0.f;
  for (long long j = 0; j < g.J; ++j) acc += p[bw * g.J + j] * to_f(vg[(bw * g.J + j) * g.d + c]);
  out[i] = from_f<T>(acc);
}

unsigned blocks_for(long long n, int t) { return static_cast<unsigned>((n + t - 1) / t); }

template <typename T>
void unfused(const T* q, const T* k, const T* v, T* kg, T* vg, float* s, T* out, const Geo& g, float scale) {
  const int t = 256;
  gather_kernel<T><<<blocks_for(g.B * g.W * g.J * g.d, t), t>>>(k, v, kg, vg, g);
  scores_kernel<T><<<blocks_for(g.B * g.W * g.J * 32, t), t>>>(q, kg, s, g, scale);
  softmax_kernel<<<blocks_for(g.B * g.W, t), t>>>(s, g.B * g.W, static_cast<int>(g.J));
  weighted_sum_kernel<T><<<blocks_for(g.B * g.W * g.d, t), t>>>(s, vg, out, g);
}

// --- timing ---------------------------------------------------------------------
template <typename F>
double time_us(F&& f, int iters) {
  for (int i = 0; i < 10; ++i) f();
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < iters; ++i) f();
  cudaEventRecord(b);
  check(cudaEventSynchronize(b), "timed run");
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 1e3 * ms / iters;
}

std::vector<unsigned char> host_values(DType t, std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<unsigned char> out(n * dtype_size(t));
  for (std::size_t i = 0; i < n; ++i) {
    const float f = nd(rng);
    if (t == DType::f32) {
      std::memcpy(out.data() + 4 * i, &f, 4);
    } else {
      const std::uint16_t h = t == DType::f16 ? float_to_half_bits(f) : float_to_bf16_bits(f);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

float decode1(DType t, const unsigned char* p) {
  if (t == DType::f32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return t == DType::f16 ? half_bits_to_float(h) : bf16_bits_to_float(h);
}

struct Dev {
  void* p = nullptr;
  explicit Dev(std::size_t bytes) { check(cudaMalloc(&p, bytes), "cudaMalloc"); }
  ~Dev() { cudaFree(p); }
};

template <typename T>
void run_case(DType t, long long B, int iters, double peak_gbs, std::mt19937& rng) {
  const TokenGrid grid{8, 16, 16, 1, 4, 4};
  const long long d = 768, W = grid.windows(), J = grid.keys(), N = grid.tokens();
  const std::size_t es = sizeof(T), nq = B * W * d, nk = B * N * d;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  Dev q(nq * es), k(nk * es), v(nk * es), kg(nk * es), vg(nk * es), s(B * W * J * sizeof(float)), o1(nq * es),
      o2(nq * es), o3(nq * es);
  const auto hq = host_values(t, nq, rng), hk = host_values(t, nk, rng), hv = host_values(t, nk, rng);
  check(cudaMemcpy(q.p, hq.data(), hq.size(), cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(k.p, hk.data(), hk.size(), cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(v.p, hv.data(), hv.size(), cudaMemcpyHostToDevice), "copy");
  Geo g{B, W, J, N, d, 16, 16, 1, 4, 4, 4, 4};
  auto tq = static_cast<const T*>(q.p), tk = static_cast<const T*>(k.p), tv = static_cast<const T*>(v.p);
  auto tkg = static_cast<T*>(kg.p), tvg = static_cast<T*>(vg.p);

  const double t_win =
      time_us([&] { packer_window_attention_cuda(t, q.p, k.p, v.p, o1.p, B, grid, d, 0.f, nullptr); }, iters);
  unfused<T>(tq, tk, tv, tkg, tvg, static_cast<float*>(s.p), static_cast<T*>(o3.p), g, scale);  // fills kg, vg
  const double t_gat =
      time_us([&] { packer_attention_cuda(t, q.p, kg.p, vg.p, o2.p, B, W, J, d, 0.f, nullptr); }, iters);
  const double t_unf = time_us(
      [&] { unfused<T>(tq, tk, tv, tkg, tvg, static_cast<float*>(s.p), static_cast<T*>(o3.p), g, scale); }, iters);
  check(cudaGetLastError(), "kernels");

  std::vector<unsigned char> r1(nq * es), r2(nq * es), r3(nq * es);
  check(cudaMemcpy(r1.data(), o1.p, r1.size(), cudaMemcpyDeviceToHost), "copy");
  check(cudaMemcpy(r2.data(), o2.p, r2.size(), cudaMemcpyDeviceToHost), "copy");
  check(cudaMemcpy(r3.data(), o3.p, r3.size(), cudaMemcpyDeviceToHost), "copy");
  double e12 = 0, e13 = 0, mx = 0;
  for (std::size_t i = 0; i < nq; ++i) {
    const double a = decode1(t, &r1[i * es]), b = decode1(t, &r2[i * es]), c = decode1(t, &r3[i * es]);
    e12 = std::max(e12, std::fabs(a - b));
    e13 = std::max(e13, std::fabs(a - c));
    mx = std::max(mx, std::fabs(a));
  }
  const double bytes = static_cast<double>((2 * nq + 2 * nk) * es), gbs = bytes / (t_win * 1e3);
  std::printf("%-5s B=%-3lld fused-window %8.2f us  %7.1f GB/s", dtype_name(t), B, t_win, gbs);
  if (peak_gbs > 0) std::printf(" (%4.1f%% of peak)", 100 * gbs / peak_gbs);
  std::printf("  fused-gather %8.2f us  unfused %8.2f us  unfused/fused-window %5.2fx  |window-gather| %.1e "
              "|window-unfused|/max %.1e\n",
              t_gat, t_unf, t_unf / t_win, e12, e13 / std::max(mx, 1e-30));
}

}  // namespace

int main(int argc, char** argv) {
  if (!cuda_compiled() || cuda_device_count() == 0) {
    std::puts("skip: no CUDA device");
    return 77;
  }
  const int iters = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  check(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int clock_khz = 0, bus_bits = 0;
  double peak = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0) == cudaSuccess && clock_khz > 0)
    peak = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  cudaGetLastError();
  std::printf("device: %s, %d SMs, peak memory bandwidth %.0f GB/s (from clock x bus width; 0 = unknown)\n",
              prop.name, prop.multiProcessorCount, peak);
  std::printf("shape: grid 8x16x16, window 1x4x4 (W=128, J=16), d=768; %d iterations per timing\n", iters);
  std::mt19937 rng(3);
  for (long long B : {1LL, 4LL, 16LL, 64LL}) run_case<float>(DType::f32, B, iters, peak, rng);
  for (long long B : {1LL, 4LL, 16LL, 64LL}) run_case<__half>(DType::f16, B, iters, peak, rng);
  for (long long B : {1LL, 4LL, 16LL, 64LL}) run_case<__nv_bfloat16>(DType::bf16, B, iters, peak, rng);

  // CPU reference (B=1, fp32) against the fused kernel on the same data.
  const TokenGrid grid{8, 16, 16, 1, 4, 4};
  const long long d = 768, nq = grid.windows() * d, nk = grid.tokens() * d;
  const auto hq = host_values(DType::f32, nq, rng), hk = host_values(DType::f32, nk, rng),
             hv = host_values(DType::f32, nk, rng);
  std::vector<unsigned char> ho(nq * 4);
  const auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  do {
    packer_window_attention_ref(DType::f32, hq.data(), hk.data(), hv.data(), ho.data(), 1, grid, d);
    ++reps;
  } while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
  const double t_cpu = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
  Dev q(nq * 4), k(nk * 4), v(nk * 4), o(nq * 4);
  check(cudaMemcpy(q.p, hq.data(), hq.size(), cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(k.p, hk.data(), hk.size(), cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(v.p, hv.data(), hv.size(), cudaMemcpyHostToDevice), "copy");
  const double t_gpu =
      time_us([&] { packer_window_attention_cuda(DType::f32, q.p, k.p, v.p, o.p, 1, grid, d, 0.f, nullptr); }, iters);
  std::printf("fp32  B=1   CPU reference (1 thread, double) %10.1f us  fused-window %8.2f us  CPU/GPU %7.0fx\n",
              t_cpu, t_gpu, t_cpu / t_gpu);
  return 0;
}
