// Drawing patients: anatomy, scans, findings and volume geometries, all from
// one random stream per patient so a case does not depend on the others.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hse/synth/internal.h"

namespace hse::synth {

const std::array<const char*, kNumLabels> kLabels = {
    "Medical material",
    "Arterial wall calcification",
    "Cardiomegaly",
    "Pericardial effusion",
    "Coronary artery wall calcification",
    "Hiatal hernia",
    "Lymphadenopathy",
    "Emphysema",
    "Atelectasis",
    "Lung nodule",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Pleural effusion",
    "Mosaic attenuation pattern",
    "Peribronchial thickening",
    "Consolidation",
    "Bronchiectasis",
    "Interlobular septal thickening",
};

const char* lobe_anatomy(int lobe) {
  switch (lobe) {
    case kRUL: return "right lung upper lobe";
    case kRML: return "right lung middle lobe";
    case kRLL: return "right lung lower lobe";
    case kLUL: return "left lung upper lobe";
    case kLLL: return "left lung lower lobe";
    default: return "lung";
  }
}

Size parse_size(const std::string& s) {
  if (s == "tiny") return Size::tiny;
  if (s == "small") return Size::small;
  if (s == "realistic") return Size::realistic;
  cli::fail_usage("--size: '{}' is not one of tiny, small, realistic", s);
}

const char* size_name(Size s) {
  switch (s) {
    case Size::tiny: return "tiny";
    case Size::small: return "small";
    case Size::realistic: return "realistic";
  }
  return "?";
}

namespace {

double r1(double v) { return std::round(v * 10) / 10; }

// Per-label prevalence among abnormal scans (roughly CT-RATE's ordering of frequencies).
constexpr double kPrevalence[kNumLabels] = {0.10, 0.30, 0.12, 0.08, 0.26, 0.12, 0.25, 0.20, 0.25,
                                            0.45, 0.33, 0.25, 0.13, 0.07, 0.10, 0.16, 0.09, 0.07};
constexpr double kNormalFraction = 0.27;

Anatomy draw_anatomy(Rng& rng, char sex) {
  Anatomy a;
  a.s = std::clamp(rng.normal(1.0, 0.05), 0.88, 1.12) * (sex == 'F' ? 0.95 : 1.0);
  const double s = a.s;
  a.A = 165 * s * rng.uni(0.93, 1.07);
  a.B = 112 * s * rng.uni(0.92, 1.08);
  a.ox = rng.uni(-8, 8);
  a.oy = rng.uni(-10, 10);
  a.fat = rng.uni(8, 28) * s;
  a.wall = rng.uni(10, 14) * s;
  a.apex = 85 * s + rng.uni(-5, 5);
  a.dome_r = -120 * s + rng.uni(-10, 10);
  a.dome_l = a.dome_r - rng.uni(5, 15);
  a.fiss_r = -50 * s + rng.uni(-8, 8);
  a.fiss_l = -40 * s + rng.uni(-8, 8);
  a.fiss_t = rng.uni(0.8, 1.0);
  a.horiz = -30 * s + rng.uni(-8, 8);
  a.heart_rot = rng.uni(0.4, 0.65);
  a.vert_phase = rng.uni(0, 28 * s);
  a.rib_phase = rng.uni(-6, 6);
  return a;
}

using P3 = std::array<double, 3>;

// A random point inside aerated lung (side 0 right, 1 left, -1 either) whose
// ball of radius `margin` stays in the same lobe, within [zlo, zhi]; lobes
// restricts the lobe when not empty. Returns false after many misses.
bool sample_lung(Rng& rng, const Phantom& ph, int side, double margin, double zlo, double zhi,
                 const std::vector<int>& lobes, P3& out, int& lobe_out) {
  for (int attempt = 0; attempt < 400; ++attempt) {
    const int k = side >= 0 ? side : rng.range(0, 1);
    const auto b = ph.lung_box(k);
    const double z0 = std::max(b[4], zlo + margin), z1 = std::min(b[5], zhi - margin);
    if (z1 <= z0) continue;
    const P3 p{rng.uni(b[0], b[1]), rng.uni(b[2], b[3]), rng.uni(z0, z1)};
    const auto c = ph.at(p[0], p[1], p[2]);
    if (c.tissue != Tissue::lung || !c.in_lung) continue;
    if (!lobes.empty() && std::find(lobes.begin(), lobes.end(), c.lobe) == lobes.end()) continue;
    bool ok = true;
    if (margin > 0) {
      static const double dirs[][3] = {{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}, {0, 0, -1},
                                       {0.577, 0.577, 0.577}, {-0.577, -0.577, 0.577}, {0.577, -0.577, -0.577},
                                       {-0.577, 0.577, -0.577}};
      for (const auto& d : dirs) {
        const auto q = ph.at(p[0] + d[0] * margin, p[1] + d[1] * margin, p[2] + d[2] * margin);
        if (q.tissue != Tissue::lung || q.lobe != c.lobe) {
          ok = false;
          break;
        }
      }
    }
    if (!ok) continue;
    out = p;
    lobe_out = c.lobe;
    return true;
  }
  return false;
}

// A point of a posterior basal region (tissue `t` that replaced the lung, such as
// an effusion or an atelectasis band, not septa drawn within it; and lobe `lobe` when not 0):
// an interior point nearest the region's centroid, scanning the posterior,
// lower part of the lung box of side k on a 2 mm grid.
bool region_point(const Phantom& ph, int k, Tissue t, int lobe, P3& out) {
  const auto b = ph.lung_box(k);
  std::vector<P3> pts;
  for (double z = b[4]; z <= std::min(b[5], b[4] + 150); z += 2)
    for (double y = (b[2] + b[3]) / 2; y <= b[3]; y += 2)
      for (double x = b[0]; x <= b[1]; x += 2) {
        const auto q = ph.at(x, y, z);
        if (q.tissue == t && !q.in_lung && (!lobe || q.lobe == lobe)) pts.push_back({x, y, z});
      }
  if (pts.empty()) return false;
  P3 c{0, 0, 0};
  for (const auto& p : pts)
    for (int a = 0; a < 3; ++a) c[static_cast<std::size_t>(a)] += p[static_cast<std::size_t>(a)] / static_cast<double>(pts.size());
  // prefer interior points (all neighbours 2.5 mm away in the region), then the centroid
  double best = 1e300;
  int best_in = -1;
  for (const auto& p : pts) {
    const double d = std::pow(p[0] - c[0], 2) + std::pow(p[1] - c[1], 2) + std::pow(p[2] - c[2], 2);
    if (d > best && best_in == 6) continue;
    int in = 0;
    for (int a = 0; a < 3; ++a)
      for (double sgn : {-2.5, 2.5}) {
        P3 q = p;
        q[static_cast<std::size_t>(a)] += sgn;
        const auto smp = ph.at(q[0], q[1], q[2]);
        in += smp.tissue == t && !smp.in_lung && (!lobe || smp.lobe == lobe);
      }
    if (in > best_in || (in == best_in && d < best)) best_in = in, best = d, out = p;
  }
  return true;
}

// The lowest point of a septum in the right lower lobe (on the lattice's x planes,
// a 2 mm grid in y and z) strictly between zlo and zhi.
bool septum_point(const Phantom& ph, double ox, double zlo, double zhi, P3& out) {
  const auto b = ph.lung_box(0);
  const double x0 = ox + std::ceil((b[0] - ox) / kSeptalPeriod) * kSeptalPeriod;
  for (double z = b[4]; z <= b[5] && z < zhi; z += 2) {
    if (z <= zlo) continue;
    for (double y = b[2]; y <= b[3]; y += 2)
      for (double x = x0; x <= b[1]; x += kSeptalPeriod) {
        const auto q = ph.at(x, y, z);
        if (q.tissue == Tissue::lesion && q.in_lung && q.lobe == kRLL) {
          out = {x, y, z};
          return true;
        }
      }
  }
  return false;
}

Finding make(int label, const std::string& abnormality) {
  Finding f;
  f.label = label;
  f.abnormality = abnormality;
  return f;
}

const char* side_name(int k) { return k == 0 ? "right" : "left"; }

// Draws the findings of one scan (modifies scan.anat / per-side parameters as needed).
// g (the lesion scale) multiplies every drawn lesion dimension; 1 keeps the
// realistic sizes.
void draw_findings(Rng& rng, Scan& scan, double zlo, double zhi, double g) {
  std::array<bool, kNumLabels> want{};
  if (!rng.chance(kNormalFraction)) {
    bool any = false;
    for (int l = 0; l < kNumLabels; ++l) any |= (want[static_cast<std::size_t>(l)] = rng.chance(kPrevalence[l]));
    if (!any) {
      static const std::vector<int> common = {kLungNodule, kLungOpacity, kArterialCalcification, kAtelectasis,
                                              kLymphadenopathy, kEmphysema, kConsolidation, kCardiomegaly};
      want[static_cast<std::size_t>(rng.pick(common))] = true;
    }
  }
  Anatomy& a = scan.anat;
  const double s = a.s;
  std::vector<Finding> out;
  auto W = [&](int l) { return want[static_cast<std::size_t>(l)]; };

  // --- structural findings (change the phantom the lung findings are drawn in) ---
  if (W(kCardiomegaly)) a.heart_scale = rng.uni(1.22, 1.38);
  if (W(kPericardialEffusion)) scan.pericardial_mm = r1(rng.uni(6, 15) * s * g);
  if (W(kPleuralEffusion)) {
    const double u = rng.uni();
    const int sides = u < 0.35 ? 1 : (u < 0.6 ? 2 : 3);  // bit 1 right, bit 2 left
    for (int k = 0; k < 2; ++k)
      if (sides & (1 << k)) {
        scan.effusion_depth[static_cast<std::size_t>(k)] = r1(rng.uni(12, 40) * s * g);
        scan.effusion_top[static_cast<std::size_t>(k)] = (k == 0 ? a.dome_r : a.dome_l) + rng.uni(50, 110) * s * g;
      }
  }
  if (W(kAtelectasis)) {
    const double u = rng.uni();
    const int sides = u < 0.3 ? 1 : (u < 0.6 ? 2 : 3);
    for (int k = 0; k < 2; ++k)
      if (sides & (1 << k)) {
        scan.atelectasis_thick[static_cast<std::size_t>(k)] = r1(rng.uni(5, 12) * s * g);
        scan.atelectasis_top[static_cast<std::size_t>(k)] = (k == 0 ? a.dome_r : a.dome_l) + rng.uni(35, 70) * s * g;
      }
  }
  if (W(kPeribronchialThickening)) scan.peribronchial_mm = r1(rng.uni(1.5, 3) * s * g);
  if (W(kSeptalThickening)) scan.septal_mm = r1(rng.uni(1, 2) * g);
  const HeartGeo hg = heart_geo(a);
  if (W(kMedicalMaterial)) {
    Finding f = make(kMedicalMaterial, "catheter");
    const double r = 1.5 * g;
    const double jx = rng.uni(-4, 4);
    const P3 pts[] = {{-75 * s, -60 * s, 170 * s}, {-45 * s, -40 * s, 110 * s}, {-24 * s, -20 * s, 50 * s},
                      {-22 * s + jx * 0.2, -16 * s, -25 * s - rng.uni(0, 15) * s}};
    for (const auto& p : pts) f.points.push_back({a.ox + p[0] + jx, a.oy + p[1], p[2], r});
    f.points.back()[0] -= jx;
    const auto& tip = f.points.back();
    {
      // a point on the catheter 10 mm before its tip (the tip itself may fall between thick slices)
      const auto& pre = f.points[f.points.size() - 2];
      const double L = std::sqrt(std::pow(pre[0] - tip[0], 2) + std::pow(pre[1] - tip[1], 2) + std::pow(pre[2] - tip[2], 2));
      const double t = std::min(1.0, 10.0 / L);
      f.centre = {tip[0] + t * (pre[0] - tip[0]), tip[1] + t * (pre[1] - tip[1]), tip[2] + t * (pre[2] - tip[2])};
    }
    f.size_mm = 2 * r;
    f.detail = tip[2] < -20 * s ? "cavoatrial junction" : "superior vena cava";
    f.side = "right";
    f.anatomy = {"mediastinum"};
    out.push_back(f);
  }
  if (W(kArterialCalcification)) {
    Finding f = make(kArterialCalcification, "calcification");
    const int n = rng.range(3, 9);
    for (int i = 0; i < 40 && static_cast<int>(f.points.size()) < n; ++i) {
      const int seg = rng.range(0, kAortaN - 2);
      const double t = rng.uni();
      const double* A0 = kAorta[seg];
      const double* A1 = kAorta[seg + 1];
      P3 c{a.ox + (A0[0] + t * (A1[0] - A0[0])) * s, a.oy + (A0[1] + t * (A1[1] - A0[1])) * s,
           (A0[2] + t * (A1[2] - A0[2])) * s};
      if (c[2] < zlo + 5 || c[2] > zhi - 5) continue;
      // a unit vector perpendicular to the segment
      P3 d{A1[0] - A0[0], A1[1] - A0[1], A1[2] - A0[2]};
      const double dl = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      for (auto& v : d) v /= dl;
      P3 tmp = std::fabs(d[2]) < 0.9 ? P3{0, 0, 1} : P3{1, 0, 0};
      P3 u1{d[1] * tmp[2] - d[2] * tmp[1], d[2] * tmp[0] - d[0] * tmp[2], d[0] * tmp[1] - d[1] * tmp[0]};
      const double ul = std::sqrt(u1[0] * u1[0] + u1[1] * u1[1] + u1[2] * u1[2]);
      for (auto& v : u1) v /= ul;
      P3 u2{d[1] * u1[2] - d[2] * u1[1], d[2] * u1[0] - d[0] * u1[2], d[0] * u1[1] - d[1] * u1[0]};
      const double ang = rng.uni(0, 6.283185307179586);
      const double rad = A1[3] * s * 0.95;
      for (int k = 0; k < 3; ++k) c[static_cast<std::size_t>(k)] += rad * (std::cos(ang) * u1[static_cast<std::size_t>(k)] + std::sin(ang) * u2[static_cast<std::size_t>(k)]);
      f.points.push_back({c[0], c[1], c[2], r1(rng.uni(1.6, 3.0) * g)});
    }
    if (!f.points.empty()) {
      f.centre = {f.points[0][0], f.points[0][1], f.points[0][2]};
      double mx = 0;
      for (const auto& q : f.points) mx = std::max(mx, 2 * q[3]);
      f.size_mm = mx;
      f.detail = "thoracic aorta";
      f.anatomy = {"aorta"};
      out.push_back(f);
    }
  }
  if (W(kCardiomegaly)) {
    Finding f = make(kCardiomegaly, "cardiomegaly");
    f.centre = {hg.c[0], hg.c[1], hg.c[2]};
    f.size_mm = r1(2 * hg.e[0]);
    f.anatomy = {"heart"};
    out.push_back(f);
  }
  if (W(kPericardialEffusion)) {
    Finding f = make(kPericardialEffusion, "pericardial effusion");
    f.centre = {hg.c[0], hg.c[1], hg.c[2]};
    f.size_mm = scan.pericardial_mm;
    f.anatomy = {"heart"};
    out.push_back(f);
  }
  if (W(kCoronaryCalcification)) {
    Finding f = make(kCoronaryCalcification, "coronary artery calcification");
    const int n = rng.range(2, 5);
    const double cs = std::cos(hg.rot), sn = std::sin(hg.rot);
    for (int i = 0; i < n; ++i) {
      const P3 d{rng.uni(-0.2, 0.9), rng.uni(-1, -0.4), rng.uni(0.1, 0.8)};
      const double nrm = std::sqrt(std::pow(d[0] / hg.e[0], 2) + std::pow(d[1] / hg.e[1], 2) + std::pow(d[2] / hg.e[2], 2));
      const P3 l{d[0] / nrm, d[1] / nrm, d[2] / nrm};
      const P3 w{hg.c[0] + cs * l[0] - sn * l[1], hg.c[1] + sn * l[0] + cs * l[1], hg.c[2] + l[2]};
      if (w[2] < zlo + 4 || w[2] > zhi - 4) continue;
      f.points.push_back({w[0], w[1], w[2], r1(rng.uni(1.5, 2.6) * g)});
    }
    if (!f.points.empty()) {
      f.centre = {f.points[0][0], f.points[0][1], f.points[0][2]};
      f.size_mm = 2 * f.points[0][3];
      f.detail = "left anterior descending artery";
      f.anatomy = {"heart"};
      out.push_back(f);
    }
  }
  if (W(kHiatalHernia)) {
    Finding f = make(kHiatalHernia, "hiatal hernia");
    f.size_mm = r1(rng.uni(30, 45) * s * g);
    f.centre = {a.ox + 10 * s, a.oy + 20 * s, a.dome_l + 8 * s};
    f.anatomy = {"esophagus"};
    out.push_back(f);
  }
  if (W(kLymphadenopathy)) {
    Finding f = make(kLymphadenopathy, "lymphadenopathy");
    struct Station {
      const char* name;
      double x, y, z;
    };
    std::vector<Station> st = {{"right paratracheal", -17, -8, 22},
                               {"subcarinal", 0, 12, -20},
                               {"aortopulmonary window", 17, -14, 14},
                               {"prevascular", -2, -48, 12}};
    rng.shuffle(st);
    const int n = rng.range(1, 3);
    double best = 0;
    for (int i = 0; i < n; ++i) {
      const double d = r1(rng.uni(11, 22) * g);
      f.points.push_back({a.ox + st[static_cast<std::size_t>(i)].x * s, a.oy + st[static_cast<std::size_t>(i)].y * s,
                          st[static_cast<std::size_t>(i)].z * s, d / 2});
      if (d > best) {
        best = d;
        f.detail = st[static_cast<std::size_t>(i)].name;
        f.centre = {f.points.back()[0], f.points.back()[1], f.points.back()[2]};
      }
    }
    f.size_mm = best;
    f.anatomy = {"mediastinum"};
    out.push_back(f);
  }
  for (int k = 0; k < 2; ++k) {
    if (scan.atelectasis_thick[static_cast<std::size_t>(k)] > 0) {
      Finding f = make(kAtelectasis, "atelectasis");
      f.side = side_name(k);
      f.lobe = k == 0 ? kRLL : kLLL;
      f.size_mm = scan.atelectasis_thick[static_cast<std::size_t>(k)];
      const Phantom tmp(scan);
      if (!region_point(tmp, k, Tissue::lesion, f.lobe, f.centre)) {
        scan.atelectasis_thick[static_cast<std::size_t>(k)] = 0;
        continue;
      }
      f.detail = "posterior basal segment";
      f.anatomy = {lobe_anatomy(f.lobe)};
      out.push_back(f);
    }
  }
  for (int k = 0; k < 2; ++k) {
    if (scan.effusion_depth[static_cast<std::size_t>(k)] > 0) {
      Finding f = make(kPleuralEffusion, "pleural effusion");
      f.side = side_name(k);
      f.size_mm = scan.effusion_depth[static_cast<std::size_t>(k)];
      const Phantom tmp(scan);
      if (!region_point(tmp, k, Tissue::fluid, 0, f.centre)) {
        scan.effusion_depth[static_cast<std::size_t>(k)] = 0;
        continue;
      }
      f.anatomy = {k == 0 ? "right pleura" : "left pleura"};
      out.push_back(f);
    }
  }
  if (out.size() >= 2 && out.back().label == kPleuralEffusion && out[out.size() - 2].label == kPleuralEffusion) {
    out.back().side = out[out.size() - 2].side = "bilateral";
  }
  for (auto& f : out)
    if (f.label == kAtelectasis && scan.atelectasis_thick[0] > 0 && scan.atelectasis_thick[1] > 0) f.side = "bilateral";

  // --- lung parenchyma findings, placed in the phantom built so far ---
  const Phantom ph(scan);
  auto lobes_of = [&](const Finding& f) {
    std::vector<int> lobes;
    for (const auto& q : f.points) {
      const int l = ph.at(q[0], q[1], q[2]).lobe;
      if (l && std::find(lobes.begin(), lobes.end(), l) == lobes.end()) lobes.push_back(l);
    }
    std::sort(lobes.begin(), lobes.end());
    return lobes;
  };
  if (W(kEmphysema)) {
    Finding f = make(kEmphysema, "emphysema");
    const double u = rng.uni();
    const int side = u < 0.75 ? -1 : (u < 0.88 ? 0 : 1);
    f.side = side < 0 ? "bilateral" : side_name(side);
    const int n = rng.range(6, 14);
    for (int i = 0; i < n; ++i) {
      P3 p;
      int lobe;
      const double r = r1(rng.uni(6, 14) * s * g);
      if (sample_lung(rng, ph, side, 0, zlo, zhi, {kRUL, kLUL}, p, lobe)) f.points.push_back({p[0], p[1], p[2], r});
    }
    if (!f.points.empty()) {
      f.centre = {f.points[0][0], f.points[0][1], f.points[0][2]};
      double mx = 0;
      for (const auto& q : f.points) mx = std::max(mx, 2 * q[3]);
      f.size_mm = mx;
      for (int l : lobes_of(f)) f.anatomy.push_back(lobe_anatomy(l));
      if (f.anatomy.size() == 1) f.lobe = lobes_of(f)[0];
      f.side = f.anatomy.size() == 2 ? "bilateral" : (f.lobe == kRUL ? "right" : "left");
      f.detail = "centrilobular";
      out.push_back(f);
    }
  }
  if (W(kLungNodule)) {
    const double u = rng.uni();
    const int n = u < 0.6 ? 1 : (u < 0.88 ? 2 : 3);
    std::vector<P3> placed;
    for (int i = 0; i < n; ++i) {
      const double d = r1((4 + 20 * std::pow(rng.uni(), 1.6)) * g);
      P3 p;
      int lobe;
      if (!sample_lung(rng, ph, -1, d / 2 + 2, zlo, zhi, {}, p, lobe)) continue;
      bool clash = false;
      for (const auto& q : placed)
        clash |= std::hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]) < d + 10;
      if (clash) continue;
      placed.push_back(p);
      Finding f = make(kLungNodule, "nodule");
      f.centre = p;
      f.size_mm = d;
      f.lobe = lobe;
      f.side = lobe <= kRLL ? "right" : "left";
      f.detail = d >= 10 ? "solid" : (rng.chance(0.5) ? "solid" : "");
      f.anatomy = {lobe_anatomy(lobe)};
      out.push_back(f);
    }
  }
  if (W(kLungOpacity)) {
    const int n = rng.chance(0.7) ? 1 : 2;
    for (int i = 0; i < n; ++i) {
      P3 p;
      int lobe;
      if (!sample_lung(rng, ph, -1, 3, zlo, zhi, {}, p, lobe)) continue;
      Finding f = make(kLungOpacity, "ground-glass opacity");
      f.centre = p;
      f.size_mm = r1(rng.uni(18, 45) * s * g);
      f.lobe = lobe;
      f.side = lobe <= kRLL ? "right" : "left";
      f.anatomy = {lobe_anatomy(lobe)};
      out.push_back(f);
    }
  }
  if (W(kFibroticSequela)) {
    P3 p;
    int lobe;
    if (sample_lung(rng, ph, -1, 5, zlo, zhi, {}, p, lobe)) {
      Finding f = make(kFibroticSequela, "fibrotic sequelae");
      f.centre = p;
      f.lobe = lobe;
      f.side = lobe <= kRLL ? "right" : "left";
      const int n = rng.range(2, 4);
      double extent = 0;
      for (int i = 0; i < n; ++i) {
        const double j = i == 0 ? 0 : 1;
        const P3 a0{p[0] + j * rng.uni(-8, 8), p[1] + j * rng.uni(-8, 8), p[2] + j * rng.uni(-8, 8)};
        const double len = rng.uni(15, 35) * g, th = rng.uni(0, 6.283185307179586), ph2 = rng.uni(-0.6, 0.6);
        const P3 b0{a0[0] + len * std::cos(th) * std::cos(ph2), a0[1] + len * std::sin(th) * std::cos(ph2),
                    a0[2] + len * std::sin(ph2)};
        if (i == 0) f.centre = a0;
        f.points.push_back({a0[0], a0[1], a0[2], 2.0 * g});
        f.points.push_back({b0[0], b0[1], b0[2], 2.0 * g});
        extent = std::max(extent, len);
      }
      f.size_mm = r1(extent);
      f.anatomy = {lobe_anatomy(lobe)};
      out.push_back(f);
    }
  }
  if (W(kMosaicAttenuation)) {
    Finding f = make(kMosaicAttenuation, "mosaic attenuation");
    const int n = rng.range(8, 14);
    for (int i = 0; i < n; ++i) {
      P3 p;
      int lobe;
      if (sample_lung(rng, ph, i % 2, 0, zlo, zhi, {}, p, lobe))
        f.points.push_back({p[0], p[1], p[2], r1(rng.uni(15, 30) * s * g)});
    }
    if (!f.points.empty()) {
      f.centre = {f.points[0][0], f.points[0][1], f.points[0][2]};
      f.size_mm = 60;
      f.side = "bilateral";
      f.anatomy = {"lung"};
      out.push_back(f);
    }
  }
  if (W(kPeribronchialThickening)) {
    Finding f = make(kPeribronchialThickening, "peribronchial thickening");
    // the centre: inside the thickened wall, halfway along the right main bronchus
    const Bronchus b = main_bronchus(a, 0);
    const double dx = b.b[0] - b.a[0], dy = b.b[1] - b.a[1], nl = std::hypot(dx, dy);
    const double off = b.r + scan.peribronchial_mm / 2;
    f.centre = {(b.a[0] + b.b[0]) / 2 + off * dy / nl, (b.a[1] + b.b[1]) / 2 - off * dx / nl, (b.a[2] + b.b[2]) / 2};
    f.size_mm = scan.peribronchial_mm;
    f.side = "bilateral";
    f.anatomy = {"trachea and bronchie"};
    out.push_back(f);
  }
  if (W(kConsolidation)) {
    P3 p;
    int lobe;
    const std::vector<int> lobes = rng.chance(0.7) ? std::vector<int>{kRLL, kLLL} : std::vector<int>{};
    if (sample_lung(rng, ph, -1, 8, zlo, zhi, lobes, p, lobe)) {
      Finding f = make(kConsolidation, "consolidation");
      f.centre = p;
      f.size_mm = r1(rng.uni(30, 60) * s * g);
      f.lobe = lobe;
      f.side = lobe <= kRLL ? "right" : "left";
      f.anatomy = {lobe_anatomy(lobe)};
      out.push_back(f);
    }
  }
  if (W(kBronchiectasis)) {
    Finding f = make(kBronchiectasis, "bronchiectasis");
    static const std::vector<int> lobes = {kRLL, kLLL, kRML, kLUL};
    f.lobe = rng.pick(lobes);
    f.side = f.lobe <= kRLL ? "right" : "left";
    f.detail = rng.chance(0.7) ? "cylindrical" : "varicose";
    f.anatomy = {lobe_anatomy(f.lobe)};
    // 2-3 dilated bronchi in the lobe, each pointing away from the hilum; points hold
    // their end points with the lumen radius
    const int k = f.lobe <= kRLL ? 0 : 1;
    const P3 hil = hilum(a, k);
    const double r = r1(rng.uni(2.5, 4.5) * g);
    const int n = rng.range(2, 3);
    for (int i = 0; i < n; ++i) {
      P3 p;
      int lobe;
      if (!sample_lung(rng, ph, k, kBronchiectasisWall * r, zlo, zhi, {f.lobe}, p, lobe)) continue;
      P3 d{p[0] - hil[0], p[1] - hil[1], p[2] - hil[2]};
      const double dl = std::hypot(d[0], d[1], d[2]);
      const double half = rng.uni(12, 22) * g;
      for (auto& c : d) c *= half / dl;
      if (f.points.empty()) f.centre = p;
      f.points.push_back({p[0] - d[0], p[1] - d[1], p[2] - d[2], r});
      f.points.push_back({p[0] + d[0], p[1] + d[1], p[2] + d[2], r});
    }
    f.size_mm = 2 * r;
    if (!f.points.empty()) out.push_back(f);
  }
  if (W(kSeptalThickening)) {
    Finding f = make(kSeptalThickening, "interlobular septal thickening");
    f.size_mm = scan.septal_mm;
    f.side = "bilateral";
    f.anatomy = {"lung"};
    if (septum_point(ph, a.ox, zlo, zhi, f.centre))
      out.push_back(f);
    else
      scan.septal_mm = 0;
  }
  std::stable_sort(out.begin(), out.end(), [](const Finding& x, const Finding& y) { return x.label < y.label; });
  scan.findings = std::move(out);
  scan.labels.fill(0);
  for (const auto& f : scan.findings) scan.labels[static_cast<std::size_t>(f.label)] = 1;
}

struct SizeRange {
  int n_lo, n_hi, z_lo, z_hi;
};
SizeRange size_range(Size s) {
  switch (s) {
    case Size::tiny: return {96, 128, 32, 48};
    case Size::small: return {256, 320, 60, 100};
    case Size::realistic: return {512, 512, 300, 300};
  }
  return {256, 320, 60, 100};
}

}  // namespace

Patient plan_patient(std::uint64_t seed, const std::string& split, int number, Size size, double lesion_scale) {
  const std::uint64_t salt = split == "train" ? 0x747261696E000000ull : 0x76616C6964000000ull;
  Rng rng(mix64(mix64(seed) ^ salt ^ mix64(static_cast<std::uint64_t>(number) * 0x100000001B3ull)));
  Patient p;
  p.split = split;
  p.number = number;
  p.sex = rng.chance(0.55) ? 'M' : 'F';
  p.age = rng.range(22, 88);
  Anatomy anat = draw_anatomy(rng, p.sex);
  // pulmonary vessels, from the hila into each lung
  {
    Scan tmp;
    tmp.anat = anat;
    const Phantom ph(tmp);
    for (int k = 0; k < 2; ++k) {
      const P3 hil = hilum(anat, k);
      for (int v = 0; v < 7; ++v) {
        P3 e;
        int lobe;
        if (!sample_lung(rng, ph, k, 0, -1e9, 1e9, {}, e, lobe)) continue;
        const double r = rng.uni(2.5, 4.0) * anat.s;
        anat.lung_vessels.push_back({hil[0], hil[1], hil[2], e[0], e[1], e[2], r});
        P3 e2;
        if (sample_lung(rng, ph, k, 0, -1e9, 1e9, {}, e2, lobe)) {
          const P3 mid{(hil[0] + e[0]) / 2, (hil[1] + e[1]) / 2, (hil[2] + e[2]) / 2};
          const P3 end{(mid[0] + e2[0]) / 2, (mid[1] + e2[1]) / 2, (mid[2] + e2[2]) / 2};
          if (ph.at(end[0], end[1], end[2]).tissue == Tissue::lung)
            anat.lung_vessels.push_back({mid[0], mid[1], mid[2], end[0], end[1], end[2], r * 0.6});
        }
      }
    }
  }
  const int nscans = rng.chance(0.15) ? 2 : 1;
  static const std::vector<std::string> makers = {"SIEMENS", "PHILIPS", "GE MEDICAL SYSTEMS", "TOSHIBA"};
  static const std::vector<std::string> models = {"SOMATOM Definition Edge", "Ingenuity CT", "Revolution EVO",
                                                  "Aquilion Prime"};
  static const std::vector<std::string> kernels_soft = {"B30f", "STANDARD", "FC08", "B"};
  static const std::vector<std::string> kernels_lung = {"B70f", "LUNG", "FC51", "L"};
  const SizeRange sr = size_range(Size(size));
  const int maker = rng.range(0, 3);
  for (int sc = 0; sc < nscans; ++sc) {
    Scan scan;
    scan.letter = static_cast<char>('a' + sc);
    scan.anat = anat;
    const double lowest = std::min(anat.dome_r, anat.dome_l) - 68 * anat.s;
    const double z_top = anat.apex + rng.uni(5, 20);
    const double z_bot = lowest - rng.uni(5, 25);
    const double coverage = z_top - z_bot;
    const double fov = 2 * std::max(anat.A + std::fabs(anat.ox), anat.B + std::fabs(anat.oy)) + rng.uni(20, 60);
    const int n = rng.range(sr.n_lo, sr.n_hi);
    const double sxy = std::round(fov / n * 1000) / 1000;
    draw_findings(rng, scan, z_bot, z_top, lesion_scale);
    const int nrecon = rng.chance(0.3) ? 2 : 1;
    const std::string date = fmt::format("20{:02d}{:02d}{:02d}", 18 + sc * 1 + rng.range(0, 2), rng.range(1, 12),
                                         rng.range(1, 28));
    for (int rc = 1; rc <= nrecon; ++rc) {
      VolumeSpec v;
      v.scan = sc;
      v.recon = rc;
      const std::string pid = fmt::format("{}_{}", split, number);
      const std::string sid = fmt::format("{}_{}", pid, scan.letter);
      v.name = fmt::format("{}_{}.nii.gz", sid, rc);
      v.rel_path = fmt::format("{}/{}/{}/{}", split, pid, sid, v.name);
      const int nz = rng.range(sr.z_lo, sr.z_hi);
      double sz = coverage / nz;
      sz = size == Size::realistic ? std::round(sz * 20) / 20 : std::round(sz * 100) / 100;
      v.geo.dim = {n, n, nz};
      v.geo.spacing = {sxy, sxy, sz};
      v.geo.origin = {-(n - 1) / 2.0 * sxy, -(n - 1) / 2.0 * sxy, z_top - (nz - 1) * sz};
      v.fov_mm = sxy * n;
      v.v1 = rng.chance(0.5);
      v.intercept = v.v1 && rng.chance(0.2) ? -8192 : -1024;
      v.slope = 1;
      v.noise_hu = std::round(rng.uni(10, 20) * 10) / 10;
      v.noise_key = rng.g();
      v.manufacturer = makers[static_cast<std::size_t>(maker)];
      v.model = models[static_cast<std::size_t>(maker)];
      const bool lungk = rc == 1 ? rng.chance(0.6) : true;
      v.kernel = lungk ? kernels_lung[static_cast<std::size_t>(maker)] : kernels_soft[static_cast<std::size_t>(maker)];
      v.series = fmt::format("THORAX {:.1f} {}", sz, v.kernel);
      v.study_date = date;
      v.tube_current = rng.range(80, 320);
      v.exposure_time = rng.range(400, 1000);
      v.ctdi = std::round(rng.uni(3, 14) * 100) / 100;
      p.volumes.push_back(v);
    }
    scan.report = write_report(scan, rng.g());
    p.scans.push_back(std::move(scan));
  }
  return p;
}

}  // namespace hse::synth
