// Windowed single-query attention core of the Spatial Packer (hsenet-spec.md §3,
// `resolution_attention_v3`): the part between the Linear projections,
//
//   out[b,w,:] = softmax_j( q[b,w,:] · k[b,w,j,:] * scale ) · V[b,w,:,:],   j < J,
//
// with scale = 1/sqrt(d) by default. In HSENet B is the batch, W = 128 windows,
// J = 16 keys (a 1x4x4 window of the 8x16x16 ViT patch grid) and d = 768.
// Dropout (p = 0.1, training only) is not part of this kernel; callers that
// train apply it to the probabilities themselves or use LibTorch's path.
//
// Two layouts, one kernel:
//  * gathered: q [B,W,d], k and v [B,W,J,d] (the explicit HR_blk copies);
//  * windowed: q [B,W,d], k = Wk(HR) and v = Wv(HR) as [B,N,d] token-ordered
//    tensors, N = D'*H'*W' row-major over (D',H',W') (the ViT patch order), and
//    a window (wd,wh,ww) that tiles the grid exactly (kernel = stride, as
//    avg_pool3d in the packer). Windows are numbered row-major over
//    (D'/wd, H'/wh, W'/ww), i.e. the order of the flattened pooled queries;
//    window w's key j = (iz*wh + iy)*ww + ix is token (zb*wd+iz, hb*wh+iy,
//    wb*ww+ix). The kernel gathers these rows itself: no [B,W,J,d] copy.
//    Key order does not change the result (no positional term); this order is
//    the one of the gathered layout, so both variants agree bit for bit in the
//    CPU reference.
// All tensors are dense and row-major (row stride d); out has q's shape and the
// input dtype. Inputs are fp32, fp16 or bf16 (all of q, k, v and out the same);
// products, sums, the softmax and the weighted sum are accumulated in fp32 on
// the GPU (double in the CPU reference), and the result is rounded once to the
// output dtype (round to nearest even).
//
// packer_attention_ref.cpp: the CPU reference (plain loops, double
// accumulation), which CPU callers use and the tests compare against.
// packer_attention.cu: the CUDA kernel (built when nvcc is found, sm_80/sm_90).
//
// --- CUDA design ------------------------------------------------------------
// One thread block per (b, w); the block's threads split d into chunks of VEC
// elements (16-byte loads: float4 for fp32, 8 halves / 8 bf16 read as 4
// half2 / bf162 words), one chunk per thread when d/VEC <= 256 (d = 768: 192
// threads for fp32, 96 for fp16/bf16), otherwise a block-stride loop.
//  1. The J row offsets of the block's keys are computed once into shared
//     memory (the window gather is index arithmetic only).
//  2. Scores: each thread loads its q chunk once and the same chunk of up to
//     16 keys at a time (16 independent coalesced 16-byte loads in flight per
//     thread), accumulating 16 partial dot products in registers; each warp
//     reduces them with shuffles, a 16 x warps shared array finishes the sum.
//     Keys are not staged in shared memory: every key element is read exactly
//     once per block, so staging would only add a shared-memory round trip;
//     the shared-memory tiles are the per-warp partial scores instead.
//  3. Softmax over the J <= 64 scores in warp 0 (max, exp, sum by shuffles),
//     probabilities to shared memory.
//  4. Weighted sum of V with the same chunking (vectorised loads, fp32 FMAs),
//     one rounded store per chunk. On the fast path (J <= 16 and one chunk
//     per thread, which covers the packer), the V chunks are loaded into
//     registers together with the K chunks, before the reductions, so the two
//     loads overlap and a block pays one memory latency instead of two.
// VEC falls back to 4/2/1 elements when d or a pointer is not aligned for
// 16-byte access (any d works). No atomics: results are deterministic.
//
// Expected performance: the kernel is memory-bound. It reads q, K and V once
// and writes out once: (2*J + 2) * d * sizeof(T) bytes per (b,w); the FLOPs
// (4*J*d per (b,w)) are ~0.25 FLOP/byte for fp32. For the packer shape
// (W=128, J=16, d=768) that is 13.4 MB per batch item in fp32 and 6.7 MB in
// fp16/bf16, i.e. ~4 us / ~2 us per item at H100 HBM3 bandwidth (~3.3 TB/s).
// At B=1 the grid is 128 blocks (under one per SM on H100/H200), so the
// kernel is latency- and launch-bound (a few microseconds) rather than
// bandwidth-bound; from B >= 4 it should approach 70-90 % of peak bandwidth.
// The unfused path (gather copy, scores, softmax, weighted sum as separate
// kernels) moves ~3x the bytes of K and V plus intermediate launches, so the
// fused kernel is expected to be ~3x faster at large B and more at B=1. These
// figures are estimates; bench/bench_packer_attention.cu measures them.
#pragma once

#include <cstdint>
#include <cstddef>
#include <stdexcept>
#include <string>

// cudaStream_t without the CUDA headers (the same typedef as driver_types.h),
// so CPU-only callers can include this header.
typedef struct CUstream_st* cudaStream_t;

namespace hse::kernels {

enum class DType { f32, f16, bf16 };

inline std::size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
inline const char* dtype_name(DType t) { return t == DType::f32 ? "fp32" : t == DType::f16 ? "fp16" : "bf16"; }

// Most keys per window the kernel handles (softmax in one warp, two per lane).
constexpr std::int64_t kPackerMaxKeys = 64;

// Token grid (D',H',W') of the HR tokens and the window (kernel = stride).
// HSENet: {8, 16, 16, 1, 4, 4} -> 128 windows of 16 keys over 2048 tokens.
struct TokenGrid {
  std::int64_t d = 0, h = 0, w = 0;     // grid, tokens row-major over (d,h,w)
  std::int64_t wd = 1, wh = 1, ww = 1;  // window
  std::int64_t tokens() const { return d * h * w; }
  std::int64_t windows() const { return (d / wd) * (h / wh) * (w / ww); }
  std::int64_t keys() const { return wd * wh * ww; }
};

// Throws std::invalid_argument unless batch, windows >= 0, 1 <= keys <= 64,
// dim >= 1 (and, for a grid, each window size >= 1 divides its grid size).
inline void check_packer_shape(std::int64_t batch, std::int64_t windows, std::int64_t keys, std::int64_t dim) {
  if (batch < 0 || windows < 0 || dim < 1 || keys < 1 || keys > kPackerMaxKeys)
    throw std::invalid_argument("packer_attention: need batch, windows >= 0, 1 <= keys <= 64, dim >= 1 (got B=" +
                                std::to_string(batch) + " W=" + std::to_string(windows) + " J=" +
                                std::to_string(keys) + " d=" + std::to_string(dim) + ")");
}
inline void check_packer_grid(const TokenGrid& g) {
  const bool ok = g.d >= 1 && g.h >= 1 && g.w >= 1 && g.wd >= 1 && g.wh >= 1 && g.ww >= 1 && g.d % g.wd == 0 &&
                  g.h % g.wh == 0 && g.w % g.ww == 0;
  if (!ok)
    throw std::invalid_argument("packer_attention: window " + std::to_string(g.wd) + "x" + std::to_string(g.wh) + "x" +
                                std::to_string(g.ww) + " does not tile grid " + std::to_string(g.d) + "x" +
                                std::to_string(g.h) + "x" + std::to_string(g.w));
  if (g.keys() > kPackerMaxKeys)
    throw std::invalid_argument("packer_attention: window of " + std::to_string(g.keys()) + " tokens (max 64)");
}

// --- CPU reference (host pointers) --------------------------------------------
// scale <= 0 selects 1/sqrt(dim). fp16/bf16 data are uint16 bit patterns.
// Gathered: q [B,W,d], k and v [B,W,J,d], out [B,W,d].
void packer_attention_ref(DType dtype, const void* q, const void* k, const void* v, void* out, std::int64_t batch,
                          std::int64_t windows, std::int64_t keys, std::int64_t dim, float scale = 0.f);
// Windowed: q [B,grid.windows(),d], k and v [B,grid.tokens(),d], out like q.
void packer_window_attention_ref(DType dtype, const void* q, const void* k, const void* v, void* out,
                                 std::int64_t batch, const TokenGrid& grid, std::int64_t dim, float scale = 0.f);

// --- CUDA (device pointers, asynchronous on `stream`) ---------------------------
// Same arguments as the references. Throw std::invalid_argument for bad shapes
// and std::runtime_error for a CUDA launch error or a build without CUDA.
void packer_attention_cuda(DType dtype, const void* q, const void* k, const void* v, void* out, std::int64_t batch,
                           std::int64_t windows, std::int64_t keys, std::int64_t dim, float scale = 0.f,
                           cudaStream_t stream = nullptr);
void packer_window_attention_cuda(DType dtype, const void* q, const void* k, const void* v, void* out,
                                  std::int64_t batch, const TokenGrid& grid, std::int64_t dim, float scale = 0.f,
                                  cudaStream_t stream = nullptr);

// Host buffers in and out through GPU `device` (copies, launch, synchronise):
// for tests and callers without device memory of their own.
void packer_attention_cuda_host(DType dtype, const void* q, const void* k, const void* v, void* out,
                                std::int64_t batch, std::int64_t windows, std::int64_t keys, std::int64_t dim,
                                float scale, int device);
void packer_window_attention_cuda_host(DType dtype, const void* q, const void* k, const void* v, void* out,
                                       std::int64_t batch, const TokenGrid& grid, std::int64_t dim, float scale,
                                       int device);

// Declared in resize_minmax.h as well: whether this build has the CUDA
// kernels, and how many GPUs are usable (0 when none or not compiled).
bool cuda_compiled();
int cuda_device_count();

// Host conversions, round to nearest even (the same results as CUDA's
// __float2half_rn / __float2bfloat16_rn), NaN kept NaN.
std::uint16_t float_to_half_bits(float f);
float half_bits_to_float(std::uint16_t h);
std::uint16_t float_to_bf16_bits(float f);
float bf16_bits_to_float(std::uint16_t h);

}  // namespace hse::kernels
