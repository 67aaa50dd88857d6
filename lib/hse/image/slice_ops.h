// hse::image slice operations: the array work of hse-slice (HSENet's 2-D
// branch), each step reproducing the Python library HSENet's scripts call
// (PyTorch, NumPy, Pillow, torchvision, open_clip). See man/hse-slice.1.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "hse/image/ops.h"

namespace hse::image {

// torch.linspace(0, n - 1, steps, dtype=torch.long) as PyTorch's CPU kernel
// computes it: step = (n - 1) / (steps - 1) in double; index i < steps/2 is
// trunc(i * step), the others trunc((n - 1) - step * (steps - 1 - i)).
// (The CUDA kernel uses a float step; for steps = 32 both agree for every n,
// since 31 is prime and no non-integer i*step comes near an integer.)
std::vector<std::int64_t> linspace_indices(std::int64_t n, std::int64_t steps);

// An 8-bit grey image, row-major: v[r * w + c].
struct Image8 {
  std::int64_t h = 0, w = 0;
  std::vector<std::uint8_t> v;
  std::uint8_t at(std::int64_t r, std::int64_t c) const { return v[static_cast<std::size_t>(r * w + c)]; }
};

// ((s - min) / (max - min) * 255) truncated to uint8, computed in double as
// the float64 tensors of the CT-RATE script; all zeros when max == min.
Image8 minmax_to_u8(const float* p, std::int64_t h, std::int64_t w);

// min and max of n floats.
std::pair<float, float> minmax_f32(const float* p, std::size_t n);
// ((s - min) / (max - min) * 255) in float32, each operation rounded as PyTorch does on float
// tensors, truncated to uint8 (HSENet's BIMCV-R script); all zeros when max <= min.
Image8 minmax_to_u8_f32(const float* p, std::int64_t h, std::int64_t w, float mn, float mx);

// PIL Image.rotate(+90, expand=True) (= np.rot90(a, 1)): counter-clockwise
// quarter turn, out[i][j] = in[j][w - 1 - i]; the result is w rows by h columns.
Image8 rotate_ccw90(const Image8& in);

// PIL Image.rotate(-90, expand=True) (= transpose(ROTATE_270)): clockwise
// quarter turn, out[i][j] = in[h - 1 - j][i]; the result is w rows by h columns.
Image8 rotate_cw90(const Image8& in);

// PIL Image.resize((out_w, out_h), Image.BICUBIC) for mode 'L': Pillow's
// libImaging/Resample.c (a = -0.5, support 2 scaled by the downscale factor,
// normalised coefficients as 22-bit fixed point, horizontal pass then vertical
// pass, each rounded and clipped to uint8; a pass is skipped when its size is kept).
Image8 resize_bicubic_pil(const Image8& in, std::int64_t out_w, std::int64_t out_h);

// torchvision Resize(size) with an int: the short side becomes `size`, the
// long one int(size * long / short). Returns {new_h, new_w}.
std::pair<std::int64_t, std::int64_t> short_side_size(std::int64_t h, std::int64_t w, std::int64_t size);

// torchvision CenterCrop offsets: int(round((in - crop) / 2.0)) with Python's
// round-half-to-even. Requires crop <= in.
std::int64_t center_crop_offset(std::int64_t in, std::int64_t crop);
Image8 center_crop(const Image8& in, std::int64_t ch, std::int64_t cw);

// Encode as a baseline greyscale JPEG at `quality` (libjpeg defaults, as
// Pillow's save(quality=Q) does for mode 'L') and decode it back.
// Throws std::runtime_error on a libjpeg error.
Image8 jpeg_roundtrip(const Image8& in, int quality);

// BiomedCLIP's normalisation (open_clip OPENAI_DATASET_MEAN/STD).
constexpr std::array<float, 3> kClipMean{0.48145466f, 0.4578275f, 0.40821073f};
constexpr std::array<float, 3> kClipStd{0.26862954f, 0.26130258f, 0.27577711f};

// Grey -> RGB, ToTensor (/255 in float32), Normalize ((x - mean) / std in
// float32): writes [3][h][w] floats to `out`.
void to_normalized_rgb(const Image8& in, const std::array<float, 3>& mean, const std::array<float, 3>& stdev,
                       float* out);

// How a slice becomes 8-bit.
enum class SliceNorm {
  per_slice,      // CT-RATE: the slice's own min-max, in double (the script's float64 tensors)
  global_f32,     // BIMCV-R (files up to 200 MiB): the whole volume's min-max, in float32
  per_slice_f32,  // BIMCV-R (larger files): the slice's own min-max, in float32
};

// The per-volume 2-D recipe after HU, clamp, /1000 and resampling (CT-RATE), or after HU alone
// (BIMCV-R: norm global_f32 or per_slice_f32, rotate_ccw, no resize_short).
struct SliceRecipe {
  SliceNorm norm = SliceNorm::per_slice;
  bool rotate_ccw = false;    // PIL rotate(+90) (BIMCV-R) rather than rotate(-90) (CT-RATE)
  bool resize_short = true;   // fewer slices than n_slices: a trilinear resize (CT-RATE), else linspace repeats
  std::int64_t n_slices = 32;
  int jpeg_quality = 0;  // 0: no JPEG round trip
  std::int64_t image_size = 224;
  std::array<float, 3> mean = kClipMean, stdev = kClipStd;
};

// From a resampled [Z][X][Y] volume (values already divided by 1000): choose
// the slices (linspace, or a trilinear resize to n_slices when Z < n_slices and resize_short),
// then min-max to uint8 (per r.norm), rotate (clockwise, or counter-clockwise with rotate_ccw), optional JPEG, Resize
// (bicubic, short side), CenterCrop, RGB, normalise. Returns
// [n_slices][3][image_size][image_size].
std::vector<float> make_slices(const Array3& zxy, const SliceRecipe& r, int threads);

}  // namespace hse::image
