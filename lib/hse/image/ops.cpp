#include "hse/image/ops.h"
#include <chrono>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "hse/cli/cli.h"

namespace hse::image {

using kernels::Box;
using kernels::linear_tap;
using kernels::linear_tap_f64;
using kernels::Tap;

HuMode parse_hu_mode(const std::string& s) {
  if (s == "auto") return HuMode::automatic;
  if (s == "rescale") return HuMode::rescale;
  if (s == "as-is" || s == "none") return HuMode::as_is;
  cli::fail_usage("--hu: '{}' is not one of auto, rescale, as-is", s);
}

HuDecision decide_hu(const Volume& v, HuMode mode, std::optional<std::pair<double, double>> si) {
  HuDecision d;
  if (si) {
    d.slope = si->first;
    d.intercept = si->second;
  }
  const bool identity = !si || (d.slope == 1 && d.intercept == 0);
  // Air fractions on a strided sample of voxels.
  const std::size_t n = v.data.size(), step = std::max<std::size_t>(1, n / 200000);
  std::size_t cnt = 0, a0 = 0, a1 = 0;
  float mn = std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < n; i += step) {
    const double x = v.data[i];
    mn = std::min(mn, static_cast<float>(x));
    ++cnt;
    if (x >= -1100 && x <= -850) ++a0;
    const double y = d.slope * x + d.intercept;
    if (y >= -1100 && y <= -850) ++a1;
  }
  d.air_as_is = cnt ? static_cast<double>(a0) / cnt : 0;
  d.air_rescaled = cnt ? static_cast<double>(a1) / cnt : 0;
  d.min_value = mn;
  if (v.hu_by_reader) {
    d.rescale = false;
    d.reason = "the DICOM reader applied RescaleSlope/RescaleIntercept";
  } else if (identity) {
    d.rescale = false;
    if (si) {
      d.reason = "slope 1 and intercept 0";
    } else if (mode == HuMode::as_is) {
      d.reason = "--hu as-is";
    } else {
      d.unknown = mn >= 0 || d.air_as_is < 0.001;
      d.reason = d.unknown ? fmt::format("values cannot be HU ({}; {:.2f}% of voxels in [-1100, -850])",
                                         mn >= 0 ? fmt::format("minimum {:g}", mn) : std::string("no air"),
                                         100 * d.air_as_is)
                           : fmt::format("no slope/intercept given; values already HU ({:.1f}% air)", 100 * d.air_as_is);
    }
  } else if (mode == HuMode::rescale) {
    d.rescale = true;
    d.reason = "--hu rescale";
  } else if (mode == HuMode::as_is) {
    d.rescale = false;
    d.reason = "--hu as-is";
  } else if (d.air_rescaled > d.air_as_is) {
    d.rescale = true;
    d.reason = fmt::format("raw values: {:.1f}% air after rescaling vs {:.1f}% as stored", 100 * d.air_rescaled,
                           100 * d.air_as_is);
  } else if (d.air_as_is > d.air_rescaled) {
    d.rescale = false;
    d.reason = fmt::format("already HU: {:.1f}% air as stored vs {:.1f}% after rescaling", 100 * d.air_as_is,
                           100 * d.air_rescaled);
  } else {
    d.rescale = mn >= 0;
    d.reason = d.rescale ? "no air found; non-negative values taken as raw" : "no air found; negative values taken as HU";
  }
  return d;
}

std::int64_t resampled_size(std::int64_t n, double cur, double target) {
  const double scale = cur / target;
  return static_cast<std::int64_t>(static_cast<double>(n) * scale);
}

namespace {
// o = (1 - w1)·r0 + w1·r1 as PyTorch's float32 kernel computes it, or (exact) as r0 + w1·(r1 - r0):
// with float64 input PyTorch keeps a constant run constant to 1e-16, which this form keeps exactly
// in float32 (air clamped to -1000 must stay -1000: the foreground crop and the slices' uint8
// truncation hang on it).
inline void lerp_row(const float* r0, const float* r1, float w1, float* o, std::int64_t n, bool exact) {
  if (exact) {
    for (std::int64_t x = 0; x < n; ++x) o[x] = r0[x] + w1 * (r1[x] - r0[x]);
  } else {
    const float w0 = 1 - w1;
    for (std::int64_t x = 0; x < n; ++x) o[x] = w0 * r0[x] + w1 * r1[x];
  }
}
}  // namespace

void resize_trilinear(const float* src, std::int64_t d, std::int64_t h, std::int64_t w, Box b, float* dst,
                      std::int64_t od, std::int64_t oh, std::int64_t ow, int threads, bool f64_taps) {
  const std::int64_t bd = b.z1 - b.z0, bh = b.y1 - b.y0, bw = b.x1 - b.x0;
  (void)d;
  const auto tap = f64_taps ? linear_tap_f64 : linear_tap;
  std::vector<Tap> tz(od), ty(oh), tx(ow);
  for (std::int64_t i = 0; i < od; ++i) tz[i] = tap(i, bd, od);
  for (std::int64_t i = 0; i < oh; ++i) ty[i] = tap(i, bh, oh);
  for (std::int64_t i = 0; i < ow; ++i) tx[i] = tap(i, bw, ow);
  // Pass 1 (depth): t1[od][bh][bw]; pass 2 (height): t2[od][oh][bw]; pass 3 (width): dst.
  std::vector<float> t1(static_cast<std::size_t>(od * bh * bw));
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
  for (std::int64_t z = 0; z < od; ++z)
    for (std::int64_t y = 0; y < bh; ++y) {
      const Tap t = tz[z];
      const float* r0 = src + ((b.z0 + t.i0) * h + b.y0 + y) * w + b.x0;
      const float* r1 = src + ((b.z0 + t.i1) * h + b.y0 + y) * w + b.x0;
      lerp_row(r0, r1, t.w1, t1.data() + (z * bh + y) * bw, bw, f64_taps);
    }
  std::vector<float> t2(static_cast<std::size_t>(od * oh * bw));
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
  for (std::int64_t z = 0; z < od; ++z)
    for (std::int64_t y = 0; y < oh; ++y) {
      const Tap t = ty[y];
      const float* r0 = t1.data() + (z * bh + t.i0) * bw;
      const float* r1 = t1.data() + (z * bh + t.i1) * bw;
      lerp_row(r0, r1, t.w1, t2.data() + (z * oh + y) * bw, bw, f64_taps);
    }
  t1 = {};
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
  for (std::int64_t z = 0; z < od; ++z)
    for (std::int64_t y = 0; y < oh; ++y) {
      const float* r = t2.data() + (z * oh + y) * bw;
      float* o = dst + (z * oh + y) * ow;
      if (f64_taps)
        for (std::int64_t x = 0; x < ow; ++x) {
          const Tap& t = tx[x];
          o[x] = r[t.i0] + t.w1 * (r[t.i1] - r[t.i0]);
        }
      else
        for (std::int64_t x = 0; x < ow; ++x) {
          const Tap& t = tx[x];
          o[x] = (1 - t.w1) * r[t.i0] + t.w1 * r[t.i1];
        }
    }
}

namespace {
// HU + clamp, in place (storage order).
void hu_clamp(Volume& v, const HuDecision& hu, double lo, double hi, int threads) {
  std::vector<float>& out = v.data;
  const float a = hu.rescale ? static_cast<float>(hu.slope) : 1.f, b = hu.rescale ? static_cast<float>(hu.intercept) : 0.f;
  const float l = static_cast<float>(lo), hh = static_cast<float>(hi);
  const std::int64_t n = static_cast<std::int64_t>(out.size());
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = std::min(std::max(a * out[i] + b, l), hh);
}

// Trilinear resize of a whole [d][h][w] array to [od][oh][ow]; an empty result is unusable input.
Array3 resize_whole(const float* src, std::int64_t d, std::int64_t h, std::int64_t w, std::int64_t od, std::int64_t oh,
                    std::int64_t ow, int threads) {
  if (od < 1 || oh < 1 || ow < 1)
    cli::fail(cli::Exit::incompatible, "", "resampling {}x{}x{} voxels gives an empty volume", w, h, d);
  Array3 r{od, oh, ow, std::vector<float>(static_cast<std::size_t>(od * oh * ow))};
  resize_trilinear(src, d, h, w, Box{0, d, 0, h, 0, w}, r.v.data(), od, oh, ow, threads, /*f64_taps=*/true);
  return r;
}

// Resamples the clamped storage-order volume to [rz][ry][rx] (storage order).
Array3 resample_storage(Volume& v, bool resample, std::array<double, 3> sp, double target_z, double target_xy,
                        int threads) {
  const std::int64_t nx = v.dim[0], ny = v.dim[1], nz = v.dim[2];
  if (!resample) return Array3{nz, ny, nx, std::move(v.data)};
  // sp = (z, x, y) spacing; the storage array is [z][y][x].
  Array3 r = resize_whole(v.data.data(), nz, ny, nx, resampled_size(nz, sp[0], target_z),
                          resampled_size(ny, sp[2], target_xy), resampled_size(nx, sp[1], target_xy), threads);
  v.data = {};
  return r;
}

// [z][y][x] storage -> [z][x][y] (tiled transpose of each plane).
Array3 transpose_xy(const float* src, std::int64_t nz, std::int64_t ny, std::int64_t nx, int threads) {
  Array3 out{nz, nx, ny, std::vector<float>(static_cast<std::size_t>(nz * ny * nx))};
  constexpr std::int64_t T = 32;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
  for (std::int64_t z = 0; z < nz; ++z)
    for (std::int64_t yb = 0; yb < ny; yb += T)
      for (std::int64_t xb = 0; xb < nx; xb += T)
        for (std::int64_t y = yb; y < std::min(yb + T, ny); ++y)
          for (std::int64_t x = xb; x < std::min(xb + T, nx); ++x)
            out.v[(z * nx + x) * ny + y] = src[(z * ny + y) * nx + x];
  return out;
}
}  // namespace

Array3 to_zxy_resampled(Volume& v, const HuDecision& hu, double lo, double hi, bool resample,
                        std::array<double, 3> sp, double target_z, double target_xy, int threads) {
  hu_clamp(v, hu, lo, hi, threads);
  const Array3 r = resample_storage(v, resample, sp, target_z, target_xy, threads);
  return transpose_xy(r.v.data(), r.d, r.h, r.w, threads);
}

Array3 hsenet_slicing_array(Volume& v, const HuDecision& hu, double lo, double hi, bool resample,
                            std::array<double, 3> sp, double target_z, double target_xy, int threads, bool* sagittal) {
  const std::int64_t nx = v.dim[0], ny = v.dim[1], nz = v.dim[2];
  *sagittal = !(nz < nx);
  if (!*sagittal) return to_zxy_resampled(v, hu, lo, hi, resample, sp, target_z, target_xy, threads);
  hu_clamp(v, hu, lo, hi, threads);
  // Storage [z][y][x] -> [x][y][z], the (X,Y,Z) array HSENet keeps.
  Array3 t{nx, ny, nz, std::vector<float>(v.data.size())};
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
  for (std::int64_t x = 0; x < nx; ++x)
    for (std::int64_t y = 0; y < ny; ++y)
      for (std::int64_t z = 0; z < nz; ++z) t.v[(x * ny + y) * nz + z] = v.data[(z * ny + y) * nx + x];
  v.data = {};
  if (!resample) return t;
  // Its spacing list (z, x, y) applies to the axes in order: x gets the z spacing.
  return resize_whole(t.v.data(), nx, ny, nz, resampled_size(nx, sp[0], target_z), resampled_size(ny, sp[1], target_xy),
                      resampled_size(nz, sp[2], target_xy), threads);
}

Array3 preprocess_volume(Volume& v, const HuDecision& hu, std::array<double, 3> sp, const VolumeRecipe& r,
                         int threads) {
  const std::int64_t nx = v.dim[0], ny = v.dim[1], nz = v.dim[2];
  // -vv: the time of each step (bench/bench_preprocess_throughput.py reads these lines).
  using clock = std::chrono::steady_clock;
  auto t_lap = clock::now();
  std::string steps;
  const auto lap = [&](const char* what) {
    if (cli::log_level() < 2) return;
    const auto now = clock::now();
    steps += fmt::format("{}{} {:.3f} s", steps.empty() ? "" : ", ", what, std::chrono::duration<double>(now - t_lap).count());
    t_lap = now;
  };
  hu_clamp(v, hu, r.window_lo, r.window_hi, threads);
  lap("hu_clamp");
  if (r.device >= 0) {
    kernels::PipelineSpec ps;
    ps.d = nz;
    ps.h = nx;
    ps.w = ny;
    ps.strides = kernels::Strides{nx * ny, 1, nx};
    ps.mid[0] = r.resample ? resampled_size(nz, sp[0], r.target_z) : nz;
    ps.mid[1] = r.resample ? resampled_size(nx, sp[1], r.target_xy) : nx;
    ps.mid[2] = r.resample ? resampled_size(ny, sp[2], r.target_xy) : ny;
    ps.crop = r.crop;
    for (int i = 0; i < 3; ++i) ps.out[i] = r.size[i];
    std::int64_t od[3];
    Array3 out;
    out.v = kernels::pipeline_cuda(v.data.data(), ps, od, r.device);
    out.d = od[0];
    out.h = od[1];
    out.w = od[2];
    return out;
  }
  // Resample in storage order [z][y][x], then one pass that min-max normalises,
  // transposes to (Z, X, Y) and finds the foreground box.
  const Array3 s = resample_storage(v, r.resample, sp, r.target_z, r.target_xy, threads);
  lap("resample");
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  const std::int64_t n = static_cast<std::int64_t>(s.v.size());
#pragma omp parallel for num_threads(threads) reduction(min : lo) reduction(max : hi)
  for (std::int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, s.v[i]);
    hi = std::max(hi, s.v[i]);
  }
  const float den = std::max(hi - lo, 1e-8f);
  Array3 a{s.d, s.w, s.h, std::vector<float>(s.v.size())};  // [z][x][y]
  const std::int64_t sy = s.h, sx = s.w;
  // The foreground box (voxels whose normalised value is > 0), from the storage-order rows: each
  // row is scanned from both ends to its first and last foreground voxel, so the body itself is
  // not visited and no per-voxel branch runs in the copy below.
  std::int64_t z0 = a.d, z1 = 0, x0 = a.h, x1 = 0, y0 = a.w, y1 = 0;
#pragma omp parallel for num_threads(threads) collapse(2) reduction(min : z0, y0, x0) reduction(max : z1, y1, x1)
  for (std::int64_t z = 0; z < s.d; ++z)
    for (std::int64_t y = 0; y < sy; ++y) {
      const float* row = s.v.data() + (z * sy + y) * sx;
      std::int64_t first = 0;
      while (first < sx && !((row[first] - lo) / den > 0)) ++first;
      if (first == sx) continue;
      std::int64_t last = sx - 1;
      while (!((row[last] - lo) / den > 0)) --last;
      z0 = std::min(z0, z);
      z1 = std::max(z1, z + 1);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y + 1);
      x0 = std::min(x0, first);
      x1 = std::max(x1, last + 1);
    }
  // Min-max normalisation and the transpose to (Z, X, Y), in 32 x 32 tiles.
  constexpr std::int64_t T = 32;
#pragma omp parallel for num_threads(threads) collapse(2)
  for (std::int64_t z = 0; z < s.d; ++z)
    for (std::int64_t yb = 0; yb < sy; yb += T)
      for (std::int64_t xb = 0; xb < sx; xb += T)
        for (std::int64_t y = yb; y < std::min(yb + T, sy); ++y)
          for (std::int64_t x = xb; x < std::min(xb + T, sx); ++x)
            a.v[(z * sx + x) * sy + y] = (s.v[(z * sy + y) * sx + x] - lo) / den;
  lap("normalise_transpose_crop");
  Box b{0, a.d, 0, a.h, 0, a.w};
  if (r.crop) {
    if (z1 == 0) cli::fail(cli::Exit::incompatible, "", "no foreground voxels (> 0) after normalisation (a constant volume?)");
    b = Box{z0, z1, x0, x1, y0, y1};
  }
  const std::int64_t od = r.size[0] ? r.size[0] : b.z1 - b.z0, oh = r.size[1] ? r.size[1] : b.y1 - b.y0,
                     ow = r.size[2] ? r.size[2] : b.x1 - b.x0;
  Array3 out{od, oh, ow, std::vector<float>(static_cast<std::size_t>(od * oh * ow))};
  resize_trilinear(a.v.data(), a.d, a.h, a.w, b, out.v.data(), od, oh, ow, threads);
  lap("resize");
  if (!steps.empty()) cli::log_line(2, "steps: " + steps);
  return out;
}

}  // namespace hse::image
