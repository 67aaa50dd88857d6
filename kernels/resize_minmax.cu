// CUDA implementation of the preprocess array pipeline (see resize_minmax.h).
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>
#include <stdexcept>
#include <string>

#include "resize_minmax.h"

namespace hse::kernels {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

struct DevBuf {
  float* p = nullptr;
  explicit DevBuf(std::size_t n) { check(cudaMalloc(&p, n * sizeof(float) + 4), "cudaMalloc"); }
  ~DevBuf() { cudaFree(p); }
};

__device__ __forceinline__ void tap(long long o, long long in, long long out, long long& i0, long long& i1, float& w1) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  float src = scale * (static_cast<float>(o) + 0.5f) - 0.5f;
  if (src < 0) src = 0;
  i0 = static_cast<long long>(src);
  if (i0 > in - 1) i0 = in - 1;
  i1 = i0 < in - 1 ? i0 + 1 : i0;
  w1 = i1 == i0 ? 0.f : src - static_cast<float>(i0);
}

__global__ void resize_kernel(const float* __restrict__ src, long long sd, long long sh, long long sw, long long z0,
                              long long y0, long long x0, long long bd, long long bh, long long bw,
                              float* __restrict__ dst, long long od, long long oh, long long ow) {
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  const long long n = od * oh * ow;
  if (idx >= n) return;
  const long long x = idx % ow, y = (idx / ow) % oh, z = idx / (ow * oh);
  long long zi0, zi1, yi0, yi1, xi0, xi1;
  float wz1, wy1, wx1;
  tap(z, bd, od, zi0, zi1, wz1);
  tap(y, bh, oh, yi0, yi1, wy1);
  tap(x, bw, ow, xi0, xi1, wx1);
  const float wz0 = 1 - wz1, wy0 = 1 - wy1, wx0 = 1 - wx1;
  auto at = [&](long long zz, long long yy, long long xx) {
    return __ldg(src + (z0 + zz) * sd + (y0 + yy) * sh + (x0 + xx) * sw);
  };
  dst[idx] = wz0 * (wy0 * (wx0 * at(zi0, yi0, xi0) + wx1 * at(zi0, yi0, xi1)) +
                    wy1 * (wx0 * at(zi0, yi1, xi0) + wx1 * at(zi0, yi1, xi1))) +
             wz1 * (wy0 * (wx0 * at(zi1, yi0, xi0) + wx1 * at(zi1, yi0, xi1)) +
                    wy1 * (wx0 * at(zi1, yi1, xi0) + wx1 * at(zi1, yi1, xi1)));
}

__device__ __forceinline__ void atomic_min_f(float* a, float v) {
  // Order-preserving int mapping for floats.
  int* ai = reinterpret_cast<int*>(a);
  int old = *ai;
  while (__int_as_float(old) > v) {
    const int prev = atomicCAS(ai, old, __float_as_int(v));
    if (prev == old) break;
    old = prev;
  }
}
__device__ __forceinline__ void atomic_max_f(float* a, float v) {
  int* ai = reinterpret_cast<int*>(a);
  int old = *ai;
  while (__int_as_float(old) < v) {
    const int prev = atomicCAS(ai, old, __float_as_int(v));
    if (prev == old) break;
    old = prev;
  }
}

__global__ void minmax_kernel(const float* __restrict__ p, long long n, float* out) {
  __shared__ float lo[256], hi[256];
  float l = FLT_MAX, h = -FLT_MAX;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = p[i];
    l = fminf(l, v);
    h = fmaxf(h, v);
  }
  lo[threadIdx.x] = l;
  hi[threadIdx.x] = h;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      lo[threadIdx.x] = fminf(lo[threadIdx.x], lo[threadIdx.x + s]);
      hi[threadIdx.x] = fmaxf(hi[threadIdx.x], hi[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomic_min_f(out, lo[0]);
    atomic_max_f(out + 1, hi[0]);
  }
}

// Normalises in place and accumulates the bounding box of voxels > 0.
__global__ void normalize_box_kernel(float* __restrict__ p, long long d, long long h, long long w, const float* mm,
                                     int* box) {
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= d * h * w) return;
  const float lo = mm[0], den = fmaxf(mm[1] - mm[0], 1e-8f);
  const float v = (p[idx] - lo) / den;
  p[idx] = v;
  if (v > 0.f) {
    const int x = static_cast<int>(idx % w), y = static_cast<int>((idx / w) % h), z = static_cast<int>(idx / (w * h));
    atomicMin(box + 0, z);
    atomicMax(box + 1, z + 1);
    atomicMin(box + 2, y);
    atomicMax(box + 3, y + 1);
    atomicMin(box + 4, x);
    atomicMax(box + 5, x + 1);
  }
}

unsigned blocks_for(long long n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::vector<float> pipeline_cuda(const float* src, const PipelineSpec& sp, std::int64_t out_dims[3], int device) {
  if (device >= cuda_device_count()) throw std::runtime_error("no CUDA device " + std::to_string(device));
  check(cudaSetDevice(device), "cudaSetDevice");
  // The source is copied whole, in its own layout (its strides span it).
  const long long span = (sp.d - 1) * sp.strides.d + (sp.h - 1) * sp.strides.h + (sp.w - 1) * sp.strides.w + 1;
  DevBuf dsrc(static_cast<std::size_t>(span));
  check(cudaMemcpy(dsrc.p, src, span * sizeof(float), cudaMemcpyHostToDevice), "copy to device");
  const long long md = sp.mid[0], mh = sp.mid[1], mw = sp.mid[2], mn = md * mh * mw;
  DevBuf dmid(static_cast<std::size_t>(mn));
  const int T = 256;
  resize_kernel<<<blocks_for(mn, T), T>>>(dsrc.p, sp.strides.d, sp.strides.h, sp.strides.w, 0, 0, 0, sp.d, sp.h, sp.w,
                                          dmid.p, md, mh, mw);
  check(cudaGetLastError(), "resize");
  float* dmm;
  int* dbox;
  check(cudaMalloc(&dmm, 2 * sizeof(float) + 6 * sizeof(int)), "cudaMalloc");
  dbox = reinterpret_cast<int*>(dmm + 2);
  const float mm0[2] = {FLT_MAX, -FLT_MAX};
  const int box0[6] = {INT_MAX, 0, INT_MAX, 0, INT_MAX, 0};
  cudaMemcpy(dmm, mm0, sizeof mm0, cudaMemcpyHostToDevice);
  cudaMemcpy(dbox, box0, sizeof box0, cudaMemcpyHostToDevice);
  minmax_kernel<<<std::min(1024u, blocks_for(mn, T)), T>>>(dmid.p, mn, dmm);
  normalize_box_kernel<<<blocks_for(mn, T), T>>>(dmid.p, md, mh, mw, dmm, dbox);
  check(cudaGetLastError(), "normalize");
  int hb[6];
  check(cudaMemcpy(hb, dbox, sizeof hb, cudaMemcpyDeviceToHost), "copy box");
  cudaFree(dmm);
  Box b{0, md, 0, mh, 0, mw};
  if (sp.crop) {
    if (hb[1] == 0) throw std::runtime_error("no foreground voxels (> 0) after normalisation");
    b = Box{hb[0], hb[1], hb[2], hb[3], hb[4], hb[5]};
  }
  const long long od = sp.out[0] ? sp.out[0] : b.z1 - b.z0, oh = sp.out[1] ? sp.out[1] : b.y1 - b.y0,
                  ow = sp.out[2] ? sp.out[2] : b.x1 - b.x0, on = od * oh * ow;
  DevBuf dout(static_cast<std::size_t>(on));
  resize_kernel<<<blocks_for(on, T), T>>>(dmid.p, mh * mw, mw, 1, b.z0, b.y0, b.x0, b.z1 - b.z0, b.y1 - b.y0,
                                          b.x1 - b.x0, dout.p, od, oh, ow);
  check(cudaGetLastError(), "resize");
  std::vector<float> out(static_cast<std::size_t>(on));
  check(cudaMemcpy(out.data(), dout.p, on * sizeof(float), cudaMemcpyDeviceToHost), "copy to host");
  out_dims[0] = od;
  out_dims[1] = oh;
  out_dims[2] = ow;
  return out;
}

}  // namespace hse::kernels
