// GPU vs CPU reference for the preprocess array pipeline (kernels/resize_minmax.*).
// Exits 77 (skipped) when this build has no CUDA or the machine has no GPU.
#include <cmath>
#include <cstdio>
#include <random>

#include "resize_minmax.h"

using namespace hse::kernels;

int main() {
  if (!cuda_compiled() || cuda_device_count() == 0) {
    std::puts("skip: no CUDA device");
    return 77;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.f, 15.f);
  int failures = 0, cases = 0;
  struct Case {
    std::int64_t nx, ny, nz, mid[3], out[3];
    bool crop;
  };
  const Case cs[] = {{90, 80, 40, {53, 108, 96}, {32, 256, 256}, true},
                     {64, 64, 64, {64, 64, 64}, {32, 256, 256}, false},
                     {200, 180, 120, {150, 240, 216}, {32, 256, 256}, true},
                     {33, 17, 9, {5, 40, 21}, {0, 0, 0}, true}};
  for (const auto& c : cs) {
    std::vector<float> v(static_cast<std::size_t>(c.nx * c.ny * c.nz));
    for (std::int64_t z = 0; z < c.nz; ++z)
      for (std::int64_t y = 0; y < c.ny; ++y)
        for (std::int64_t x = 0; x < c.nx; ++x) {
          const float dx = (x - c.nx / 2.f) / c.nx, dy = (y - c.ny / 2.f) / c.ny;
          float h = dx * dx + dy * dy < 0.12f ? 40.f : -1000.f;
          h += noise(rng);
          v[(z * c.ny + y) * c.nx + x] = std::min(std::max(h, -1000.f), 200.f);
        }
    PipelineSpec sp;
    sp.d = c.nz;
    sp.h = c.nx;
    sp.w = c.ny;
    sp.strides = Strides{c.nx * c.ny, 1, c.nx};
    for (int i = 0; i < 3; ++i) {
      sp.mid[i] = c.mid[i];
      sp.out[i] = c.out[i];
    }
    sp.crop = c.crop;
    std::int64_t rd[3], gd[3];
    const auto ref = pipeline_ref(v.data(), sp, rd);
    const auto gpu = pipeline_cuda(v.data(), sp, gd, 0);
    double maxd = 0;
    bool same_shape = rd[0] == gd[0] && rd[1] == gd[1] && rd[2] == gd[2];
    if (same_shape)
      for (std::size_t i = 0; i < ref.size(); ++i) maxd = std::max(maxd, static_cast<double>(std::fabs(ref[i] - gpu[i])));
    const bool ok = same_shape && maxd <= 1e-5;
    failures += !ok;
    ++cases;
    std::printf("%s case %d: shape %lldx%lldx%lld, max|gpu-ref| %.2e (tol 1e-5)\n", ok ? "ok  " : "FAIL", cases,
                static_cast<long long>(gd[0]), static_cast<long long>(gd[1]), static_cast<long long>(gd[2]), maxd);
  }
  std::printf("%d passed, %d failed\n", cases - failures, failures);
  return failures ? 1 : 0;
}
