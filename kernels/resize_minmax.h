// Trilinear resize (PyTorch/MONAI interpolate semantics, align_corners=False),
// min-max normalisation and foreground bounding box: the array work of
// hse-preprocess. resize_minmax_ref.cpp is the CPU reference; resize_minmax.cu
// the CUDA implementation; a test compares both where a GPU is present.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hse::kernels {

// Half-open box over a [D][H][W] array.
struct Box {
  std::int64_t z0 = 0, z1 = 0, y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  bool empty() const { return z1 <= z0 || y1 <= y0 || x1 <= x0; }
  bool operator==(const Box& o) const {
    return z0 == o.z0 && z1 == o.z1 && y0 == o.y0 && y1 == o.y1 && x0 == o.x0 && x1 == o.x1;
  }
};

// Element strides of the three logical axes (D, H, W) of a source array.
struct Strides {
  std::int64_t d = 0, h = 0, w = 1;
};

// PyTorch's source coordinate for output index `o` (align_corners=False):
// max(0, (o + 0.5) * in/out - 0.5), split into index and weight.
struct Tap {
  std::int64_t i0, i1;
  float w1;  // weight of i1; i0 gets 1 - w1
};
Tap linear_tap(std::int64_t o, std::int64_t in, std::int64_t out);
// The same in double arithmetic, as PyTorch computes it for float64 input.
Tap linear_tap_f64(std::int64_t o, std::int64_t in, std::int64_t out);

// --- CPU reference ----------------------------------------------------------
// dst[OD][OH][OW] = trilinear resize of the `box` region of the logical (D,H,W)
// source given by `src` and `s` (direct 8-tap formula, one voxel at a time).
void resize_trilinear_ref(const float* src, Strides s, Box box, float* dst, std::int64_t od, std::int64_t oh,
                          std::int64_t ow);
std::pair<float, float> minmax_ref(const float* p, std::size_t n);
// (v - lo) / max(hi - lo, 1e-8), in place.
void normalize_ref(float* p, std::size_t n, float lo, float hi);
// Bounding box of voxels > threshold in a contiguous [D][H][W] array (empty box when none).
Box foreground_box_ref(const float* p, std::int64_t d, std::int64_t h, std::int64_t w, float threshold);

// The preprocess array pipeline on a source (D,H,W) with strides:
// resize to `mid` (the resampling step), min-max to [0,1], crop to the
// foreground (> 0) when `crop`, resize to `out` (or keep the crop's size when
// out has a zero). Returns the result; `out_dims` receives its shape.
struct PipelineSpec {
  std::int64_t d = 0, h = 0, w = 0;  // source logical dims
  Strides strides;
  std::int64_t mid[3] = {0, 0, 0};
  bool crop = true;
  std::int64_t out[3] = {0, 0, 0};
};
std::vector<float> pipeline_ref(const float* src, const PipelineSpec& spec, std::int64_t out_dims[3]);

// --- CUDA -------------------------------------------------------------------
// True when this build has the CUDA kernels.
bool cuda_compiled();
// Number of usable GPUs (0 when none or not compiled).
int cuda_device_count();
// The same pipeline on GPU `device` (host input and output). Throws
// std::runtime_error when CUDA is unavailable.
std::vector<float> pipeline_cuda(const float* src, const PipelineSpec& spec, std::int64_t out_dims[3], int device);

}  // namespace hse::kernels
