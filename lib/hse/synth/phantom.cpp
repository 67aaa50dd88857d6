// The analytic chest phantom: body, lungs with lobes, mediastinum, heart,
// vessels, airways, spine, ribs and sternum, plus the rendered findings, all
// in millimetres so any grid samples the same anatomy.
#include <algorithm>
#include <cmath>

#include "hse/synth/internal.h"

namespace hse::synth {

namespace {
constexpr double kPi = 3.14159265358979323846;
inline double sq(double v) { return v * v; }
inline double clamp01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }
}  // namespace

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

const char* tissue_name(Tissue t) {
  switch (t) {
    case Tissue::air: return "air";
    case Tissue::fat: return "fat";
    case Tissue::muscle: return "muscle";
    case Tissue::lung: return "lung";
    case Tissue::mediastinum: return "mediastinum";
    case Tissue::abdomen: return "abdomen";
    case Tissue::heart: return "heart";
    case Tissue::vessel: return "vessel";
    case Tissue::airway: return "airway";
    case Tissue::esophagus: return "esophagus";
    case Tissue::bone: return "bone";
    case Tissue::canal: return "canal";
    case Tissue::fluid: return "fluid";
    case Tissue::lesion: return "lesion";
    case Tissue::material: return "material";
    case Tissue::calcification: return "calcification";
  }
  return "?";
}

std::array<std::int64_t, 3> Geometry::voxel(const std::array<double, 3>& p) const {
  std::array<std::int64_t, 3> v{};
  for (int a = 0; a < 3; ++a) v[a] = static_cast<std::int64_t>(std::llround((p[a] - origin[a]) / spacing[a]));
  return v;
}

// A primitive shape painted over the base tissues, in list order.
struct Prim {
  enum Shape : std::uint8_t { ellipsoid, capsule, zcyl } shape = ellipsoid;
  enum Op : std::uint8_t { replace, add, max, min } op = replace;
  enum Cond : std::uint8_t { always, in_lung, in_abdomen } cond = always;
  Tissue tissue = Tissue::lesion;
  bool pv = false;     // small sphere: averaged over the slice thickness (partial volume)
  int lobe = kNoLobe;  // with cond in_lung: only this lobe (0: any)
  float hu = 0;
  double c[3]{}, e[3]{1, 1, 1};  // ellipsoid centre / semi-axes; zcyl: c[0..1], e[0..1]
  double cs = 1, sn = 0;         // ellipsoid rotation about z
  double a[3]{}, d[3]{}, len2 = 0, r = 0;  // capsule: a, b - a, |b - a|^2, radius
  double z0 = 0, z1 = 0;                    // zcyl extent
  double lo[3]{}, hi[3]{};

  bool inside(double x, double y, double z) const {
    if (x < lo[0] || x > hi[0] || y < lo[1] || y > hi[1] || z < lo[2] || z > hi[2]) return false;
    switch (shape) {
      case ellipsoid: {
        const double dx = x - c[0], dy = y - c[1], dz = z - c[2];
        const double rx = cs * dx + sn * dy, ry = -sn * dx + cs * dy;
        return sq(rx / e[0]) + sq(ry / e[1]) + sq(dz / e[2]) < 1.0;
      }
      case capsule: {
        const double px = x - a[0], py = y - a[1], pz = z - a[2];
        double t = (px * d[0] + py * d[1] + pz * d[2]) / len2;
        t = t < 0 ? 0 : (t > 1 ? 1 : t);
        return sq(px - t * d[0]) + sq(py - t * d[1]) + sq(pz - t * d[2]) < r * r;
      }
      case zcyl:
        return sq((x - c[0]) / e[0]) + sq((y - c[1]) / e[1]) < 1.0;
    }
    return false;
  }
};

struct SideGeo {
  double cx = 0, cy = 0, ax = 1, ay = 1, dome = 0, apex = 0, taper = 0, fiss0 = 0, base_lo = 0;
  double du = 0, dv = 0;
  double eff_depth = 0, eff_top = 0, atel = 0, atel_top = 0;
  bool right = true;
};

struct Phantom::Impl {
  double s = 1, ox = 0, oy = 0, A = 1, B = 1, Af = 1, Bf = 1, Ai = 1, Bi = 1, Ar = 1, Br = 1;
  double fiss_t = 0.9, horiz = 0;
  double septal = 0;
  double rib_z1 = 0, rib_sp = 24, rib_drop = 70, rib_hh = 5, rib_hw = 4.5;
  SideGeo side[2];
  std::vector<Prim> prims;
  std::vector<int> all;

  Prim& ellipsoid(double cx, double cy, double cz, double ex, double ey, double ez, float hu, Tissue t,
                  double rot = 0) {
    Prim p;
    p.shape = Prim::ellipsoid;
    p.c[0] = cx, p.c[1] = cy, p.c[2] = cz;
    p.e[0] = ex, p.e[1] = ey, p.e[2] = ez;
    p.cs = std::cos(rot), p.sn = std::sin(rot);
    const double rxy = rot == 0 ? 0 : std::max(ex, ey);
    p.lo[0] = cx - (rot == 0 ? ex : rxy), p.hi[0] = cx + (rot == 0 ? ex : rxy);
    p.lo[1] = cy - (rot == 0 ? ey : rxy), p.hi[1] = cy + (rot == 0 ? ey : rxy);
    p.lo[2] = cz - ez, p.hi[2] = cz + ez;
    p.hu = hu;
    p.tissue = t;
    prims.push_back(p);
    return prims.back();
  }
  Prim& sphere(const std::array<double, 4>& q, float hu, Tissue t) {
    return ellipsoid(q[0], q[1], q[2], q[3], q[3], q[3], hu, t);
  }
  // A small sphere rendered with slice-thickness partial volume, so thick
  // slices still show it (calcifications).
  Prim& spot(const std::array<double, 4>& q, float hu, Tissue t) {
    Prim& p = sphere(q, hu, t);
    p.pv = true;
    return p;
  }
  Prim& capsule(double ax, double ay, double az, double bx, double by, double bz, double r, float hu, Tissue t) {
    Prim p;
    p.shape = Prim::capsule;
    p.a[0] = ax, p.a[1] = ay, p.a[2] = az;
    p.d[0] = bx - ax, p.d[1] = by - ay, p.d[2] = bz - az;
    p.len2 = std::max(1e-9, sq(p.d[0]) + sq(p.d[1]) + sq(p.d[2]));
    p.r = r;
    p.lo[0] = std::min(ax, bx) - r, p.hi[0] = std::max(ax, bx) + r;
    p.lo[1] = std::min(ay, by) - r, p.hi[1] = std::max(ay, by) + r;
    p.lo[2] = std::min(az, bz) - r, p.hi[2] = std::max(az, bz) + r;
    p.hu = hu;
    p.tissue = t;
    prims.push_back(p);
    return prims.back();
  }
  Prim& zcyl(double cx, double cy, double rx, double ry, double z0, double z1, float hu, Tissue t) {
    Prim p;
    p.shape = Prim::zcyl;
    p.c[0] = cx, p.c[1] = cy, p.e[0] = rx, p.e[1] = ry;
    p.z0 = z0, p.z1 = z1;
    p.lo[0] = cx - rx, p.hi[0] = cx + rx, p.lo[1] = cy - ry, p.hi[1] = cy + ry, p.lo[2] = z0, p.hi[2] = z1;
    p.hu = hu;
    p.tissue = t;
    prims.push_back(p);
    return prims.back();
  }
};


Phantom::Phantom(const Scan& scan) : p_(new Impl) {
  Impl& m = *p_;
  const Anatomy& a = scan.anat;
  const double s = a.s;
  m.s = s;
  m.ox = a.ox, m.oy = a.oy;
  m.A = a.A, m.B = a.B;
  m.Af = a.A - a.fat, m.Bf = a.B - a.fat;
  m.Ai = m.Af - a.wall, m.Bi = m.Bf - a.wall;
  m.Ar = m.Af - 0.5 * a.wall, m.Br = m.Bf - 0.5 * a.wall;
  m.fiss_t = a.fiss_t;
  m.septal = scan.septal_mm;
  m.horiz = a.horiz;
  m.rib_z1 = a.apex + 5 * s + a.rib_phase;
  m.rib_sp = 24 * s, m.rib_drop = 70 * s, m.rib_hh = 5.5 * s, m.rib_hw = std::min(4.5 * s, 0.45 * a.wall);
  for (int k = 0; k < 2; ++k) {
    SideGeo& g = m.side[k];
    g.right = k == 0;
    const double sign = g.right ? -1 : 1;
    g.ax = (g.right ? 0.41 : 0.39) * m.Ai;
    g.cx = sign * 0.5 * m.Ai;
    g.ay = 0.9 * m.Bi;
    g.cy = 0.05 * m.Bi;
    g.dome = g.right ? a.dome_r : a.dome_l;
    g.apex = a.apex - (g.right ? 0 : 4 * s);
    g.taper = g.apex - 75 * s;
    g.fiss0 = g.right ? a.fiss_r : a.fiss_l;
    g.du = 30 * s, g.dv = 40 * s;
    g.base_lo = g.dome - g.du - g.dv * 1.69;
    g.eff_depth = scan.effusion_depth[k], g.eff_top = scan.effusion_top[k];
    g.atel = scan.atelectasis_thick[k], g.atel_top = scan.atelectasis_top[k];
  }
  const double ox = m.ox, oy = m.oy;
  auto X = [&](double x) { return ox + x * s; };
  auto Y = [&](double y) { return oy + y * s; };
  auto Z = [&](double z) { return z * s; };

  // --- lung modifiers (cond in_lung), in painting order ---
  auto lung_prim = [&](Prim& p, Prim::Op op, int lobe) {
    p.cond = Prim::in_lung;
    p.op = op;
    p.lobe = lobe;
  };
  const int order[] = {kMosaicAttenuation, kEmphysema,      kLungOpacity, kConsolidation,
                       kFibroticSequela,   kBronchiectasis, kLungNodule};
  for (int lab : order)
    for (const Finding& f : scan.findings) {
      if (f.label != lab || !f.rendered) continue;
      switch (lab) {
        case kMosaicAttenuation:
          for (std::size_t i = 0; i < f.points.size(); ++i)
            lung_prim(m.sphere(f.points[i], i % 2 ? 60.f : -70.f, Tissue::lung), Prim::add, 0);
          break;
        case kEmphysema:
          for (const auto& q : f.points) lung_prim(m.sphere(q, -965.f, Tissue::lung), Prim::min, 0);
          break;
        case kLungOpacity:
          lung_prim(m.ellipsoid(f.centre[0], f.centre[1], f.centre[2], f.size_mm / 2, f.size_mm / 2 * 0.8,
                                f.size_mm / 2 * 0.7, -520.f, Tissue::lesion),
                    Prim::max, f.lobe);
          break;
        case kConsolidation:
          lung_prim(m.ellipsoid(f.centre[0], f.centre[1], f.centre[2], f.size_mm / 2, f.size_mm / 2 * 0.85,
                                f.size_mm / 2 * 0.75, 32.f, Tissue::lesion),
                    Prim::replace, f.lobe);
          break;
        case kFibroticSequela:
          for (std::size_t i = 0; i + 1 < f.points.size(); i += 2) {
            const auto& p = f.points[i];
            const auto& q = f.points[i + 1];
            lung_prim(m.capsule(p[0], p[1], p[2], q[0], q[1], q[2], p[3], -60.f, Tissue::lesion), Prim::replace,
                      f.lobe);
          }
          break;
        case kBronchiectasis:
          // dilated bronchi: a soft-tissue wall around an air lumen wider than the adjacent vessel
          for (std::size_t i = 0; i + 1 < f.points.size(); i += 2) {
            const auto& p = f.points[i];
            const auto& q = f.points[i + 1];
            lung_prim(m.capsule(p[0], p[1], p[2], q[0], q[1], q[2], kBronchiectasisWall * p[3], 40.f, Tissue::lesion),
                      Prim::replace, f.lobe);
            lung_prim(m.capsule(p[0], p[1], p[2], q[0], q[1], q[2], p[3], -1000.f, Tissue::airway), Prim::replace,
                      f.lobe);
          }
          break;
        case kLungNodule:
          lung_prim(m.ellipsoid(f.centre[0], f.centre[1], f.centre[2], f.size_mm / 2, f.size_mm / 2,
                                f.size_mm / 2, 42.f, Tissue::lesion),
                    Prim::replace, 0);
          break;
        default: break;
      }
    }
  // peribronchial thickening: a soft-tissue cuff around the central half of each
  // bronchovascular bundle (the vessels below are painted inside it)
  const double pb = scan.peribronchial_mm;
  if (pb > 0)
    for (const auto& v : a.lung_vessels)
      lung_prim(m.capsule(v[0], v[1], v[2], (v[0] + v[3]) / 2, (v[1] + v[4]) / 2, (v[2] + v[5]) / 2, v[6] + pb, 40.f,
                          Tissue::lesion),
                Prim::replace, 0);
  // pulmonary vessels (only where the base is lung)
  for (const auto& v : a.lung_vessels)
    lung_prim(m.capsule(v[0], v[1], v[2], v[3], v[4], v[5], v[6], 38.f, Tissue::vessel), Prim::replace, 0);

  // --- abdomen ---
  {
    Prim& p = m.ellipsoid(ox + 0.5 * m.Ai, oy - 0.15 * m.Bi, a.dome_l - 32 * s, 34 * s, 26 * s, 16 * s, -960.f,
                          Tissue::abdomen);
    p.cond = Prim::in_abdomen;
  }
  // --- heart (fat, effusion, myocardium, blood) ---
  const HeartGeo hg = heart_geo(a);
  const double hx = hg.c[0], hy = hg.c[1], hz = hg.c[2];
  const double* he = hg.e;
  const double rot = hg.rot;
  const double pe = scan.pericardial_mm;
  m.ellipsoid(hx, hy, hz, he[0] + pe + 3 * s, he[1] + pe + 3 * s, he[2] + pe + 3 * s, -90.f, Tissue::mediastinum, rot);
  if (pe > 0) m.ellipsoid(hx, hy, hz, he[0] + pe, he[1] + pe, he[2] + pe, 10.f, Tissue::fluid, rot);
  m.ellipsoid(hx, hy, hz, he[0], he[1], he[2], 40.f, Tissue::heart, rot);
  m.ellipsoid(hx, hy, hz, he[0] * 0.8, he[1] * 0.8, he[2] * 0.8, 50.f, Tissue::heart, rot);
  for (const Finding& f : scan.findings)
    if (f.label == kCoronaryCalcification && f.rendered)
      for (const auto& q : f.points) m.spot(q, 750.f, Tissue::calcification);
  // --- hiatal hernia ---
  for (const Finding& f : scan.findings)
    if (f.label == kHiatalHernia && f.rendered) {
      const double r = f.size_mm / 2;
      m.ellipsoid(f.centre[0], f.centre[1], f.centre[2], r, r * 0.8, r * 0.9, 30.f, Tissue::lesion);
      m.ellipsoid(f.centre[0], f.centre[1], f.centre[2] + r * 0.45, r * 0.45, r * 0.35, r * 0.3, -900.f,
                  Tissue::lesion);
    }
  // --- great vessels ---
  m.capsule(X(5), Y(-45), Z(-50), X(10), Y(-20), Z(-5), 13 * s, 45.f, Tissue::vessel);   // pulmonary trunk
  m.capsule(X(10), Y(-20), Z(-5), X(-45), Y(0), Z(-15), 9 * s, 45.f, Tissue::vessel);    // right PA
  m.capsule(X(10), Y(-20), Z(-5), X(45), Y(5), Z(-5), 9 * s, 45.f, Tissue::vessel);      // left PA
  m.zcyl(X(-22), Y(-16), 10 * s, 10 * s, Z(-40), 400, 45.f, Tissue::vessel);              // SVC
  for (int i = 0; i + 1 < kAortaN; ++i)
    m.capsule(X(kAorta[i][0]), Y(kAorta[i][1]), Z(kAorta[i][2]), X(kAorta[i + 1][0]), Y(kAorta[i + 1][1]),
              Z(kAorta[i + 1][2]), kAorta[i + 1][3] * s, 50.f, Tissue::vessel);
  for (const Finding& f : scan.findings)
    if (f.label == kArterialCalcification && f.rendered)
      for (const auto& q : f.points) m.spot(q, 850.f, Tissue::calcification);
  // --- lymph nodes ---
  for (const Finding& f : scan.findings)
    if (f.label == kLymphadenopathy && f.rendered)
      for (const auto& q : f.points) m.ellipsoid(q[0], q[1], q[2], q[3], q[3] * 1.15, q[3] * 1.4, 42.f, Tissue::lesion);
  // --- esophagus, trachea, bronchi ---
  m.zcyl(X(8), Y(16), 7 * s, 6 * s, Z(-140), 400, 35.f, Tissue::esophagus);
  const double ty = Y(-5);
  m.zcyl(X(0), ty, 10.5 * s, 9.5 * s, Z(0), 400, 40.f, Tissue::muscle);
  const Bronchus br[2] = {main_bronchus(a, 0), main_bronchus(a, 1)};
  for (const Bronchus& b : br) {
    if (pb > 0) m.capsule(b.a[0], b.a[1], b.a[2], b.b[0], b.b[1], b.b[2], b.r + pb, 40.f, Tissue::lesion);
    m.capsule(b.a[0], b.a[1], b.a[2], b.b[0], b.b[1], b.b[2], b.r, 40.f, Tissue::muscle);
  }
  m.zcyl(X(0), ty, 8.5 * s, 7.5 * s, Z(0), 400, -1000.f, Tissue::airway);
  for (const Bronchus& b : br)
    m.capsule(b.a[0], b.a[1], b.a[2], b.b[0], b.b[1], b.b[2], b.r - 2 * s, -1000.f, Tissue::airway);
  // --- spine ---
  const double yv = oy + m.Bf - 60 * s;
  m.zcyl(ox, yv, 16 * s, 15 * s, -1000, 1000, 80.f, Tissue::bone);  // discs
  for (int n = -20; n <= 20; ++n) {
    const double zc = a.vert_phase + n * 28 * s;
    if (zc < -450 || zc > 450) continue;
    m.zcyl(ox, yv, 16 * s, 15 * s, zc - 11 * s, zc + 11 * s, 1000.f, Tissue::bone);
    m.zcyl(ox, yv, 13.5 * s, 12.5 * s, zc - 9.5 * s, zc + 9.5 * s, 380.f, Tissue::bone);
  }
  const double yc = yv + 25 * s;
  m.zcyl(ox, yc, 13 * s, 12 * s, -1000, 1000, 700.f, Tissue::bone);  // lamina
  m.zcyl(ox, yc + 22 * s, 4 * s, 11 * s, -1000, 1000, 650.f, Tissue::bone);  // spinous process
  m.zcyl(ox, yc, 8 * s, 7.5 * s, -1000, 1000, 15.f, Tissue::canal);
  // --- sternum ---
  const double ys = oy - (m.Bf - 0.5 * a.wall);
  m.zcyl(ox, ys, 16 * s, 6 * s, Z(-140), Z(55), 950.f, Tissue::bone);
  m.zcyl(ox, ys, 13.5 * s, 3.8 * s, Z(-140), Z(55), 350.f, Tissue::bone);
  // --- catheter ---
  for (const Finding& f : scan.findings)
    if (f.label == kMedicalMaterial && f.rendered)
      for (std::size_t i = 0; i + 1 < f.points.size(); ++i) {
        const auto& p = f.points[i];
        const auto& q = f.points[i + 1];
        m.capsule(p[0], p[1], p[2], q[0], q[1], q[2], p[3], 2500.f, Tissue::material);
      }
  m.all.resize(m.prims.size());
  for (std::size_t i = 0; i < m.prims.size(); ++i) m.all[i] = static_cast<int>(i);
}

Phantom::~Phantom() { delete p_; }

std::array<double, 6> Phantom::lung_box(int k) const {
  const SideGeo& g = p_->side[k];
  return {p_->ox + g.cx - g.ax, p_->ox + g.cx + g.ax, p_->oy + g.cy - g.ay, p_->oy + g.cy + g.ay, g.base_lo, g.apex};
}

Phantom::Sample Phantom::at(double x, double y, double z) const {
  return eval(x, y, z, 0.0, p_->all.data(), static_cast<int>(p_->all.size()));
}

Phantom::Sample Phantom::eval(double x, double y, double z, double half_dz, const int* act, int nact) const {
  const Impl& m = *p_;
  Sample r;
  const double bx = x - m.ox, by = y - m.oy;
  if (sq(bx / m.A) + sq(by / m.B) >= 1.0) {
    r.hu = -1000;
    r.tissue = Tissue::air;
    return r;
  }
  const double qf = sq(bx / m.Af) + sq(by / m.Bf);
  if (qf >= 1.0) {
    r.hu = -100;
    r.tissue = Tissue::fat;
  } else if (sq(bx / m.Ai) + sq(by / m.Bi) >= 1.0) {
    r.hu = 40;
    r.tissue = Tissue::muscle;
  } else {
    const SideGeo& g = m.side[bx < 0 ? 0 : 1];
    const double u = (bx - g.cx) / g.ax, v = (by - g.cy) / g.ay;
    // the diaphragm: a dome per side, highest antero-centrally, flatter towards
    // the midline and the front, deepest posteriorly (costophrenic recess)
    const double vb = v + 0.3 > 0 ? v + 0.3 : 0.45 * (v + 0.3);
    const double ul = (std::fabs(bx) - std::fabs(g.cx)) / g.ax;
    const double ud = ul > 0 ? std::min(1.0, ul) : std::max(-1.0, 0.5 * ul);
    const double zb = g.dome - g.du * ud * ud - g.dv * vb * vb;
    if (z < zb) {
      r.tissue = Tissue::abdomen;
      const bool liver = sq((bx + 0.25 * m.Ai) / (0.85 * m.Ai)) + sq((by + 0.05 * m.Bi) / (0.95 * m.Bi)) < 1.0;
      r.hu = liver ? 55 : 38;
    } else {
      double f2 = 1;
      if (z > g.taper) {
        const double w = (z - g.taper) / (g.apex - g.taper);
        f2 = w >= 1 ? 0 : 1 - w * w;
      }
      if (u * u + v * v < f2) {
        r.tissue = Tissue::lung;
        r.in_lung = true;
        r.hu = static_cast<float>(-860 + 35 * v);
        const double zf = g.fiss0 + m.fiss_t * (by - g.cy);
        const bool lower = z < zf;
        r.lobe = g.right ? (lower ? kRLL : (z > m.horiz ? kRUL : kRML)) : (lower ? kLLL : kLUL);
        if (std::fabs(z - zf) < 0.6 * std::sqrt(1 + m.fiss_t * m.fiss_t) ||
            (g.right && !lower && std::fabs(z - m.horiz) < 0.6))
          r.hu = -730;
        if (m.septal > 0 && lower && u * u + v * v > 0.55 * f2) {
          // interlobular septal thickening: a reticular lattice of soft-tissue septa in
          // the lower lobes' periphery (the lung findings below still paint over it)
          auto on = [&](double c) {
            const double f = c / kSeptalPeriod - std::floor(c / kSeptalPeriod);
            return std::min(f, 1 - f) * kSeptalPeriod < 0.5 * m.septal;
          };
          if (on(bx) || on(by)) {
            r.hu = 20;
            r.tissue = Tissue::lesion;
          }
        }
        if (g.eff_depth > 0 || g.atel > 0) {
          const double yedge = g.cy + g.ay * std::sqrt(std::max(0.0, f2 - u * u));
          const double dist = yedge - by;
          const double dep = g.eff_depth > 0 ? g.eff_depth * clamp01((g.eff_top - z) / (g.eff_top - g.base_lo)) : 0;
          if (dist < dep) {
            r.hu = 10;
            r.tissue = Tissue::fluid;
            r.in_lung = false;
          } else if (g.atel > 0 && lower &&
                     dist < dep + g.atel * clamp01((g.atel_top - z) / (g.atel_top - g.base_lo))) {
            r.hu = 25;
            r.tissue = Tissue::lesion;
            r.in_lung = false;
          }
        }
      } else {
        r.tissue = Tissue::mediastinum;
        r.hu = -90;
      }
    }
  }
  // ribs, in the chest wall
  {
    const double qr = sq(bx / m.Ar) + sq(by / m.Br);
    if (qr > 0.8 && qr < 1.25) {
      const double q = std::sqrt(qr);
      const double rad = std::sqrt(bx * bx + by * by);
      const double d = (q - 1) * rad / q;
      if (std::fabs(d) < m.rib_hw) {
        const double th = std::atan2(std::fabs(bx), by);
        if (th > 0.32 && th < 2.45) {
          const double zr = z + m.rib_drop * th / kPi;
          const double n = std::round((m.rib_z1 - zr) / m.rib_sp);
          if (n >= 0 && n < 12) {
            const double dz = zr - (m.rib_z1 - n * m.rib_sp);
            const double e = sq(d / m.rib_hw) + sq(dz / m.rib_hh);
            if (e < 1) {
              r.hu = e > 0.35 ? 1000 : 400;
              r.tissue = Tissue::bone;
              r.in_lung = false;
            }
          }
        }
      }
    }
  }
  const bool base_lung = r.in_lung;
  const bool base_abdomen = r.tissue == Tissue::abdomen;
  for (int n = 0; n < nact; ++n) {
    const Prim& p = m.prims[static_cast<std::size_t>(act[n])];
    if (p.cond == Prim::in_lung && (!base_lung || (p.lobe && p.lobe != r.lobe))) continue;
    if (p.cond == Prim::in_abdomen && !base_abdomen) continue;
    if (p.pv) {
      if (x < p.lo[0] || x > p.hi[0] || y < p.lo[1] || y > p.hi[1]) continue;
      const double q = sq((x - p.c[0]) / p.e[0]) + sq((y - p.c[1]) / p.e[1]);
      if (q >= 1) continue;
      const double hz = p.e[2] * std::sqrt(1 - q), dz = z - p.c[2];
      double frac;
      if (half_dz <= 0) {
        frac = std::fabs(dz) < hz ? 1 : 0;
      } else {
        const double len = std::min(hz, dz + half_dz) - std::max(-hz, dz - half_dz);
        frac = std::min(1.0, len / (2 * half_dz));
      }
      if (frac <= 0) continue;
      r.hu += static_cast<float>((p.hu - r.hu) * frac);
      if (frac >= 0.5) r.tissue = p.tissue;
      r.in_lung = false;
      continue;
    }
    if (!p.inside(x, y, z)) continue;
    switch (p.op) {
      case Prim::replace:
        r.hu = p.hu;
        r.tissue = p.tissue;
        break;
      case Prim::add: r.hu += p.hu; break;
      case Prim::max:
        if (p.hu > r.hu) r.hu = p.hu, r.tissue = p.tissue;
        break;
      case Prim::min: r.hu = std::min(r.hu, p.hu); break;
    }
    if (p.cond != Prim::in_lung) r.in_lung = false;
  }
  if (r.tissue != Tissue::lung && r.tissue != Tissue::lesion && r.tissue != Tissue::vessel) r.lobe = kNoLobe;
  return r;
}

namespace {
// Approximately normal (Irwin-Hall of four 16-bit uniforms, unit variance),
// a pure function of (key, index) so any thread order gives the same volume.
inline float noise01(std::uint64_t key, std::uint64_t idx) {
  const std::uint64_t h = mix64(key ^ (idx * 0xD1B54A32D192ED03ull));
  const double sum = static_cast<double>(h & 0xFFFF) + static_cast<double>((h >> 16) & 0xFFFF) +
                     static_cast<double>((h >> 32) & 0xFFFF) + static_cast<double>(h >> 48);
  return static_cast<float>((sum / 65535.0 - 2.0) * 1.7320508075688772);
}
}  // namespace

void Phantom::render(const Geometry& g, std::int16_t* out, double noise_hu, std::uint64_t noise_key,
                     int threads) const {
  const std::int64_t nx = g.dim[0], ny = g.dim[1], nz = g.dim[2];
  const Impl& m = *p_;
  const float sigma = static_cast<float>(noise_hu);
  const double hdz = 0.5 * g.spacing[2];
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<int> act, row_act;
    act.reserve(m.prims.size());
    row_act.reserve(m.prims.size());
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t k = 0; k < nz; ++k) {
      const double z = g.origin[2] + static_cast<double>(k) * g.spacing[2];
      act.clear();
      for (std::size_t i = 0; i < m.prims.size(); ++i)
        if (z + hdz >= m.prims[i].lo[2] && z - hdz <= m.prims[i].hi[2]) act.push_back(static_cast<int>(i));
      for (std::int64_t j = 0; j < ny; ++j) {
        const double y = g.origin[1] + static_cast<double>(j) * g.spacing[1];
        row_act.clear();
        for (int a : act)
          if (y >= m.prims[static_cast<std::size_t>(a)].lo[1] && y <= m.prims[static_cast<std::size_t>(a)].hi[1])
            row_act.push_back(a);
        std::int16_t* row = out + (k * ny + j) * nx;
        for (std::int64_t i = 0; i < nx; ++i) {
          const double x = g.origin[0] + static_cast<double>(i) * g.spacing[0];
          float hu = eval(x, y, z, hdz, row_act.data(), static_cast<int>(row_act.size())).hu;
          if (sigma > 0) hu += sigma * noise01(noise_key, static_cast<std::uint64_t>((k * ny + j) * nx + i));
          hu = std::min(3071.f, std::max(-1024.f, hu));
          row[i] = static_cast<std::int16_t>(std::lround(hu));
        }
      }
    }
  }
}

std::vector<std::int16_t> render_hu(const Scan& scan, const Geometry& g, double noise_hu, std::uint64_t noise_key,
                                    int threads) {
  std::vector<std::int16_t> v(g.voxels());
  Phantom(scan).render(g, v.data(), noise_hu, noise_key, threads);
  return v;
}

void to_stored(std::vector<std::int16_t>& data, const VolumeSpec& v) {
  if (!v.v1) return;
  for (auto& x : data) {
    const double s = (static_cast<double>(x) - v.intercept) / v.slope;
    x = static_cast<std::int16_t>(std::lround(std::min(32767.0, std::max(-32768.0, s))));
  }
}

}  // namespace hse::synth
