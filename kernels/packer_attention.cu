// CUDA kernel of the packer's windowed attention core; the design is described
// in packer_attention.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "packer_attention.h"

namespace hse::kernels {
namespace {

constexpr int kTile = 16;         // keys per register tile (scores)
constexpr int kMaxThreads = 256;  // threads per block
constexpr int kMaxWarps = kMaxThreads / 32;
constexpr int kVTile = 8;  // V rows loaded together in the general weighted sum

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("packer_attention: CUDA ") + what + ": " +
                                                 cudaGetErrorString(e));
}

struct Args {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  long long W, d;
  int J;
  float scale;
  // Windowed layout when gw > 0: k/v are [B,N,d] over the grid (gd,gh,gw), window (wd,wh,ww).
  long long N;
  int gh, gw, wd, wh, ww, nh, nw;
};

// Row (in units of d elements) of key j of block (b, w) in k and v.
__device__ __forceinline__ long long key_row(const Args& a, long long b, long long w, int j) {
  if (a.gw == 0) return (b * a.W + w) * a.J + j;
  const long long zb = w / (static_cast<long long>(a.nh) * a.nw), hb = (w / a.nw) % a.nh, wb = w % a.nw;
  const int iz = j / (a.wh * a.ww), iy = (j / a.ww) % a.wh, ix = j % a.ww;
  return b * a.N + ((zb * a.wd + iz) * a.gh + hb * a.wh + iy) * a.gw + wb * a.ww + ix;
}

// --- vector loads and stores: VEC elements of T as one 16/8/4/2-byte word ----
template <int BYTES>
struct RawVec;
template <>
struct RawVec<16> {
  using type = uint4;
};
template <>
struct RawVec<8> {
  using type = uint2;
};
template <>
struct RawVec<4> {
  using type = unsigned int;
};
template <>
struct RawVec<2> {
  using type = unsigned short;
};
template <typename T, int VEC>
using Raw = typename RawVec<static_cast<int>(sizeof(T)) * VEC>::type;

template <typename T, int VEC>
__device__ __forceinline__ Raw<T, VEC> ldg_vec(const T* p) {
  return __ldg(reinterpret_cast<const Raw<T, VEC>*>(p));
}

// Type punning through memcpy (well defined; compiles to register moves).
template <typename T, int VEC>
__device__ __forceinline__ void unpack(const Raw<T, VEC>& r, float (&f)[VEC]) {
  if constexpr (std::is_same_v<T, float>) {
    memcpy(f, &r, sizeof r);
  } else if constexpr (VEC == 1) {
    if constexpr (std::is_same_v<T, __half>)
      f[0] = __half2float(__ushort_as_half(r));
    else
      f[0] = __bfloat162float(__ushort_as_bfloat16(r));
  } else {
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    T2 h[VEC / 2];
    memcpy(h, &r, sizeof r);
#pragma unroll
    for (int i = 0; i < VEC / 2; ++i) {
      float2 x;
      if constexpr (std::is_same_v<T, __half>)
        x = __half22float2(h[i]);
      else
        x = __bfloat1622float2(h[i]);
      f[2 * i] = x.x;
      f[2 * i + 1] = x.y;
    }
  }
}

template <typename T, int VEC>
__device__ __forceinline__ void load_vec(const T* p, float (&f)[VEC]) {
  unpack<T, VEC>(ldg_vec<T, VEC>(p), f);
}

template <typename T, int VEC>
__device__ __forceinline__ void store_vec(T* p, const float (&f)[VEC]) {
  Raw<T, VEC> r;
  if constexpr (std::is_same_v<T, float>) {
    memcpy(&r, f, sizeof r);
  } else if constexpr (VEC == 1) {
    if constexpr (std::is_same_v<T, __half>)
      r = __half_as_ushort(__float2half_rn(f[0]));
    else
      r = __bfloat16_as_ushort(__float2bfloat16_rn(f[0]));
  } else {
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    T2 h[VEC / 2];
#pragma unroll
    for (int i = 0; i < VEC / 2; ++i) {
      if constexpr (std::is_same_v<T, __half>)
        h[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
      else
        h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    }
    memcpy(&r, h, sizeof r);
  }
  *reinterpret_cast<Raw<T, VEC>*>(p) = r;
}

// --- block-level pieces ---------------------------------------------------------
// Sums each of the n <= kTile per-thread partials over the block (warp shuffles,
// then a [warps][kTile] shared tile) and writes scale * sum to dst[0..n).
__device__ __forceinline__ void block_scores(float (&acc)[kTile], float (*red)[kTile], float* dst, int n,
                                             float scale) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < kTile; ++i)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
  if (lane == 0)
#pragma unroll
    for (int i = 0; i < kTile; ++i) red[warp][i] = acc[i];
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < n) {
    float s = 0.f;
    for (int w = 0; w < nwarps; ++w) s += red[w][threadIdx.x];
    dst[threadIdx.x] = s * scale;
  }
  __syncthreads();
}

// Scores in p[0..J) -> probabilities in place (warp 0; J <= 64).
__device__ __forceinline__ void block_softmax(float* p, int J) {
  if (threadIdx.x < 32) {
    const int l = threadIdx.x;
    const float s0 = l < J ? p[l] : -INFINITY, s1 = l + 32 < J ? p[l + 32] : -INFINITY;
    float m = fmaxf(s0, s1);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    const float e0 = l < J ? expf(s0 - m) : 0.f, e1 = l + 32 < J ? expf(s1 - m) : 0.f;
    float sum = e0 + e1;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (l < J) p[l] = e0 / sum;
    if (l + 32 < J) p[l + 32] = e1 / sum;
  }
  __syncthreads();
}

// One block per (b, w). ONE_TILE: J <= kTile and d/VEC <= blockDim.x (one chunk
// per thread); K and V chunks are then all loaded up front into registers.
template <typename T, int VEC, bool ONE_TILE>
__global__ void __launch_bounds__(kMaxThreads) packer_attention_kernel(const Args a) {
  __shared__ long long rows[kPackerMaxKeys];
  __shared__ float red[kMaxWarps][kTile];
  __shared__ float prob[kPackerMaxKeys];

  const long long bw = blockIdx.x, b = bw / a.W, w = bw % a.W;
  const int tid = threadIdx.x, J = a.J;
  for (int j = tid; j < J; j += blockDim.x) rows[j] = key_row(a, b, w, j) * a.d;
  __syncthreads();

  const T* __restrict__ q = static_cast<const T*>(a.q) + bw * a.d;
  const T* __restrict__ K = static_cast<const T*>(a.k);
  const T* __restrict__ V = static_cast<const T*>(a.v);
  T* __restrict__ out = static_cast<T*>(a.out) + bw * a.d;
  const long long nchunks = a.d / VEC;

  if constexpr (ONE_TILE) {
    const bool active = tid < nchunks;
    const long long c = static_cast<long long>(tid) * VEC;
    float acc[kTile];
    Raw<T, VEC> vr[kTile];
    {
      Raw<T, VEC> kr[kTile];
      float qv[VEC];
      if (active) {
        load_vec<T, VEC>(q + c, qv);
#pragma unroll
        for (int j = 0; j < kTile; ++j)
          if (j < J) kr[j] = ldg_vec<T, VEC>(K + rows[j] + c);
#pragma unroll
        for (int j = 0; j < kTile; ++j)
          if (j < J) vr[j] = ldg_vec<T, VEC>(V + rows[j] + c);
      }
#pragma unroll
      for (int j = 0; j < kTile; ++j) {
        acc[j] = 0.f;
        if (active && j < J) {
          float kv[VEC];
          unpack<T, VEC>(kr[j], kv);
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[j] = fmaf(qv[e], kv[e], acc[j]);
        }
      }
    }
    block_scores(acc, red, prob, J, a.scale);
    block_softmax(prob, J);
    if (active) {
      float o[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) o[e] = 0.f;
#pragma unroll
      for (int j = 0; j < kTile; ++j)
        if (j < J) {
          const float p = prob[j];
          float vv[VEC];
          unpack<T, VEC>(vr[j], vv);
#pragma unroll
          for (int e = 0; e < VEC; ++e) o[e] = fmaf(p, vv[e], o[e]);
        }
      store_vec<T, VEC>(out + c, o);
    }
  } else {
    for (int j0 = 0; j0 < J; j0 += kTile) {
      const int jn = min(kTile, J - j0);
      float acc[kTile];
#pragma unroll
      for (int j = 0; j < kTile; ++j) acc[j] = 0.f;
      for (long long ch = tid; ch < nchunks; ch += blockDim.x) {
        const long long c = ch * VEC;
        float qv[VEC];
        load_vec<T, VEC>(q + c, qv);
        Raw<T, VEC> kr[kTile];
#pragma unroll
        for (int j = 0; j < kTile; ++j)
          if (j < jn) kr[j] = ldg_vec<T, VEC>(K + rows[j0 + j] + c);
#pragma unroll
        for (int j = 0; j < kTile; ++j)
          if (j < jn) {
            float kv[VEC];
            unpack<T, VEC>(kr[j], kv);
#pragma unroll
            for (int e = 0; e < VEC; ++e) acc[j] = fmaf(qv[e], kv[e], acc[j]);
          }
      }
      block_scores(acc, red, prob + j0, jn, a.scale);
    }
    block_softmax(prob, J);
    for (long long ch = tid; ch < nchunks; ch += blockDim.x) {
      const long long c = ch * VEC;
      float o[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) o[e] = 0.f;
      for (int j0 = 0; j0 < J; j0 += kVTile) {
        Raw<T, VEC> vr[kVTile];
#pragma unroll
        for (int j = 0; j < kVTile; ++j)
          if (j0 + j < J) vr[j] = ldg_vec<T, VEC>(V + rows[j0 + j] + c);
#pragma unroll
        for (int j = 0; j < kVTile; ++j)
          if (j0 + j < J) {
            const float p = prob[j0 + j];
            float vv[VEC];
            unpack<T, VEC>(vr[j], vv);
#pragma unroll
            for (int e = 0; e < VEC; ++e) o[e] = fmaf(p, vv[e], o[e]);
          }
      }
      store_vec<T, VEC>(out + c, o);
    }
  }
}

template <typename T, int VEC>
void launch_vec(const Args& a, long long blocks, cudaStream_t s) {
  const long long nchunks = a.d / VEC;
  // One thread per chunk, in whole warps, at most kMaxThreads.
  const int threads =
      static_cast<int>(std::min<long long>(kMaxThreads, std::max<long long>(32, (nchunks + 31) / 32 * 32)));
  if (a.J <= kTile && nchunks <= threads)
    packer_attention_kernel<T, VEC, true><<<static_cast<unsigned>(blocks), threads, 0, s>>>(a);
  else
    packer_attention_kernel<T, VEC, false><<<static_cast<unsigned>(blocks), threads, 0, s>>>(a);
}

bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// Widest vector (16 bytes down to one element) that d and all four pointers allow.
template <typename T>
void launch_t(const Args& a, long long blocks, cudaStream_t s) {
  int vec = 16 / static_cast<int>(sizeof(T));
  while (vec > 1) {
    const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(vec);
    if (a.d % vec == 0 && aligned(a.q, bytes) && aligned(a.k, bytes) && aligned(a.v, bytes) && aligned(a.out, bytes))
      break;
    vec /= 2;
  }
  if constexpr (sizeof(T) == 2) {
    if (vec == 8) return launch_vec<T, 8>(a, blocks, s);
  }
  if (vec == 4) return launch_vec<T, 4>(a, blocks, s);
  if (vec == 2) return launch_vec<T, 2>(a, blocks, s);
  launch_vec<T, 1>(a, blocks, s);
}

void launch(DType dt, const Args& a, long long blocks, cudaStream_t s) {
  if (blocks == 0) return;
  if (blocks > INT_MAX) throw std::invalid_argument("packer_attention: batch * windows exceeds the grid limit");
  switch (dt) {
    case DType::f32:
      launch_t<float>(a, blocks, s);
      break;
    case DType::f16:
      launch_t<__half>(a, blocks, s);
      break;
    case DType::bf16:
      launch_t<__nv_bfloat16>(a, blocks, s);
      break;
  }
  check(cudaGetLastError(), "kernel launch");
}

float scale_for(float scale, std::int64_t d) {
  return scale > 0 ? scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
}

Args base_args(const void* q, const void* k, const void* v, void* out, std::int64_t W, std::int64_t J,
               std::int64_t d, float scale) {
  Args a{};
  a.q = q;
  a.k = k;
  a.v = v;
  a.out = out;
  a.W = W;
  a.J = static_cast<int>(J);
  a.d = d;
  a.scale = scale_for(scale, d);
  return a;
}

struct DevBuf {
  void* p = nullptr;
  explicit DevBuf(std::size_t bytes) { check(cudaMalloc(&p, std::max<std::size_t>(bytes, 16)), "cudaMalloc"); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

void set_device(int device) {
  if (device < 0 || device >= cuda_device_count()) throw std::runtime_error("no CUDA device " + std::to_string(device));
  check(cudaSetDevice(device), "cudaSetDevice");
}

}  // namespace

void packer_attention_cuda(DType dtype, const void* q, const void* k, const void* v, void* out, std::int64_t batch,
                           std::int64_t windows, std::int64_t keys, std::int64_t dim, float scale,
                           cudaStream_t stream) {
  check_packer_shape(batch, windows, keys, dim);
  launch(dtype, base_args(q, k, v, out, windows, keys, dim, scale), batch * windows, stream);
}

void packer_window_attention_cuda(DType dtype, const void* q, const void* k, const void* v, void* out,
                                  std::int64_t batch, const TokenGrid& g, std::int64_t dim, float scale,
                                  cudaStream_t stream) {
  check_packer_grid(g);
  check_packer_shape(batch, g.windows(), g.keys(), dim);
  if (g.h > INT_MAX || g.w > INT_MAX || g.d / g.wd > INT_MAX)
    throw std::invalid_argument("packer_attention: token grid too large");
  Args a = base_args(q, k, v, out, g.windows(), g.keys(), dim, scale);
  a.N = g.tokens();
  a.gh = static_cast<int>(g.h);
  a.gw = static_cast<int>(g.w);
  a.wd = static_cast<int>(g.wd);
  a.wh = static_cast<int>(g.wh);
  a.ww = static_cast<int>(g.ww);
  a.nh = static_cast<int>(g.h / g.wh);
  a.nw = static_cast<int>(g.w / g.ww);
  launch(dtype, a, batch * g.windows(), stream);
}

void packer_attention_cuda_host(DType dtype, const void* q, const void* k, const void* v, void* out,
                                std::int64_t batch, std::int64_t windows, std::int64_t keys, std::int64_t dim,
                                float scale, int device) {
  check_packer_shape(batch, windows, keys, dim);
  set_device(device);
  const std::size_t es = dtype_size(dtype), nq = static_cast<std::size_t>(batch * windows * dim) * es,
                    nk = nq * static_cast<std::size_t>(keys);
  DevBuf dq(nq), dk(nk), dv(nk), dout(nq);
  check(cudaMemcpy(dq.p, q, nq, cudaMemcpyHostToDevice), "copy q");
  check(cudaMemcpy(dk.p, k, nk, cudaMemcpyHostToDevice), "copy k");
  check(cudaMemcpy(dv.p, v, nk, cudaMemcpyHostToDevice), "copy v");
  packer_attention_cuda(dtype, dq.p, dk.p, dv.p, dout.p, batch, windows, keys, dim, scale, nullptr);
  check(cudaDeviceSynchronize(), "kernel");
  check(cudaMemcpy(out, dout.p, nq, cudaMemcpyDeviceToHost), "copy out");
}

void packer_window_attention_cuda_host(DType dtype, const void* q, const void* k, const void* v, void* out,
                                       std::int64_t batch, const TokenGrid& g, std::int64_t dim, float scale,
                                       int device) {
  check_packer_grid(g);
  check_packer_shape(batch, g.windows(), g.keys(), dim);
  set_device(device);
  const std::size_t es = dtype_size(dtype), nq = static_cast<std::size_t>(batch * g.windows() * dim) * es,
                    nk = static_cast<std::size_t>(batch * g.tokens() * dim) * es;
  DevBuf dq(nq), dk(nk), dv(nk), dout(nq);
  check(cudaMemcpy(dq.p, q, nq, cudaMemcpyHostToDevice), "copy q");
  check(cudaMemcpy(dk.p, k, nk, cudaMemcpyHostToDevice), "copy k");
  check(cudaMemcpy(dv.p, v, nk, cudaMemcpyHostToDevice), "copy v");
  packer_window_attention_cuda(dtype, dq.p, dk.p, dv.p, dout.p, batch, g, dim, scale, nullptr);
  check(cudaDeviceSynchronize(), "kernel");
  check(cudaMemcpy(out, dout.p, nq, cudaMemcpyDeviceToHost), "copy out");
}

}  // namespace hse::kernels
