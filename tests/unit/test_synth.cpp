// Unit tests for hse::synth: determinism, plausible HU, rendered findings,
// labels and report text consistent with the drawn truth.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "hse/synth/synth.h"

using namespace hse::synth;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains_any(const std::string& text, const std::vector<std::string>& words) {
  const std::string t = lower(text);
  for (const auto& w : words)
    if (t.find(w) != std::string::npos) return true;
  return false;
}

// The first patient (searching numbers 1..400 of a seed) with a finding matching `pred`.
template <typename Pred>
bool find_patient(std::uint64_t seed, Pred pred, Patient& out, const Finding*& f) {
  for (int n = 1; n <= 400; ++n) {
    out = plan_patient(seed, "train", n, Size::tiny);
    for (const auto& fd : out.scans[0].findings)
      if (pred(fd)) {
        f = &fd;
        return true;
      }
  }
  return false;
}

}  // namespace

TEST_CASE("synth: plans and volumes are deterministic in the seed") {
  const Patient a = plan_patient(1, "train", 1, Size::tiny);
  const Patient b = plan_patient(1, "train", 1, Size::tiny);
  const Patient c = plan_patient(2, "train", 1, Size::tiny);
  REQUIRE(!a.volumes.empty());
  CHECK(a.volumes[0].name == "train_1_a_1.nii.gz");
  CHECK(a.volumes[0].rel_path == "train/train_1/train_1_a/train_1_a_1.nii.gz");
  CHECK(a.scans[0].report.findings == b.scans[0].report.findings);
  CHECK(truth_json(a, a.volumes[0]) == truth_json(b, b.volumes[0]));
  const auto& va = a.volumes[0];
  const auto x = render_hu(a.scans[0], va.geo, va.noise_hu, va.noise_key, 1);
  const auto y = render_hu(b.scans[0], b.volumes[0].geo, b.volumes[0].noise_hu, b.volumes[0].noise_key, 2);
  CHECK(x == y);  // same seed, any thread count: same voxels
  const auto& vc = c.volumes[0];
  const auto z = render_hu(c.scans[0], vc.geo, vc.noise_hu, vc.noise_key, 1);
  CHECK(x != z);
  // tiny sizes
  CHECK(va.geo.dim[0] >= 96);
  CHECK(va.geo.dim[0] <= 128);
  CHECK(va.geo.dim[2] >= 32);
  CHECK(va.geo.dim[2] <= 48);
  // the validation split is drawn independently of the training one
  CHECK(plan_patient(1, "valid", 1, Size::tiny).volumes[0].name == "valid_1_a_1.nii.gz");
}

TEST_CASE("synth: --lesion-scale scales the findings and their text, 1 changes nothing") {
  double sum1 = 0, sum2 = 0;
  int n_sized = 0, in_text = 0;
  for (int n = 1; n <= 60; ++n) {
    const Patient a = plan_patient(5, "train", n, Size::tiny);
    const Patient one = plan_patient(5, "train", n, Size::tiny, 1.0);
    CHECK(truth_json(a, a.volumes[0]) == truth_json(one, one.volumes[0]));
    const Patient b = plan_patient(5, "train", n, Size::tiny, 2.0);
    // same anatomy and the same wanted findings (labels drawn before any size)
    CHECK(a.scans[0].anat.A == b.scans[0].anat.A);
    for (const auto& fb : b.scans[0].findings) {
      if (fb.label != kLungNodule && fb.label != kPleuralEffusion && fb.label != kLymphadenopathy &&
          fb.label != kConsolidation && fb.label != kHiatalHernia)
        continue;
      for (const auto& fa : a.scans[0].findings)
        if (fa.label == fb.label) {
          sum1 += fa.size_mm, sum2 += fb.size_mm, ++n_sized;
          break;
        }
      const std::string mm = fmt::format("{} mm", static_cast<int>(std::lround(fb.size_mm)));
      in_text += b.scans[0].report.findings.find(mm) != std::string::npos;
    }
  }
  REQUIRE(n_sized > 10);
  CHECK(sum2 / sum1 > 1.8);
  CHECK(sum2 / sum1 < 2.2);
  CHECK(in_text > 0);  // the reports quote the scaled sizes
}

TEST_CASE("synth: rendered tissues have plausible HU") {
  const Patient p = plan_patient(7, "train", 3, Size::tiny);
  const VolumeSpec& v = p.volumes[0];
  const Scan& s = p.scans[0];
  const auto hu = render_hu(s, v.geo, v.noise_hu, v.noise_key, 2);
  const Phantom ph(s);
  std::map<Tissue, std::pair<double, std::size_t>> sum;
  std::int16_t bone_max = -2000;
  std::size_t off = 0;
  const auto& g = v.geo;
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) {
        const auto m = g.mm(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
        const auto smp = ph.at(m[0], m[1], m[2]);
        const std::int16_t val = hu[static_cast<std::size_t>((k * g.dim[1] + j) * g.dim[0] + i)];
        auto& e = sum[smp.tissue];
        e.first += val;
        ++e.second;
        if (smp.tissue == Tissue::bone) bone_max = std::max(bone_max, val);
        // noise stays within a few sigma of the noise-free value (except where
        // small calcified spots are averaged over the slice thickness)
        if (smp.hu > -1000 && smp.hu < 3000 && std::fabs(val - smp.hu) >= 6 * v.noise_hu + 1) ++off;
      }
  CHECK(off < g.voxels() / 2000);
  auto mean = [&](Tissue t) {
    REQUIRE(sum.count(t));
    return sum[t].first / static_cast<double>(sum[t].second);
  };
  CHECK(mean(Tissue::air) == doctest::Approx(-1000).epsilon(0.01));
  CHECK(mean(Tissue::lung) > -900);
  CHECK(mean(Tissue::lung) < -780);
  CHECK(mean(Tissue::fat) == doctest::Approx(-100).epsilon(0.1));
  CHECK(mean(Tissue::heart) > 30);
  CHECK(mean(Tissue::heart) < 60);
  CHECK(mean(Tissue::bone) > 350);
  CHECK(bone_max > 900);
  // the corner of the field of view is air
  CHECK(hu[0] < -900);
  // the centre of the right lung at mid height is lung
  const auto b = ph.lung_box(0);
  const auto c = ph.at((b[0] + b[1]) / 2 - 10, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2 + 20);
  CHECK(c.tissue == Tissue::lung);
  CHECK(c.hu < -700);
}

TEST_CASE("synth: a rendered nodule is soft tissue inside lung") {
  Patient p;
  const Finding* f = nullptr;
  REQUIRE(find_patient(11, [](const Finding& x) { return x.label == kLungNodule && x.size_mm >= 12; }, p, f));
  const Phantom ph(p.scans[0]);
  const auto c = ph.at(f->centre[0], f->centre[1], f->centre[2]);
  CHECK(c.tissue == Tissue::lesion);
  CHECK(c.hu == doctest::Approx(42));
  CHECK(c.lobe == f->lobe);
  // just outside the nodule, along x, is aerated lung or a vessel
  const auto o = ph.at(f->centre[0] + f->size_mm / 2 + 1.5, f->centre[1], f->centre[2]);
  CHECK((o.tissue == Tissue::lung || o.tissue == Tissue::vessel || o.tissue == Tissue::lesion));
  // the voxel nearest the centre, rendered without noise, is soft tissue
  const VolumeSpec& v = p.volumes[0];
  const auto hu = render_hu(p.scans[0], v.geo, 0, 0, 2);
  const auto vx = v.geo.voxel(f->centre);
  const std::int16_t val = hu[static_cast<std::size_t>((vx[2] * v.geo.dim[1] + vx[1]) * v.geo.dim[0] + vx[0])];
  CHECK(val > -200);
  CHECK(val < 100);
  // the report names the size and the lobe
  const std::string text = lower(p.scans[0].report.findings);
  CHECK(text.find(std::to_string(std::lround(f->size_mm)) + " mm") != std::string::npos);
  CHECK(text.find(f->lobe <= kRLL ? "right" : "left") != std::string::npos);
}

TEST_CASE("synth: effusion, cardiomegaly and emphysema are visible") {
  Patient p;
  const Finding* f = nullptr;
  REQUIRE(find_patient(5, [](const Finding& x) { return x.label == kPleuralEffusion; }, p, f));
  {
    const Phantom ph(p.scans[0]);
    const int k = f->side == "left" ? 1 : 0;
    const auto b = ph.lung_box(k);
    int fluid = 0;
    for (double y = b[2]; y < b[3] + 10; y += 2)
      for (double z = b[4]; z < b[4] + 60; z += 3) {
        const auto s = ph.at((b[0] + b[1]) / 2, y, z);
        if (s.tissue == Tissue::fluid) {
          ++fluid;
          CHECK(s.hu == doctest::Approx(10));
        }
      }
    CHECK(fluid > 0);
  }
  REQUIRE(find_patient(5, [](const Finding& x) { return x.label == kCardiomegaly; }, p, f));
  {
    Scan normal = p.scans[0];
    normal.anat.heart_scale = 1;
    const Phantom big(p.scans[0]), small(normal);
    int nb = 0, ns = 0;
    for (double x = -150; x < 150; x += 3)
      for (double y = -120; y < 60; y += 3) {
        nb += big.at(x, y, f->centre[2]).tissue == Tissue::heart;
        ns += small.at(x, y, f->centre[2]).tissue == Tissue::heart;
      }
    CHECK(nb > ns * 1.3);
  }
  REQUIRE(find_patient(5, [](const Finding& x) { return x.label == kEmphysema; }, p, f));
  {
    const Phantom ph(p.scans[0]);
    int low = 0;
    for (const auto& q : f->points) low += ph.at(q[0], q[1], q[2]).hu < -940;
    CHECK(low > 0);
  }
}

TEST_CASE("synth: bronchiectasis, peribronchial and septal thickening are rendered") {
  Patient p;
  const Finding* f = nullptr;
  // bronchiectasis: an air lumen inside a soft-tissue wall, in the finding's lobe
  REQUIRE(find_patient(5, [](const Finding& x) { return x.label == kBronchiectasis; }, p, f));
  {
    const Phantom ph(p.scans[0]);
    REQUIRE(f->points.size() >= 2);
    REQUIRE(f->points.size() % 2 == 0);
    const auto c = ph.at(f->centre[0], f->centre[1], f->centre[2]);
    CHECK(c.tissue == Tissue::airway);
    CHECK(c.hu == doctest::Approx(-1000));
    CHECK(f->size_mm == doctest::Approx(2 * f->points[0][3]));
    // the wall: between the lumen radius and 1.45 times it, off the axis (perpendicular to the tube)
    const auto& a = f->points[0];
    const auto& b = f->points[1];
    const double dx = b[0] - a[0], dy = b[1] - a[1], nl = std::hypot(dx, dy);
    const double off = 1.22 * a[3];
    int wall = 0;
    for (double sgn : {-1.0, 1.0}) {
      const auto w = ph.at(f->centre[0] + sgn * off * dy / nl, f->centre[1] - sgn * off * dx / nl, f->centre[2]);
      wall += w.tissue == Tissue::lesion && w.hu == doctest::Approx(40);
    }
    CHECK(wall >= 1);
    Scan without = p.scans[0];
    without.findings.erase(std::remove_if(without.findings.begin(), without.findings.end(),
                                          [](const Finding& x) { return x.label == kBronchiectasis; }),
                           without.findings.end());
    const auto w = Phantom(without).at(f->centre[0], f->centre[1], f->centre[2]);
    CHECK(w.tissue != Tissue::airway);
    CHECK(w.lobe == f->lobe);
  }
  // peribronchial thickening: the centre lies in the thickened wall of the right main bronchus,
  // which is bronchial wall (muscle) or mediastinum without the finding
  REQUIRE(find_patient(5, [](const Finding& x) { return x.label == kPeribronchialThickening; }, p, f));
  {
    REQUIRE(p.scans[0].peribronchial_mm > 0);
    CHECK(f->size_mm == doctest::Approx(p.scans[0].peribronchial_mm));
    const auto c = Phantom(p.scans[0]).at(f->centre[0], f->centre[1], f->centre[2]);
    CHECK(c.tissue == Tissue::lesion);
    CHECK(c.hu == doctest::Approx(40));
    Scan without = p.scans[0];
    without.peribronchial_mm = 0;
    CHECK(Phantom(without).at(f->centre[0], f->centre[1], f->centre[2]).tissue != Tissue::lesion);
  }
  // septal thickening: soft-tissue septa in the periphery of the lower lobes only, some tens of
  // percent of the peripheral lower-lobe points, none in the upper lobes
  REQUIRE(find_patient(5, [](const Finding& x) { return x.label == kSeptalThickening; }, p, f));
  {
    const Phantom ph(p.scans[0]);
    const auto c = ph.at(f->centre[0], f->centre[1], f->centre[2]);
    CHECK(c.tissue == Tissue::lesion);
    CHECK(c.lobe == kRLL);
    Scan without = p.scans[0];
    without.septal_mm = 0;
    const Phantom clear(without);
    int lower = 0, septa = 0, upper_septa = 0;
    for (int k = 0; k < 2; ++k) {
      const auto b = ph.lung_box(k);
      for (double z = b[4]; z < b[5]; z += 3.1)
        for (double y = b[2]; y < b[3]; y += 1.7)
          for (double x = b[0]; x < b[1]; x += 1.3) {
            const auto q = clear.at(x, y, z);
            if (q.tissue != Tissue::lung) continue;
            const bool sep = ph.at(x, y, z).tissue == Tissue::lesion;
            if (q.lobe == kRLL || q.lobe == kLLL) {
              lower += 1;
              septa += sep;
            } else {
              upper_septa += sep;
            }
          }
    }
    CHECK(upper_septa == 0);
    CHECK(septa > lower / 20);
    CHECK(septa < lower / 2);
  }
}

TEST_CASE("synth: labels match findings and reports mention every finding") {
  const std::map<int, std::vector<std::string>> words = {
      {kMedicalMaterial, {"catheter"}},
      {kArterialCalcification, {"aort"}},
      {kCardiomegaly, {"cardiomegaly", "heart is enlarged", "heart size is increased"}},
      {kPericardialEffusion, {"pericardial effusion", "pericardial fluid"}},
      {kCoronaryCalcification, {"coronary"}},
      {kHiatalHernia, {"hiatal hernia"}},
      {kLymphadenopathy, {"lymph node"}},
      {kEmphysema, {"emphysema"}},
      {kAtelectasis, {"atelectasis", "atelectatic"}},
      {kLungNodule, {"nodule"}},
      {kLungOpacity, {"ground-glass"}},
      {kFibroticSequela, {"fibrotic"}},
      {kPleuralEffusion, {"pleural effusion"}},
      {kMosaicAttenuation, {"mosaic"}},
      {kPeribronchialThickening, {"peribronchial", "bronchial wall"}},
      {kConsolidation, {"consolidat"}},
      {kBronchiectasis, {"bronchiectasis", "bronchiectatic"}},
      {kSeptalThickening, {"septal thickening"}},
  };
  int normal = 0, total = 0;
  std::array<int, kNumLabels> seen{};
  for (int n = 1; n <= 100; ++n) {
    const Patient p = plan_patient(3, n % 2 ? "train" : "valid", n, Size::tiny);
    for (const auto& s : p.scans) {
      ++total;
      normal += s.normal();
      std::array<int, kNumLabels> expect{};
      for (const auto& f : s.findings) {
        expect[static_cast<std::size_t>(f.label)] = 1;
        INFO(kLabels[static_cast<std::size_t>(f.label)], " | ", s.report.findings);
        CHECK(contains_any(s.report.findings, words.at(f.label)));
        CHECK(!f.anatomy.empty());
        CHECK(!f.abnormality.empty());
        if (f.lobe) CHECK(std::string(lobe_anatomy(f.lobe)).find("lung") != std::string::npos);
      }
      CHECK(s.labels == expect);
      for (int l = 0; l < kNumLabels; ++l) seen[static_cast<std::size_t>(l)] += s.labels[static_cast<std::size_t>(l)];
      if (s.normal()) {
        CHECK(s.findings.empty());
        CHECK(s.report.impressions.find("nodule") == std::string::npos);
      }
      CHECK(!s.report.findings.empty());
      CHECK(!s.report.clinical.empty());
    }
  }
  const double frac = static_cast<double>(normal) / total;
  CHECK(frac > 0.15);
  CHECK(frac < 0.40);
  for (int l = 0; l < kNumLabels; ++l) CHECK(seen[static_cast<std::size_t>(l)] > 0);
}

TEST_CASE("synth: v1/v2 conventions and the truth record") {
  int v1 = 0, v2 = 0, i8192 = 0;
  for (int n = 1; n <= 60; ++n) {
    const Patient p = plan_patient(9, "train", n, Size::tiny);
    for (const auto& v : p.volumes) {
      (v.v1 ? v1 : v2)++;
      if (v.v1 && v.intercept == -8192) ++i8192;
      if (!v.v1) CHECK(v.intercept == -1024);
      const auto j = nlohmann::json::parse(truth_json(p, v));
      CHECK(j["id"] == v.name);
      CHECK(j["convention"] == (v.v1 ? "v1" : "v2"));
      CHECK(j["labels"].size() == kNumLabels);
      CHECK(j["findings"].size() == p.scans[static_cast<std::size_t>(v.scan)].findings.size());
      if (v.recon == 2) {
        // a second reconstruction shares the scan (findings, report) and its extent
        const auto& first = p.volumes[static_cast<std::size_t>(&v - &p.volumes[0]) - 1];
        CHECK(first.scan == v.scan);
        const double top1 = first.geo.origin[2] + (first.geo.dim[2] - 1) * first.geo.spacing[2];
        const double top2 = v.geo.origin[2] + (v.geo.dim[2] - 1) * v.geo.spacing[2];
        CHECK(top1 == doctest::Approx(top2));
      }
    }
  }
  CHECK(v1 > 10);
  CHECK(v2 > 10);
  CHECK(i8192 > 0);
  // stored values
  VolumeSpec v;
  v.v1 = true;
  v.intercept = -8192;
  std::vector<std::int16_t> d = {-1000, 0, 1000};
  to_stored(d, v);
  CHECK(d == std::vector<std::int16_t>{7192, 8192, 9192});
  v.v1 = false;
  to_stored(d, v);
  CHECK(d == std::vector<std::int16_t>{7192, 8192, 9192});
  CHECK_THROWS(parse_size("huge"));
}
