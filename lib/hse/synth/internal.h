// Internal helpers shared by the hse::synth sources (not installed API).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "hse/synth/synth.h"

namespace hse::synth {

// A portable random stream: mt19937_64 (its output is fixed by the standard)
// with our own uniform and Box-Muller normal, so results do not depend on the
// standard library's distributions.
struct Rng {
  std::mt19937_64 g;
  explicit Rng(std::uint64_t s) : g(s) {}
  double uni() { return static_cast<double>(g() >> 11) * (1.0 / 9007199254740992.0); }
  double uni(double a, double b) { return a + (b - a) * uni(); }
  int range(int lo, int hi) {  // inclusive
    int v = lo + static_cast<int>(uni() * (hi - lo + 1));
    return v > hi ? hi : v;
  }
  bool chance(double p) { return uni() < p; }
  double normal(double mu, double sd) {
    double u1 = uni();
    if (u1 < 1e-300) u1 = 1e-300;
    const double u2 = uni();
    return mu + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(range(0, static_cast<int>(v.size()) - 1))];
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(range(0, static_cast<int>(i) - 1))]);
  }
};

// Aorta centre line: x, y, z (mm, relative to the body centre, times Anatomy::s) and radius.
inline constexpr double kAorta[][4] = {
    {4, -18, -45, 15}, {2, -26, 8, 15}, {10, -24, 30, 14}, {21, -8, 40, 13},
    {28, 12, 36, 12},  {30, 28, 18, 12}, {30, 32, -10, 12}, {28, 34, -300, 11},
};
inline constexpr int kAortaN = sizeof(kAorta) / sizeof(kAorta[0]);

struct HeartGeo {
  double c[3];
  double e[3];
  double rot;  // ellipsoid rotation about z (local = R(rot) * world offset)
};
inline HeartGeo heart_geo(const Anatomy& a) {
  const double s = a.s, h = a.heart_scale;
  const double Bi = a.B - a.fat - a.wall;
  HeartGeo g{};
  g.c[0] = a.ox + (14 + (h - 1) * 30) * s;
  g.c[1] = a.oy - 0.28 * Bi;
  g.c[2] = -75 * s - (h - 1) * 10 * s;
  g.e[0] = 58 * s * h, g.e[1] = 44 * s * h, g.e[2] = 50 * s * h;
  g.rot = -a.heart_rot;
  return g;
}

// The hilum of side k (0 right, 1 left): where the pulmonary vessels (and, with
// bronchiectasis, the dilated bronchi) radiate from.
inline std::array<double, 3> hilum(const Anatomy& a, int k) {
  return {a.ox + (k == 0 ? -45 : 45) * a.s, a.oy, -15 * a.s};
}

// The main bronchi (0 right, 1 left) as capsules from the carina: end points
// (mm) and the outer radius of the wall; the lumen is 2 mm * s narrower.
struct Bronchus {
  std::array<double, 3> a, b;
  double r;
};
inline Bronchus main_bronchus(const Anatomy& a, int k) {
  const double s = a.s, ty = a.oy - 5 * s;
  if (k == 0) return {{a.ox, ty, 0}, {a.ox - 38 * s, ty + 8 * s, -28 * s}, 8 * s};
  return {{a.ox, ty, 0}, {a.ox + 40 * s, ty + 10 * s, -35 * s}, 7.5 * s};
}

// Bronchiectasis: the outer radius of a dilated bronchus's wall, in lumen radii.
inline constexpr double kBronchiectasisWall = 1.45;

// Interlobular septal thickening: planes of thickened septa every
// kSeptalPeriod mm (the secondary lobule's size) in x and y.
inline constexpr double kSeptalPeriod = 14;

}  // namespace hse::synth
